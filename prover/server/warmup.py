"""`prover serve --warm-header`: the header elaborated in every worker process at start, in
the background (the server answers at once, `/health` says "starting"), retried with backoff
while it fails; and run again as a probe while the machinery is degraded, so that `/health`
recovers even when no client sends checks to a server it was told is broken."""

from __future__ import annotations

import logging
import threading
import time

from prover.errors import MachineryFailure
from prover.lean.pool import ReplPool
from prover.lean.repl import HeaderFailure, ReplFailure
from prover.server.health import MachineryHealth

WARM_RETRY_S = 1.0  # first pause after a failed warm-up round, doubled up to the next
WARM_RETRY_MAX_S = 60.0
HOLD_MARGIN_S = 60.0  # beyond the header timeout, how long a warm process waits for the rest

log = logging.getLogger("uvicorn.error")  # uvicorn's own logger: printed like its lines


def warm_workers(pool: ReplPool, header: str, hold_timeout: float) -> None:
    """Elaborate `header` in `pool.workers` processes: that many borrows at once, each held
    until all are borrowed, so that each is its own process (the pool hands an idle process of
    the header to the next borrower). Raises the first failure; the others stop waiting.

    If traffic of another header keeps a slot past `hold_timeout`, the round ends with fewer
    distinct processes and no error: the header did elaborate, the server is serving."""
    everyone = threading.Barrier(pool.workers)
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            with pool.repl_for(header):
                everyone.wait(hold_timeout)
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:  # handed to the caller below
            failures.append(exc)
            everyone.abort()

    threads = [
        threading.Thread(target=hold, name=f"warm-{i}", daemon=True) for i in range(pool.workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def describe(exc: BaseException, header: str) -> str:
    """One cause for `/health`'s detail and the log."""
    first = header.strip().splitlines()[0] if header.strip() else ""
    if isinstance(exc, HeaderFailure):  # before MachineryFailure, its base class
        return f"warm-up header `{first}`: {exc} (`--warm-header ''` turns the warm-up off)"
    if isinstance(exc, MachineryFailure):
        return exc.cause
    if isinstance(exc, ReplFailure):
        return f"warm-up header `{first}`: the REPL failed: {exc}"
    return f"warm-up: {type(exc).__name__}: {exc}"


class WarmUp:
    """The background thread: warms every worker until it works, then probes again each time
    the machinery turns degraded."""

    def __init__(
        self,
        pool: ReplPool,
        header: str,
        health: MachineryHealth,
        *,
        retry_s: float = WARM_RETRY_S,
        retry_max_s: float = WARM_RETRY_MAX_S,
    ) -> None:
        self.pool = pool
        self.header = header
        self.health = health
        self.retry_s = retry_s
        self.retry_max_s = retry_max_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="warm-up", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No more rounds; one in progress ends when the pool closes (not waited for)."""
        self._stop.set()

    def _run(self) -> None:
        delay = self.retry_s
        while not self._stop.is_set():
            if self.health.warm and not self.health.degraded:
                self._stop.wait(self.retry_s)  # healthy: look again later
                continue
            began = time.monotonic()
            try:
                warm_workers(
                    self.pool, self.header, self.pool.config.header_timeout + HOLD_MARGIN_S
                )
            except Exception as exc:
                if self._stop.is_set():
                    return  # the pool is closing: not the machinery's failure
                cause = describe(exc, self.header)
                self.health.failure(cause)
                log.warning("warm-up failed (retrying in %gs): %s", delay, cause)
                self._stop.wait(delay)
                delay = min(delay * 2, self.retry_max_s)
            else:
                was_warm = self.health.warm
                self.health.success()
                self.health.mark_warm()
                delay = self.retry_s
                log.info(
                    "%s: header elaborated in %d workers (%.1fs)",
                    "recovered" if was_warm else "warm",
                    self.pool.workers,
                    time.monotonic() - began,
                )
