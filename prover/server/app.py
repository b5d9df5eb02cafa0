"""A Kimina-compatible verification server over a `ReplPool`.

`POST /api/check` (Kimina Lean Server's current shape) and `POST /verify` (its older one) run
each snippet as Lean would a file: its leading header lines elaborated once per REPL process,
the rest as one command; they answer the REPL's raw output, and the client judges (as
`--verifier URL` does). Admission is bounded: a request whose snippets do not fit in the queue
gets 429 (with `Retry-After`) at once, one that could never fit 413, so the server never
accepts work it cannot finish. When the machinery fails (a REPL or header that cannot start),
the whole request gets 503: never a per-snippet result a client would score as a bad proof.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, Field, model_validator

from prover.errors import MachineryFailure
from prover.lean.commands import REFERENCE_PREFIX
from prover.lean.input_check import text_problem, unencodable_at
from prover.lean.pool import ReplPool
from prover.lean.repl import HeaderFailure, LeanRepl, ReplFailure
from prover.lean.replay import (
    ReplayFailed,
    ReplayPlan,
    ReplayUnsupported,
    pickle_env,
)
from prover.lean.snippet import KIMINA_TIMEOUT
from prover.lean.source import split_header
from prover.server.health import MachineryHealth
from prover.server.warmup import WARM_RETRY_MAX_S, WARM_RETRY_S, WarmUp


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes: a lone surrogate (a client's `id`, echoed back, or its text
    quoted in a validation error) is written as a `\\ud800` escape instead of failing with 500."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        if unencodable_at(text) is not None:
            text = json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")


INVALID_INPUT = "invalid_input"
MACHINERY_RETRY_AFTER_S = 10  # the Retry-After of a 503: a REPL restart takes seconds


class ReplayHint(BaseModel):
    """Sent by `prover`'s RemoteVerifier beside a check's snippet (a Kimina server ignores
    it): which theorem the snippet proves, of which benchmark statement, so that this server
    can judge it again after the kernel replay (replay.py)."""

    statement: str
    theorem: str

    def plan(self, header: str) -> ReplayPlan:
        return ReplayPlan(header, (self.theorem,), self.statement)


class ReferenceReplayHint(BaseModel):
    """The hint for a check with a context, whose statement cannot be elaborated again after
    replay (replay.py): the theorem, and the reference axiom the snippet itself declares
    before the model's code, to check it against there. A field of its own, so that a server
    older than it ignores it (and says `replayed: false`) instead of refusing the request."""

    theorem: str
    reference: str = Field(pattern=f"^{REFERENCE_PREFIX}[0-9a-f]{{16}}$")

    def plan(self, header: str) -> ReplayPlan:
        return ReplayPlan(header, (self.theorem,), reference=self.reference)


class Snippet(BaseModel):
    id: str
    code: str
    replay: ReplayHint | None = None
    replay_reference: ReferenceReplayHint | None = None

    @model_validator(mode="after")
    def _one_hint(self) -> Snippet:
        if self.replay is not None and self.replay_reference is not None:
            raise ValueError("a snippet carries `replay` or `replay_reference`, not both")
        return self

    @property
    def hint(self) -> ReplayHint | ReferenceReplayHint | None:
        return self.replay or self.replay_reference


class CheckRequest(BaseModel):
    snippets: list[Snippet]
    timeout: float = Field(default=60, gt=0)
    reuse: bool = True
    debug: bool = False


class VerifyCode(BaseModel):
    custom_id: str
    proof: str


class VerifyRequest(BaseModel):
    codes: list[VerifyCode]
    timeout: float = Field(default=60, gt=0)


class ProveRequest(BaseModel):
    header: str = "import Mathlib\n"
    formal_statement: str  # `theorem NAME ... := by`
    informal_prefix: str = ""
    attempts: int = Field(default=8, ge=1, le=256)
    rounds: int = Field(default=1, ge=1, le=16)
    temperature: float = Field(default=1.0, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_new_tokens: int = Field(default=2048, ge=1)
    seed: int | None = None


class Admission:
    """Counts snippets accepted and not finished; refuses what would exceed `capacity`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_flight = 0
        self._lock = threading.Lock()

    def try_take(self, n: int) -> bool:
        with self._lock:
            if self.in_flight + n > self.capacity:
                return False
            self.in_flight += n
            return True

    def give_back(self, n: int) -> None:
        with self._lock:
            self.in_flight -= n


