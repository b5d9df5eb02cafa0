"""Tactic mode: the recorded tactic-mode transcripts through the real client and pipes, the
rule that says what a tactic did, and pinned pool sessions against the FakeRepl tactic table
(heartbeats, the scan, crashes, rebuilding states, machinery failures)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from prover.errors import MachineryFailure
from prover.lean.pool import ReplPool, StatementFailure, VerifierConfig
from prover.lean.protocol import (
    ReplError,
    TacticResponse,
    is_skipped,
    parse_response,
    split_requests,
    split_responses,
)
from prover.lean.repl import LeanRepl, ReplFailure
from prover.lean.sandbox import ReplCommand
from prover.lean.tactic_session import TacticState
from prover.lean.tactics import (
    banned_tactic,
    failure_reason,
    root_command,
    tactic_outcome,
    with_heartbeats,
)

from conftest import FAKE_REPL, data_path, plain_factory

TRANSCRIPTS = data_path("repl-transcripts")
TACTIC_CASES = sorted(p.stem for p in TRANSCRIPTS.glob("*.in") if '"tactic"' in p.read_text())

# What each recorded tactic answer is, by request index: read off the transcripts by hand.
EXPECTED: dict[str, dict[int, tuple[str, str | None]]] = {
    "all_tactics-20250622": {1: ("proved", None)},
    "app_type_mismatch": {2: ("open", None), 3: ("open", None), 4: ("failed", "incomplete")},
    "app_type_mismatch2": {
        2: ("open", None),
        3: ("open", None),
        4: ("failed", "incomplete"),  # "Error: kernel type check failed", no goal
        5: ("failed", "sorry"),  # `have ... := sorry`: open goals, resting on a sorry
        6: ("failed", "lean_error"),
    },
    "assumption_proof": {1: ("proved", None)},
    "by_cases": {1: ("open", None), 2: ("open", None), 3: ("failed", "sorry")},
    "have_by_sorry": {2: ("failed", "sorry")},
    "invalid_tactic": {1: ("failed", "error")},
    "name_generator": {
        1: ("failed", "sorry"),
        **{i: ("failed", "incomplete") for i in range(2, 7)},  # metavariables, no goal
        7: ("failed", "error"),
        8: ("failed", "error"),
    },
    "pickle_proof_state_1": {4: ("open", None), 7: ("proved", None)},
    "pickle_proof_state_2": {1: ("proved", None)},
    "pickle_proof_state_env": {4: ("open", None), 7: ("proved", None)},
    "proof_branching": {
        1: ("open", None),
        2: ("open", None),
        3: ("open", None),
        4: ("proved", None),
    },
    "proof_branching2": {**{i: ("open", None) for i in range(1, 6)}, 6: ("proved", None)},
    "proof_step": {1: ("open", None), 2: ("open", None), 3: ("proved", None)},
    "proof_transitivity": {1: ("proved", None), 3: ("proved", None)},
    "readme": {1: ("open", None), 2: ("proved", None)},
    "root_goals": {1: ("proved", None), 2: ("proved", None)},
    "self_proof_apply_check": {2: ("failed", "incomplete")},  # a circular proof, kernel-refused
    "self_proof_check": {i: ("failed", "lean_error") for i in (2, 4, 6, 8)},
    "self_proof_exact_check": {2: ("failed", "incomplete")},
    "self_proof_rw": {2: ("failed", "incomplete")},
    "sorry_hypotheses": {1: ("failed", "sorry")},
    "tactic_mode_sorry": {1: ("failed", "sorry")},
    "trace_simp": {5: ("open", None), 6: ("proved", None)},
    "unknown_proof_state": {},  # the REPL refuses the request: our bookkeeping, a crash
    "unknown_tactic": {1: ("failed", "lean_error")},
}


def recorded(case: str) -> tuple[list[dict], list[dict]]:
    requests = [
        json.loads(r)
        for r in split_requests((TRANSCRIPTS / f"{case}.in").read_text())
        if not is_skipped(r)
    ]
    answers = split_responses((TRANSCRIPTS / f"{case}.expected.out").read_text())
    return requests, [json.loads(a) for a in answers]


def test_the_26_tactic_transcripts_are_all_covered() -> None:
    assert len(TACTIC_CASES) == 26
    assert sorted(EXPECTED) == TACTIC_CASES


@pytest.mark.parametrize("case", TACTIC_CASES)
def test_tactic_transcript_through_real_pipes(case: str) -> None:
    """The real client on the FakeRepl replaying the recording: every answer arrives equal to
    the recorded one, tactics through `LeanRepl.tactic`, and each is what the table says."""
    requests, answers = recorded(case)
    command = ReplCommand(
        (
            sys.executable,
            str(FAKE_REPL),
            "replay",
            str(TRANSCRIPTS / f"{case}.in"),
            str(TRANSCRIPTS / f"{case}.expected.out"),
        )
    )
    repl = LeanRepl(plain_factory(command)(), header="")
    seen: dict[int, tuple[str, str | None]] = {}
    try:
        for index, (request, want) in enumerate(zip(requests, answers, strict=True)):
            if "tactic" not in request:
                assert repl.send(request, timeout=30).raw == want
                continue
            if want.get("message", "").startswith("Unknown proof state"):
                with pytest.raises(ReplFailure) as failure:
                    repl.tactic(request["tactic"], request["proofState"], timeout=30)
                assert failure.value.reason == "crash" and not repl.alive()
                continue
            got = repl.tactic(request["tactic"], request["proofState"], timeout=30)
            assert got.raw == want
            assert got == parse_response(want)
            assert isinstance(got, TacticResponse | ReplError)
            seen[index] = (tactic_outcome(got), failure_reason(got))
    finally:
        repl.close()
    assert seen == EXPECTED[case]


def all_recorded_tactic_answers() -> list[tuple[str, dict]]:
    out = []
    for case in TACTIC_CASES:
        requests, answers = recorded(case)
        out += [(case, a) for r, a in zip(requests, answers, strict=True) if "tactic" in r]
    return out


def test_outcome_rule_without_proof_status_matches_wherever_old_repls_could_know() -> None:
    """The v4.9 rule (no error, no sorry, no goal: proved) read on every recorded answer with
    `proofStatus` removed agrees with the status-based one, except where only the kernel check
    behind `proofStatus` can tell (metavariables, a kernel error): an old REPL cannot, which is
    why a search's proof is judged again as a whole."""
    compared = 0
    for _case, answer in all_recorded_tactic_answers():
        if "proofState" not in answer:
            continue
        modern = tactic_outcome(parse_response(answer))
        old = tactic_outcome(
            parse_response({k: v for k, v in answer.items() if k != "proofStatus"})
        )
        status = answer.get("proofStatus", "")
        compared += 1
        kernel_only = status.startswith(("Incomplete: contains metavariable", "Error:"))
        if kernel_only and "messages" not in answer:
            assert (modern, old) == ("failed", "proved")
        else:
            assert modern == old
    assert compared >= 40


