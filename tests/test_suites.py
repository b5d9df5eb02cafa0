"""Benchmark suites: named YAML definitions, JSONL files, .lean folders, errors, Lean versions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness import suites
from harness.suites import Problem, Suite, SuiteError, load_suite

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_BENCHMARKS = SHARED / "benchmarks"


def need_shared(name: str) -> Path:
    path = SHARED_BENCHMARKS / name
    if not path.exists():
        reason = f"shared data {name} not found at {SHARED_BENCHMARKS} (it ships beside the repo)"
        print(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(autouse=True)
def _no_prover_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVER_DATA", raising=False)


@pytest.mark.parametrize("split", ["test", "valid"])
def test_minif2f_from_shared(split: str) -> None:
    need_shared("minif2f-lean4.24.jsonl")
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
    need_shared("minif2f-lean4.9-deepseek.jsonl")
    suite = load_suite("minif2f-deepseek-valid")
    assert len(suite.problems) == 244
    assert suite.lean_version is not None and "4.9" in suite.lean_version
    p = suite.problems[0]
    assert p.extra["informal_prefix"].startswith("/--")
    assert "goal" in p.extra
    assert all(p.split == "valid" for p in suite.problems)
    assert len(load_suite("minif2f-deepseek-test").problems) == 244


def test_split_argument_overrides_definition() -> None:
    need_shared("minif2f-lean4.24.jsonl")
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
    _write_jsonl(tmp_path / "proofnet-lean4.9-deepseek.jsonl", ROWS)
    suite = load_suite("proofnet", search_paths=[tmp_path])
    assert suite.name == "proofnet" and len(suite.problems) == 2
    monkeypatch.setenv("PROVER_DATA", f"/nonexistent:{tmp_path}")
    assert [p.name for p in load_suite("proofnet", split="test").problems] == ["a"]


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
    # data found nowhere: an empty search path, no $PROVER_DATA, no ../shared copy (a checkout
    # with ../shared beside it has both files there)
    monkeypatch.delenv("PROVER_DATA", raising=False)
    monkeypatch.setattr(suites, "SHARED_BENCHMARKS", tmp_path / "no-shared")
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
    need_shared("minif2f-lean4.24.jsonl")
    need_shared("minif2f-lean4.9-deepseek.jsonl")
    for name in ("minif2f-test", "minif2f-valid", "minif2f-deepseek-test"):
        assert len(load_suite(name).problems) == 244


def test_a_puzzle_suite_in_jsonl_is_not_read_as_lean(tmp_path: Path) -> None:
    puzzle = json.dumps({"numbers": [1, 2], "target": 3})
    path = _write_jsonl(tmp_path / "p.jsonl", [{**ROWS[0], "formal_statement": puzzle}])
    assert load_suite(str(path)).problems[0].formal_statement == puzzle
    broken = _write_jsonl(tmp_path / "b.jsonl", [{**ROWS[0], "formal_statement": "{not json"}])
    with pytest.raises(SuiteError, match=r"b\.jsonl:1: .*declares no theorem"):
        load_suite(str(broken))
