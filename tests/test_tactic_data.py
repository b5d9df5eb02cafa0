"""LeanDojo's traced-tactic format read as (state, tactic) pairs (`training.tactic_data`), and
the step text the pairs become (`training.step_text`). The fixture is hand-made in LeanDojo
Benchmark 4's schema (tests/data/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from training.step_text import BFS_PROVER, step_text_for
from training.tactic_data import (
    TacticDataError,
    TacticOptions,
    format_state,
    read_traced_tactics,
)

from conftest import data_path

FIXTURE = data_path("leandojo-tactics/train.json")
PP = "p : Prop\nhp : p\n"


def write(tmp_path: Path, data: Any, name: str = "bad.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def theorem(name: str = "T.t", tactics: list[Any] | None = None, **fields: Any) -> dict:
    record = {"url": "u", "commit": "c", "file_path": "T.lean", "full_name": name,
              "start": [1, 1], "end": [2, 2], "traced_tactics": tactics or []}  # fmt: skip
    return {**record, **fields}


def step(tactic: str = "simp", before: str = "⊢ True", after: str = "no goals") -> dict:
    return {"tactic": tactic, "annotated_tactic": [tactic, []], "state_before": before,
            "state_after": after}  # fmt: skip


# --- the fixture -------------------------------------------------------------------------------


def test_the_fixture_reads_as_its_steps_in_order_without_the_no_goals_one() -> None:
    data = read_traced_tactics(FIXTURE)
    assert (data.theorems, data.skipped_no_goals) == (5, 1)
    assert [(p.full_name, p.index, p.tactic) for p in data.pairs] == [
        ("Toy.two_mul'", 0, "rw [two_mul]"),
        ("Toy.add_swap", 0, "rw [Nat.add_comm a b]"),
        ("Toy.add_swap", 1, "omega"),
        ("Toy.and_self'", 0, "constructor"),
        ("Toy.and_self'", 1, "exact hp"),
        ("Toy.and_self'", 2, "exact hp"),
        ("Toy.zero_add'", 0, "induction n with\n  | zero => rfl\n  | succ n ih => omega"),
    ]
    first = data.pairs[0]
    assert (first.state, first.state_after) == ("n : ℕ\n⊢ 2 * n = n + n", "no goals")
    assert first.file_path == "Toy/Basic.lean"
    # two goals, as LeanDojo prints them: case tags, a blank line between
    assert data.pairs[4].state == f"case left\n{PP}⊢ p\n\ncase right\n{PP}⊢ p"
    assert all(p.state != "no goals" for p in data.pairs)


def test_annotated_tactics_name_their_premises_in_full() -> None:
    pairs = read_traced_tactics(FIXTURE, TacticOptions(annotated=True)).pairs
    assert pairs[1].tactic == "rw [Nat.add_comm a b]"
    marked = read_traced_tactics(FIXTURE, TacticOptions(annotated=True, keep_marks=True)).pairs
    assert [p.tactic for p in marked[:2]] == ["rw [<a>two_mul</a>]", "rw [<a>Nat.add_comm</a> a b]"]


def test_annotated_premises_take_the_provenances_full_name(tmp_path: Path) -> None:
    # ReProver's format_tactic: the name as written in the source becomes the provenance's
    annotated = ["rw [<a>add_comm</a> a, <a>mul_one</a>]",
                 [{"full_name": "Nat.add_comm"}, {"full_name": "mul_one"}]]  # fmt: skip
    record = theorem(tactics=[{**step("rw [add_comm a, mul_one]"), "annotated_tactic": annotated}])
    path = write(tmp_path, [record], "ok.json")
    [pair] = read_traced_tactics(path, TacticOptions(annotated=True)).pairs
    assert pair.tactic == "rw [Nat.add_comm a, mul_one]"
    [plain] = read_traced_tactics(path).pairs
    assert plain.tactic == "rw [add_comm a, mul_one]"


def test_whitespace_is_kept_unless_asked_to_collapse_it() -> None:
    options = TacticOptions(normalize_whitespace=True)
    last = read_traced_tactics(FIXTURE, options).pairs[-1]
    assert last.tactic == "induction n with | zero => rfl | succ n ih => omega"


def test_limit_takes_the_first_pairs() -> None:
    data = read_traced_tactics(FIXTURE, limit=3)
    assert [p.tactic for p in data.pairs] == ["rw [two_mul]", "rw [Nat.add_comm a b]", "omega"]


def test_a_lean3_goal_count_heading_is_dropped() -> None:
    assert format_state("2 goals\np : Prop\n⊢ p\n\n⊢ p") == "p : Prop\n⊢ p\n\n⊢ p"
    assert format_state("n : ℕ\n⊢ n = n") == "n : ℕ\n⊢ n = n"


# --- bad input: one line naming the file and the record ----------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[{", "not valid JSON (Expecting property name enclosed in double quotes, line 1"),
        ({"theorems": []}, "expected a JSON list of theorems (LeanDojo's format), got an object"),
        ([3], "theorem 0: expected an object, got 3"),
        ([theorem(), {"traced_tactics": []}], "theorem 1: full_name: missing"),
        ([theorem(full_name=["T", "t"])], "theorem 0: full_name: expected a string, got a list"),
        ([theorem(traced_tactics=None)], "theorem 0 (T.t): traced_tactics: expected a list, got "
                                         "null"),
        ([{"full_name": "T.t"}], "theorem 0 (T.t): traced_tactics: missing"),
        ([theorem(tactics=[step(), "simp"])], "theorem 0 (T.t), tactic 1: expected an object, got "
                                              "a string"),
        ([theorem(tactics=[{"tactic": "simp", "state_after": "x"}])],
         "theorem 0 (T.t), tactic 0: state_before: missing"),
        ([theorem(tactics=[{**step(), "state_after": 7}])],
         "theorem 0 (T.t), tactic 0: state_after: expected a string, got 7"),
        ([theorem(tactics=[step(tactic="  ")])], "theorem 0 (T.t), tactic 0: the tactic is empty"),
        ([theorem(tactics=[step(before="no goals")])],
         "no (state, tactic) pairs in 1 theorems (1 steps on 'no goals' skipped)"),
        ([], "no (state, tactic) pairs in 0 theorems"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_in_one_line_naming_file_and_record(
    tmp_path: Path, data: Any, message: str
) -> None:
    path = write(tmp_path, data)
    with pytest.raises(TacticDataError) as caught:
        read_traced_tactics(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: {message}")
    assert "\n" not in text


@pytest.mark.parametrize(
    ("annotated", "message"),
    [
        (None, "annotated_tactic: expected [text, provenances], missing"),
        ("rw [x]", "annotated_tactic: expected [text, provenances], got a string"),
        (["rw [<a>x</a>]", []], "annotated_tactic: 1 marked premises but 0 provenances"),
        (["rw [<a>x</a>]", [{"def_path": "X.lean"}]], "annotated_tactic: provenance 0 has no "
                                                       "full_name"),
    ],
)  # fmt: skip
def test_bad_annotations_are_refused_when_read(
    tmp_path: Path, annotated: Any, message: str
) -> None:
    record = theorem(tactics=[{**step(), "annotated_tactic": annotated}])
    path = write(tmp_path, [record])
    read_traced_tactics(path)  # the plain tactic does not need them
    with pytest.raises(TacticDataError) as caught:
        read_traced_tactics(path, TacticOptions(annotated=True))
    assert str(caught.value) == f"{path}: theorem 0 (T.t), tactic 0: {message}"


def test_missing_file_and_folder_are_named(tmp_path: Path) -> None:
    with pytest.raises(TacticDataError, match=r"nope\.json: no such file$"):
        read_traced_tactics(tmp_path / "nope.json")
    with pytest.raises(TacticDataError, match=r": a folder; give one split's file, e\.g\. .*"
                                              r"train\.json$"):  # fmt: skip
        read_traced_tactics(tmp_path)


# --- step text ---------------------------------------------------------------------------------


def test_bfs_prover_text_is_the_state_then_the_separator_then_the_tactic() -> None:
    assert step_text_for(None) is BFS_PROVER and step_text_for("bfs-prover") is BFS_PROVER
    state = "n : ℕ\n⊢ 2 * n = n + n"
    prompt, completion = BFS_PROVER.prompt(state), BFS_PROVER.completion("rw [two_mul]")
    assert prompt == "n : ℕ\n⊢ 2 * n = n + n:::"
    # the model card's reading of an output: what follows ":::" is the tactic
    assert (prompt + completion).split(":::")[1] == "rw [two_mul]"
    with pytest.raises(ValueError, match=r"^'kimina' is not a step-level format \(known: "):
        step_text_for("kimina")