@pytest.mark.parametrize(
    ("answer", "outcome", "reason"),
    [
        ({"proofStatus": "Completed", "proofState": 3, "goals": []}, "proved", None),
        ({"proofState": 3, "goals": []}, "proved", None),  # v4.9: no error, no goal
        ({"proofState": 3, "goals": ["⊢ Int"]}, "open", None),
        (
            {"proofStatus": "Incomplete: open goals remain", "proofState": 1, "goals": ["⊢ p"]},
            "open",
            None,
        ),
        (  # a failing tactic: new state, error, no goal (invalid_tactic)
            {
                "proofStatus": "Incomplete: contains sorry",
                "proofState": 1,
                "messages": [
                    {
                        "severity": "error",
                        "pos": {"line": 0, "column": 0},
                        "endPos": {"line": 0, "column": 0},
                        "data": "Unknown identifier `my_fake_premise`",
                    }
                ],
                "goals": [],
            },
            "failed",
            "error",
        ),
        (  # the same on a v4.9 REPL
            {
                "proofState": 1,
                "messages": [{"severity": "error", "pos": {"line": 0, "column": 0}, "data": "x"}],
                "goals": [],
            },
            "failed",
            "error",
        ),
        ({"message": "Lean error:\n<input>:1:1: unknown tactic"}, "failed", "lean_error"),
        ({"proofState": 2, "goals": [], "sorries": [{"goal": "⊢ Nat"}]}, "failed", "sorry"),
        (
            {"proofStatus": "Incomplete: contains metavariable(s)", "proofState": 3, "goals": []},
            "failed",
            "incomplete",
        ),
        (  # a warning is not a failure
            {
                "proofStatus": "Completed",
                "proofState": 3,
                "goals": [],
                "messages": [{"severity": "warning", "pos": {"line": 0, "column": 0}, "data": "w"}],
            },
            "proved",
            None,
        ),
    ],
)
def test_outcome_rule(answer: dict, outcome: str, reason: str | None) -> None:
    response = parse_response(answer)
    assert isinstance(response, TacticResponse | ReplError)
    assert tactic_outcome(response) == outcome
    assert failure_reason(response) == reason