def retry_after_s(excess: int, workers: int, mean_snippet_s: float) -> int:
    """Seconds until `excess` snippets in flight have likely finished on `workers` processes
    (the Retry-After of a 429): at least 1, at most 60."""
    return max(1, min(60, math.ceil(excess * mean_snippet_s / max(1, workers))))


@contextlib.contextmanager
def snippet_repl(pool: ReplPool, header: str) -> Iterator[LeanRepl]:
    """`pool.repl_for(header)`, with failures sorted by whose they are.

    Everything before the snippet's body is sent is the machinery's: a process that does not
    start, or dies or times out elaborating the header (`ReplFailure` from `repl_for`; the
    pool's own `MachineryFailure` passes through) becomes `MachineryFailure`, and the request
    503. Except `HeaderFailure`: Lean *answered* the header, with errors, and the header is
    the client's text, so it stays the snippet's result (its messages, as Kimina answers).
    A failure after the body was sent (`ReplFailure` from the body's command) is the
    snippet's: `crash`, `timeout`, `memory`."""
    with contextlib.ExitStack() as stack:
        try:
            repl = stack.enter_context(pool.repl_for(header))
        except ReplFailure as exc:
            raise MachineryFailure(f"cannot start a REPL for the snippet's header: {exc}") from None
        yield repl


def run_snippet(
    pool: ReplPool,
    code: str,
    timeout: float,
    hint: ReplayHint | ReferenceReplayHint | None = None,
) -> dict[str, Any]:
    """One snippet on the pool: `{"time", "error", "response"}` as Kimina answers, and
    `"replayed"`: whether the kernel replay rung ran and passed (only with a `hint`, on a pool
    that replays). A failed replay says why in `"replay_error"` and adds an error message to
    the response, so that a client which knows nothing of replay rejects it too."""
    start = time.monotonic()
    header, body, _ = split_header(code)
    result: dict[str, Any] = {"error": None, "response": None, "replayed": False}
    pickled: bytes | None = None
    deadline = float("inf")
    try:
        with snippet_repl(pool, header) as repl:
            timeout = min(timeout, pool.config.timeout)
            deadline = time.monotonic() + timeout
            answer = repl.command(body, env=repl.header_env, timeout=timeout)
            repl.checks_done += 1
            replayable = answer.env is not None and not answer.errors
            if hint is not None and pool.replays_on(repl) and replayable:
                pool.require_replay_support()
                left = max(0.001, deadline - time.monotonic())
                pickled = pickle_env(repl, answer.env, left)  # type: ignore[arg-type]
        result["response"] = {k: v for k, v in answer.raw.items() if k != "env"}
        if pickled is not None and hint is not None:
            try:
                axioms = pool.replay(pickled, hint.plan(header), deadline)[hint.theorem]
            except ReplFailure as exc:
                # `replay()` turns every failure of the replay itself into ReplayFailed: what
                # is left is a replay process that could not start (replay.Replayers.borrow)
                raise MachineryFailure(f"cannot start a replay process: {exc}") from None
            result["replayed"] = True
            result["replay_axioms"] = sorted(axioms)
    except HeaderFailure as exc:
        result["response"] = {k: v for k, v in exc.response.raw.items() if k != "env"}
    except ReplFailure as exc:
        result["error"] = (
            KIMINA_TIMEOUT if exc.reason == "timeout" else f"{exc.reason}: {exc.detail}"
        )
    except ReplayUnsupported as exc:
        result["error"] = str(exc)
    except ReplayFailed as exc:
        if exc.reason == "timeout":
            result["error"] = KIMINA_TIMEOUT
        elif exc.crashed:  # a process died: the client re-checks it beside a canary
            result["error"] = f"crash in the kernel replay: {exc.detail}"
        else:
            result["replay_error"] = f"{exc.reason}: {exc.detail}"
            if isinstance(result["response"], dict):
                failed = {"severity": "error", "pos": None, "endPos": None}
                failed["data"] = f"kernel replay failed: {exc.detail}"
                messages = [*result["response"].get("messages", []), failed]
                result["response"] = {**result["response"], "messages": messages}
    result["time"] = round(time.monotonic() - start, 4)
    return result


