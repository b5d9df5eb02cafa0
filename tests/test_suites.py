"""Benchmark suites: named YAML definitions, JSONL files, .lean folders, errors, Lean versions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmarks import data_dir
from harness import suites
from harness.suites import Problem, Suite, SuiteError, load_suite


@pytest.fixture(autouse=True)
def _no_prover_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVER_DATA", raising=False)


@pytest.mark.parametrize("split", ["test", "valid"])
def test_minif2f_from_the_package(split: str) -> None:
    suite = load_suite(f"minif2f-{split}")
    assert suite.name == f"minif2f-{split}"
    assert suite.lean_version == "v4.24.0"
    assert "yangky11/miniF2F-lean4" in suite.source
    assert len(suite.problems) == 244
    assert len({p.name for p in suite.problems}) == 244
    for p in suite.problems:
        assert p.split == split
        assert p.header.startswith("import Mathlib")
        assert p.formal_statement.rstrip().endswith(":= by")
        assert p.formal_statement.startswith(("theorem ", "lemma "))


def test_deepseek_keeps_informal_prefix() -> None:
    suite = load_suite("minif2f-deepseek-valid")
    assert len(suite.problems) == 244
    assert suite.lean_version is not None and "4.9" in suite.lean_version
    p = suite.problems[0]
    assert p.extra["informal_prefix"].startswith("/--")
    assert "goal" in p.extra
    assert all(p.split == "valid" for p in suite.problems)
    assert len(load_suite("minif2f-deepseek-test").problems) == 244


def test_split_argument_overrides_definition() -> None:
    suite = load_suite("minif2f-test", split="valid")
    assert {p.split for p in suite.problems} == {"valid"}
    with pytest.raises(SuiteError, match="no problems in split 'dev'"):
        load_suite("minif2f-test", split="dev")


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    {
        "name": "a",
        "split": "test",
        "header": "import Mathlib\n\n",
        "formal_statement": "theorem a : 1 + 1 = 2 := by\n",
        "informal_prefix": "/-- one plus one -/\n",
    },
    {
        "name": "b",
        "split": "valid",
        "header": "import Mathlib\n\n",
        "formal_statement": "theorem b : 2 + 2 = 4 :=",
    },
]


def test_jsonl_path_and_split_filter(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "mine.jsonl", ROWS)
    suite = load_suite(str(path))
    assert isinstance(suite, Suite)
    assert suite.name == "mine"
    assert suite.lean_version is None
    assert [p.name for p in suite.problems] == ["a", "b"]
    a, b = suite.problems
    assert a == Problem("a", "test", "import Mathlib\n\n", "theorem a : 1 + 1 = 2 := by\n")
    assert a.extra == {"informal_prefix": "/-- one plus one -/\n"}
    assert b.formal_statement == "theorem b : 2 + 2 = 4 := by\n"  # a bare `:=` reads as `:= by`
    assert [p.name for p in load_suite(str(path), split="valid").problems] == ["b"]


def test_lean_folder(tmp_path: Path) -> None:
    folder = tmp_path / "lean"
    folder.mkdir()
    (folder / "p1.lean").write_text(
        "import Mathlib\nset_option maxHeartbeats 400000\nopen Real\n\n"
        "theorem p1 (x : ℝ) (h : 0 < x) :\n    0 < x ^ 2 := by sorry\n",
        encoding="utf-8",
    )
    (folder / "putnam_x.lean").write_text(
        "import Mathlib\n\nopen Set\n\n"
        "abbrev putnam_x_solution : ℕ := sorry\n-- 3\n"
        "/--\nFind the number.\n-/\n"
        "theorem putnam_x (n : ℕ) (h : n = putnam_x_solution) :\n    n = n :=\n  sorry\n",
        encoding="utf-8",
    )
    (folder / "notes.txt").write_text("not Lean")
    suite = load_suite(str(folder))
    assert [p.name for p in suite.problems] == ["p1", "putnam_x"]
    p1, px = suite.problems
    assert p1.split == "test"
    assert p1.header == "import Mathlib\nset_option maxHeartbeats 400000\nopen Real\n\n"
    assert p1.formal_statement == "theorem p1 (x : ℝ) (h : 0 < x) :\n    0 < x ^ 2 := by\n"
    assert px.header == "import Mathlib\n\nopen Set\n\n"
    assert px.formal_statement == (
        "theorem putnam_x (n : ℕ) (h : n = putnam_x_solution) :\n    n = n := by\n"
    )
    assert px.extra["informal_prefix"] == "/--\nFind the number.\n-/\n"
    assert px.extra["context"].startswith("abbrev putnam_x_solution : ℕ := sorry")


def test_lean_file_without_theorem(tmp_path: Path) -> None:
    (tmp_path / "d.lean").write_text("import Mathlib\n\ndef d : ℕ := 1\n")
    with pytest.raises(SuiteError, match="no theorem"):
        load_suite(str(tmp_path))


def test_search_paths_and_prover_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a user's copy comes before the one the package ships
    _write_jsonl(tmp_path / "minif2f-lean4.24.jsonl", ROWS)
    suite = load_suite("minif2f-test", split="valid", search_paths=[tmp_path])
    assert suite.name == "minif2f-test" and [p.name for p in suite.problems] == ["b"]
    monkeypatch.setenv("PROVER_DATA", f"/nonexistent:{tmp_path}")
    assert [p.name for p in load_suite("minif2f-test").problems] == ["a"]
    assert suites.data_search_paths()[-1] == data_dir()


def test_unknown_suite_lists_known_names() -> None:
    with pytest.raises(SuiteError) as err:
        load_suite("minif2f-tset")
    msg = str(err.value)
    assert "\n" not in msg
    for name in ("minif2f-test", "minif2f-valid", "proofnet", "putnambench"):
        assert name in msg


def test_missing_file_path() -> None:
    with pytest.raises(SuiteError, match="not found"):
        load_suite("/nonexistent/problems.jsonl")


@pytest.mark.parametrize(
    ("suite", "hint"),
    [
        ("proofnet", "deepseek-ai/DeepSeek-Prover-V1.5"),
        ("putnambench", "trishullab/PutnamBench"),
    ],
)
def test_missing_data_says_where_to_get_it(
    suite: str, hint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # data found nowhere: an empty search path, no $PROVER_DATA, and (as in a package whose
    # data was left out) no shipped copy
    monkeypatch.delenv("PROVER_DATA", raising=False)
    monkeypatch.setattr(suites, "shipped_data_dir", lambda: tmp_path / "not-shipped")
    with pytest.raises(SuiteError) as err:
        load_suite(suite, search_paths=[tmp_path])
    msg = str(err.value)
    assert "\n" not in msg
    assert hint in msg and "not found" in msg and str(tmp_path) in msg


def test_bad_jsonl_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n{not json\n", encoding="utf-8")
    with pytest.raises(SuiteError, match=r"bad\.jsonl:3: invalid JSON"):
        load_suite(str(path))


def test_missing_fields(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "m.jsonl", [ROWS[0], {"name": "x", "split": "test"}])
    with pytest.raises(SuiteError, match=r"\.jsonl:2: missing field.*header, formal_statement"):
        load_suite(str(path))


def test_duplicate_names(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "dup.jsonl", [ROWS[0], ROWS[0]])
    with pytest.raises(SuiteError, match="duplicate problem name a"):
        load_suite(str(path))


def test_hf_without_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(SuiteError, match="needs the `datasets` package"):
        load_suite("hf:someone/minif2f")


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("theorem b : 2 + 2 = 4", "no `:=`"),
        ("theorem b : 2 + 2 = 4 by", "no `:=`"),
        ("def b : ℕ := 4", "declares no theorem or lemma (found `def`)"),
        ("-- nothing but a comment", "declares no theorem or lemma (found nothing)"),
        ("theorem : 2 + 2 = 4 := by", "has no name"),
        ("theorem b : 1 = 1 := by\ntheorem c : 2 = 2 := by", "declares 2 theorems (b, c)"),
        ("theorem b : 2 + 2 = 4 := by norm_num", "must end in `:= by`"),
    ],
)
def test_a_statement_no_proof_could_be_judged_is_refused_at_load(
    tmp_path: Path, statement: str, words: str
) -> None:
    row = {**ROWS[1], "formal_statement": statement}
    path = _write_jsonl(tmp_path / "bad.jsonl", [ROWS[0], row])
    with pytest.raises(SuiteError) as err:
        load_suite(str(path), split="test")  # the bad row is in another split: still refused
    message = str(err.value)
    assert message.startswith(f"{path}:2: ") and words in message and "\n" not in message


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"name": " "}, "field `name` is blank"),
        ({"name": "a\nb"}, "field `name` spans several lines"),
        ({"split": ""}, "field `split` is blank"),
        ({"context": 3}, "field `context` is a number, not a string"),
        ({"informal_prefix": {"x": 1}}, "field `informal_prefix` is an object, not a string"),
    ],
)
def test_other_unusable_fields_are_refused_at_load(
    tmp_path: Path, change: dict, words: str
) -> None:
    path = _write_jsonl(tmp_path / "bad.jsonl", [ROWS[0], {**ROWS[1], **change}])
    with pytest.raises(SuiteError, match=rf"bad\.jsonl:2: {words}"):
        load_suite(str(path))


def test_a_lean_folder_problem_knows_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "ok.lean").write_text("import Mathlib\n\n-- one\ntheorem ok : 1 = 1 := by sorry\n")
    assert load_suite(str(tmp_path)).problems[0].where == f"{tmp_path / 'ok.lean'}:4"


def test_duplicate_names_say_both_lines(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "dup.jsonl", [ROWS[0], ROWS[1], ROWS[0]])
    with pytest.raises(SuiteError, match=r"dup\.jsonl:3: duplicate problem name a \(first at "
                       r".*dup\.jsonl:1\)"):  # fmt: skip
        load_suite(str(path))


def test_every_shipped_minif2f_statement_passes_the_load_checks() -> None:
    for name in ("minif2f-test", "minif2f-valid", "minif2f-deepseek-test"):
        assert len(load_suite(name).problems) == 244


def test_a_puzzle_suite_in_jsonl_is_not_read_as_lean(tmp_path: Path) -> None:
    puzzle = json.dumps({"numbers": [1, 2], "target": 3})
    path = _write_jsonl(tmp_path / "p.jsonl", [{**ROWS[0], "formal_statement": puzzle}])
    assert load_suite(str(path)).problems[0].formal_statement == puzzle
    broken = _write_jsonl(tmp_path / "b.jsonl", [{**ROWS[0], "formal_statement": "{not json"}])
    with pytest.raises(SuiteError, match=r"b\.jsonl:1: .*declares no theorem"):
        load_suite(str(broken))


# --- suite definitions: exclusions and duplicate names -----------------------------------


def _define(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[dict], **spec: object
) -> None:
    """A suite `mine` defined in a YAML file of its own, reading `mine.jsonl` from tmp_path."""
    import yaml

    _write_jsonl(tmp_path / "mine.jsonl", rows)
    definition = {
        "name": "mine", "description": "d", "source": "here", "lean_version": None,
        "data": "mine.jsonl", **spec,
    }  # fmt: skip
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(definition))
    monkeypatch.setattr(suites, "suite_definitions", lambda: {"mine": path})
    monkeypatch.setenv("PROVER_DATA", str(tmp_path))


DEF_ROW = {**ROWS[1], "name": "d", "formal_statement": "def d : ℕ := 4"}
OTHER_A = {**ROWS[0], "split": "valid", "formal_statement": "theorem a : 3 = 3 := by\n"}


def test_an_excluded_row_is_left_out_and_said(tmp_path, monkeypatch) -> None:
    reason = "a def asks for data"
    _define(tmp_path, monkeypatch, [ROWS[0], DEF_ROW], exclude={"reason": reason, "names": ["d"]})
    suite = load_suite("mine")
    assert [p.name for p in suite.problems] == ["a"]
    assert suite.excluded == ("d",) and suite.excluded_reason == reason
    with pytest.raises(SuiteError, match="declares no theorem"):
        load_suite(str(tmp_path / "mine.jsonl"))  # the same file without the definition


@pytest.mark.parametrize(
    ("exclude", "words"),
    [
        ({"reason": "r", "names": ["gone"]}, r"excluded problem\(s\) gone not in the data"),
        ({"names": ["d"]}, "needs exactly `reason` and `names`"),
        ({"reason": " ", "names": ["d"]}, "must say why"),
        ({"reason": "r", "names": "d"}, "must be a list"),
        ({"reason": "r", "names": ["d", "d"]}, "lists d more than once"),
    ],
)
def test_a_bad_or_stale_exclusion_is_refused(tmp_path, monkeypatch, exclude, words) -> None:
    _define(tmp_path, monkeypatch, [ROWS[0], DEF_ROW], exclude=exclude)
    with pytest.raises(SuiteError, match=words) as err:
        load_suite("mine")
    assert "\n" not in str(err.value)


def test_an_excluded_name_matching_several_rows_is_refused(tmp_path, monkeypatch) -> None:
    _define(
        tmp_path, monkeypatch, [ROWS[0], OTHER_A], exclude={"reason": "r", "names": ["a"]},
        duplicate_names="rename",
    )  # fmt: skip
    with pytest.raises(SuiteError, match="excluded name.* a match several rows"):
        load_suite("mine")


def test_duplicate_names_are_refused_unless_the_definition_says_rename(
    tmp_path, monkeypatch
) -> None:
    _define(tmp_path, monkeypatch, [ROWS[0], OTHER_A])
    with pytest.raises(SuiteError, match="duplicate problem name a"):
        load_suite("mine")
    _define(tmp_path, monkeypatch, [ROWS[0], OTHER_A], duplicate_names="merge")
    with pytest.raises(SuiteError, match="`duplicate_names` is 'merge'; one of refuse, rename"):
        load_suite("mine")


def test_differing_duplicates_are_renamed_by_their_statement(tmp_path, monkeypatch) -> None:
    from harness.suite_rules import statement_tag

    _define(tmp_path, monkeypatch, [OTHER_A, ROWS[1], ROWS[0]], duplicate_names="rename")
    suite = load_suite("mine")
    tag_valid = statement_tag(OTHER_A["header"], OTHER_A["formal_statement"])
    tag_test = statement_tag(ROWS[0]["header"], ROWS[0]["formal_statement"])
    assert tag_valid != tag_test
    assert [p.name for p in suite.problems] == [f"a@{tag_valid}", "b", f"a@{tag_test}"]
    # statements untouched, the row's own name kept, and the same name whatever the split
    first = suite.problems[0]
    assert first.formal_statement == OTHER_A["formal_statement"]
    assert first.extra["upstream_name"] == "a"
    assert [p.name for p in load_suite("mine", split="test").problems] == [f"a@{tag_test}"]
    # the names do not depend on the order of the file
    _define(tmp_path, monkeypatch, [ROWS[0], ROWS[1], OTHER_A], duplicate_names="rename")
    assert {p.name for p in load_suite("mine").problems} == {f"a@{tag_valid}", "b", f"a@{tag_test}"}


def test_identical_duplicates_are_counted_once(tmp_path, monkeypatch) -> None:
    _define(tmp_path, monkeypatch, [ROWS[0], ROWS[1], ROWS[0]], duplicate_names="rename")
    assert [p.name for p in load_suite("mine").problems] == ["a", "b"]


def test_same_statement_differing_elsewhere_is_still_refused(tmp_path, monkeypatch) -> None:
    # the same header and statement in two splits: no name can tell them apart, and which
    # split the benchmark meant is for a person to decide
    leaked = {**ROWS[0], "split": "valid"}
    _define(tmp_path, monkeypatch, [ROWS[0], leaked], duplicate_names="rename")
    with pytest.raises(SuiteError, match=r"duplicate problem name a@"):
        load_suite("mine")
