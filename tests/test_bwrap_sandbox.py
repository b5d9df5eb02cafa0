"""Real bubblewrap isolation of a REPL process (the FakeRepl double runs inside it)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from prover.lean.pool import ReplPool, VerifierConfig
from prover.lean.sandbox import SandboxConfig, bwrap_probe, resolve_kind, transport_factory
from prover.lean.verdict import CheckItem

from conftest import ROOT, python_ro_paths

pytestmark = pytest.mark.bwrap

WORKS, WHY = bwrap_probe()
if not WORKS:
    pytest.skip(f"bubblewrap unusable here: {WHY}", allow_module_level=True)

HEADER = "import Mathlib\n"


def item(i: int, marker: str = "") -> CheckItem:
    return CheckItem(f"t_{i}", HEADER, f"theorem t_{i} : 1 = 1 := by\n", f"  rfl -- {marker}")


def sandboxed_pool(command, memory_mb: int = 2048, timeout: float = 20.0) -> ReplPool:
    sandbox = SandboxConfig("bwrap", memory_mb, python_ro_paths())
    return ReplPool(
        VerifierConfig(workers=1, timeout=timeout, memory_mb=memory_mb, sandbox="bwrap"),
        transport_factory=transport_factory("bwrap", command, sandbox),
    )


def probe(pool: ReplPool) -> dict:
    verdict = pool.check(item(0, "PROBE"))
    infos = [m["data"] for m in verdict.messages if m["severity"] == "info"]
    assert infos, verdict
    return json.loads(infos[0])


@pytest.fixture
def loopback_server():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    reached = threading.Event()

    def serve() -> None:
        server.settimeout(10)
        try:
            conn, _ = server.accept()
            reached.set()
            conn.sendall(b"secret")
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], reached
    server.close()


def test_auto_picks_bwrap_here() -> None:
    assert resolve_kind("auto") == "bwrap"


def test_no_network_to_host_loopback(fake_repl_script, loopback_server, monkeypatch) -> None:
    port, reached = loopback_server
    # The same probe outside the sandbox does reach the server (the test can fail).
    with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
        assert conn.recv(100) == b"secret"
    reached.clear()
    command = fake_repl_script([{"match": "PROBE", "probe": {"connect": ["127.0.0.1", port]}}])
    with sandboxed_pool(command) as pool:
        result = probe(pool)
    assert result["connect"].startswith("error"), result
    assert not reached.is_set()


def test_writes_only_to_its_scratch_dir(fake_repl_script, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PROVER_TEST_SECRET", "hunter2")
    read_only = [str(ROOT / "pwned.txt"), "/root/pwned.txt", "/usr/pwned.txt", "/etc/pwned.txt"]
    host_tmp = str(tmp_path / "pwned.txt")  # inside, /tmp is the private scratch dir
    command = fake_repl_script(
        [{"match": "PROBE", "probe": {"write": ["/tmp/scratch.txt", host_tmp, *read_only]}}]
    )
    with sandboxed_pool(command) as pool:
        result = probe(pool)
    assert result["/tmp/scratch.txt"] == "written"
    for path in read_only:
        assert result[path].startswith("error"), (path, result[path])
    for path in [host_tmp, *read_only]:
        assert not Path(path).exists(), path
    assert result["pid"] < 10  # its own pid namespace
    assert "PROVER_TEST_SECRET" not in result["env"]  # environment cleared


def test_memory_cap_gives_reason_memory(fake_repl_script) -> None:
    command = fake_repl_script([{"match": "GREEDY", "alloc_mb": 4000}])
    with sandboxed_pool(command, memory_mb=700) as pool:
        verdict = pool.check(item(1, "GREEDY"))
        assert verdict.reason == "memory", verdict.detail
        assert pool.check(item(2)).accepted


def test_timeout_kills_the_sandbox_and_pool_still_answers(fake_repl_script) -> None:
    command = fake_repl_script([{"match": "HANG", "sleep_s": 1000}])
    with sandboxed_pool(command, timeout=2.0) as pool:
        start = time.monotonic()
        verdict = pool.check(item(1, "HANG"))
        assert verdict.reason == "timeout"
        assert time.monotonic() - start < 6
        assert pool.check(item(2)).accepted
        assert pool.stats.restarts == 1


def test_processes_outlive_the_threads_that_asked_for_them(fake_repl_script) -> None:
    """bwrap --die-with-parent follows the forking *thread*: worker threads of one batch end,
    the pooled processes must stay usable for the next batch."""
    with sandboxed_pool(fake_repl_script()) as pool:
        pool.workers = 2
        first = [v.reason for _, v in pool.check_many(item(i) for i in range(4))]
        second = [v.reason for _, v in pool.check_many(item(i) for i in range(4, 8))]
        assert first == second == ["ok"] * 4
        assert pool.check(item(9)).accepted
        assert pool.stats.restarts == 0
