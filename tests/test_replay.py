"""The kernel replay rung (prover/lean/replay.py) against the FakeRepl double.

The double's pickle answers are scripted (no recording of a failing replay exists): a rule's
`replay_error` makes the replay process die as the real REPL does when `Environment.replay`
throws, `replay_axioms` is what `#print axioms` says after replay, `tamper_reference` is meta
code that rewrote the reference constant in the checking process.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest

from prover.lean import pool as pool_module
from prover.lean.commands import reference_name
from prover.lean.pool import ReplPool, VerifierConfig
from prover.lean.repl import LeanRepl, ReplRefused
from prover.lean.replay import ReplayUnsupported, check_version, header_scope_lines
from prover.lean.sandbox import SandboxConfig, bwrap_probe, transport_factory
from prover.lean.verdict import REASONS, CheckItem

from conftest import plain_factory, python_ro_paths, run_prover

HEADER = "import Mathlib\n\nset_option maxHeartbeats 400000\n\nopen Real Nat\n\n"
STATEMENT = "theorem t_{i} (a b : ℕ) (h : a = b) : b = a := by\n"
# Stands for the scan-bypass payload (`set_option debug.skipKernelTC true`, then meta code adding
# `theorem cheat : False := True.intro` unchecked) hidden from the text scan by one of the lexer
# disagreements: the scan passes it, Lean reports no error and `#print axioms` no axiom in the
# process that ran it (the rule's `axioms: []`); only the replay sees it.
CHEAT = "  exact h.symm -- CHEAT"
KERNEL_SAYS = "(kernel) declaration type mismatch, 'cheat' has type True but is expected False"


def item(i: int, proof: str = "  exact h.symm", context: str = "") -> CheckItem:
    return CheckItem(f"t_{i}", HEADER, STATEMENT.format(i=i), proof, context=context)


def pool_for(command, **config) -> ReplPool:
    config.setdefault("workers", 1)
    config.setdefault("timeout", 10.0)
    return ReplPool(VerifierConfig(**config), transport_factory=plain_factory(command))


def pickles_left(pool: ReplPool) -> list[Path]:
    repls = list(pool._all) + list(pool._replayers._all)
    dirs = [r.exchange.host_dir for r in repls if r.exchange is not None]
    assert dirs, "no process has an exchange dir"
    return [p for d in dirs for p in d.glob("*.olean")]


def test_an_accepted_proof_is_replayed(fake_repl_script, tmp_path, monkeypatch) -> None:
    log = tmp_path / "requests.jsonl"
    monkeypatch.setenv("FAKE_REPL_LOG", str(log))
    with pool_for(fake_repl_script()) as pool:
        verdicts = [pool.check(item(i)) for i in range(3)]
        assert all(v.accepted and v.reason == "ok" and v.replayed for v in verdicts)
        assert verdicts[0].axioms == ["Classical.choice", "Quot.sound", "propext"]
        assert pool.stats.replays == 3 and pool.stats.replay_processes == 1
        assert pickles_left(pool) == []  # every pickle deleted after its check
        assert pool.stats.header_elaborations == 1  # the replay process imports no header
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    pickles = [r for r in requests if "pickleTo" in r]
    unpickles = [r for r in requests if "unpickleEnvFrom" in r]
    assert len(pickles) == len(unpickles) == 3
    # a fresh unpredictable path each time, never the same one in both processes
    paths = [r["pickleTo"] for r in pickles] + [r["unpickleEnvFrom"] for r in unpickles]
    assert len(set(paths)) == 6
    after = requests[requests.index(unpickles[0]) + 1 :][:3]
    reset, reference, final = after
    assert reset["cmd"].startswith("#eval show Lean.Elab.Command.CommandElabM Unit")
    # the header's open/set_option lines again; the imports come with the pickle
    assert reset["cmd"].splitlines()[1:] == ["set_option maxHeartbeats 400000", "open Real Nat"]
    assert reference["cmd"].startswith("axiom _root_.prover_reference_replay_")
    ref_name = reference["cmd"].split()[1]
    assert (
        final["cmd"] == f"example : type_of% @{ref_name} := @_root_.t_0\n#print axioms _root_.t_0"
    )


def test_the_unchecked_declaration_cheat_is_rejected(fake_repl_script) -> None:
    rules = [{"match": "CHEAT", "axioms": [], "replay_error": KERNEL_SAYS}]
    with pool_for(fake_repl_script(rules)) as pool:
        verdict = pool.check(item(1, CHEAT))
        assert verdict.reason == "replay" and not verdict.accepted and not verdict.replayed
        assert "Lean rejected" in verdict.detail or "died" in verdict.detail
        assert "declaration type mismatch" in verdict.detail
        assert "\n" not in verdict.detail
        assert pickles_left(pool) == []
        honest = pool.check(item(2))  # a new replay process takes over
        assert honest.accepted and honest.replayed
        # As in real Lean the kernel's rejection kills the replay process, so the check ran
        # twice with a canary (replayed in a second process) in between; the second death
        # took that process too, and the honest proof's replay started a third.
        assert pool.stats.crash_rechecks == 1
        assert pool.stats.replay_processes == 3


def test_the_same_cheat_without_replay_is_accepted(fake_repl_script) -> None:
    """What the rung is for: every other rung passes this proof."""
    rules = [{"match": "CHEAT", "axioms": [], "replay_error": KERNEL_SAYS}]
    with pool_for(fake_repl_script(rules), replay=False) as pool:
        verdict = pool.check(item(1, CHEAT))
    assert verdict.accepted and not verdict.replayed and pool.stats.replays == 0


def test_a_tampered_reference_is_caught_after_replay(fake_repl_script) -> None:
    rules = [{"match": "TAMPER", "tamper_reference": True}]
    with pool_for(fake_repl_script(rules)) as pool:
        verdict = pool.check(item(1, "  exact h.symm -- TAMPER"))
    assert verdict.reason == "replay" and not verdict.accepted
    assert "not the benchmark's statement" in verdict.detail


def test_axioms_after_replay_are_judged(fake_repl_script) -> None:
    rules = [{"match": "LIAR", "axioms": [], "replay_axioms": ["sorryAx"]}]
    with pool_for(fake_repl_script(rules)) as pool:
        verdict = pool.check(item(1, "  exact h.symm -- LIAR"))
        assert verdict.reason == "replay" and "sorryAx" in verdict.detail
        assert pool.check(item(2)).replayed  # the replay process itself is fine


def test_a_replay_refused_with_a_message_is_rejected(fake_repl_script, monkeypatch) -> None:
    """A REPL fork that catches the replay's exception answers `{"message": ...}`."""

    def refuse(self, path, timeout):
        raise ReplRefused("(kernel) unknown constant 'cheat'")

    monkeypatch.setattr(LeanRepl, "unpickle_env", refuse)
    with pool_for(fake_repl_script()) as pool:
        verdict = pool.check(item(1))
        assert verdict.reason == "replay" and "unknown constant 'cheat'" in verdict.detail
        assert pickles_left(pool) == []