class MachineryWitness:
    """The pool as `prove_text` sees it, remembering a `MachineryFailure` it raised:
    `prove_text` keeps only the text of the error it stopped on."""

    def __init__(self, pool: ReplPool) -> None:
        self.pool = pool
        self.failure: MachineryFailure | None = None

    def check_many(self, items: Any) -> Iterator[Any]:
        try:
            yield from self.pool.check_many(items)
        except MachineryFailure as exc:
            self.failure = exc
            raise


def create_app(
    pool_factory: Callable[[], ReplPool],
    *,
    prover: tuple[Any, Any] | None = None,  # (model backend, prompt format), loaded already
    prover_factory: Callable[[], tuple[Any, Any]] | None = None,
    api_key: str | None = None,
    max_queue: int | None = None,
    max_request_bytes: int = 8 * 1024 * 1024,
    warm_header: str = "",
    warm_retry_s: float = WARM_RETRY_S,
    warm_retry_max_s: float = WARM_RETRY_MAX_S,
) -> FastAPI:
    """The app over the pool `pool_factory` makes at start. `warm_header` (empty: none) is
    elaborated in every worker in the background at start; `/health` says "starting" until
    then (health.py has the rule)."""
    registry = CollectorRegistry()
    requests_total = Counter(
        "prover_requests",
        "HTTP requests by endpoint and status",
        ["endpoint", "status"],
        registry=registry,
    )
    snippets_total = Counter(
        "prover_snippets", "Snippets run, by outcome", ["outcome"], registry=registry
    )
    snippet_seconds = Histogram(
        "prover_snippet_seconds",
        "Time per snippet",
        registry=registry,
        buckets=(0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
    )
    in_flight = Gauge("prover_in_flight", "Snippets accepted, not finished", registry=registry)
    state: dict[str, Any] = {"mean_snippet_s": 1.0}  # an estimate until snippets have run

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = pool_factory()
        state["pool"] = pool
        state["admission"] = Admission(max_queue or pool.workers * 8)
        state["executor"] = ThreadPoolExecutor(pool.workers, thread_name_prefix="serve")
        state["prover"] = prover or (prover_factory() if prover_factory else None)
        state["model_lock"] = threading.Lock()  # one model, one generation at a time
        health = state["health"] = MachineryHealth(warm=not warm_header.strip())
        warm_up = None
        if warm_header.strip():  # with no warm-up, only a check that succeeds recovers
            warm_up = WarmUp(
                pool, warm_header, health, retry_s=warm_retry_s, retry_max_s=warm_retry_max_s
            )
            warm_up.start()
        try:
            yield
        finally:
            if warm_up is not None:
                warm_up.stop()
            if state["prover"] is not None:
                state["prover"][0].close()
            # uvicorn has already let the requests in flight finish (graceful shutdown)
            state["executor"].shutdown(wait=True)
            pool.close()

    # Bodies FastAPI cannot parse (JSON nested past Python's recursion limit included) are
    # its 400; bodies of the wrong shape its 422; text that cannot reach Lean (a lone
    # surrogate, a NUL) a per-snippet `invalid_input` error: never a 500, never a dead REPL.
    app = FastAPI(
        title="prover verifier", lifespan=lifespan, default_response_class=SafeJSONResponse
    )

    @app.exception_handler(MachineryFailure)
    async def machinery_failed(request: Request, exc: MachineryFailure) -> Response:
        # the whole request: a client must not score a broken server as a bad proof
        return SafeJSONResponse(
            {"detail": exc.cause},
            status_code=503,
            headers={"Retry-After": str(MACHINERY_RETRY_AFTER_S)},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> Response:
        return SafeJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[..., Any]) -> Response:
        endpoint = request.url.path
        if api_key and endpoint not in ("/health", "/metrics"):
            given = (
                request.headers.get("x-api-key")
                or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            )
            if not hmac.compare_digest(given.encode(), api_key.encode()):
                requests_total.labels(endpoint, "401").inc()
                return JSONResponse({"detail": "missing or wrong API key"}, status_code=401)
        length = request.headers.get("content-length")
        if length is not None and not length.isdigit():
            requests_total.labels(endpoint, "400").inc()
            return JSONResponse({"detail": "bad Content-Length"}, status_code=400)
        if request.method == "POST" and length is None:
            # no declared size (chunked): refuse rather than read an unbounded body
            requests_total.labels(endpoint, "411").inc()
            return JSONResponse({"detail": "Content-Length required"}, status_code=411)
        if length is not None and int(length) > max_request_bytes:
            requests_total.labels(endpoint, "413").inc()
            return JSONResponse({"detail": "request too large"}, status_code=413)
        response = await call_next(request)
        requests_total.labels(endpoint, str(response.status_code)).inc()
        return response

    async def run_all(
        codes: list[str],
        timeout: float,
        hints: list[ReplayHint | ReferenceReplayHint | None] | None = None,
    ) -> list[dict[str, Any]]:
        admission: Admission = state["admission"]
        health: MachineryHealth = state["health"]
        pool: ReplPool = state["pool"]
        take(len(codes))
        in_flight.inc(len(codes))
        loop = asyncio.get_running_loop()
        failed: list[MachineryFailure] = []  # the request's first machinery failure: it is 503
        failed_lock = threading.Lock()

        def one(code: str, hint: ReplayHint | ReferenceReplayHint | None) -> dict[str, Any]:
            problem = text_problem("code", code)
            try:
                if failed:  # not started: the request is answered 503 already
                    raise MachineryFailure(failed[0].cause)
                if problem is not None:  # decided here: the REPL could not even be sent it
                    result = {"error": f"{INVALID_INPUT}: {problem}", "response": None, "time": 0}
                else:
                    result = run_snippet(pool, code, timeout, hint)
                    health.success()  # it reached Lean, whatever Lean answered
                    mean = state["mean_snippet_s"]
                    state["mean_snippet_s"] = 0.9 * mean + 0.1 * result["time"]
            except MachineryFailure as exc:
                with failed_lock:
                    first = not failed
                    if first:
                        failed.append(exc)
                if first:
                    health.failure(exc.cause)
                    snippets_total.labels("machinery").inc()
                raise
            finally:
                admission.give_back(1)
                in_flight.dec()
            outcome = (
                "ok"
                if result["error"] is None
                else "timeout"
                if result["error"] == KIMINA_TIMEOUT
                else INVALID_INPUT
                if problem is not None
                else "failed"
            )
            snippets_total.labels(outcome).inc()
            snippet_seconds.observe(result["time"])
            return result

        paired = zip(codes, hints or [None] * len(codes), strict=True)
        futures = [loop.run_in_executor(state["executor"], one, c, h) for c, h in paired]
        if not futures:
            return []
        # answered at the first machinery failure; the snippets still running finish on
        # their own (their failures are retrieved, so nothing is logged as unhandled)
        done, pending = await asyncio.wait(futures, return_when=asyncio.FIRST_EXCEPTION)
        for future in pending:
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
        if failed:
            raise MachineryFailure(failed[0].cause)
        for future in done:
            error = future.exception()
            if error is not None:  # an unexpected error: its 500
                raise error
        return [future.result() for future in futures]

    def take(n: int) -> None:
        """Admit `n` snippets, or refuse: 413 if they can never fit, 429 if not now."""
        admission: Admission = state["admission"]
        if n > admission.capacity:
            raise HTTPException(
                413,
                f"{n} snippets; this server admits at most {admission.capacity} per request: "
                "split the request",
            )
        if not admission.try_take(n):
            excess = admission.in_flight + n - admission.capacity
            wait_s = retry_after_s(excess, state["pool"].workers, state["mean_snippet_s"])
            raise HTTPException(
                429, "verifier queue full, retry later", headers={"Retry-After": str(wait_s)}
            )

    @app.post("/api/check")
    async def api_check(body: CheckRequest) -> dict[str, Any]:
        snippets = body.snippets
        results = await run_all(
            [s.code for s in snippets], body.timeout, [s.hint for s in snippets]
        )
        return {"results": [{"id": s.id, **r} for s, r in zip(body.snippets, results, strict=True)]}

    @app.post("/verify")
    async def verify(body: VerifyRequest) -> dict[str, Any]:
        results = await run_all([c.proof for c in body.codes], body.timeout)
        out = []
        for code, r in zip(body.codes, results, strict=True):
            response = None if r["response"] is None else {**r["response"], "time": r["time"]}
            out.append({"custom_id": code.custom_id, "error": r["error"], "response": response})
        return {"results": out}

    @app.post("/prove")
    async def prove(body: ProveRequest) -> dict[str, Any]:
        """A statement in; the first proof Lean accepted (or the best failed verdict) out."""
        from prover.models.base import SamplingParams
        from prover.prove.loop import prove_text

        if state["prover"] is None:
            raise HTTPException(503, "no model loaded: start `prover serve` with --model")
        for field in ("header", "formal_statement", "informal_prefix"):
            problem = text_problem(field, getattr(body, field))
            if problem is not None:
                raise HTTPException(422, f"{INVALID_INPUT}: {problem}")
        admission: Admission = state["admission"]
        if body.attempts > admission.capacity:
            raise HTTPException(422, f"attempts over the server's capacity ({admission.capacity})")
        take(body.attempts)
        backend, prompt_format = state["prover"]
        prefix = body.informal_prefix.strip()
        if prefix and not prefix.startswith(("/-", "--")):
            prefix = f"/-- {prefix} -/"  # plain text: a doc comment, not Lean code
        text = (
            body.header.rstrip("\n")
            + "\n\n"
            + (prefix + "\n" if prefix else "")
            + body.formal_statement.rstrip()
            + "\n  sorry\n"
        )
        params = SamplingParams(
            body.attempts, body.temperature, body.top_p, body.max_new_tokens, body.seed
        )

        witness = MachineryWitness(state["pool"])

        def run() -> Any:
            with state["model_lock"]:
                return prove_text(
                    text,
                    backend=backend,
                    prompt_format=prompt_format,
                    verifier=witness,
                    attempts=body.attempts,
                    rounds=body.rounds,
                    params=params,
                    feedback=True,
                )

        try:
            report = await asyncio.get_running_loop().run_in_executor(None, run)
        finally:
            admission.give_back(body.attempts)
        if not report.results:
            raise HTTPException(422, "formal_statement declares no theorem ending in `:= by`")
        result = report.results[0]
        if report.error and witness.failure is not None:
            state["health"].failure(witness.failure.cause)
            raise MachineryFailure(witness.failure.cause)
        if report.error:
            raise HTTPException(502, f"the model failed: {report.error}")
        return {
            "proved": result.proved,
            "proof": report.text if result.proved else None,
            "attempts": result.attempts,
            "rounds": result.rounds,
            "time_s": result.time_s,
            "verdict": result.verdict.to_json() if result.verdict else None,
        }

    @app.get("/health")
    async def health() -> Response:
        """200 `{"status": "ok", ...}`; 503 with "starting" or "degraded" and a one-line
        `detail` (health.py has the rule). Every field is there whatever the status: clients
        read `capacity` and `lean_version` from it."""
        pool: ReplPool = state["pool"]
        admission: Admission = state["admission"]
        status, detail = state["health"].status()
        body: dict[str, Any] = {
            "status": status,
            "lean_version": pool.lean_version,
            "workers": pool.workers,
            "in_flight": admission.in_flight,
            "capacity": admission.capacity,
        }
        if detail is not None:
            body["detail"] = detail
        return SafeJSONResponse(body, status_code=200 if status == "ok" else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    return app
