"""LeanDojo's traced-tactic format read as (state, tactic) pairs (`training.tactic_data`), and
the step text the pairs become (`training.step_text`). The fixture is hand-made in LeanDojo
Benchmark 4's schema (tests/data/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from training.step_text import step_text_for
from training.tactic_data import (
    TacticDataError,
    TacticOptions,
    TacticPair,
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
    assert data.pairs[5].previous == ("constructor", "exact hp")
    assert data.pairs[0].previous == ()
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


# --- step text: the search's step formats ------------------------------------------------------


def test_bfs_prover_rows_are_the_state_then_the_separator_then_the_tactic() -> None:
    text = step_text_for(None, None)
    assert text.name == "bfs-prover"
    pair = read_traced_tactics(FIXTURE).pairs[0]
    row = text.row(pair)
    assert row == {"prompt": "n : ℕ\n⊢ 2 * n = n + n:::", "completion": "rw [two_mul]"}
    # the search reads the tactic back from what the model was trained to write
    assert text.fmt.tactic(row["completion"] + "<|endoftext|>") == "rw [two_mul]"


def test_the_format_comes_from_the_config_then_the_model_name() -> None:
    assert step_text_for("ByteDance-Seed/BFS-Prover-V2-7B", None).name == "bfs-prover"
    assert step_text_for("internlm/internlm2_5-step-prover", None).name == "internlm-step"
    assert step_text_for("Qwen/Qwen2.5-0.5B", None).name == "bfs-prover"  # the default
    assert step_text_for("Qwen/Qwen2.5-0.5B", "llemma-goal").name == "llemma-goal"
    with pytest.raises(ValueError, match=r"^prompt format 'kimina' is a whole-proof format; "):
        step_text_for(None, "kimina")
    with pytest.raises(ValueError, match=r"^unknown step-level prompt format 'nope'"):
        step_text_for(None, "nope")


def test_internlm_rows_are_chat_turns_with_the_theorem_and_the_tactics_before() -> None:
    pair = read_traced_tactics(FIXTURE).pairs[2]  # add_swap's second step
    row = step_text_for(None, "internlm-step").row(pair)
    assert row is not None
    [user] = row["prompt"]
    assert user["role"] == "user"
    assert user["content"] == (
        "---\nNAME: Toy.add_swap\n\n---\nPROOF_BEFORE: rw [Nat.add_comm a b]\n\n"
        "---\nSTATE_BEFORE: a b c : ℕ\n⊢ b + a + c = c + b + a\n\n---\nTACTIC: "
    )
    assert row["completion"] == [{"role": "assistant", "content": "omega"}]


def test_other_step_formats_write_what_they_read_back() -> None:
    pair = read_traced_tactics(FIXTURE).pairs[-1]  # the multi-line induction
    goal = step_text_for(None, "llemma-goal").row(pair)
    assert goal == {"prompt": "[GOAL]n : ℕ\n⊢ 0 + n = n[PROOFSTEP]", "completion": pair.tactic}
    fewshot = step_text_for(None, "llemma-fewshot").row(pair)
    assert fewshot is not None and fewshot["prompt"].endswith("⊢ 0 + n = n\n---\nNext tactic:\n---")
    assert fewshot["completion"] == f"\n{pair.tactic}\n---"


def test_a_tactic_the_format_would_not_read_back_gives_no_row() -> None:
    pair = read_traced_tactics(FIXTURE).pairs[0]
    odd = TacticPair(pair.state, "exact (a ::: b)", "no goals", "T.t", "T.lean", 0)
    assert step_text_for(None, "bfs-prover").row(odd) is None
    assert step_text_for(None, "llemma-goal").row(odd) is not None