def test_a_replay_process_killed_while_idle_is_replaced(fake_repl_script) -> None:
    with pool_for(fake_repl_script()) as pool:
        assert pool.check(item(1)).replayed
        (replayer,) = pool._replayers._idle
        replayer._transport.kill()
        assert pool.check(item(2)).replayed
        assert pool.stats.replay_processes == 2


def test_replay_processes_are_recycled(fake_repl_script) -> None:
    with pool_for(fake_repl_script(), recycle_after=2) as pool:
        assert all(pool.check(item(i)).replayed for i in range(5))
        assert pool.stats.replay_processes == 3


def test_a_replay_that_hangs_is_a_timeout(fake_repl_script, monkeypatch) -> None:
    def hang(self, path, timeout):
        time.sleep(timeout + 0.1)
        raise pool_module.ReplFailure("timeout", f"no answer within {timeout:g} s")

    monkeypatch.setattr(LeanRepl, "unpickle_env", hang)
    with pool_for(fake_repl_script(), timeout=1.0) as pool:
        start = time.monotonic()
        verdict = pool.check(item(1))
    assert verdict.reason == "timeout" and time.monotonic() - start < 3


CONTEXT = "def helper : ℕ := 1\n"
# Stands for meta code, past the text scan, that made the checking process's own statement
# check a no-op (an elaborator or macro: an environment extension, which replay does not
# carry) while the theorem proves another statement: `prover prove` would write it back.
NEUTERED = [{"match": "NEUTER", "neuter_check": True}]


