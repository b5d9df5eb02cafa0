"""Attacks on the machinery rules (machinery failures are never verdicts), as an RL policy
(proof text) and as a broken installation would make them.

Each test is an attack: what a policy's proof text or a broken installation could do, and what
the verifier must answer (the findings of the first attack are fixed and kept here as
regression tests). Lean runs as the FakeRepl double (a real subprocess); where the
double cannot model a fault, a small wrapper around it (written per test, test code only)
adds the fault: a process a proof left bloated, a replay process that runs out of memory.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from prover.errors import MachineryFailure
from prover.lean.machinery import CANARY_NAME
from prover.lean.pool import ReplPool, VerifierConfig
from prover.lean.sandbox import ReplCommand
from prover.lean.transport import FileExchange, Transport
from prover.lean.verdict import CheckItem

from conftest import FAKE_REPL, plain_factory

HEADER = "import Mathlib\n"


def pool_for(command: ReplCommand, **config: Any) -> ReplPool:
    config.setdefault("workers", 1)
    config.setdefault("timeout", 10.0)
    config.setdefault("machinery_backoff_s", 0.01)
    config.setdefault("replay", False)
    return ReplPool(VerifierConfig(**config), transport_factory=plain_factory(command))


def item(proof: str, name: str = "t", statement: str = "(a : Nat) : a = a") -> CheckItem:
    return CheckItem(name, HEADER, f"theorem {name} {statement} := by", proof)


# A wrapper around FakeRepl's script mode, for faults the double has no rule for:
#  - a command containing POISON arms the process: every later declaration it elaborates
#    (a reference statement, a canary, a proof) dies with an out-of-memory error, as a real
#    REPL does whose heap a proof filled (the REPL never frees an environment, and the
#    address-space cap stays where the bloat left it);
#  - $REPLAY_OOM_ONCE (a flag path): the first unpickle of the whole run dies out of memory,
#    as a replay process does that already holds a few imports of Mathlib;
#  - $VERSION_DIES_ONCE (a flag path): the first process asked its Lean version dies.
WRAPPER = """
import os, sys
sys.path.insert(0, {doubles!r})
import fake_repl

_run = fake_repl.ScriptedLean.run
def run(self, cmd):
    declares = any(w in cmd for w in ("theorem ", "axiom ", "lemma "))
    if getattr(self, "poisoned", False) and declares:
        fake_repl.die("MemoryError: out of memory (the heap a previous proof filled)", 137)
    if "POISON" in cmd:
        self.poisoned = True
    return _run(self, cmd)
fake_repl.ScriptedLean.run = run

_unpickle = fake_repl.ScriptedLean.unpickle
def unpickle(self, path):
    flag = os.environ.get("REPLAY_OOM_ONCE")
    if flag and not fake_repl.spent(flag):
        fake_repl.die("MemoryError: out of memory", 137)
    _unpickle(self, path)
fake_repl.ScriptedLean.unpickle = unpickle

_parse = fake_repl.parse
def parse(text):
    flag = os.environ.get("VERSION_DIES_ONCE")
    if flag and "versionString" in text and not fake_repl.spent(flag):
        fake_repl.die("FakeRepl: died on the version question", 1)
    return _parse(text)
fake_repl.parse = parse

sys.stdin.reconfigure(encoding="utf-8")
sys.stdout.reconfigure(encoding="utf-8")
fake_repl.script(sys.argv[1])
"""


@pytest.fixture
def wrapped_repl(tmp_path: Path):
    """Like `fake_repl_script`, through WRAPPER."""

    def make(rules: list[dict] | None = None, **config: object) -> ReplCommand:
        rules_path = tmp_path / f"wrapped-rules-{len(list(tmp_path.glob('wrapped-rules-*')))}.json"
        rules_path.write_text(json.dumps({"rules": rules or [], **config}))
        script = tmp_path / "wrapped_repl.py"
        script.write_text(WRAPPER.format(doubles=str(FAKE_REPL.parent)))
        return ReplCommand((sys.executable, str(script), str(rules_path)))

    return make


# -- 1. false accepts ------------------------------------------------------------------------


def test_a_proof_named_like_the_canary_gets_its_own_verdict(fake_repl_script) -> None:
    """The canary's name is public: a proof declaring it (and crashing, so that the canary
    runs) is judged on its own text, never on the canary's."""
    command = fake_repl_script([{"match": "CRASH", "exit": 1}])
    with pool_for(command) as pool:
        crashing = CheckItem(
            "x", HEADER, f"theorem {CANARY_NAME} : (2 : Nat) + 2 = 5 := by", "  rfl -- CRASH"
        )
        verdict = pool.check(crashing)
        assert verdict.reason == "crash" and not verdict.accepted
        sorry = CheckItem("y", HEADER, f"theorem {CANARY_NAME} : (2 : Nat) + 2 = 5 := by", " sorry")
        assert not pool.check(sorry).accepted
        assert pool.stats.crash_rechecks == 1


