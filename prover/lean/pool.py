"""A pool of REPL processes, keyed by header, checking proofs concurrently.

Each process elaborates its header once and checks every later proof in that environment, so
header elaborations for P proofs on W workers are W plus one per restart or recycle, never P.
A process is recycled after `recycle_after` checks because the REPL never frees environments.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field

from prover.lean import sandbox as sandboxes
from prover.lean.acceptance import axioms_reason, elaboration_reason, parse_axioms
from prover.lean.extract import plan_check
from prover.lean.repl import HeaderFailure, LeanRepl, ReplFailure
from prover.lean.source import normalize_header
from prover.lean.transport import Transport
from prover.lean.verdict import CheckItem, Verdict

MB = 1024 * 1024


@dataclass
class VerifierConfig:
    """Everything the verifier options of every Lean-running command set."""

    repl: str | None = None  # command line; None: PROVER_REPL, then the image's REPL
    repl_cwd: str | None = None
    sandbox: str = "auto"
    memory_mb: int = 12288
    timeout: float = 300.0  # wall clock per check (proof command + `#print axioms`)
    header_timeout: float = 600.0  # a cold `import Mathlib` can take minutes on slow disks
    workers: int | None = None  # None: min(CPU count - 1, free memory / memory cap), >= 1
    recycle_after: int = 1000
    allow_native: bool = False
    ro_paths: list[str] = field(default_factory=sandboxes.extra_ro_paths)
    docker_image: str = "prover"


def default_workers(memory_mb: int) -> int:
    cpus = (os.cpu_count() or 2) - 1
    return max(1, min(cpus, available_memory_bytes() // (memory_mb * MB)))


def available_memory_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


@dataclass
class PoolStats:
    header_elaborations: int = 0
    restarts: int = 0  # processes started to replace one that died (timeout, crash, memory)
    recycles: int = 0  # processes retired after `recycle_after` checks
    evictions: int = 0  # idle processes of another header closed to make room
    checks: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


class ReplPool:
    """Check proofs on up to `workers` REPL processes at once.

    `transport_factory` replaces the sandboxed process launcher (tests, remote workers).
    """

    def __init__(
        self,
        config: VerifierConfig | None = None,
        *,
        transport_factory: Callable[[], Transport] | None = None,
    ) -> None:
        self.config = config or VerifierConfig()
        self.workers = self.config.workers or default_workers(self.config.memory_mb)
        if transport_factory is None:
            command = sandboxes.ReplCommand.resolve(self.config.repl, self.config.repl_cwd)
            kind = sandboxes.resolve_kind(self.config.sandbox)
            if kind != "docker":  # in a container the REPL lives in the image, not here
                command.check_exists()
            sandbox = sandboxes.SandboxConfig(
                kind, self.config.memory_mb, list(self.config.ro_paths), self.config.docker_image
            )
            self.sandbox = kind
            transport_factory = sandboxes.transport_factory(kind, command, sandbox)
        else:
            self.sandbox = "custom"
        self._start_transport = transport_factory
        self.stats = PoolStats()
        self._lean_version: str | None = None
        self._version_known = False
        self._cond = threading.Condition()
        self._idle: deque[LeanRepl] = deque()  # oldest first
        self._live = 0
        self._deaths = 0  # processes that died and whose slot has not been refilled yet
        self._header_failures: dict[str, HeaderFailure] = {}  # headers that do not elaborate
        self._closed = False

    # -- processes -----------------------------------------------------------------------

    def _start(self, header: str, key: str) -> LeanRepl:
        with self._cond:
            if key in self._header_failures:
                raise self._header_failures[key]
            if header.strip():
                self.stats.header_elaborations += 1
            if self._deaths > 0:  # this start refills the slot of a dead process
                self._deaths -= 1
                self.stats.restarts += 1
        try:
            repl = LeanRepl(
                self._start_transport, header, key=key, header_timeout=self.config.header_timeout
            )
        except HeaderFailure as exc:
            with self._cond:
                self._header_failures[key] = exc
            raise
        if not self._version_known:
            self._learn_version(repl)
        return repl

    def _learn_version(self, repl: LeanRepl) -> None:
        with self._cond:
            if self._version_known:
                return
            self._version_known = True
        try:
            self._lean_version = repl.lean_version()
        except ReplFailure:
            self._lean_version = None

    def _acquire(self, header: str) -> LeanRepl:
        key = normalize_header(header)
        evict: LeanRepl | None = None
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("pool is closed")
                for repl in reversed(self._idle):  # most recently used first
                    if repl.key == key:
                        self._idle.remove(repl)
                        return repl
                if self._live < self.workers:
                    self._live += 1
                    break
                if self._idle:
                    evict = self._idle.popleft()  # oldest idle process of another header
                    self.stats.evictions += 1
                    break
                self._cond.wait()
        if evict is not None:
            evict.close()
        try:
            return self._start(header, key)
        except BaseException:
            with self._cond:
                self._live -= 1
                self._cond.notify()
            raise

    def _release(self, repl: LeanRepl) -> None:
        retire = repl.dead or repl.checks_done >= self.config.recycle_after
        with self._cond:
            if repl.dead:
                self._deaths += 1
            elif retire:
                self.stats.recycles += 1
            if retire or self._closed:
                self._live -= 1
            else:
                self._idle.append(repl)
            self._cond.notify()
        if retire or self._closed:
            repl.close()

    @contextlib.contextmanager
    def repl_for(self, header: str) -> Iterator[LeanRepl]:
        """Borrow a process whose header environment is `header` (started if needed)."""
        repl = self._acquire(header)
        try:
            yield repl
        finally:
            self._release(repl)

    @property
    def lean_version(self) -> str | None:
        """The Lean version the REPL runs (asked once, of the first process)."""
        if not self._version_known:
            with contextlib.suppress(ReplFailure, HeaderFailure), self.repl_for(""):
                pass
        return self._lean_version

    # -- checking ------------------------------------------------------------------------

    def check(self, item: CheckItem) -> Verdict:
        start = time.monotonic()
        verdict = self._check(item)
        verdict.time_s = round(time.monotonic() - start, 4)
        with self._cond:
            self.stats.checks += 1
        return verdict

    def _check(self, item: CheckItem) -> Verdict:
        plan = plan_check(item)
        name = item.name
        rewritten = plan.statement_rewritten
        if plan.no_proof:
            return Verdict(name, False, "no_proof", detail="nothing to check in the proof text")
        if plan.banned:
            return Verdict(name, False, "banned", statement_rewritten=rewritten, detail=plan.banned)
        try:
            with self.repl_for(item.header) as repl:
                deadline = time.monotonic() + self.config.timeout
                response = repl.command(plan.code, env=repl.header_env, timeout=self.config.timeout)
                repl.checks_done += 1
                messages = [m.to_json() for m in response.messages]
                reason = elaboration_reason(response)
                if reason != "ok":
                    return Verdict(
                        name,
                        False,
                        reason,
                        messages=messages,  # type: ignore[arg-type]
                        statement_rewritten=rewritten,
                    )
                remaining = max(0.001, deadline - time.monotonic())
                printed = repl.command(
                    f"#print axioms {plan.name}", env=response.env, timeout=remaining
                )
        except HeaderFailure as exc:
            messages = [m.to_json() for m in exc.response.messages]
            return Verdict(name, False, "error", messages=messages, detail=str(exc))
        except ReplFailure as exc:
            return Verdict(
                name,
                False,
                exc.reason,
                statement_rewritten=rewritten,  # type: ignore[arg-type]
                detail=exc.detail,
            )
        reported = parse_axioms(printed.messages)
        if not reported:
            errors = [m.data for m in printed.errors] or ["no `#print axioms` answer"]
            return Verdict(
                name,
                False,
                "error",
                messages=messages,
                statement_rewritten=rewritten,
                detail=f"#print axioms {plan.name}: {errors[0]}",
            )
        axioms = sorted(next(iter(reported.values())))
        reason = axioms_reason(axioms, allow_native=self.config.allow_native)
        return Verdict(
            name,
            reason == "ok",
            reason,
            axioms=axioms,  # type: ignore[arg-type]
            messages=messages,
            statement_rewritten=rewritten,
        )

    def check_many(self, items: Iterable[CheckItem]) -> Iterator[tuple[CheckItem, Verdict]]:
        """Check `items` on all workers; yield (item, verdict) as each finishes.

        Worker threads pull from a bounded queue (items are read lazily, never all at once)
        and push verdicts to the caller; closing the generator early stops the workers.
        """
        todo: queue.Queue[CheckItem | None] = queue.Queue(maxsize=self.workers * 2)
        done: queue.Queue[tuple[CheckItem | None, Verdict | BaseException | None]] = queue.Queue()
        stop = threading.Event()

        def work() -> None:
            while not stop.is_set():
                try:
                    item = todo.get(timeout=0.05)
                except queue.Empty:
                    continue
                if item is None:
                    break
                try:
                    done.put((item, self.check(item)))
                except BaseException as exc:  # handed to the caller, who re-raises it
                    done.put((item, exc))
            done.put((None, None))

        def feed() -> None:
            try:
                for item in items:
                    if stop.is_set():
                        break
                    todo.put(item)
            except BaseException as exc:  # a failing input iterator is the caller's error
                done.put((None, exc))
            finally:
                for _ in threads:
                    todo.put(None)

        threads = [
            threading.Thread(target=work, name=f"lean-check-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        feeder = threading.Thread(target=feed, name="lean-check-feed", daemon=True)
        feeder.start()
        running = len(threads)
        try:
            while running:
                item, result = done.get()
                if isinstance(result, BaseException):
                    raise result
                if item is None:
                    running -= 1
                else:
                    assert result is not None
                    yield item, result
        finally:
            # Closed early (or done): workers stop after the check in hand, and a feeder
            # blocked on the full queue is unblocked by draining it.
            stop.set()
            while feeder.is_alive():
                with contextlib.suppress(queue.Empty):
                    todo.get_nowait()
                feeder.join(timeout=0.01)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = list(self._idle), deque()
            self._live -= len(idle)
            self._cond.notify_all()
        for repl in idle:
            repl.close()

    def __enter__(self) -> ReplPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