def test_a_check_with_a_context_is_replayed_against_its_own_reference(
    fake_repl_script, tmp_path, monkeypatch
) -> None:
    log = tmp_path / "requests.jsonl"
    monkeypatch.setenv("FAKE_REPL_LOG", str(log))
    rules = [{"match": "CHEAT", "axioms": [], "replay_error": KERNEL_SAYS}]
    with pool_for(fake_repl_script(rules)) as pool:
        honest = pool.check(item(1, context=CONTEXT))
        cheat = pool.check(item(2, CHEAT, context=CONTEXT))
    assert honest.accepted and honest.replayed and honest.reason == "ok"
    assert cheat.reason == "replay" and not cheat.replayed
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    unpickle = next(i for i, r in enumerate(requests) if "unpickleEnvFrom" in r)
    reset, final = requests[unpickle + 1 : unpickle + 3]
    # the model's leftover scopes do not apply: reset, then the header's lines again
    assert reset["cmd"].startswith("#eval show Lean.Elab.Command.CommandElabM Unit")
    assert reset["cmd"].splitlines()[1:] == ["set_option maxHeartbeats 400000", "open Real Nat"]
    # no fresh reference (the context's notations would not come back): the original one,
    # elaborated before the model's code in the checking process and rebuilt with the rest
    ref_name = reference_name(CONTEXT + STATEMENT.format(i=1))
    assert final["cmd"] == (
        f"example : type_of% @_root_.{ref_name} := @_root_.t_1\n#print axioms _root_.t_1"
    )
    # in the env the reset answered (the double numbers envs one by one, as the REPL does)
    assert final["env"] == reset["env"] + 1


def test_a_neutered_statement_check_in_a_context_check_is_caught_by_replay(
    fake_repl_script,
) -> None:
    proof = "  exact h.symm -- NEUTER"
    with pool_for(fake_repl_script(NEUTERED), replay=False) as pool:
        unchecked = pool.check(item(1, proof, context=CONTEXT))
    # what the rung is for: the checking process alone accepts it
    assert unchecked.accepted and not unchecked.replayed
    with pool_for(fake_repl_script(NEUTERED)) as pool:
        verdict = pool.check(item(1, proof, context=CONTEXT))
        assert verdict.reason == "replay" and not verdict.accepted and not verdict.replayed
        assert "not the benchmark's statement" in verdict.detail
        assert "\n" not in verdict.detail
        assert pickles_left(pool) == []
        assert pool.check(item(2, context=CONTEXT)).replayed  # the replay process is fine


def test_a_neutered_check_without_a_context_is_caught_by_replay(fake_repl_script) -> None:
    with pool_for(fake_repl_script(NEUTERED)) as pool:
        verdict = pool.check(item(1, "  exact h.symm -- NEUTER"))
    assert verdict.reason == "replay" and "not the benchmark's statement" in verdict.detail


def test_a_context_check_in_a_namespace_is_replayed(fake_repl_script) -> None:
    context = "namespace Foo\n\ndef helper : ℕ := 1\n"
    with pool_for(fake_repl_script(NEUTERED)) as pool:
        honest = pool.check(item(1, context=context))
        neutered = pool.check(item(2, "  exact h.symm -- NEUTER", context=context))
    assert honest.accepted and honest.replayed, honest
    assert neutered.reason == "replay", neutered


def test_a_lean_that_does_not_recheck_on_unpickling_is_refused(fake_repl_script) -> None:
    with pool_for(fake_repl_script(version="4.30.0")) as pool, pytest.raises(ReplayUnsupported):
        pool.check(item(1))
    with pool_for(fake_repl_script(version="4.30.0"), replay=False) as pool:
        assert pool.check(item(1)).accepted


def test_version_gate() -> None:
    for ok in ("4.9.0", "4.24.0", "4.27.0-rc1", "v4.29.1"):
        check_version(ok)
    for bad in ("4.30.0", "4.30.0-rc2", "5.0.0", None, "nonsense"):
        with pytest.raises(ReplayUnsupported, match="--no-replay"):
            check_version(bad)


def test_header_scope_lines() -> None:
    header = (
        "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\n\n"
        "open BigOperators\n  Real Nat\n-- note\n"
    )
    assert header_scope_lines(header) == (
        "set_option maxHeartbeats 400000\nopen BigOperators\n  Real Nat"
    )


def test_the_scan_counts_against_the_timeout(fake_repl_script, monkeypatch) -> None:
    real = pool_module.plan_check

    def slow(item):
        time.sleep(0.6)
        return real(item)

    monkeypatch.setattr(pool_module, "plan_check", slow)
    with pool_for(fake_repl_script(), timeout=0.5) as pool:
        verdict = pool.check(item(1))
    assert verdict.reason == "timeout" and "scan" in verdict.detail