def test_heartbeat_wrapping() -> None:
    assert with_heartbeats("simp", 5000) == "set_option maxHeartbeats 5000 in simp"
    assert with_heartbeats("  simp\n", None) == "simp"
    multi = with_heartbeats("constructor\n· simp\n· exact h", 100)
    assert multi == "set_option maxHeartbeats 100 in\n  constructor\n  · simp\n  · exact h"
    with pytest.raises(ValueError):
        with_heartbeats("simp", 0)


STATEMENT = "theorem t (a b : ℕ) (h : a = b) : b = a := by"


def test_scan_on_tactics() -> None:
    assert banned_tactic(with_heartbeats("exact h.symm", 1000), STATEMENT) is None
    assert banned_tactic("simp [h]", STATEMENT) is None
    assert "search tactic" in (banned_tactic("exact?", STATEMENT) or "")
    assert "meta code" in (banned_tactic("run_tac pure ()", STATEMENT) or "")
    assert "sorry" in (banned_tactic("exact (sorry : b = a)", STATEMENT) or "")
    assert "admit" in (banned_tactic("admit", STATEMENT) or "")
    assert banned_tactic("exact sorry_free_lemma", STATEMENT) is None
    assert root_command(STATEMENT) == "theorem t (a b : ℕ) (h : a = b) : b = a := by sorry"


# -- sessions on the FakeRepl tactic table ---------------------------------------------------

HEADER = "import Mathlib\n"
ROOT_GOAL = "a b : ℕ\nh : a = b\n⊢ b = a"
GRAPH = {
    "states": {"s0": [ROOT_GOAL], "s1": ["a b : ℕ\nh : a = b\n⊢ a = b"], "s2": ["⊢ x", "⊢ y"]},
    "edges": {
        "s0": {
            "symm": "s1",
            "exact h.symm": "proved",
            "split_it": "s2",
            "bad": {"error": "type mismatch"},
            "slow": {"sleep_s": 1e9},
            "costly": {"to": "proved", "heartbeats": 300000},
        },
        "s1": {"exact h": "proved"},
    },
}


def session_pool(tmp_path: Path, graph: dict | None = None, rules=(), **config) -> ReplPool:
    path = tmp_path / f"rules-{len(list(tmp_path.glob('rules-*')))}.json"
    path.write_text(json.dumps({"rules": list(rules), "tactic_graph": graph or GRAPH}))
    command = ReplCommand((sys.executable, str(FAKE_REPL), "script", str(path)))
    config.setdefault("workers", 1)
    config.setdefault("timeout", 10.0)
    config.setdefault("machinery_backoff_s", 0.01)
    return ReplPool(VerifierConfig(**config), transport_factory=plain_factory(command))


