"""Machinery failures are never verdicts about the model: the pool, the remote client and the
CLI tell them apart from what the proof caused, retry them within a budget, and stop loudly."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from prover.errors import MachineryFailure
from prover.lean import repl as repl_module
from prover.lean.machinery import BreakerOpen, CircuitBreaker, canary_item
from prover.lean.pool import ReplPool, VerifierConfig
from prover.lean.repl import LeanRepl, StartFailure
from prover.lean.sandbox import ReplCommand
from prover.lean.verdict import CheckItem

from conftest import plain_factory, run_prover

HEADER = "import Mathlib\n"


def pool_for(command: ReplCommand, **config: object) -> ReplPool:
    config.setdefault("workers", 1)
    config.setdefault("timeout", 10.0)
    config.setdefault("machinery_backoff_s", 0.01)
    return ReplPool(VerifierConfig(**config), transport_factory=plain_factory(command))  # type: ignore[arg-type]


def item(proof: str, name: str = "t") -> CheckItem:
    return CheckItem(name, HEADER, f"theorem {name} (a : Nat) : a = a := by", proof)


def test_a_proof_that_crashes_lean_twice_is_a_crash_verdict(fake_repl_script) -> None:
    """A policy must not halt a run by crashing Lean: the crash is re-checked after a canary,
    then judged as the proof's own."""
    command = fake_repl_script([{"match": "CRASH", "exit": 1}])
    with pool_for(command) as pool:
        verdict = pool.check(item("  rfl -- CRASH"))
        assert pool.check(item("  rfl")).accepted  # and the pool goes on
        assert pool.stats.crash_rechecks == 1 and pool.stats.machinery_retries == 0
    assert verdict.reason == "crash" and not verdict.accepted
    assert "known-good check passed" in verdict.detail


def test_a_transient_crash_is_not_the_proofs_verdict(fake_repl_script, tmp_path) -> None:
    flag = tmp_path / "crashed-once"
    command = fake_repl_script([{"match": "FLAKY", "exit": 1, "exit_once": str(flag)}])
    with pool_for(command) as pool:
        verdict = pool.check(item("  rfl -- FLAKY"))
        assert pool.stats.crash_rechecks == 1
    assert flag.exists() and verdict.accepted


def test_a_crash_followed_by_a_failing_canary_is_machinery(fake_repl_script) -> None:
    # Lean dies on every theorem: the canary too, so nothing is judged
    command = fake_repl_script([{"match": "theorem", "exit": 1}])
    with pool_for(command) as pool:
        with pytest.raises(MachineryFailure, match="known-good check failed too"):
            pool.check(item("  rfl"))
        assert pool.stats.machinery_retries == 2  # three attempts in all


def test_timeout_and_memory_stay_the_proofs_verdicts(fake_repl_script) -> None:
    command = fake_repl_script([{"match": "HANG", "sleep_s": 1000}])
    with pool_for(command, timeout=1.0) as pool:
        verdict = pool.check(item("  rfl -- HANG"))
        assert pool.stats.crash_rechecks == 0 and pool.stats.machinery_retries == 0
    assert verdict.reason == "timeout"


def test_a_repl_that_cannot_start_stops_after_bounded_retries() -> None:
    command = ReplCommand(("sh", "-c", "exit 1"))
    with pool_for(command, machinery_backoff_s=0.2) as pool:
        began = time.monotonic()
        with pytest.raises(MachineryFailure, match=r"\(3 attempts\)"):
            pool.check(item("  rfl"))
        took = time.monotonic() - began
        assert pool.stats.machinery_retries == 2
    assert 0.6 <= took < 10  # backoff 0.2 s then 0.4 s between the three attempts


def test_the_circuit_breaker_opens_at_80_percent_of_the_last_20() -> None:
    breaker = CircuitBreaker()
    for failed in [False] * 5 + [True] * 15:
        breaker.record(failed, "boom")
    breaker.check()  # 15 of 20: still closed
    breaker.record(True, "boom again")  # the window slides: 16 of the last 20
    with pytest.raises(BreakerOpen, match="16 of the last 20 .*boom again"):
        breaker.check()


def test_an_open_breaker_stops_every_check_at_once(fake_repl_script) -> None:
    with pool_for(fake_repl_script()) as pool:
        for _ in range(20):
            pool._breaker.record(True, "the sandbox vanished")
        began = time.monotonic()
        with pytest.raises(BreakerOpen, match="the sandbox vanished"):
            pool.check(item("  rfl"))
        assert time.monotonic() - began < 1 and pool.stats.header_elaborations == 0


def test_a_slow_header_says_so_and_times_out_on_its_own_clock(monkeypatch) -> None:
    monkeypatch.setattr(repl_module, "HEADER_PROGRESS_EVERY_S", 0.3)
    waits: list[float] = []
    began = time.monotonic()
    with pytest.raises(StartFailure) as failure:
        LeanRepl(
            plain_factory(ReplCommand(("sleep", "1000")))(),
            HEADER,
            header_timeout=1.0,
            on_header_wait=waits.append,
        )
    assert time.monotonic() - began < 5
    assert len(waits) >= 2 and waits == sorted(waits)
    assert failure.value.failure.reason == "timeout" and "--header-timeout" in str(failure.value)


def test_the_canary_passes_on_a_working_verifier(fake_repl_script) -> None:
    with pool_for(fake_repl_script()) as pool:
        assert pool.check(canary_item(HEADER)).accepted