def test_replay_is_a_reason() -> None:
    assert "replay" in REASONS


def _items(tmp_path: Path, proofs: list[str]) -> Path:
    path = tmp_path / "items.jsonl"
    rows = [
        {"name": f"t_{i}", "header": HEADER, "formal_statement": STATEMENT.format(i=i), "proof": p}
        for i, p in enumerate(proofs)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cli(items: Path, command, *extra: str):
    repl = shlex.join(command.argv)
    return run_prover("check", "--jsonl", str(items), "--sandbox", "none", "--repl", repl, *extra)


def test_cli_replays_by_default_and_no_replay_turns_it_off(fake_repl_script, tmp_path) -> None:
    items = _items(tmp_path, ["  exact h.symm", "  exact h.symm"])
    command = fake_repl_script()
    on = _cli(items, command)
    assert on.returncode == 0, on.stderr
    assert [json.loads(line)["replayed"] for line in on.stdout.splitlines()] == [True, True]
    off = _cli(items, command, "--no-replay")
    assert off.returncode == 0, off.stderr
    verdicts = [json.loads(line) for line in off.stdout.splitlines()]
    assert all(v["accepted"] and v["replayed"] is False for v in verdicts)


def test_cli_rejects_the_cheat_with_reason_replay(fake_repl_script, tmp_path) -> None:
    rules = [{"match": "CHEAT", "axioms": [], "replay_error": KERNEL_SAYS}]
    # the text scan is not what is tested here: the proof text carries only the marker
    items = _items(tmp_path, ["  exact h.symm -- CHEAT", "  exact h.symm"])
    result = _cli(items, fake_repl_script(rules))
    verdicts = {v["name"]: v for v in map(json.loads, result.stdout.splitlines())}
    assert verdicts["t_0"]["reason"] == "replay" and not verdicts["t_0"]["accepted"]
    assert verdicts["t_1"]["accepted"] and verdicts["t_1"]["replayed"]


def test_cli_refuses_replay_on_lean_4_30_in_one_line(fake_repl_script, tmp_path) -> None:
    items = _items(tmp_path, ["  exact h.symm"])
    result = _cli(items, fake_repl_script(version="4.30.0"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--no-replay" in lines[0] and "4.30.0" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    fine = _cli(items, fake_repl_script(version="4.30.0"), "--no-replay")
    assert fine.returncode == 0 and json.loads(fine.stdout)["accepted"]


WORKS, WHY = bwrap_probe()


@pytest.mark.bwrap
@pytest.mark.skipif(not WORKS, reason=f"bubblewrap unusable here: {WHY}")
def test_replay_across_two_bwrap_sandboxes(fake_repl_script) -> None:
    rules = [{"match": "CHEAT", "axioms": [], "replay_error": KERNEL_SAYS}]
    command = fake_repl_script(rules)
    sandbox = SandboxConfig("bwrap", 2048, python_ro_paths())
    config = VerifierConfig(workers=1, timeout=20.0, memory_mb=2048, sandbox="bwrap")
    with ReplPool(config, transport_factory=transport_factory("bwrap", command, sandbox)) as pool:
        honest = pool.check(item(1))
        assert honest.accepted and honest.replayed, honest
        cheat = pool.check(item(2, CHEAT))
        assert cheat.reason == "replay", cheat
        assert pickles_left(pool) == []


def test_prover_serve_replays_and_says_so(fake_repl_script) -> None:
    from prover.lean.remote import RemoteVerifier

    from serving import running_server

    rules = [
        {"match": "CHEAT", "axioms": [], "replay_error": KERNEL_SAYS},
        {"match": "TAMPER", "tamper_reference": True},
    ]
    command = fake_repl_script(rules)
    items = [item(0), item(1, CHEAT), item(2, "  exact h.symm -- TAMPER")]
    with (
        running_server(lambda: pool_for(command, workers=2)) as url,
        RemoteVerifier(url, timeout=10.0) as remote,
    ):
        verdicts = [remote.check(it) for it in items]
    assert verdicts[0].accepted and verdicts[0].replayed
    assert [v.reason for v in verdicts[1:]] == ["replay", "replay"]
    assert "not the benchmark's statement" in verdicts[2].detail


def test_prover_serve_replays_a_check_with_a_context(
    fake_repl_script, tmp_path, monkeypatch
) -> None:
    from prover.lean.remote import RemoteVerifier

    from serving import running_server

    log = tmp_path / "requests.jsonl"
    monkeypatch.setenv("FAKE_REPL_LOG", str(log))
    rules = [{"match": "CHEAT", "axioms": [], "replay_error": KERNEL_SAYS}, *NEUTERED]
    command = fake_repl_script(rules)
    context = "namespace Foo\n\ndef helper : ℕ := 1\n"
    items = [
        item(0, context=context),
        item(1, CHEAT, context=context),
        item(2, "  exact h.symm -- NEUTER", context=context),
    ]
    with (
        running_server(lambda: pool_for(command, workers=2)) as url,
        RemoteVerifier(url, timeout=10.0) as remote,
    ):
        verdicts = [remote.check(it) for it in items]
    assert verdicts[0].accepted and verdicts[0].replayed, verdicts[0]
    assert [v.reason for v in verdicts[1:]] == ["replay", "replay"], verdicts
    assert "not the benchmark's statement" in verdicts[2].detail
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    ref_name = reference_name(context + STATEMENT.format(i=0))
    assert any(
        r.get("cmd") == f"example : type_of% @_root_.{ref_name} := @_root_.Foo.t_0\n"
        "#print axioms _root_.Foo.t_0"
        for r in requests
    )


def test_a_replay_reference_hint_is_validated(fake_repl_script) -> None:
    import httpx

    from serving import running_server

    command = fake_repl_script()
    code = HEADER + "theorem x : 1 = 1 := rfl"
    both = {
        "replay": {"statement": "theorem x : 1 = 1 := by", "theorem": "x"},
        "replay_reference": {"theorem": "x", "reference": "prover_reference_" + "0" * 16},
    }
    injected = {"replay_reference": {"theorem": "x", "reference": "x\n#eval 1"}}
    with running_server(lambda: pool_for(command)) as url:
        for hint in (both, injected):
            answer = httpx.post(
                url + "/api/check", json={"snippets": [{"id": "a", "code": code, **hint}]}
            )
            assert answer.status_code == 422, answer.text


def test_a_server_that_does_not_replay_gives_replayed_false(fake_repl_script) -> None:
    """As a Kimina server: no `replayed` in its answers, so none in the verdicts."""
    import httpx

    from prover.lean.remote import RemoteVerifier

    from serving import running_server

    command = fake_repl_script()
    with running_server(lambda: pool_for(command, replay=False)) as url:
        with RemoteVerifier(url, timeout=10.0) as remote:
            verdict = remote.check(item(0))
        raw = httpx.post(
            url + "/api/check",
            json={"snippets": [{"id": "a", "code": HEADER + "theorem x : 1 = 1 := rfl"}]},
        ).json()
    assert verdict.accepted and not verdict.replayed
    assert raw["results"][0]["replayed"] is False


FILE = (
    HEADER
    + """theorem good (a b : ℕ) : a + b = b + a := by
  omega

theorem other : (2 : ℕ) + 2 = 4 := by norm_num -- MARK

example : True := trivial
"""
)


def _file_report(tmp_path: Path, command, *extra: str) -> dict:
    lean = tmp_path / "demo.lean"
    lean.write_text(FILE)
    repl = shlex.join(command.argv)
    result = run_prover("check", str(lean), "--json", "--sandbox", "none", "--repl", repl, *extra)
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def test_file_mode_replays_named_theorems(fake_repl_script, tmp_path) -> None:
    report = _file_report(tmp_path, fake_repl_script())
    assert report["accepted"]
    # the example too: it is sent to Lean as a named declaration
    assert [t["replayed"] for t in report["theorems"]] == [True, True, True]
    off = _file_report(tmp_path, fake_repl_script(), "--no-replay")
    assert off["accepted"] and not any(t["replayed"] for t in off["theorems"])


def test_file_mode_rejects_what_fails_replay(fake_repl_script, tmp_path) -> None:
    kernel = [{"match": "MARK", "replay_error": KERNEL_SAYS}]
    report = _file_report(tmp_path, fake_repl_script(kernel))
    assert not report["accepted"]
    # the file's environment does not rebuild: none of its theorems stands
    assert [t["reason"] for t in report["theorems"][:2]] == ["replay", "replay"]
    liar = [{"match": "MARK", "axioms": [], "replay_axioms": ["sorryAx"]}]
    report = _file_report(tmp_path, fake_repl_script(liar))
    # the double answers per command, and the file is one: both theorems' axioms changed
    assert [t["reason"] for t in report["theorems"][:2]] == ["replay", "replay"]
    assert "sorryAx" in report["theorems"][0]["detail"]