@pytest.fixture
def request_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    log = tmp_path / "pids.jsonl"
    monkeypatch.setenv("FAKE_REPL_PID_LOG", str(log))

    def read() -> list[tuple[int, dict]]:
        if not log.exists():
            return []
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        return [(row["pid"], row["request"]) for row in rows]

    return read


def tactics_sent(rows: list[tuple[int, dict]]) -> list[tuple[int, str]]:
    return [(pid, r["tactic"]) for pid, r in rows if "tactic" in r]


def test_session_root_and_proof(tmp_path, request_log) -> None:
    with session_pool(tmp_path) as pool:
        with pool.tactic_session(HEADER, STATEMENT) as session:
            assert session.root.goals == (ROOT_GOAL,) and session.root.tactics == ()
            step = session.run(session.root, "symm")
            assert step.outcome == "open" and step.state is not None
            assert step.state.goals == ("a b : ℕ\nh : a = b\n⊢ a = b",)
            done = session.run(step.state, "exact h")
            assert done.outcome == "proved" and done.state is not None
            assert done.state.tactics == ("symm", "exact h") and done.state.goals == ()
            bad = session.run(session.root, "bad")
            assert (bad.outcome, bad.reason, bad.detail) == ("failed", "error", "type mismatch")
            unknown = session.run(session.root, "no_such_tactic")
            assert (unknown.outcome, unknown.reason) == ("failed", "lean_error")
        assert pool.stats.tactic_sessions == 1 and pool.stats.tactics == 4
    roots = [r for _, r in request_log() if r.get("cmd", "").endswith("by sorry")]
    assert roots == [{"cmd": root_command(STATEMENT), "env": 0}]


def test_tactics_are_sent_with_heartbeats_and_a_slow_one_fails_in_lean(
    tmp_path, request_log
) -> None:
    with session_pool(tmp_path) as pool, pool.tactic_session(HEADER, STATEMENT) as session:
        low = session.run(session.root, "costly", heartbeats=1000)
        assert (low.outcome, low.reason) == ("failed", "lean_error")
        assert "maximum number of heartbeats (1000)" in low.detail
        high = session.run(session.root, "costly", heartbeats=400000)
        assert high.outcome == "proved" and high.state is not None
        assert high.state.tactics == ("costly",)  # the path holds the tactic, not the wrapper
        default = session.run(session.root, "costly")  # Lean's default 200000
        assert default.outcome == "failed"
        raw = session.run(session.root, "symm", heartbeats=None)
        assert raw.outcome == "open"
        assert pool.stats.restarts == 0  # failing in Lean costs no process
    sent = [t for _, t in tactics_sent(request_log())]
    assert sent == [
        "set_option maxHeartbeats 1000 in costly",
        "set_option maxHeartbeats 400000 in costly",
        "set_option maxHeartbeats 200000 in costly",
        "symm",
    ]


def test_banned_tactics_never_reach_the_process(tmp_path, request_log) -> None:
    with session_pool(tmp_path) as pool, pool.tactic_session(HEADER, STATEMENT) as session:
        for tactic in ("exact?", "apply?", "run_tac pure ()", "sorry", "exact (sorry : b = a)"):
            result = session.run(session.root, tactic)
            assert (result.outcome, result.reason, result.state) == ("banned", "banned", None)
            assert result.detail
        assert session.run(session.root, "symm").outcome == "open"
        assert pool.stats.tactics_banned == 5 and pool.stats.tactics == 1
    assert [t for _, t in tactics_sent(request_log())] == [
        "set_option maxHeartbeats 200000 in symm"
    ]


