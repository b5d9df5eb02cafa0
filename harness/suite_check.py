"""Does every statement of a suite elaborate here? (`prover suite check`)

Run before anyone spends GPU hours: a Mathlib lemma renamed since the suite was written, or
another Lean version, shows up as statements that no longer elaborate. Each statement is sent as
`formal_statement sorry` in its header's environment (the header elaborated once per REPL
process, as the pool does for proofs). A statement elaborates when Lean reports no error: the
`declaration uses 'sorry'` warning is expected, other warnings are kept but do not fail it.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

from harness.suites import Problem, Suite
from prover.lean.pool import ReplPool
from prover.lean.protocol import CommandResponse, ProtocolError, parse_response
from prover.lean.remote import RemoteVerifier
from prover.lean.repl import HeaderFailure, ReplFailure
from prover.lean.snippet import KIMINA_TIMEOUT

Status = Literal["ok", "error", "timeout", "memory", "crash"]
FAILURES: tuple[Status, ...] = ("error", "timeout", "memory", "crash")

# Both quote styles: backticks from Lean v4.28 on.
_SORRY_WARNING = re.compile(r"declaration uses ['`]sorry['`]")


@dataclass
class StatementResult:
    name: str
    status: Status
    detail: str = ""  # one line: Lean's first error, or what happened to the process
    warnings: list[str] = field(default_factory=list)  # warnings besides the sorry one
    time_s: float = 0.0

    @property
    def elaborates(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SuiteCheckReport:
    suite: Suite
    results: list[StatementResult]  # in the suite's order
    checker_lean_version: str | None = None

    @property
    def failures(self) -> list[StatementResult]:
        return [r for r in self.results if not r.elaborates]

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.status for r in self.results)

    def summary(self) -> str:
        """`NAME: N statements: A elaborate, B fail (E error, T timeout)`."""
        counts = self.counts
        line = (
            f"{self.suite.name}: {len(self.results)} statements: {counts['ok']} elaborate, "
            f"{len(self.failures)} fail"
        )
        parts = [f"{counts[s]} {s}" for s in FAILURES if counts[s]]
        return line + (f" ({', '.join(parts)})" if parts else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite.name,
            "suite_lean_version": self.suite.lean_version,
            "checker_lean_version": self.checker_lean_version,
            "total": len(self.results),
            "elaborate": self.counts["ok"],
            "fail": len(self.failures),
            "by_status": {s: self.counts[s] for s in ("ok", *FAILURES)},
            "results": [r.to_json() for r in self.results],
        }


def one_line(text: str) -> str:
    return " ".join(text.split())


def statement_command(problem: Problem) -> str:
    """The statement closed by `sorry`, after the declarations it needs (a `.lean` file's)."""
    context = problem.extra.get("context")
    prefix = context if isinstance(context, str) else ""
    return prefix + problem.formal_statement.rstrip() + " sorry"


def judge(name: str, response: CommandResponse, *, time_s: float = 0.0) -> StatementResult:
    """`ok` unless Lean reported an error; the first error, on one line, says why."""
    if response.errors:
        detail = one_line(response.errors[0].data) or "error (no message)"
        return StatementResult(name, "error", detail, time_s=time_s)
    warnings = [
        one_line(m.data)
        for m in response.messages
        if m.severity == "warning" and not _SORRY_WARNING.search(m.data)
    ]
    return StatementResult(name, "ok", warnings=warnings, time_s=time_s)


def _process_failure(name: str, reason: str, detail: str) -> StatementResult:
    status = reason if reason in FAILURES else "crash"
    return StatementResult(name, cast(Status, status), one_line(detail))


def check_local(pool: ReplPool, problem: Problem) -> StatementResult:
    try:
        with pool.repl_for(problem.header) as repl:
            start = time.monotonic()
            response = repl.command(
                statement_command(problem), env=repl.header_env, timeout=pool.config.timeout
            )
            repl.checks_done += 1  # counts towards recycling, as a proof check does
    except HeaderFailure as exc:  # every statement under this header fails the same way
        return StatementResult(problem.name, "error", one_line(str(exc)))
    except ReplFailure as exc:
        return _process_failure(problem.name, exc.reason, exc.detail)
    result = judge(problem.name, response, time_s=round(time.monotonic() - start, 4))
    if result.elaborates and response.env is None:  # Lean gave no environment to build on
        return StatementResult(problem.name, "error", "no environment", time_s=result.time_s)
    return result


def remote_code(problem: Problem) -> str:
    """A whole file for the server: header lines first (it elaborates them once per process)."""
    header = problem.header
    if header and not header.endswith("\n"):
        header += "\n"
    return header + statement_command(problem)


def check_remote(verifier: RemoteVerifier, problem: Problem) -> StatementResult:
    result = verifier.run_snippet(remote_code(problem))
    time_s = float(result.get("time") or 0.0)
    error = result.get("error")
    if error:
        text = str(error)
        if text == KIMINA_TIMEOUT or "timed out" in text.lower():
            return StatementResult(problem.name, "timeout", one_line(text), time_s=time_s)
        # `prover serve` says `REASON: detail`; a Kimina server says anything
        reason, _, _ = text.partition(":")
        return _process_failure(problem.name, reason.strip(), f"verifier: {text}")
    raw = result.get("response")
    if not isinstance(raw, dict):
        return StatementResult(problem.name, "crash", "verifier returned no REPL answer")
    try:
        response = parse_response({k: v for k, v in raw.items() if k != "time"})
    except ProtocolError as exc:
        return StatementResult(problem.name, "crash", one_line(f"verifier garbage: {exc}"))
    if not isinstance(response, CommandResponse):
        detail = one_line(f"REPL refused the snippet: {getattr(response, 'message', raw)}")
        return StatementResult(problem.name, "crash", detail)
    # the server strips `env`, so (unlike locally) its absence says nothing
    return judge(problem.name, response, time_s=time_s)


def checker_lean_version(checker: ReplPool | RemoteVerifier, suite: Suite) -> str | None:
    """The Lean version `checker` runs, learnt before any statement is checked. A local pool
    asks the first process it starts, one for the suite's first header (the check then uses
    it), or, when that header does not elaborate, one with no header. A server reports its
    version once it has run a check, so it is sent the canary first (a Kimina server reports
    none: None). MachineryFailure when no process can run at all."""
    if isinstance(checker, RemoteVerifier):
        from harness.tasks import learn_lean_version

        return learn_lean_version(checker, "")
    header = suite.problems[0].header if suite.problems else ""
    try:
        with checker.repl_for(header):
            pass
    except HeaderFailure:  # reported per statement by the check itself
        with checker.repl_for(""):
            pass
    return checker.lean_version


def check_suite(
    checker: ReplPool | RemoteVerifier,
    suite: Suite,
    *,
    on_result: Callable[[StatementResult], None] | None = None,
) -> SuiteCheckReport:
    """Check every statement, `checker.workers` at a time; `on_result` sees each as it ends.

    On an exception (Ctrl-C, an unreachable server) queued checks are cancelled and running
    ones are not waited for: closing the checker kills their processes.
    """
    if isinstance(checker, RemoteVerifier):
        remote = checker

        def one(problem: Problem) -> StatementResult:
            return check_remote(remote, problem)
    else:
        pool = checker

        def one(problem: Problem) -> StatementResult:
            return check_local(pool, problem)

    executor = ThreadPoolExecutor(max(1, checker.workers), thread_name_prefix="suite-check")
    by_index: dict[int, StatementResult] = {}
    try:
        futures = {executor.submit(one, p): i for i, p in enumerate(suite.problems)}
        for future in as_completed(futures):
            result = future.result()
            by_index[futures[future]] = result
            if on_result is not None:
                on_result(result)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    results = [by_index[i] for i in range(len(suite.problems))]
    return SuiteCheckReport(suite, results, checker.lean_version)
