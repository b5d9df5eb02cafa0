"""`--verifier URL`: checks sent to a Kimina-compatible server instead of a local pool.

The server may be another `prover serve` or a Kimina Lean Server fleet (`POST /api/check`).
What Lean never needs to see (no proof, banned constructs) is decided here, as locally; the
rest travels as one snippet per proof (see `snippet.py`) and is judged here by the same rungs.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from prover.errors import MachineryFailure, UsageError
from prover.lean.extract import plan_check
from prover.lean.input_check import invalid_input_verdict, item_problem
from prover.lean.machinery import CircuitBreaker, canary_item
from prover.lean.snippet import judge_remote, remote_snippet, replay_hint
from prover.lean.verdict import CheckItem, Verdict

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# What Lean says when imports fail. A model cannot write `import`, but it can make an error say
# anything (`fail "..."`): such an answer only triggers a canary check, it is never trusted.
_IMPORT_FAILURE = re.compile(
    r"unknown module prefix|unknown package|object file .* does not exist|"
    r"No directory .* in the search path|could not resolve import",
    re.IGNORECASE,
)


class VerifierUnavailable(MachineryFailure):
    """The verifier server cannot be reached or keeps refusing; one line says which."""


class RemoteVerifier:
    """The `ReplPool` interface (`check`, `check_many`, `lean_version`) over HTTP."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 300.0,
        allow_native: bool = False,
        api_key: str | None = None,
        concurrency: int = 8,
        batch_size: int = 4,
        max_attempts: int = 3,
        backoff_s: float = 0.5,
        max_wait_s: float = 3600.0,
        text_scan: bool = True,
    ) -> None:
        import httpx  # the HTTP client is only needed here

        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise UsageError(f"--verifier {url!r}: not a URL ({exc})") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise UsageError(
                f"--verifier {url!r}: not an http(s) URL with a host (e.g. http://localhost:8000)"
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.allow_native = allow_native
        self.workers = concurrency
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.text_scan = text_scan  # False: banned code goes to the server too (selftest)
        self._fitted = False
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # the server's own deadline plus room for queueing and the network
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout * 2 + 60))
        self._httpx = httpx
        self._lean_version: str | None = None
        self._version_asked = False
        self._lock = threading.Lock()
        # timeouts of the last 20 snippets: a server whose REPLs all hang is asked a canary
        self._timeouts = CircuitBreaker()

    @property
    def lean_version(self) -> str | None:
        with self._lock:
            if not self._version_asked:
                try:
                    reply = self._client.get(self.url + "/health", timeout=10)
                    self._lean_version = reply.json().get("lean_version")
                    # a server still starting (503) may not know yet: ask again next time
                    self._version_asked = reply.status_code == 200 or bool(self._lean_version)
                except (self._httpx.HTTPError, ValueError, AttributeError):
                    self._version_asked = True
                    self._lean_version = None  # a Kimina server does not say
        return self._lean_version

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST with retries: 5xx and connection errors up to `max_attempts` times; 429 (a busy
        but healthy server) for as long as `max_wait_s`, as backpressure (exponential backoff
        capped at 5 s, `Retry-After` honoured)."""
        last = ""
        failures = 0
        waited_since = time.monotonic()
        delay = self.backoff_s
        while True:
            try:
                reply = self._client.post(self.url + path, json=payload)
            except (self._httpx.UnsupportedProtocol, self._httpx.InvalidURL) as exc:
                raise VerifierUnavailable(f"verifier {self.url}: {exc}") from None  # never heals
            except self._httpx.TransportError as exc:
                reply, last = None, f"{type(exc).__name__}: {exc}"
            if reply is not None and reply.status_code == 200:
                try:
                    return reply.json()
                except ValueError:
                    raise VerifierUnavailable(f"verifier {self.url} answered non-JSON") from None
            if reply is not None and reply.status_code not in RETRY_STATUSES:
                raise VerifierUnavailable(
                    f"verifier {self.url} answered HTTP {reply.status_code}: {reply.text[:200]}"
                )
            if reply is not None and reply.status_code == 429:
                last = "HTTP 429"
                if time.monotonic() - waited_since > self.max_wait_s:
                    raise VerifierUnavailable(
                        f"verifier {self.url} stayed busy (HTTP 429) for {self.max_wait_s:g} s"
                    )
                pause = _retry_after(reply) or min(delay, 5.0)
            else:
                if reply is not None:
                    last = f"HTTP {reply.status_code}"
                failures += 1
                if failures >= self.max_attempts:
                    raise VerifierUnavailable(
                        f"verifier {self.url} unavailable after {self.max_attempts} attempts "
                        f"({last})"
                    )
                pause = min(delay, 30.0)
            time.sleep(pause)
            delay *= 2

    def _fit_to_server(self) -> None:
        """Never keep more snippets in flight than the server admits (its /health says)."""
        with self._lock:
            if self._fitted:
                return
            self._fitted = True
        try:
            capacity = int(self._client.get(self.url + "/health", timeout=10).json()["capacity"])
        except (self._httpx.HTTPError, ValueError, KeyError, TypeError):
            return  # a Kimina server does not say: 429s then pace us
        self.batch_size = max(1, min(self.batch_size, capacity))
        self.workers = max(1, min(self.workers, capacity // self.batch_size))

    def _check_batch(self, items: list[CheckItem]) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(items)
        for i, item in enumerate(items):
            problem = item_problem(item)  # text that cannot travel (no UTF-8 form, a NUL)
            if problem is not None:
                verdicts[i] = invalid_input_verdict(item.name, problem)
        plans = [None if v else plan_check(item) for item, v in zip(items, verdicts, strict=True)]
        snippets = []
        for i, (item, plan) in enumerate(zip(items, plans, strict=True)):
            if plan is None:
                continue
            if plan.no_proof:
                verdicts[i] = Verdict(
                    item.name, False, "no_proof", detail="nothing to check in the proof text"
                )
            elif plan.banned and self.text_scan:
                verdicts[i] = Verdict(
                    item.name,
                    False,
                    "banned",
                    detail=plan.banned,
                    statement_rewritten=plan.statement_rewritten,
                )
            else:
                snippets.append(
                    replay_hint(item, plan, {"id": str(i), "code": remote_snippet(item, plan)})
                )
        if snippets:
            answer = self._post(
                "/api/check",
                {"snippets": snippets, "timeout": math.ceil(self.timeout), "reuse": True},
            )
            self._judge_answer(answer, snippets, items, plans, verdicts)
            suspect = [s for s in snippets if _suspect(verdicts[int(s["id"])])]
            if suspect:
                self._recheck_crashed(suspect, items, plans, verdicts)
            self._watch_timeouts(snippets, items, verdicts)
        return [v for v in verdicts if v is not None]

    def _watch_timeouts(
        self,
        snippets: list[dict[str, Any]],
        items: list[CheckItem],
        verdicts: list[Verdict | None],
    ) -> None:
        """When 80% of the last 20 snippets timed out, a canary must pass (its header is the
        last timed-out item's): a server whose REPLs all hang is machinery, not 20 bad proofs."""
        timed_out = None
        for snippet in snippets:
            verdict = verdicts[int(snippet["id"])]
            is_timeout = verdict is not None and verdict.reason == "timeout"
            self._timeouts.record(is_timeout, "timeout")
            if is_timeout:
                timed_out = items[int(snippet["id"])]
        try:
            self._timeouts.check()
        except MachineryFailure:
            header = timed_out.header if timed_out is not None else items[0].header
            self._timeouts = CircuitBreaker()  # the canary decides; the window starts over
            self._canary(header, "most snippets timed out")

    def _judge_answer(
        self,
        answer: dict[str, Any],
        snippets: list[dict[str, Any]],
        items: list[CheckItem],
        plans: list[Any],
        verdicts: list[Verdict | None],
    ) -> None:
        results = {str(r.get("id")): r for r in answer.get("results", [])}
        for snippet in snippets:
            i = int(snippet["id"])
            result = results.get(snippet["id"], {"error": "no result for this snippet"})
            plan = plans[i]
            assert plan is not None
            verdicts[i] = judge_remote(items[i], plan, result, allow_native=self.allow_native)

    def _canary(self, header: str, why: str) -> None:
        """VerifierUnavailable unless a known-good check is accepted by the server."""
        canary = canary_item(header)
        plan = plan_check(canary)
        payload = replay_hint(canary, plan, {"id": "canary", "code": remote_snippet(canary, plan)})
        answer = self._post(
            "/api/check",
            {"snippets": [payload], "timeout": math.ceil(self.timeout), "reuse": False},
        )
        result = next(iter(answer.get("results") or []), {"error": "no result for the canary"})
        verdict = judge_remote(canary, plan, result, allow_native=self.allow_native)
        if not verdict.accepted:
            raise VerifierUnavailable(
                f"verifier {self.url}: {why}, and a known-good check failed too "
                f"({verdict.reason}: {verdict.detail or 'no detail'})"
            )

    def _recheck_crashed(
        self,
        crashed: list[dict[str, Any]],
        items: list[CheckItem],
        plans: list[Any],
        verdicts: list[Verdict | None],
    ) -> None:
        """As the local pool does: snippets whose REPL crashed are sent once more beside a
        known-good canary per header; a second crash is the proof's own verdict, a canary
        that fails means the server is broken (MachineryFailure, never a verdict)."""
        canaries: dict[str, tuple[CheckItem, Any, dict[str, Any]]] = {}
        for snippet in crashed:
            header = items[int(snippet["id"])].header
            if header not in canaries:
                canary = canary_item(header)
                plan = plan_check(canary)
                sid = f"canary-{len(canaries)}"
                code = remote_snippet(canary, plan)
                payload = replay_hint(canary, plan, {"id": sid, "code": code})
                canaries[header] = (canary, plan, payload)
        answer = self._post(
            "/api/check",
            {
                "snippets": [c[2] for c in canaries.values()] + crashed,
                "timeout": math.ceil(self.timeout),
                "reuse": False,
            },
        )
        results = {str(r.get("id")): r for r in answer.get("results", [])}
        for canary, plan, payload in canaries.values():
            result = results.get(payload["id"], {"error": "no result for the canary"})
            verdict = judge_remote(canary, plan, result, allow_native=self.allow_native)
            if not verdict.accepted:
                raise VerifierUnavailable(
                    f"verifier {self.url}: a check's REPL crashed, and then a known-good check "
                    f"failed too ({verdict.reason}: {verdict.detail or 'no detail'})"
                )
        self._judge_answer(answer, crashed, items, plans, verdicts)
        for snippet in crashed:
            verdict = verdicts[int(snippet["id"])]
            if verdict is not None and verdict.reason == "crash":
                verdict.detail += " (it failed again, after a known-good check passed)"

    def run_snippet(self, code: str) -> dict[str, Any]:
        """One raw snippet (a whole Lean file); the server's result `{"time", "error",
        "response"}` for it."""
        answer = self._post(
            "/api/check",
            {"snippets": [{"id": "0", "code": code}], "timeout": math.ceil(self.timeout)},
        )
        results = answer.get("results") or [{"error": "no result for the snippet"}]
        return results[0]

    def check(self, item: CheckItem) -> Verdict:
        return self._check_batch([item])[0]

    def check_many(self, items: Iterable[CheckItem]) -> Iterator[tuple[CheckItem, Verdict]]:
        """Batches of `batch_size` snippets, `concurrency` requests in flight; verdicts are
        yielded as their batch returns."""
        self._fit_to_server()
        source = iter(items)
        in_flight: dict[Future[list[Verdict]], list[CheckItem]] = {}
        with ThreadPoolExecutor(self.workers, thread_name_prefix="verifier") as executor:
            exhausted = False
            while in_flight or not exhausted:
                while not exhausted and len(in_flight) < self.workers:
                    batch = [it for _, it in zip(range(self.batch_size), source, strict=False)]
                    if not batch:
                        exhausted = True
                        break
                    in_flight[executor.submit(self._check_batch, batch)] = batch
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    batch = in_flight.pop(future)
                    yield from zip(batch, future.result(), strict=True)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _suspect(verdict: Verdict | None) -> bool:
    """A verdict that a broken server would give every proof: a crash, or an error that reads
    like failed imports (then the header, not the proof, failed)."""
    if verdict is None:
        return False
    if verdict.reason == "crash":
        return True
    if verdict.reason != "error":
        return False
    errors = [m.get("data", "") for m in verdict.messages if m.get("severity") == "error"]
    return any(_IMPORT_FAILURE.search(str(e)) for e in errors) or bool(
        _IMPORT_FAILURE.search(verdict.detail)
    )


def _retry_after(reply: Any) -> float | None:
    try:
        return min(float(reply.headers.get("retry-after", "")), 60.0)
    except ValueError:
        return None