def test_a_session_is_pinned_to_one_process_and_recycled_only_between_sessions(
    tmp_path, request_log
) -> None:
    with session_pool(tmp_path, recycle_after=3) as pool:
        with pool.tactic_session(HEADER, STATEMENT) as session:
            for _ in range(5):  # more tactics than `recycle_after`: no recycle mid-session
                assert session.run(session.root, "symm").outcome == "open"
            assert pool.stats.recycles == 0
        assert pool.stats.recycles == 1  # recycled when the session ended
        with pool.tactic_session(HEADER, STATEMENT) as session:
            assert session.run(session.root, "exact h.symm").outcome == "proved"
    pids = [pid for pid, _ in tactics_sent(request_log())]
    assert len(set(pids[:5])) == 1 and pids[5] != pids[0]


def test_two_sessions_at_once_hold_two_processes(tmp_path, request_log) -> None:
    with (
        session_pool(tmp_path, workers=2) as pool,
        pool.tactic_session(HEADER, STATEMENT) as one,
        pool.tactic_session(HEADER, STATEMENT) as two,
    ):
        one.run(one.root, "symm")
        two.run(two.root, "symm")
        one.run(one.root, "symm")
        with pytest.raises(ValueError, match="not a state of this session"):
            one.run(TacticState(999, ("⊢ x",)), "symm")
    first, second, third = (pid for pid, _ in tactics_sent(request_log()))
    assert first == third != second


def test_a_crash_mid_session_is_recovered_by_rebuilding_the_path(tmp_path, request_log) -> None:
    flag = tmp_path / "crashed-once"
    graph = json.loads(json.dumps(GRAPH))
    graph["edges"]["s1"]["flaky"] = {"to": "s2", "exit": 1, "exit_once": str(flag)}
    with session_pool(tmp_path, graph) as pool, pool.tactic_session(HEADER, STATEMENT) as s:
        mid = s.run(s.root, "symm").state
        assert mid is not None
        result = s.run(mid, "flaky")  # the process dies once: a new one, the path again
        assert result.outcome == "open" and result.state is not None
        assert result.state.tactics == ("symm", "flaky")
        assert s.run(mid, "exact h").outcome == "proved"  # rebuilt states stay usable
        assert s.run(s.root, "exact h.symm").outcome == "proved"
        stats = pool.stats
        assert (stats.tactic_restarts, stats.tactic_replays, stats.restarts) == (1, 1, 1)
    assert flag.exists()
    rows = request_log()
    pids = [pid for pid, _ in tactics_sent(rows)]
    sent = [t.rsplit(" in ", 1)[-1] for _, t in tactics_sent(rows)]
    assert sent == ["symm", "flaky", "symm", "flaky", "exact h", "exact h.symm"]
    assert pids[0] == pids[1] != pids[2] and len(set(pids[2:])) == 1
    # the new process ran a known-good check before the tactic went again
    second = [r.get("cmd", "") for pid, r in rows if pid == pids[2]]
    assert any("prover_canary_check" in c for c in second)


def test_a_tactic_that_crashes_twice_is_a_dead_branch(tmp_path) -> None:
    graph = json.loads(json.dumps(GRAPH))
    graph["edges"]["s0"]["boom"] = {"to": "s1", "exit": 1}
    with session_pool(tmp_path, graph) as pool, pool.tactic_session(HEADER, STATEMENT) as s:
        result = s.run(s.root, "boom")
        assert (result.outcome, result.reason) == ("failed", "crash")
        assert "failed again in a new process" in result.detail
        assert s.run(s.root, "exact h.symm").outcome == "proved"  # the session goes on
        assert pool.stats.tactic_restarts == 2


