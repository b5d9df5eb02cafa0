"""`prover serve` when its machinery breaks: the warm-up and `/health` ("starting", "ok",
"degraded"), 503 instead of per-snippet results, 413 for requests that can never fit, and one
line for an address that cannot be listened on. Lean is the FakeRepl double; a REPL that
cannot start is `sh -c 'exit 1'`, or a wrapper that fails while a marker file exists."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from prover.errors import MachineryFailure, UsageError
from prover.lean.pool import ReplPool, VerifierConfig
from prover.lean.remote import RemoteVerifier, VerifierUnavailable
from prover.lean.sandbox import ReplCommand
from prover.lean.verdict import CheckItem
from prover.server.app import retry_after_s
from prover.server.health import MachineryHealth
from prover.server.listen import listening_socket

from conftest import plain_factory, run_prover
from serving import free_port, running_server

HEADER = "import Mathlib\n\n"
GOOD = HEADER + "theorem t : (1 : ℕ) = 1 := by\n  rfl"
BROKEN_REPL = ReplCommand(("sh", "-c", "exit 1"))  # dies before it answers anything
FAST_RETRY = {"warm_retry_s": 0.05, "warm_retry_max_s": 0.1}


def pools_made(command: ReplCommand, workers: int = 2) -> tuple[Callable[[], ReplPool], list]:
    """A pool factory that keeps the pools it made, to look at their processes."""
    made: list[ReplPool] = []

    def factory() -> ReplPool:
        made.append(
            ReplPool(
                VerifierConfig(workers=workers, timeout=10.0),
                transport_factory=plain_factory(command),
            )
        )
        return made[-1]

    return factory, made


def flaky_repl(command: ReplCommand, marker: Path) -> ReplCommand:
    """`command`, except that it exits at once while `marker` exists."""
    script = f"test -e {shlex.quote(str(marker))} && exit 1; exec {shlex.join(command.argv)}"
    return ReplCommand(("sh", "-c", script))


def wait_for_health(url: str, status: str, within_s: float = 10.0) -> httpx.Response:
    deadline = time.monotonic() + within_s
    while True:
        reply = httpx.get(url + "/health", timeout=5)
        if reply.json()["status"] == status or time.monotonic() > deadline:
            return reply
        time.sleep(0.02)


def check(url: str, *codes: str, path: str = "/api/check") -> httpx.Response:
    if path == "/verify":
        body = {"codes": [{"custom_id": str(i), "proof": c} for i, c in enumerate(codes)]}
    else:
        body = {"snippets": [{"id": str(i), "code": c} for i, c in enumerate(codes)]}
    return httpx.post(url + path, json={**body, "timeout": 10}, timeout=30)


FIELDS = {"status", "lean_version", "workers", "in_flight", "capacity"}


# -- warm-up and /health ---------------------------------------------------------------------


def test_health_says_starting_until_every_worker_elaborated_the_header(fake_repl_script) -> None:
    command = fake_repl_script(header_delay_s=1.0)
    factory, made = pools_made(command, workers=2)
    with running_server(factory, warm_header="import Mathlib") as url:
        began = time.monotonic()
        first = httpx.get(url + "/health", timeout=5)
        assert time.monotonic() - began < 0.9  # answered while the header elaborates
        assert first.status_code == 503
        assert first.json()["status"] == "starting" and set(first.json()) >= FIELDS
        assert first.json()["capacity"] == 16 and first.json()["workers"] == 2
        ready = wait_for_health(url, "ok")
        assert ready.status_code == 200 and set(ready.json()) >= FIELDS
        assert "detail" not in ready.json()
        assert ready.json()["lean_version"] == "4.24.0"
        # each worker has its own process, the header elaborated once in each
        assert made[0].stats.header_elaborations == 2
        began = time.monotonic()
        reply = check(url, GOOD, GOOD)
        assert reply.status_code == 200 and [r["error"] for r in reply.json()["results"]] == [
            None,
            None,
        ]
        assert time.monotonic() - began < 0.9  # served by the warm processes
        assert made[0].stats.header_elaborations == 2


def test_no_warm_header_is_ok_at_once(fake_repl_script) -> None:
    factory, made = pools_made(fake_repl_script(header_delay_s=1.0))
    with running_server(factory, warm_header="") as url:
        reply = httpx.get(url + "/health", timeout=5)
        assert reply.status_code == 200 and reply.json()["status"] == "ok"
        assert made[0].stats.header_elaborations == 0


def test_a_repl_that_cannot_start_makes_health_degraded() -> None:
    factory, _ = pools_made(BROKEN_REPL)
    with running_server(factory, warm_header="import Mathlib", **FAST_RETRY) as url:
        reply = wait_for_health(url, "degraded")
        body = reply.json()
        assert reply.status_code == 503 and body["status"] == "degraded", body
        assert set(body) >= FIELDS and body["capacity"] == 16
        assert "REPL died" in body["detail"] and "\n" not in body["detail"]


def test_a_header_lean_rejects_at_warm_up_is_degraded_with_the_way_out(fake_repl_script) -> None:
    bad = {"severity": "error", "pos": {"line": 1, "column": 0}, "endPos": None}
    command = fake_repl_script(
        [
            {
                "match": "import Mathlib",
                "response": {"messages": [{**bad, "data": "unknown package 'Mathlib'"}]},
            }
        ]
    )
    factory, _ = pools_made(command)
    with running_server(factory, warm_header="import Mathlib", **FAST_RETRY) as url:
        body = wait_for_health(url, "degraded").json()
        assert body["status"] == "degraded"
        assert "unknown package 'Mathlib'" in body["detail"]
        assert "--warm-header ''" in body["detail"]


def test_health_recovers_when_the_machinery_works_again(fake_repl_script, tmp_path) -> None:
    marker = tmp_path / "broken"
    marker.touch()
    factory, _ = pools_made(flaky_repl(fake_repl_script(), marker))
    with running_server(factory, warm_header="import Mathlib", **FAST_RETRY) as url:
        assert wait_for_health(url, "degraded").json()["status"] == "degraded"
        marker.unlink()  # the warm-up keeps probing: no client needs to send a check
        reply = wait_for_health(url, "ok")
        assert reply.status_code == 200 and reply.json()["status"] == "ok"


def test_checks_failing_for_the_machinery_degrade_and_a_success_recovers(
    fake_repl_script, tmp_path
) -> None:
    marker = tmp_path / "broken"
    marker.touch()
    factory, _ = pools_made(flaky_repl(fake_repl_script(), marker))
    with running_server(factory) as url:  # no warm-up: only checks say how it goes
        for round_ in range(3):
            assert httpx.get(url + "/health").json()["status"] == "ok", round_
            assert check(url, GOOD).status_code == 503
        body = httpx.get(url + "/health").json()
        assert body["status"] == "degraded" and "REPL died" in body["detail"]
        marker.unlink()
        assert check(url, GOOD).status_code == 200
        assert httpx.get(url + "/health").status_code == 200


def test_health_rule() -> None:
    health = MachineryHealth(warm=False)
    assert health.status() == ("starting", "elaborating the warm-up header in every worker")
    health.failure("first\nsecond")
    status, detail = health.status()
    assert status == "starting" and "(last failure: first second)" in detail
    health.failure("again")
    health.failure("cannot start")
    assert health.status() == ("degraded", "cannot start")
    health.success()
    assert health.status()[0] == "starting"
    health.mark_warm()
    assert health.status() == ("ok", None)
    for _ in range(3):
        health.failure("x" * 1000)
    status, detail = health.status()
    assert status == "degraded" and len(detail) == 400


# -- machinery failures are 503, never per-snippet results ----------------------------------


@pytest.mark.parametrize("path", ["/api/check", "/verify"])
def test_a_repl_that_cannot_start_is_503_not_a_crash_result(path: str) -> None:
    factory, _ = pools_made(BROKEN_REPL)
    with running_server(factory) as url:
        reply = check(url, GOOD, GOOD, path=path)
        assert reply.status_code == 503, reply.text
        assert "results" not in reply.json()
        assert "REPL died" in reply.json()["detail"]
        assert int(reply.headers["retry-after"]) >= 1
        metrics = httpx.get(url + "/metrics").text
        assert 'prover_snippets_total{outcome="machinery"} 1.0' in metrics
        assert 'outcome="failed"' not in metrics


class PoolWithoutMachinery(ReplPool):
    """A test double of the pool as the lead's `ReplPool` fails: `MachineryFailure` from
    `repl_for` and `check_many` (a sandbox that vanished, a header that never starts)."""

    def repl_for(self, header: str):  # noqa: ANN201
        raise MachineryFailure("the sandbox is gone")

    def check_many(self, items):  # noqa: ANN001, ANN201
        raise MachineryFailure("the sandbox is gone")
        yield  # a generator, as the pool's


def test_the_pools_machinery_failure_is_503_with_its_cause(fake_repl_script) -> None:
    from prover.prompts import get_format

    from doubles.scripted_model import ScriptedModel

    def factory() -> ReplPool:
        return PoolWithoutMachinery(
            VerifierConfig(workers=1), transport_factory=plain_factory(fake_repl_script())
        )

    model = ScriptedModel({"easy": ["  norm_num\n```"]})
    with running_server(factory, prover=(model, get_format("deepseek-v1.5"))) as url:
        for path in ("/api/check", "/verify"):
            reply = check(url, GOOD, path=path)
            assert reply.status_code == 503 and reply.json() == {"detail": "the sandbox is gone"}
            assert reply.headers["retry-after"].isdigit()
        proved = httpx.post(
            url + "/prove",
            json={"formal_statement": "theorem easy : (2 : ℕ) + 2 = 4 := by", "attempts": 1},
            timeout=30,
        )
        assert proved.status_code == 503 and proved.json() == {"detail": "the sandbox is gone"}


def test_what_lean_answered_stays_the_snippets_result(fake_repl_script) -> None:
    """A header Lean answers with errors is the client's text (a result, as Kimina gives);
    a process that dies on the snippet's own body is the snippet's `crash`."""
    bad = {"severity": "error", "pos": {"line": 1, "column": 0}, "endPos": None, "data": "no"}
    command = fake_repl_script(
        [
            {"match": "import Nonexistent", "response": {"messages": [bad]}},
            {"match": "CRASH", "exit": 1},
        ]
    )
    factory, _ = pools_made(command)
    with running_server(factory) as url:
        reply = check(url, "import Nonexistent\n\ntheorem t : True := trivial", GOOD + " -- CRASH")
        assert reply.status_code == 200, reply.text
        header_error, crashed = reply.json()["results"]
        assert header_error["error"] is None and header_error["response"]["messages"] == [bad]
        assert crashed["error"].startswith("crash: ")
        assert httpx.get(url + "/health").json()["status"] == "ok"


# -- admission: 413 for what can never fit, 429 with Retry-After -----------------------------


def test_a_request_over_capacity_is_413_and_the_client_does_not_retry_it(
    fake_repl_script,
) -> None:
    factory, _ = pools_made(fake_repl_script(), workers=1)
    with running_server(factory, max_queue=2) as url:
        for path in ("/api/check", "/verify"):
            reply = check(url, GOOD, GOOD, GOOD, path=path)
            assert reply.status_code == 413
            assert reply.json()["detail"] == (
                "3 snippets; this server admits at most 2 per request: split the request"
            )
        assert check(url, GOOD, GOOD).status_code == 200
        items = [
            CheckItem(f"t{i}", HEADER, f"theorem t{i} : (1 : ℕ) = 1 := by\n", "  rfl")
            for i in range(3)
        ]
        with RemoteVerifier(url, backoff_s=5.0) as remote:
            began = time.monotonic()
            with pytest.raises(VerifierUnavailable, match="HTTP 413.*split the request"):
                remote._check_batch(items)  # a batch `check_many` would have fitted
            assert time.monotonic() - began < 4  # no retry (its backoff is 5 s)


def test_retry_after_estimate() -> None:
    assert retry_after_s(excess=1, workers=4, mean_snippet_s=0.01) == 1
    assert retry_after_s(excess=8, workers=2, mean_snippet_s=3.0) == 12
    assert retry_after_s(excess=1000, workers=1, mean_snippet_s=30.0) == 60


# -- prover serve: the address ---------------------------------------------------------------


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return run_prover(
        "serve", "--sandbox", "none", "--insecure", "--repl", shlex.join(BROKEN_REPL.argv), *args
    )


@pytest.mark.parametrize(
    ("host", "port", "says"),
    [
        ("127.0.0.1", 0, "--port 0: not a TCP port (1-65535)"),
        ("127.0.0.1", -5, "--port -5: not a TCP port (1-65535)"),
        ("127.0.0.1", 65536, "--port 65536: not a TCP port (1-65535)"),
        ("no-such-host.invalid", 8000, "--host no-such-host.invalid: cannot resolve it ("),
    ],
)
def test_an_address_that_cannot_be_listened_on_is_one_line(host, port, says) -> None:
    with pytest.raises(UsageError) as refused:
        listening_socket(host, port)
    assert str(refused.value).startswith(says) and "\n" not in str(refused.value)


def test_the_socket_is_bound_for_uvicorn() -> None:
    port = free_port()
    with listening_socket("127.0.0.1", port) as sock:
        assert sock.getsockname() == ("127.0.0.1", port)
        sock.listen()  # as uvicorn's asyncio server does with it
        with pytest.raises(UsageError, match="the port is in use"):
            listening_socket("127.0.0.1", port)


def test_cli_bad_port_is_one_line_and_exit_2() -> None:
    result = serve("--port", "99999")
    assert result.returncode == 2
    assert result.stderr == "prover: --port 99999: not a TCP port (1-65535)\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--max-queue", "0"), "--max-queue 0: must be at least 1 (snippets accepted at once)"),
        (("--max-queue", "-3"), "--max-queue -3: must be at least 1 (snippets accepted at once)"),
        (("--max-request-mb", "0"), "--max-request-mb 0: must be above 0"),
        (("--max-request-mb", "-1.5"), "--max-request-mb -1.5: must be above 0"),
    ],
)
def test_cli_limits_out_of_range_are_one_line_and_exit_2(args, says) -> None:
    result = serve("--port", str(free_port()), *args)
    assert result.returncode == 2
    assert result.stderr == f"prover: {says}\n"


def test_cli_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve("--port", str(port))
    assert result.returncode == 2
    assert result.stderr == (
        f"prover: cannot listen on 127.0.0.1:{port}: "
        "the port is in use (another server is listening there)\n"
    )


@pytest.mark.slow
def test_cli_serve_with_a_broken_repl_says_so(tmp_path) -> None:
    """The real command: it serves at once, /health is 503, a check is 503, never a crash."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "prover", "serve", "--port", str(port), "--sandbox", "none",
         "--insecure", "--workers", "1", "--repl", shlex.join(BROKEN_REPL.argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.1)
        assert health.status_code == 503
        assert health.json()["status"] in ("starting", "degraded")
        reply = check(url, GOOD)
        assert reply.status_code == 503 and "REPL died" in reply.json()["detail"]
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert f"prover serve: listening on http://127.0.0.1:{port}" in stderr
    assert "warm-up failed" in stderr
