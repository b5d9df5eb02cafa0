"""`prover selftest`'s tactic-mode checks (prover/selftest_tactics.py) through the real CLI. The
Lean side is the FakeRepl double: its tactic table (script mode, tests/doubles/selftest_lean.py:
scripted, not recorded) for whole selftest runs, and its replay mode for the recorded
transcripts whose answers the checks' expectations must read as real Lean gives them. The image
build's `prover selftest` is where real Lean answers these checks."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from prover.lean.protocol import TacticResponse, is_skipped, split_requests, split_responses
from prover.lean.repl import LeanRepl
from prover.lean.sandbox import ReplCommand
from prover.lean.tactics import failure_reason, tactic_outcome
from prover.selftest_tactics import (
    ENFORCED,
    NOT_ENFORCED,
    NOT_SETTLED,
    SEARCH_CHECK,
    STEP_CHECKS,
    StepCheck,
)

from conftest import FAKE_REPL, data_path, plain_factory, run_prover
from doubles.selftest_lean import TYPE_MISMATCH, tactic_graph, write_rules

TRANSCRIPTS = data_path("repl-transcripts")
ALL_CHECKS = {c.id for c in STEP_CHECKS} | {SEARCH_CHECK}


def selftest(rules: Path, *args: str):
    repl = shlex.join([sys.executable, str(FAKE_REPL), "script", str(rules)])
    return run_prover("selftest", "--sandbox", "none", "--workers", "2", "--repl", repl, *args)


def tactic_part(result) -> dict:
    return json.loads(result.stdout)["tactic"]


def mismatched(result) -> dict[str, dict]:
    return {r["id"]: r for r in tactic_part(result)["rows"] if r["result"] == "MISMATCH"}


def test_every_check_passes_and_enforced_heartbeats_are_reported(tmp_path) -> None:
    result = selftest(write_rules(tmp_path / "rules.json"), "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    document = json.loads(result.stdout)
    tactic = document["tactic"]
    assert document["ok"] is True and tactic["ok"] is True
    assert {r["id"]: r["result"] for r in tactic["rows"]} == dict.fromkeys(ALL_CHECKS, "ok")
    rows = {r["id"]: r for r in tactic["rows"]}
    assert rows["tactic-open"]["got"] == "open: 1 goal with `⊢ a = b`"
    # the found path went through every rung, the kernel replay included
    assert rows[SEARCH_CHECK]["got"] == "ok, replayed"
    assert tactic["heartbeats"] == ENFORCED
    assert "tactic heartbeats: enforced" in document["summary"]
    table = selftest(write_rules(tmp_path / "rules2.json"))
    assert table.returncode == 0
    assert "tactic mode: 6 checks, 6 ok, 0 mismatched" in table.stdout
    assert "selftest: tactic heartbeats: enforced" in table.stdout
    assert "tactic-search-path" in table.stdout


@pytest.mark.parametrize(
    ("linarith", "reported"),
    [
        ("proved", NOT_ENFORCED),  # the bound is ignored: the tactic runs to its end
        ({"error": "linarith failed to find a contradiction"}, NOT_SETTLED),
    ],
)
@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_heartbeats_not_enforced_is_reported_without_failing(tmp_path, linarith, reported):
    graph = tactic_graph(heartbeats_root={"linarith": linarith})
    result = selftest(write_rules(tmp_path / "rules.json", graph=graph), "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    tactic = tactic_part(result)
    assert tactic["heartbeats"] == reported and tactic["ok"] is True
    assert f"tactic heartbeats: {reported}" in json.loads(result.stdout)["summary"]
    table = selftest(write_rules(tmp_path / "rules2.json", graph=graph))
    assert table.returncode == 0 and f"selftest: tactic heartbeats: {reported}" in table.stdout


@pytest.mark.parametrize(
    ("edges", "wrong"),
    [
        # `exact h` accepted although its type is not the goal's
        ({"exact h.symm": "proved", "exact h": "proved", "symm": "symm_swapped"},
         {"tactic-error": "proved"}),
        # an unparsable tactic answered as an error in a new state, not as `Lean error`
        ({"exact h.symm": "proved", "exact h": {"error": TYPE_MISMATCH},
          "symm": "symm_swapped", "exat h": {"error": "unknown tactic"}},
         {"tactic-unparsable": "failed (error)"}),
        # a closing tactic whose proof term the REPL's kernel check refused
        ({"exact h.symm": {"to": "proved", "status": "Incomplete: contains metavariable(s)"},
          "exact h": {"error": TYPE_MISMATCH}, "symm": "symm_swapped"},
         {"tactic-proved": "failed (incomplete)"}),
        # `symm` leaves the goal as it was: the path cannot close it either
        ({"exact h.symm": "proved", "exact h": {"error": TYPE_MISMATCH}, "symm": "symm_root"},
         {"tactic-open": "open: 1 goal with `⊢ b = a`", "tactic-path": "failed (error)",
          SEARCH_CHECK: "failed (error)"}),
    ],
)  # fmt: skip
@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_a_disagreeing_outcome_is_exit_1_naming_the_check(tmp_path, edges, wrong) -> None:
    graph = tactic_graph(symm_root=edges)
    result = selftest(write_rules(tmp_path / "rules.json", graph=graph), "--json")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["tactic"]["ok"] is False
    assert {k: r["got"] for k, r in mismatched(result).items()} == wrong
    # the canaries themselves all got their verdict: only tactic mode disagrees
    assert not [r for r in document["rows"] if r["result"] == "MISMATCH"]
    table = selftest(write_rules(tmp_path / "rules2.json", graph=graph))
    assert table.returncode == 1
    for check in wrong:
        line = next(ln for ln in table.stdout.splitlines() if f" {check} " in ln)
        assert "MISMATCH" in line, line
    assert f"{len(wrong)} mismatched" in table.stdout


def test_a_path_whose_assembled_proof_lean_rejects_is_a_mismatch(tmp_path) -> None:
    # tactic mode closes the goal, but the kernel replay of the whole proof refuses it
    reject = {"match": "by\n  symm\n  exact h", "replay_error": "(kernel) declaration mismatch"}
    result = selftest(write_rules(tmp_path / "rules.json", rules=[reject]), "--json")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    rows = mismatched(result)
    assert set(rows) == {SEARCH_CHECK} and rows[SEARCH_CHECK]["got"] == "replay"


def test_a_repl_without_proof_status_passes_every_check(tmp_path) -> None:
    """The v4.9 REPL sends no `proofStatus`: the outcome rule reads its answers alike."""
    graph = {**tactic_graph(), "proof_status": False}
    result = selftest(write_rules(tmp_path / "rules.json", graph=graph), "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert not mismatched(result) and tactic_part(result)["heartbeats"] == ENFORCED


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_lean_only_runs_the_tactic_checks_too(tmp_path) -> None:
    result = selftest(write_rules(tmp_path / "rules.json"), "--lean-only", "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    tactic = tactic_part(result)
    assert {r["result"] for r in tactic["rows"]} == {"ok"} and len(tactic["rows"]) == 6


UNKNOWN_IDENTIFIER = {
    "severity": "error",
    "pos": {"line": 1, "column": 45},
    "endPos": {"line": 1, "column": 46},
    "data": "unknown identifier 'ℕ'",
}


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        # Lean refuses the statement: no proof state to run tactics from
        ({"match": "b = a := by sorry", "response": {"messages": [UNKNOWN_IDENTIFIER]}},
         "no proof state to search from"),
        # every process dies on it: retries spent
        ({"match": "b = a := by sorry", "exit": 1}, "3 attempts"),
    ],
)  # fmt: skip
@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_tactic_mode_that_cannot_run_is_exit_2(tmp_path, rule, says) -> None:
    result = selftest(write_rules(tmp_path / "rules.json", rules=[rule]), "--json")
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "tactic mode:" in result.stderr and says in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


# -- the expectations against recorded real-Lean answers (the FakeRepl's replay mode) ----------

# (transcript, request index) of a recorded answer each check's expectation must agree with,
# and the goal text an `open` expectation looks for there
RECORDED: dict[str, tuple[str, int, str]] = {
    "tactic-proved": ("assumption_proof", 1, ""),
    "tactic-error": ("invalid_tactic", 1, ""),  # `Unknown identifier` in a new state
    "tactic-unparsable": ("unknown_tactic", 1, ""),  # `exat 42`: the `Lean error` answer
    "tactic-open": ("readme", 1, "⊢ Int"),
    "tactic-path": ("proof_step", 3, ""),  # the last of two steps, the first left a goal
}


def replayed_answer(case: str, index: int) -> TacticResponse:
    """The recorded answer to request `index` of `case`, through the real client and pipes."""
    text = (TRANSCRIPTS / f"{case}.in").read_text()
    requests = [json.loads(r) for r in split_requests(text) if not is_skipped(r)]
    command = ReplCommand((sys.executable, str(FAKE_REPL), "replay",
                           str(TRANSCRIPTS / f"{case}.in"),
                           str(TRANSCRIPTS / f"{case}.expected.out")))  # fmt: skip
    repl = LeanRepl(plain_factory(command)(), header="")
    try:
        for request in requests[:index]:
            if "tactic" in request:
                repl.tactic(request["tactic"], request["proofState"], timeout=30)
            else:
                repl.send(request, timeout=30)
        want = requests[index]
        answer = repl.tactic(want["tactic"], want["proofState"], timeout=30)
    finally:
        repl.close()
    recorded = split_responses((TRANSCRIPTS / f"{case}.expected.out").read_text())[index]
    assert answer.raw == json.loads(recorded)
    return answer  # type: ignore[return-value]


@pytest.mark.parametrize("check", STEP_CHECKS, ids=lambda c: c.id)
def test_each_expectation_agrees_with_a_recorded_answer_of_its_kind(check: StepCheck) -> None:
    case, index, goal = RECORDED[check.id]
    answer = replayed_answer(case, index)
    expectation = StepCheck(check.id, check.tactics, check.outcome, check.why, check.reason,
                            goal or check.goal)  # fmt: skip
    goals = answer.goals if isinstance(answer, TacticResponse) else ()
    assert expectation.judge(tactic_outcome(answer), failure_reason(answer), goals) == ""


def test_an_expectation_disagrees_with_an_answer_of_another_kind() -> None:
    by_id = {c.id: c for c in STEP_CHECKS}
    error = replayed_answer("invalid_tactic", 1)  # an error in a new state, not `Lean error`
    why = by_id["tactic-unparsable"].judge(tactic_outcome(error), failure_reason(error), ())
    assert why == "failed for another reason: error, not lean_error"
    opened = replayed_answer("readme", 1)  # `⊢ Int`, not the goal the check looks for
    assert isinstance(opened, TacticResponse)
    why = by_id["tactic-open"].judge(tactic_outcome(opened), None, opened.goals)
    assert why.startswith("expected one goal with `⊢ a = b`")