def test_a_crash_while_rebuilding_the_path_is_a_dead_branch(tmp_path, request_log) -> None:
    armed = tmp_path / "replays-crash"
    graph = json.loads(json.dumps(GRAPH))
    graph["edges"]["s0"]["symm"] = {"to": "s1", "exit": 1, "exit_if": str(armed)}
    graph["edges"]["s1"]["boom"] = {"to": "s2", "exit": 1}
    with session_pool(tmp_path, graph) as pool, pool.tactic_session(HEADER, STATEMENT) as s:
        mid = s.run(s.root, "symm").state
        assert mid is not None
        armed.touch()  # from now on `symm` kills the process
        result = s.run(mid, "boom")
        assert (result.outcome, result.reason) == ("failed", "lost")
        before = len(tactics_sent(request_log()))
        again = s.run(mid, "exact h")  # below a lost state: refused without a request
        assert (again.outcome, again.reason) == ("failed", "lost")
        assert len(tactics_sent(request_log())) == before
        assert s.run(s.root, "exact h.symm").outcome == "proved"  # the root is rebuilt


def test_a_timeout_is_the_tactics_verdict_and_the_session_goes_on(tmp_path) -> None:
    with session_pool(tmp_path) as pool, pool.tactic_session(HEADER, STATEMENT) as s:
        mid = s.run(s.root, "symm").state
        assert mid is not None
        slow = s.run(s.root, "slow", timeout=0.5)
        assert (slow.outcome, slow.reason) == ("failed", "timeout")
        assert s.run(mid, "exact h").outcome == "proved"  # a new process, `symm` sent again
        assert (pool.stats.tactic_restarts, pool.stats.tactic_replays) == (1, 1)


def test_a_v4_9_repl_without_proof_status(tmp_path) -> None:
    graph = {**GRAPH, "proof_status": False}
    with session_pool(tmp_path, graph) as pool, pool.tactic_session(HEADER, STATEMENT) as s:
        assert s.run(s.root, "symm").outcome == "open"
        assert s.run(s.root, "exact h.symm").outcome == "proved"
        assert s.run(s.root, "bad").reason == "error"


def test_a_process_that_cannot_start_is_machinery(tmp_path) -> None:
    # every process dies on the statement's `by sorry`: nothing of the model's was sent
    pool = session_pool(tmp_path, rules=[{"match": "by sorry", "exit": 1}])
    with (
        pool,
        pytest.raises(MachineryFailure, match=r"3 attempts"),
        pool.tactic_session(HEADER, STATEMENT),
    ):
        pass
    assert pool.stats.machinery_retries == 2


def test_a_missing_repl_is_machinery(tmp_path) -> None:
    command = ReplCommand((str(tmp_path / "no-such-repl"),))
    config = VerifierConfig(workers=1, timeout=5.0, machinery_backoff_s=0.01)
    with (
        ReplPool(config, transport_factory=plain_factory(command)) as pool,
        pytest.raises(MachineryFailure),
        pool.tactic_session(HEADER, STATEMENT),
    ):
        pass


def test_a_crash_then_a_failing_known_good_check_is_machinery(tmp_path) -> None:
    graph = json.loads(json.dumps(GRAPH))
    graph["edges"]["s0"]["boom"] = {"to": "s1", "exit": 1}
    rules = [{"match": "prover_canary_check", "exit": 1}]
    with (
        session_pool(tmp_path, graph, rules) as pool,
        pool.tactic_session(HEADER, STATEMENT) as s,
        pytest.raises(MachineryFailure, match="known-good check failed"),
    ):
        s.run(s.root, "boom")


def test_a_statement_that_does_not_elaborate_is_refused_at_once(tmp_path) -> None:
    error = {"severity": "error", "pos": {"line": 1, "column": 0}, "data": "unknown identifier"}
    rules = [{"match": "by sorry", "response": {"messages": [error]}}]
    with session_pool(tmp_path, rules=rules) as pool:
        with (
            pytest.raises(StatementFailure, match="unknown identifier"),
            pool.tactic_session(HEADER, STATEMENT),
        ):
            pass
        assert pool.stats.machinery_retries == 0
