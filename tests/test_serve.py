"""`prover serve` and `--verifier URL`: a real HTTP server over the pool (FakeRepl double)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import httpx
import pytest

from prover.lean.extract import plan_check
from prover.lean.pool import ReplPool, VerifierConfig
from prover.lean.remote import RemoteVerifier, VerifierUnavailable
from prover.lean.verdict import CheckItem

from conftest import data_path, plain_factory, run_prover
from serving import running_server

HEADER = "import Mathlib\nopen Real\n\n"
# the corpus ships in the package (`prover selftest` runs it too)
CORPUS = Path(str(resources.files("prover.lean.canaries").joinpath("redteam.jsonl")))


def pool_factory(command, workers: int = 2, timeout: float = 10.0):
    return lambda: ReplPool(
        VerifierConfig(workers=workers, timeout=timeout), transport_factory=plain_factory(command)
    )


def test_health_and_kimina_shapes(fake_repl_script) -> None:
    with running_server(pool_factory(fake_repl_script())) as url:
        health = httpx.get(url + "/health").json()
        assert health["status"] == "ok" and health["workers"] == 2
        code = HEADER + "theorem t : (1 : ℕ) = 1 := by\n  rfl"
        reply = httpx.post(
            url + "/api/check", json={"snippets": [{"id": "a", "code": code}], "timeout": 30}
        ).json()
        (result,) = reply["results"]
        assert result["id"] == "a" and result["error"] is None
        assert result["response"] == {} and result["time"] >= 0
        older = httpx.post(
            url + "/verify", json={"codes": [{"custom_id": "b", "proof": code}], "timeout": 30}
        ).json()
        (result,) = older["results"]
        assert result["custom_id"] == "b" and result["error"] is None
        assert set(result["response"]) == {"time"}  # a clean success, as Kimina records it
        assert httpx.get(url + "/health").json()["lean_version"] == "4.24.0"
        metrics = httpx.get(url + "/metrics").text
        assert 'prover_snippets_total{outcome="ok"} 2.0' in metrics


def test_timeout_is_reported_as_kimina_does(fake_repl_script) -> None:
    command = fake_repl_script([{"match": "HANG", "sleep_s": 1000}])
    with running_server(pool_factory(command, timeout=1.5)) as url:
        code = HEADER + "theorem t : (1 : ℕ) = 1 := by\n  rfl -- HANG"
        reply = httpx.post(
            url + "/api/check",
            json={"snippets": [{"id": "a", "code": code}], "timeout": 60},
            timeout=30,
        ).json()
        assert reply["results"][0]["error"] == "Lean process timed out"
        assert reply["results"][0]["response"] is None


def corpus_items() -> list[CheckItem]:
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    return [CheckItem(r["id"], r["header"], r["formal_statement"], r["proof"]) for r in rows], rows


def corpus_rules(rows) -> list[dict]:
    rules = []
    for r in rows:
        lean = r.get("lean") or {}
        item = CheckItem(r["id"], r["header"], r["formal_statement"], r["proof"])
        rule = {"match": plan_check(item).code, "exact": True, "response": lean.get("response", {})}
        if "axioms" in lean:
            rule["axioms"] = lean["axioms"]
        if lean.get("statement_differs"):
            rule["statement_mismatch"] = True
        rules.append(rule)
    return rules


def kimina_items_and_rules() -> tuple[list[CheckItem], list[dict]]:
    import re

    from prover.lean.source import split_header

    root = data_path("kimina-recordings")
    items, rules = [], []
    for lean in sorted((root / "input").glob("*.lean")):
        answer = json.loads((root / "output" / f"{lean.stem}.json").read_text())["results"][0]
        text = lean.read_text()
        name = re.search(r"^theorem (\S+)", text, re.M).group(1)
        header, rest, _ = split_header(text)
        statement = re.search(rf"theorem {re.escape(name)}\b.*?:=\s*by", rest, re.S).group(0)
        items.append(CheckItem(name, header, statement, text))
        if answer["error"]:
            rules.append({"match": f"theorem {name} ", "sleep_s": 1000})
        else:
            response = {k: v for k, v in answer["response"].items() if k not in ("time", "env")}
            rules.append({"match": f"theorem {name} ", "response": response})
    return items, rules


def summary(verdicts) -> dict[str, tuple]:
    return {
        item.name + f"#{i}": (v.accepted, v.reason, tuple(v.axioms))
        for i, (item, v) in enumerate(verdicts)
    }


def test_remote_verdicts_equal_local_ones(fake_repl_script) -> None:
    """The red-team corpus and the Kimina recordings: same verdict whether checked on a local
    pool or through `prover serve` with `--verifier URL`."""
    red_items, rows = corpus_items()
    kimina_items, kimina_rules = kimina_items_and_rules()
    command = fake_repl_script(corpus_rules(rows) + kimina_rules)
    items = red_items + kimina_items
    local_factory = pool_factory(command, timeout=2.0)
    with local_factory() as pool:
        local = {id(item): v for item, v in pool.check_many(items)}
    with (
        running_server(pool_factory(command, timeout=2.0)) as url,
        RemoteVerifier(url, timeout=2.0, concurrency=4) as remote,
    ):
        far = {id(item): v for item, v in remote.check_many(items)}
        assert remote.lean_version == "4.24.0"
    assert len(local) == len(far) == len(items)
    differ = {
        it.name: (
            (local[id(it)].reason, local[id(it)].axioms),
            (far[id(it)].reason, far[id(it)].axioms),
        )
        for it in items
        if (local[id(it)].accepted, local[id(it)].reason, local[id(it)].axioms)
        != (far[id(it)].accepted, far[id(it)].reason, far[id(it)].axioms)
    }
    assert differ == {}
    # a statement that is not the benchmark's: the same detail on both paths
    differs = {r["id"] for r in rows if (r.get("lean") or {}).get("statement_differs")}
    for item in items:
        if item.name in differs:
            for verdict in (local[id(item)], far[id(item)]):
                assert "not the benchmark's statement" in verdict.detail, verdict
    reasons = Counter(v.reason for v in far.values())
    assert reasons["timeout"] == 4 and reasons["banned"] >= 30 and reasons["ok"] >= 80


def test_load_none_lost_and_health_stays_up(fake_repl_script) -> None:
    command = fake_repl_script([{"match": "SLOWISH", "sleep_s": 0.05}])
    code = HEADER + "theorem t : (1 : ℕ) = 1 := by\n  rfl -- SLOWISH"
    with running_server(pool_factory(command), max_queue=1000) as url:
        health_ok = []
        stop = threading.Event()

        def watch() -> None:
            with httpx.Client() as client:
                while not stop.is_set():
                    health_ok.append(client.get(url + "/health", timeout=5).status_code == 200)
                    time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()

        def one(i: int) -> tuple[int, str]:
            with httpx.Client(timeout=60) as client:
                reply = client.post(
                    url + "/api/check",
                    json={"snippets": [{"id": str(i), "code": code}], "timeout": 30},
                )
                return reply.status_code, reply.json()["results"][0]["id"]

        with ThreadPoolExecutor(20) as clients:
            answers = list(clients.map(one, range(200)))
        stop.set()
        watcher.join()
    assert sorted(int(i) for _, i in answers) == list(range(200))
    assert all(status == 200 for status, _ in answers)
    assert health_ok and all(health_ok)


def test_full_queue_answers_429_at_once(fake_repl_script) -> None:
    command = fake_repl_script([{"match": "SLOW", "sleep_s": 2.0}])
    code = HEADER + "theorem t : (1 : ℕ) = 1 := by\n  rfl -- SLOW"
    with running_server(pool_factory(command, workers=1), max_queue=2) as url:

        def one(_: int) -> tuple[int, str | None]:
            reply = httpx.post(
                url + "/api/check",
                json={"snippets": [{"id": "x", "code": code}], "timeout": 30},
                timeout=60,
            )
            return reply.status_code, reply.headers.get("retry-after")

        with ThreadPoolExecutor(5) as clients:
            answers = list(clients.map(one, range(5)))
        statuses = Counter(status for status, _ in answers)
        assert statuses[429] >= 2 and statuses[200] >= 1
        assert statuses[200] + statuses[429] == 5
        # busy now, would fit later: when to come back, in whole seconds
        waits = [wait for status, wait in answers if status == 429]
        assert all(wait is not None and wait.isdigit() and int(wait) >= 1 for wait in waits)
        # a request bigger than the whole queue can never be served: 413, not "retry later"
        many = [{"id": str(i), "code": code} for i in range(3)]
        too_big = httpx.post(url + "/api/check", json={"snippets": many})
        assert too_big.status_code == 413
        assert too_big.json()["detail"] == (
            "3 snippets; this server admits at most 2 per request: split the request"
        )


def test_api_key_and_size_limit(fake_repl_script) -> None:
    code = HEADER + "theorem t : (1 : ℕ) = 1 := by\n  rfl"
    body = {"snippets": [{"id": "a", "code": code}]}
    with running_server(
        pool_factory(fake_repl_script()), api_key="s3cret", max_request_bytes=10_000
    ) as url:
        assert httpx.post(url + "/api/check", json=body).status_code == 401
        ok = httpx.post(url + "/api/check", json=body, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert httpx.get(url + "/health").status_code == 200  # health needs no key
        big = {"snippets": [{"id": "a", "code": "x" * 20_000}]}
        assert (
            httpx.post(url + "/api/check", json=big, headers={"X-API-Key": "s3cret"}).status_code
            == 413
        )


class FlakyHandler(BaseHTTPRequestHandler):
    """A stand-in verifier that answers 429, then 500, then a timeout result."""

    calls = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        type(self).calls += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).calls <= 2:
            self.send_response(429 if type(self).calls == 1 else 500)
            self.end_headers()
            return
        data = json.dumps(
            {
                "results": [
                    {"id": "0", "time": 1.0, "error": "Lean process timed out", "response": None}
                ]
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_client_retries_429_and_5xx() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    item = CheckItem("t", HEADER, "theorem t : (1 : ℕ) = 1 := by\n", "  rfl")
    try:
        with RemoteVerifier(url, backoff_s=0.01) as remote:
            verdict = remote.check(item)
    finally:
        server.shutdown()
    assert FlakyHandler.calls == 3 and verdict.reason == "timeout"


def test_unreachable_verifier_is_one_clear_error() -> None:
    item = CheckItem("t", HEADER, "theorem t : (1 : ℕ) = 1 := by\n", "  rfl")
    with RemoteVerifier("http://127.0.0.1:9", max_attempts=2, backoff_s=0.01) as remote:
        with pytest.raises(VerifierUnavailable, match="unavailable after 2 attempts"):
            remote.check(item)
        # what never needs Lean is judged without the server
        assert (
            remote.check(CheckItem("t", HEADER, item.formal_statement, "  exact?")).reason
            == "banned"
        )


def test_cli_verifier_url_matches_local(fake_repl_script, tmp_path) -> None:
    import shlex

    command = fake_repl_script()
    rows = [
        {
            "name": f"t{i}",
            "header": HEADER,
            "proof": "  rfl" if i != 1 else "  exact?",
            "formal_statement": f"theorem t{i} : ({i} : ℕ) = {i} := by\n",
        }
        for i in range(4)
    ]
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def run(*extra: str) -> list[tuple]:
        out = tmp_path / f"out{len(extra)}.jsonl"
        result = run_prover(
            "check",
            "--jsonl",
            str(items),
            "--out",
            str(out),
            "--sandbox",
            "none",
            "--repl",
            shlex.join(command.argv),
            *extra,
        )
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        return sorted(
            (v["id"], v["name"], v["accepted"], v["reason"], tuple(v["axioms"])) for v in lines
        )

    local = run()
    with running_server(pool_factory(command)) as url:
        remote = run("--verifier", url)
    assert local == remote
    assert {r[1]: r[3] for r in local} == {"t0": "ok", "t1": "banned", "t2": "ok", "t3": "ok"}


def test_serve_refuses_no_sandbox_without_insecure(fake_repl_script) -> None:
    import shlex

    result = run_prover("serve", "--sandbox", "none", "--repl", shlex.join(fake_repl_script().argv))
    assert result.returncode == 2 and "--insecure" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_graceful_shutdown_finishes_checks_in_flight(fake_repl_script) -> None:
    import shlex
    import signal
    import subprocess
    import sys

    from serving import free_port

    command = fake_repl_script([{"match": "SLOW", "sleep_s": 2.0}])
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prover",
            "serve",
            "--port",
            str(port),
            "--sandbox",
            "none",
            "--insecure",
            "--workers",
            "1",
            "--repl",
            shlex.join(command.argv),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, server.stderr.read()
            time.sleep(0.1)
        code = HEADER + "theorem t : (1 : ℕ) = 1 := by\n  rfl -- SLOW"
        result: dict = {}
        client = threading.Thread(
            target=lambda: result.update(
                httpx.post(
                    url + "/api/check", json={"snippets": [{"id": "a", "code": code}]}, timeout=60
                ).json()
            )
        )
        client.start()
        time.sleep(0.7)  # the check is running
        server.send_signal(signal.SIGTERM)
        client.join(timeout=30)
        assert result["results"][0]["error"] is None  # it finished, and was answered
        assert server.wait(timeout=30) is not None
    finally:
        if server.poll() is None:
            server.kill()


def test_prove_endpoint(fake_repl_script) -> None:
    from prover.prompts import get_format

    from doubles.scripted_model import ScriptedModel

    bad = {"severity": "error", "pos": {"line": 2, "column": 2}, "endPos": None, "data": "no"}
    command = fake_repl_script([{"match": "-- BAD", "response": {"messages": [bad]}}])
    model = ScriptedModel({"easy": ["  simp -- BAD\n```", "  norm_num\n```"]})
    statement = "theorem easy : (2 : ℕ) + 2 = 4 := by"
    with running_server(
        pool_factory(command), prover_factory=lambda: (model, get_format("deepseek-v1.5"))
    ) as url:
        reply = httpx.post(
            url + "/prove",
            json={"header": "import Mathlib\n", "formal_statement": statement, "attempts": 2},
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        assert answer["proved"] and answer["attempts"] == 2
        assert "theorem easy : (2 : ℕ) + 2 = 4 := by\n  norm_num" in answer["proof"]
        assert answer["verdict"]["reason"] == "ok"
    with running_server(pool_factory(command)) as url:
        assert httpx.post(url + "/prove", json={"formal_statement": statement}).status_code == 503


def test_file_mode_through_the_verifier_matches_local(fake_repl_script, tmp_path) -> None:
    import shlex

    lean = tmp_path / "demo.lean"
    lean.write_text(
        "import Mathlib\n\nset_option maxHeartbeats 400000\n\nopen Real\n\n"
        "namespace Demo\n\ntheorem good : (1 : ℕ) = 1 := rfl\n\n"
        "theorem bad : (1 : ℕ) = 2 := by\n  sorry\n\nend Demo\n\nexample : True := trivial\n"
    )
    warning = {
        "severity": "warning",
        "pos": {"line": 1, "column": 8},
        "endPos": {"line": 1, "column": 11},
        "data": "declaration uses 'sorry'",
    }
    sorry = {
        "proofState": 0,
        "pos": {"line": 2, "column": 2},
        "endPos": {"line": 2, "column": 7},
        "goal": "⊢ 1 = 2",
    }
    command = fake_repl_script(
        [
            {
                "match": "theorem bad",
                "anchored": True,
                "axioms_by_name": {"bad": ["sorryAx"]},
                "response": {"messages": [warning], "sorries": [sorry]},
            }
        ]
    )

    def check(*extra: str) -> dict:
        result = run_prover(
            "check",
            str(lean),
            "--json",
            "--sandbox",
            "none",
            "--repl",
            shlex.join(command.argv),
            *extra,
        )
        assert result.returncode == 1, result.stderr
        report = json.loads(result.stdout)
        return {
            v["name"]: (v["accepted"], v["reason"], v["axioms"], v["messages"])
            for v in report["theorems"]
        }

    local = check()
    with running_server(pool_factory(command)) as url:
        remote = check("--verifier", url)
    assert remote == local
    assert local["Demo.bad"][1] == "sorry" and local["Demo.good"][1] == "ok"
    assert local["Demo.bad"][3][0]["pos"] == {"line": 11, "column": 8}  # the file's own line


def test_a_busy_verifier_paces_the_client_instead_of_failing(fake_repl_script) -> None:
    command = fake_repl_script([{"match": "SLOW", "sleep_s": 0.2}])
    items = [
        CheckItem(f"t{i}", HEADER, f"theorem t{i} : (1 : ℕ) = 1 := by\n", "  rfl -- SLOW")
        for i in range(10)
    ]
    with (
        running_server(pool_factory(command, workers=1), max_queue=2) as url,
        RemoteVerifier(url, concurrency=8, batch_size=4, backoff_s=0.05) as remote,
    ):
        verdicts = [v.reason for _, v in remote.check_many(items)]
        assert remote.batch_size == 2 and remote.workers == 1  # fitted to the server's queue
    assert verdicts == ["ok"] * 10


def test_prove_endpoint_refuses_what_it_cannot_serve(fake_repl_script) -> None:
    from prover.prompts import get_format

    from doubles.scripted_model import ScriptedModel

    model = ScriptedModel({"easy": ["  norm_num\n```"]})
    statement = "theorem easy : (2 : ℕ) + 2 = 4 := by"
    with running_server(
        pool_factory(fake_repl_script(), workers=1),
        max_queue=4,
        prover=(model, get_format("deepseek-v1.5")),
    ) as url:
        too_many = httpx.post(url + "/prove", json={"formal_statement": statement, "attempts": 5})
        assert too_many.status_code == 422 and "capacity" in too_many.text
        # a plain-text informal statement becomes a doc comment, not Lean code
        reply = httpx.post(
            url + "/prove",
            json={"formal_statement": statement, "attempts": 1, "informal_prefix": "two plus two"},
        )
        assert reply.status_code == 200 and reply.json()["proved"], reply.text
        assert "/-- two plus two -/\ntheorem easy" in reply.json()["proof"]
        chunked = httpx.post(url + "/api/check", content=iter([b'{"snippets": []}']))
        assert chunked.status_code == 411