def test_a_crash_that_only_the_replay_process_suffers_is_never_accepted(fake_repl_script) -> None:
    """The REPL dies when the kernel rejects a replayed environment (replay.py): that crash
    is re-checked after a canary (which the replay rung judges too) and stays a rejection."""
    command = fake_repl_script([{"match": "KERNEL_NO", "replay_error": "(kernel) bad"}])
    with pool_for(command, replay=True) as pool:
        verdict = pool.check(item("  rfl -- KERNEL_NO"))
        assert pool.stats.crash_rechecks == 1
        assert pool.check(item("  rfl")).accepted  # a good proof still passes after it
    assert not verdict.accepted and verdict.reason == "replay"
    assert "known-good check passed" in verdict.detail


def test_a_transient_crash_then_a_wrong_proof_is_rejected(fake_repl_script, tmp_path) -> None:
    """The re-check is a whole check: a proof that crashes once and is wrong is `error`."""
    flag = tmp_path / "once"
    wrong = {"severity": "error", "pos": {"line": 1, "column": 0}, "data": "type mismatch"}
    command = fake_repl_script(
        [
            {
                "match": "FLAKY",
                "exit": 1,
                "exit_once": str(flag),
                "response": {"messages": [wrong]},
            }
        ]
    )
    with pool_for(command) as pool:
        verdict = pool.check(item("  rfl -- FLAKY"))
    assert flag.exists() and verdict.reason == "error" and not verdict.accepted


# -- 2. denial of service by the policy ------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_many_crashing_proofs_never_open_the_breaker(fake_repl_script, workers: int) -> None:
    """A policy whose every proof crashes Lean gets `crash` verdicts, and the run goes on;
    with one worker the canary borrows the only process without deadlocking."""
    command = fake_repl_script([{"match": "CRASH", "exit": 1}])
    with pool_for(command, workers=workers) as pool:
        items = [item(f"  rfl -- CRASH {i}", name=f"c{i}") for i in range(25)]
        verdicts = [v for _, v in pool.check_many(items)]
        assert pool.check(item("  rfl")).accepted
        assert pool.stats.machinery_retries == 0
    assert [v.reason for v in verdicts] == ["crash"] * 25


def test_a_hanging_proof_does_not_stop_the_run(fake_repl_script) -> None:
    command = fake_repl_script([{"match": "HANG", "sleep_s": 1000}])
    with pool_for(command, timeout=1.0) as pool:
        assert pool.check(item("  rfl -- HANG")).reason == "timeout"
        assert pool.check(item("  rfl", statement="(b : Nat) : b + 0 = b")).accepted
        assert pool.stats.machinery_retries == 0


def test_one_bloated_process_is_absorbed_by_the_retry_budget(wrapped_repl) -> None:
    """A proof that leaves its process unable to elaborate anything more (out of memory)
    costs the next check one machinery retry, not the run (workers=1: one process)."""
    with pool_for(wrapped_repl()) as pool:
        pool.check(item("  rfl -- POISON"))
        verdict = pool.check(item("  rfl", statement="(b : Nat) : b + 0 = b"))
        assert verdict.accepted and pool.stats.machinery_retries == 1


def _poison_every_process(pool: ReplPool, workers: int) -> None:
    """`workers` POISON proofs at once: one per process (each sleeps so that they overlap)."""
    poisons = [item(f"  rfl -- POISON {i}", name=f"p{i}") for i in range(workers)]
    assert all(v.accepted for _, v in pool.check_many(poisons))
    assert pool._live == workers  # one process each, all idle now


def test_bloated_processes_cannot_stop_the_run(wrapped_repl) -> None:
    command = wrapped_repl([{"match": "POISON", "sleep_s": 0.5}])
    with pool_for(command, workers=3) as pool:
        _poison_every_process(pool, 3)
        # a new statement: its reference is elaborated on an idle (bloated) process first
        verdict = pool.check(item("  rfl", statement="(b : Nat) : b + 0 = b"))
    assert verdict.accepted


def test_a_crash_beside_bloated_processes_is_the_proofs_verdict(wrapped_repl) -> None:
    command = wrapped_repl([{"match": "POISON", "sleep_s": 0.5}, {"match": "CRASH", "exit": 1}])
    with pool_for(command, workers=3) as pool:
        _poison_every_process(pool, 3)
        verdict = pool.check(item("  rfl -- CRASH", name="c"))
    assert verdict.reason == "crash"