# -- through the CLI ------------------------------------------------------------------------


def test_check_jsonl_on_a_broken_repl_is_exit_2_and_stores_nothing(tmp_path: Path) -> None:
    """The issue's repro: a REPL that cannot start made every check a `crash` verdict."""
    items = tmp_path / "items.jsonl"
    rows = [
        {"name": f"t{i}", "header": HEADER, "formal_statement": f"theorem t{i} : 1 = 1 := by",
         "proof": "  rfl"}
        for i in range(3)
    ]  # fmt: skip
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "verdicts.jsonl"
    done = run_prover(
        "check", "--jsonl", str(items), "--out", str(out), "--sandbox", "none",
        "--repl", "sh -c 'exit 1'", "--no-replay",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("prover: verifier machinery failed") and "3 attempts" in last
    assert "Traceback" not in done.stderr
    assert not out.exists() or out.read_text() == ""


def test_header_timeout_bounds_a_repl_that_never_answers(tmp_path: Path) -> None:
    """`--repl "sleep 100000" --timeout 5` took 601 s: the header now has its own clock."""
    items = tmp_path / "items.jsonl"
    items.write_text(
        json.dumps(
            {
                "name": "t",
                "header": HEADER,
                "formal_statement": "theorem t : 1 = 1 := by",
                "proof": "  rfl",
            }
        )
        + "\n"  # fmt: skip
    )
    began = time.monotonic()
    done = run_prover(
        "check", "--jsonl", str(items), "--sandbox", "none", "--repl", "sleep 100000",
        "--timeout", "5", "--header-timeout", "1", "--no-replay",
    )  # fmt: skip
    took = time.monotonic() - began
    assert done.returncode == 2 and "--header-timeout" in done.stderr, done.stderr
    assert took < 30  # three 1-s header attempts and 1 + 2 s of backoff, plus start-up


def test_verifier_not_a_url_is_one_line_at_once(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text(
        json.dumps(
            {
                "name": "t",
                "header": HEADER,
                "formal_statement": "theorem t : 1 = 1 := by",
                "proof": "  rfl",
            }
        )
        + "\n"  # fmt: skip
    )
    began = time.monotonic()
    done = run_prover("check", "--jsonl", str(items), "--verifier", "not-a-url")
    assert done.returncode == 2 and "not an http(s) URL" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and time.monotonic() - began < 20


def _eval_args(suite: Path, out: Path, repl: str, api: str, *extra: str) -> list[str]:
    return [
        "eval", str(suite), "--out", str(out), "--backend", "openai", "--model",
        "deepseek-ai/DeepSeek-Prover-V1.5-SFT", "--api-base", api, "--seed", "0",
        "--sandbox", "none", "--repl", repl, "--no-replay", "--n", "2", *extra,
    ]  # fmt: skip


def _suite(tmp_path: Path) -> Path:
    path = tmp_path / "suite.jsonl"
    rows = [
        {"name": n, "split": "test", "header": HEADER,
         "formal_statement": f"theorem {n} : (2 : ℕ) + 2 = 4 := by\n"}
        for n in ("p1", "p2")
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_on_a_broken_repl_stops_before_sampling(tmp_path: Path) -> None:
    """The issue's repro printed pass@1 0.0% and exit 0, and stored the crashes for good."""
    from serving import ScriptedOpenAI, scripted_openai

    model = ScriptedOpenAI({"p1": ["  rfl\n```"], "p2": ["  rfl\n```"]})
    out = tmp_path / "run"
    with scripted_openai(model) as api:
        done = run_prover(*_eval_args(_suite(tmp_path), out, "sh -c 'exit 1'", api))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("prover: verifier machinery failed")
    assert "pass@1" not in done.stderr and not model.requests  # nothing sampled, no score
    stopped = json.loads((out / "results.json").read_text())
    assert stopped["stopped"].startswith("verifier machinery failure")
    assert "pass_at_k" not in stopped


def test_eval_stopped_midway_stores_no_verdict_and_resume_checks_them(
    tmp_path: Path, fake_repl_script
) -> None:
    """The REPL works for the first process only (then every start fails): the samples are
    kept, no verdict is stored, and `--resume` on a working REPL judges every one of them."""
    from serving import ScriptedOpenAI, scripted_openai

    good = fake_repl_script()
    flag = tmp_path / "started-once"
    breaking = (
        f"sh -c 'if [ -e {flag} ]; then exit 1; fi; touch {flag}; exec {' '.join(good.argv)}'"
    )
    model = ScriptedOpenAI({"p1": ["  rfl\n```"], "p2": ["  rfl\n```"]})
    out = tmp_path / "run"
    suite = _suite(tmp_path)
    with scripted_openai(model) as api:
        done = run_prover(*_eval_args(suite, out, breaking, api, "--recycle-after", "1"))
        assert done.returncode == 2, done.stderr
        assert "machinery" in done.stderr.strip().splitlines()[-1]
        records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
        assert any(r["type"] == "sample" for r in records)
        assert not any(r["type"] == "verdict" for r in records)
        assert "stopped" in json.loads((out / "results.json").read_text())
        model.requests.clear()
        resumed = run_prover(*_eval_args(suite, out, " ".join(good.argv), api, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    results = json.loads((out / "results.json").read_text())
    assert "stopped" not in results and results["pass_at_k"]["1"] == 1.0
    assert results["machinery"] == {"retries": 0, "crash_rechecks": 0}
