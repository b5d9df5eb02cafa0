"""The REPL pool against the FakeRepl double through real pipes: header reuse, failures,
recovery, acceptance rungs that need Lean's answers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from prover.errors import MachineryFailure
from prover.lean.commands import statement_check_command
from prover.lean.pool import ReplPool, VerifierConfig
from prover.lean.verdict import CheckItem

from conftest import plain_factory

HEADER = "import Mathlib\n\nset_option maxHeartbeats 400000\n\nopen Real Nat\n\n"
STATEMENT = "theorem t_{i} (a b : ℕ) (h : a = b) : b = a := by\n"


def item(i: int, proof: str = "  exact h.symm", header: str = HEADER) -> CheckItem:
    return CheckItem(f"t_{i}", header, STATEMENT.format(i=i), proof)


def pool_for(command, **config) -> ReplPool:
    config.setdefault("workers", 2)
    config.setdefault("timeout", 10.0)
    return ReplPool(VerifierConfig(**config), transport_factory=plain_factory(command))


def logged(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_header_is_elaborated_once_per_process(fake_repl_script, tmp_path, monkeypatch) -> None:
    log = tmp_path / "requests.jsonl"
    monkeypatch.setenv("FAKE_REPL_LOG", str(log))
    with pool_for(fake_repl_script(), workers=2) as pool:
        verdicts = [v for _, v in pool.check_many(item(i) for i in range(60))]
        assert all(v.accepted and v.reason == "ok" for v in verdicts)
        assert len(verdicts) == 60
        stats = pool.stats
    requests = logged(log)
    headers = [r for r in requests if "env" not in r and r.get("cmd", "").startswith("import")]
    proofs = [r for r in requests if "env" in r and "theorem t_" in r.get("cmd", "")]
    assert len(proofs) == 60
    assert 1 <= stats.header_elaborations <= 2
    assert len(headers) == stats.header_elaborations  # the double saw exactly what we counted
    assert stats.restarts == stats.recycles == 0


def test_recycling_adds_one_header_per_recycle(fake_repl_script, tmp_path, monkeypatch) -> None:
    log = tmp_path / "requests.jsonl"
    monkeypatch.setenv("FAKE_REPL_LOG", str(log))
    with pool_for(fake_repl_script(), workers=1, recycle_after=10) as pool:
        for i in range(40):
            assert pool.check(item(i)).accepted
        assert pool.stats.header_elaborations == 4
        assert pool.stats.recycles == 4
    assert sum(1 for r in logged(log) if "env" not in r and "import" in r.get("cmd", "")) == 4


def test_proof_text_is_sent_in_the_header_environment(fake_repl_script, tmp_path, monkeypatch):
    log = tmp_path / "requests.jsonl"
    monkeypatch.setenv("FAKE_REPL_LOG", str(log))
    with pool_for(fake_repl_script(), workers=1) as pool:
        pool.check(item(1))
    header, version, reference, proof, final, pickle = logged(log)[:6]
    assert "env" not in header and header["cmd"].startswith("import Mathlib")
    assert version["cmd"] == "#eval Lean.versionString"
    # the benchmark statement on its own, under a private name, right after the header
    assert reference["env"] == 0 and reference["cmd"].startswith("axiom prover_reference_")
    assert reference["cmd"].endswith("(a b : ℕ) (h : a = b) : b = a")
    # the proof on top of it; then the statement and axioms check in the proof's environment
    assert proof["env"] == 2 and "theorem t_1 (a b : ℕ)" in proof["cmd"]
    assert "exact h.symm" in proof["cmd"] and "import" not in proof["cmd"]
    ref_name = reference["cmd"].split()[1]
    assert final == {"cmd": statement_check_command("t_1", ref_name), "env": 3}
    assert final["cmd"].splitlines() == [
        f"example : type_of% @{ref_name} := @_root_.t_1",
        "#print axioms _root_.t_1",
    ]
    # then the kernel replay rung pickles the environment right after the proof
    assert pickle["env"] == 3 and set(pickle) == {"pickleTo", "env"}


def test_reference_is_elaborated_once_per_statement_and_process(
    fake_repl_script, tmp_path, monkeypatch
) -> None:
    log = tmp_path / "requests.jsonl"
    monkeypatch.setenv("FAKE_REPL_LOG", str(log))
    with pool_for(fake_repl_script(), workers=1) as pool:
        for _ in range(5):
            assert pool.check(item(1)).accepted
        assert pool.check(item(2)).accepted
    references = [r for r in logged(log) if r.get("cmd", "").startswith("axiom prover_reference_")]
    assert len(references) == 2


def test_helpers_that_change_the_statement_are_caught(fake_repl_script) -> None:
    """Lean elaborates the same statement text differently after the model's helpers (say a
    local instance): the final check rejects it though the proof itself elaborated."""
    command = fake_repl_script([{"match": "theorem t_1", "statement_mismatch": True}])
    with pool_for(command, workers=1) as pool:
        verdict = pool.check(item(1))
    assert verdict.reason == "error" and not verdict.accepted
    assert "not the benchmark's statement" in verdict.detail


def test_a_benchmark_statement_that_does_not_elaborate(fake_repl_script) -> None:
    error = {
        "severity": "error",
        "pos": {"line": 1, "column": 20},
        "endPos": None,
        "data": "unknown identifier 'Real.foo'",
    }
    rule = {"match": "(a b : ℕ)", "reference": True, "response": {"messages": [error]}}
    # No proof can be judged against it: the benchmark is broken, not the model (no verdict).
    with pool_for(fake_repl_script([rule]), workers=1) as pool:
        for i in range(2):
            with pytest.raises(MachineryFailure, match="does not elaborate: unknown identifier"):
                pool.check(item(i))
        assert pool.stats.machinery_retries == 0  # Lean's own answer: retrying cannot help


def test_timeout_kills_and_the_pool_recovers(fake_repl_script) -> None:
    command = fake_repl_script([{"match": "HANG", "sleep_s": 1000}])
    with pool_for(command, workers=1, timeout=1.5) as pool:
        start = time.monotonic()
        verdict = pool.check(item(1, "  exact h.symm -- HANG"))
        elapsed = time.monotonic() - start
        assert verdict.reason == "timeout" and not verdict.accepted
        assert 1.4 <= elapsed < 5
        assert pool.check(item(2)).accepted
        assert pool.stats.restarts == 1 and pool.stats.header_elaborations == 2


@pytest.mark.parametrize(
    ("rule", "reason", "detail"),
    [
        ({"exit": 3}, "crash", "exit status 3"),
        ({"garbage": True}, "crash", "garbage output"),
        ({"exit": 139, "stderr": "INTERNAL PANIC: out of memory"}, "memory", "out of memory"),
    ],
)
def test_process_failures_are_verdicts(fake_repl_script, rule, reason, detail) -> None:
    command = fake_repl_script([{"match": "BOOM", **rule}])
    with pool_for(command, workers=1) as pool:
        verdict = pool.check(item(1, "  exact h.symm -- BOOM"))
        assert (verdict.reason, verdict.accepted) == (reason, False)
        assert detail in verdict.detail
        assert pool.check(item(2)).accepted  # a fresh process answers


def test_memory_cap_is_enforced(fake_repl_script) -> None:
    command = fake_repl_script([{"match": "GREEDY", "alloc_mb": 3000}])
    with ReplPool(
        VerifierConfig(workers=1, timeout=30, memory_mb=600),
        transport_factory=plain_factory(command, memory_mb=600),
    ) as pool:
        verdict = pool.check(item(1, "  exact h.symm -- GREEDY"))
        assert verdict.reason == "memory", verdict.detail
        assert pool.check(item(2)).accepted


@pytest.mark.parametrize(
    ("axioms", "allow_native", "reason"),
    [
        (["propext", "Classical.choice", "Quot.sound"], False, "ok"),
        ([], False, "ok"),
        (["propext", "sorryAx"], False, "sorry"),
        (["propext", "Lean.ofReduceBool"], False, "native"),
        (["propext", "Lean.ofReduceBool"], True, "ok"),
        (["Lean.trustCompiler"], False, "native"),
        (["t_1._native.native_decide.ax_1_1"], False, "native"),
        (["t_1._native.bv_decide.ax_1_1"], True, "ok"),
        (["propext", "my_false_axiom"], False, "axiom"),
        (["my_false_axiom", "Lean.ofReduceBool"], True, "axiom"),
    ],
)
def test_axioms_rung(fake_repl_script, axioms, allow_native, reason) -> None:
    command = fake_repl_script([{"match": "theorem t_1", "axioms": axioms}])
    with pool_for(command, workers=1, allow_native=allow_native) as pool:
        verdict = pool.check(item(1))
    assert verdict.reason == reason and verdict.accepted == (reason == "ok")
    assert verdict.axioms == sorted(axioms)


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (
            {
                "messages": [
                    {
                        "severity": "error",
                        "pos": {"line": 2, "column": 2},
                        "endPos": None,
                        "data": "unsolved goals",
                    }
                ]
            },
            "error",
        ),
        (
            {
                "sorries": [
                    {
                        "proofState": 0,
                        "pos": {"line": 2, "column": 2},
                        "endPos": {"line": 2, "column": 7},
                        "goal": "⊢ b = a",
                    }
                ]
            },
            "sorry",
        ),
        (
            {
                "messages": [
                    {
                        "severity": "warning",
                        "pos": {"line": 1, "column": 8},
                        "endPos": None,
                        "data": "declaration uses 'sorry'",
                    }
                ]
            },
            "sorry",
        ),
        (
            {
                "messages": [
                    {
                        "severity": "warning",
                        "pos": {"line": 1, "column": 8},
                        "endPos": None,
                        "data": "declaration uses `sorry`",
                    }
                ]
            },
            "sorry",
        ),
        (
            {
                "messages": [
                    {
                        "severity": "info",
                        "pos": {"line": 1, "column": 0},
                        "endPos": None,
                        "data": "Goals accomplished!",
                    }
                ]
            },
            "ok",
        ),
        (
            {
                "messages": [
                    {
                        "severity": "warning",
                        "pos": {"line": 1, "column": 0},
                        "endPos": None,
                        "data": "this tactic is never executed",
                    }
                ]
            },
            "ok",
        ),
    ],
)
def test_elaboration_rungs(fake_repl_script, response, reason) -> None:
    command = fake_repl_script([{"match": "theorem t_1", "response": response}])
    with pool_for(command, workers=1) as pool:
        verdict = pool.check(item(1))
    assert verdict.reason == reason
    assert verdict.messages == [
        {"severity": m["severity"], "pos": m["pos"], "endPos": m["endPos"], "data": m["data"]}
        for m in response.get("messages", [])
    ]


def test_header_that_does_not_elaborate(fake_repl_script) -> None:
    bad = "import Mathlib.Nonexistent\n"
    error = {
        "severity": "error",
        "pos": {"line": 1, "column": 0},
        "endPos": None,
        "data": "unknown module prefix 'Mathlib.Nonexistent'",
    }
    command = fake_repl_script(
        [{"match": "Mathlib.Nonexistent", "response": {"messages": [error]}}]
    )
    with pool_for(command, workers=1) as pool:
        for i in range(3):  # the machinery's failure, never a verdict on the proof
            with pytest.raises(MachineryFailure, match="header does not elaborate"):
                pool.check(item(i, header=bad))
        assert pool.stats.header_elaborations == 1  # not retried for every proof
        assert pool.check(item(9)).accepted  # other headers are unaffected


def test_pool_by_header_evicts_idle_processes(fake_repl_script) -> None:
    other = "import Mathlib\nopen Finset\n"
    with pool_for(fake_repl_script(), workers=1) as pool:
        for i in range(3):
            assert pool.check(item(i)).accepted
            assert pool.check(item(i, header=other)).accepted
        assert pool.stats.header_elaborations == 6


def test_lean_version_is_reported(fake_repl_script) -> None:
    with pool_for(fake_repl_script(version="4.24.0"), workers=1) as pool:
        pool.check(item(1))
        assert pool.lean_version == "4.24.0"


def test_check_many_yields_as_they_finish(fake_repl_script) -> None:
    command = fake_repl_script([{"match": "SLOW", "sleep_s": 1.0}])
    with pool_for(command, workers=2) as pool:
        items = [item(0, "  exact h.symm -- SLOW")] + [item(i) for i in range(1, 6)]
        order = [it.name for it, _ in pool.check_many(items)]
    assert sorted(order) == sorted(it.name for it in items)
    assert order[-1] == "t_0"  # the slow one did not hold the others back


def test_check_many_closed_early_leaves_the_pool_usable(fake_repl_script) -> None:
    with pool_for(fake_repl_script(), workers=2) as pool:
        start = time.monotonic()
        stream = pool.check_many(item(i) for i in range(10_000))
        first = next(stream)
        stream.close()
        assert first[1].accepted and time.monotonic() - start < 10
        assert pool.stats.checks < 100  # it did not go on checking the rest
        assert pool.check(item(1)).accepted


def test_check_many_passes_on_a_failing_input(fake_repl_script) -> None:
    def broken():
        yield item(0)
        raise ValueError("bad record")

    with pool_for(fake_repl_script(), workers=1) as pool, pytest.raises(ValueError):
        list(pool.check_many(broken()))


def test_a_process_dying_on_the_header_is_machinery_with_a_hint(fake_repl_script) -> None:
    """Nothing of the model's was sent: no verdict, retried with backoff, then one line;
    a process that died without a word is most likely out of address space."""
    from prover.lean.sandbox import ReplCommand

    command = ReplCommand(("sh", "-c", "exit 137"))
    with pool_for(command, workers=1, machinery_backoff_s=0.01) as pool:
        with pytest.raises(MachineryFailure) as failure:
            pool.check(item(1))
        assert pool.stats.machinery_retries == 2 and pool.stats.header_elaborations == 3
    assert "while elaborating the header" in str(failure.value)
    assert "--memory-mb" in str(failure.value) and "(3 attempts)" in str(failure.value)


def test_a_process_that_says_why_it_died_gets_no_memory_hint(fake_repl_script) -> None:
    command = fake_repl_script(
        [{"match": "import Mathlib", "stderr": "lake: error: no such package", "exit": 1}]
    )
    with (
        pool_for(command, workers=1, machinery_attempts=1) as pool,
        pytest.raises(MachineryFailure) as failure,
    ):
        pool.check(item(1))
    assert "lake: error: no such package" in str(failure.value)
    assert "--memory-mb" not in str(failure.value)


def test_close_kills_busy_processes(fake_repl_script) -> None:
    import threading

    command = fake_repl_script([{"match": "HANG", "sleep_s": 1000}])
    pool = pool_for(command, workers=1, timeout=600)
    result = {}

    def check() -> None:
        try:
            result["v"] = pool.check(item(1, "  exact h.symm -- HANG"))
        except MachineryFailure as exc:
            result["v"] = exc

    worker = threading.Thread(target=check)
    worker.start()
    time.sleep(1.0)
    start = time.monotonic()
    pool.close()
    worker.join(timeout=10)
    assert not worker.is_alive() and time.monotonic() - start < 10
    # the check in hand is not judged: its process was killed by us, not by the proof
    assert isinstance(result["v"], MachineryFailure) and "shutting down" in str(result["v"])


def test_endless_output_still_times_out(tmp_path) -> None:
    from prover.lean.repl import LeanRepl, StartFailure
    from prover.lean.sandbox import ReplCommand

    command = ReplCommand(("sh", "-c", "yes '\"x\",'"))
    start = time.monotonic()
    with pytest.raises(StartFailure) as failure:
        LeanRepl(plain_factory(command)(), "import Mathlib", header_timeout=2)
    assert failure.value.failure.reason == "timeout" and time.monotonic() - start < 10


def test_a_repl_that_stops_reading_times_out(tmp_path) -> None:
    from prover.lean.repl import LeanRepl, ReplFailure
    from prover.lean.sandbox import ReplCommand

    command = ReplCommand(("sleep", "1000"))
    repl = LeanRepl(plain_factory(command)(), "")
    start = time.monotonic()
    with pytest.raises(ReplFailure) as failure:
        repl.send({"cmd": "x" * 5_000_000}, timeout=2)
    assert failure.value.reason == "timeout" and time.monotonic() - start < 10


def test_mixed_headers_do_not_thrash(fake_repl_script) -> None:
    """Two headers interleaved on two workers: each worker keeps its header's process (a
    check waits for a busy process of its own header rather than evicting the other one)."""
    other = "import Mathlib\nopen Finset\n"
    items = [item(i, header=HEADER if i % 2 else other) for i in range(40)]
    with pool_for(fake_repl_script(), workers=2) as pool:
        assert all(v.accepted for _, v in pool.check_many(items))
        assert pool.stats.header_elaborations <= 4, pool.stats


def test_waiting_for_a_process_does_not_count_against_the_timeout(fake_repl_script) -> None:
    command = fake_repl_script([{"match": "SLOW", "sleep_s": 1.2}])
    items = [item(i, "  exact h.symm -- SLOW") for i in range(3)]
    with pool_for(command, workers=1, timeout=2.0) as pool:
        verdicts = [v.reason for _, v in pool.check_many(items)]
    assert verdicts == ["ok", "ok", "ok"]  # each waited its turn, then had its full 2 s