# -- 3. machinery failures that still become verdicts ----------------------------------------


def test_a_replay_process_that_dies_at_once_is_machinery(fake_repl_script, tmp_path) -> None:
    """Replay processes run no header, so one that cannot run starts "fine" and dies on its
    first unpickle: the canary (replayed too) fails, and nothing is judged."""
    good = fake_repl_script()
    # checking processes are asked the version first; replay processes start with an unpickle
    script = tmp_path / "no_replay.sh"
    script.write_text(
        '#!/bin/sh\nIFS= read -r first\ncase "$first" in *unpickleEnvFrom*) exit 1;; esac\n'
        f"{{ printf '%s\\n' \"$first\"; cat; }} | exec {' '.join(good.argv)}\n"
    )
    command = ReplCommand(("sh", str(script)))
    with (
        pool_for(command, replay=True) as pool,
        pytest.raises(MachineryFailure, match="known-good check failed too"),
    ):
        pool.check(item("  rfl"))


def test_a_replay_exchange_dir_that_vanished_is_machinery(fake_repl_script) -> None:
    with pool_for(fake_repl_script(), replay=True) as pool:
        assert pool.check(item("  rfl")).accepted
        for replayer in list(pool._replayers._idle):  # a tmp cleaner, mid-run
            assert replayer.exchange is not None
            shutil.rmtree(replayer.exchange.host_dir)
        try:
            verdict = pool.check(item("  rfl", statement="(b : Nat) : b + 0 = b"))
        except MachineryFailure:
            return
    assert verdict.accepted  # a fresh replay process judged it


def test_a_replay_process_out_of_memory_once_is_not_the_proofs_verdict(
    wrapped_repl, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("REPLAY_OOM_ONCE", str(tmp_path / "replay-oom-once"))
    with pool_for(wrapped_repl(), replay=True) as pool:
        verdict = pool.check(item("  rfl"))
    assert (tmp_path / "replay-oom-once").exists()
    assert verdict.accepted, verdict


class _HostSideLost:
    """A transport whose exchange dir is no longer where the host looks for it once `lost`
    is set (a bind mount gone stale, a tmp cleaner), while the process still writes there."""

    def __init__(self, inner: Transport, lost: threading.Event) -> None:
        self._inner = inner
        self._lost = lost

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def exchange(self) -> FileExchange | None:
        exchange = self._inner.exchange  # type: ignore[attr-defined]
        if exchange is None or not self._lost.is_set():
            return exchange
        return FileExchange(
            exchange.host_dir.with_name(exchange.host_dir.name + "-gone"), exchange.inner_dir
        )


def test_a_lost_exchange_dir_is_machinery_not_a_replay_rejection(fake_repl_script) -> None:
    lost = threading.Event()
    start = plain_factory(fake_repl_script())
    config = VerifierConfig(workers=1, timeout=10.0, machinery_backoff_s=0.01)
    with ReplPool(config, transport_factory=lambda: _HostSideLost(start(), lost)) as pool:
        assert pool.check(item("  rfl")).accepted
        lost.set()
        try:
            verdict = pool.check(item("  rfl", statement="(b : Nat) : b + 0 = b"))
        except MachineryFailure:
            return
    pytest.fail(f"a verdict about the proof: {verdict.reason}: {verdict.detail}")


def test_a_death_on_the_version_question_is_retried_not_replay_unsupported(
    wrapped_repl, tmp_path, monkeypatch
) -> None:
    flag = tmp_path / "version-died-once"
    monkeypatch.setenv("VERSION_DIES_ONCE", str(flag))
    with pool_for(wrapped_repl(), replay=True) as pool:
        verdict = pool.check(item("  rfl"))
    assert flag.exists() and verdict.accepted


# -- the remote verifier (a Kimina-like server, scripted) -----------------------------------


def _kimina(answer_for: Any) -> Any:
    """A Kimina-shaped `/api/check` whose result per snippet is `answer_for(snippet)`."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/api/check")
    async def check(body: dict) -> dict:
        return {
            "results": [{"id": s["id"], "time": 0.1, **answer_for(s)} for s in body["snippets"]]
        }

    return app


def _remote_items(count: int) -> list[CheckItem]:
    return [item("  rfl", name=f"r{i}") for i in range(count)]


def test_a_server_answering_an_error_for_every_snippet_is_unavailable() -> None:
    """Kimina answers 200 with an `error` per snippet when its REPL pool is broken: the crash
    re-check's canary fails too, so it is the server's failure, never a verdict."""
    from prover.lean.remote import RemoteVerifier, VerifierUnavailable

    from serving import serving

    broken = _kimina(lambda s: {"error": "REPL pool exhausted", "response": None})
    with (
        serving(broken) as url,
        RemoteVerifier(url, timeout=5.0) as remote,
        pytest.raises(VerifierUnavailable, match="known-good check failed too"),
    ):
        remote.check(_remote_items(1)[0])


def test_remote_canary_ids_never_take_a_snippets_result() -> None:
    """The re-check sends `canary-0` beside the crashed snippets (ids are their indices): a
    snippet's result is never the canary's, even when the canary passes."""
    from prover.lean.remote import RemoteVerifier

    from serving import serving

    def answer(snippet: dict) -> dict:
        if snippet["id"].startswith("canary"):  # accepted: a clean answer with its axioms
            name = "prover_canary_check"
            data = f"'{name}' depends on axioms: [propext]"
            info = {"severity": "info", "pos": {"line": 99, "column": 0}, "data": data}
            return {"error": None, "response": {"messages": [info], "env": 0}}
        return {"error": "Lean process crashed", "response": None}

    with serving(_kimina(answer)) as url, RemoteVerifier(url, timeout=5.0) as remote:
        verdicts = [v for _, v in remote.check_many(_remote_items(3))]
    assert [v.reason for v in verdicts] == ["crash"] * 3
    assert all("known-good check passed" in v.detail for v in verdicts)


def test_a_server_timing_out_every_snippet_stops_the_run() -> None:
    from prover.lean.remote import RemoteVerifier

    from serving import serving

    with (
        serving(_kimina(lambda s: {"error": "Lean process timed out"})) as url,
        RemoteVerifier(url, timeout=5.0) as remote,
        pytest.raises(MachineryFailure),
    ):
        for _ in remote.check_many(_remote_items(25)):
            pass


def test_a_server_whose_header_stopped_elaborating_is_machinery() -> None:
    from prover.lean.remote import RemoteVerifier

    from serving import serving

    lost = {
        "severity": "error",
        "pos": {"line": 1, "column": 0},
        "endPos": {"line": 1, "column": 14},
        "data": "unknown module prefix 'Mathlib'\n\nNo directory 'Mathlib' in the search path",
    }
    with (
        serving(
            _kimina(lambda s: {"error": None, "response": {"messages": [lost], "env": 0}})
        ) as url,
        RemoteVerifier(url, timeout=5.0) as remote,
        pytest.raises(MachineryFailure),
    ):
        remote.check(_remote_items(1)[0])


def test_serve_with_dead_replay_processes_is_machinery_for_the_client(
    tmp_path, fake_repl_script
) -> None:
    from prover.lean.remote import RemoteVerifier

    from serving import running_server

    good = fake_repl_script()
    script = tmp_path / "no_replay.sh"
    script.write_text(
        '#!/bin/sh\nIFS= read -r first\ncase "$first" in *unpickleEnvFrom*) exit 1;; esac\n'
        f"{{ printf '%s\\n' \"$first\"; cat; }} | exec {' '.join(good.argv)}\n"
    )
    command = ReplCommand(("sh", str(script)))
    with (
        running_server(lambda: pool_for(command, replay=True)) as url,
        RemoteVerifier(url, timeout=5.0) as remote,
    ):
        try:
            verdict = remote.check(item("  rfl"))
        except MachineryFailure:
            return
    pytest.fail(f"a verdict about the proof: {verdict.reason}: {verdict.detail}")


def test_a_proof_whose_error_mimics_failed_imports_keeps_its_own_verdict(
    fake_repl_script,
) -> None:
    """A model can make its error say anything (`fail "unknown module prefix ..."`): over
    `--verifier URL` that only costs a canary check; the proof is judged `error`, the run goes
    on (no denial of service by imitating a broken server)."""
    from prover.lean.remote import RemoteVerifier

    from serving import running_server

    mimic = {
        "severity": "error",
        "pos": {"line": 3, "column": 2},
        "endPos": None,
        "data": "unknown module prefix 'Mathlib'",
    }
    command = fake_repl_script(
        [{"match": "MIMIC", "response": {"messages": [mimic]}, "anchored": True}]
    )
    with (
        running_server(lambda: pool_for(command, replay=False)) as url,
        RemoteVerifier(url, timeout=5.0) as remote,
    ):
        verdicts = [remote.check(item('  fail "x" -- MIMIC', name=f"m{i}")) for i in range(3)]
        assert remote.check(item("  rfl")).accepted
    assert all(v.reason == "error" and not v.accepted for v in verdicts)
