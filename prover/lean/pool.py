"""A pool of REPL processes, keyed by header, checking proofs concurrently.

Each process elaborates its header once and checks every later proof in that environment, so
header elaborations for P proofs on W workers are W plus one per restart or recycle, never P.
A process is recycled after `recycle_after` checks because the REPL never frees environments.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from prover.errors import MachineryFailure
from prover.lean import sandbox as sandboxes
from prover.lean.acceptance import axioms_reason, elaboration_reason, parse_axioms
from prover.lean.commands import (
    NOT_THE_STATEMENT,
    reference_command,
    reference_name,
    statement_check_command,
)
from prover.lean.extract import plan_check
from prover.lean.input_check import invalid_input_verdict, item_problem
from prover.lean.machinery import BreakerOpen, CircuitBreaker, canary_item
from prover.lean.repl import HeaderFailure, LeanRepl, ReplFailure, StartFailure
from prover.lean.replay import (
    Replayers,
    ReplayFailed,
    ReplayPlan,
    check_version,
    pickle_env,
    replay,
)
from prover.lean.source import normalize_header, open_namespace
from prover.lean.transport import Transport
from prover.lean.verdict import CheckItem, Verdict

if TYPE_CHECKING:
    from prover.lean.tactic_session import TacticSession

MB = 1024 * 1024
log = logging.getLogger(__name__)  # unconfigured, WARNING lines still reach stderr


class StatementFailure(MachineryFailure):
    """The benchmark statement itself (or the file above it) does not elaborate under its
    header: no proof can be judged against it, whatever the model wrote."""


class PoolClosed(MachineryFailure):
    """The pool was closed (the command is stopping) while a check waited for a process."""


@dataclass
class VerifierConfig:
    """Everything the verifier options of every Lean-running command set."""

    repl: str | None = None  # command line; None: PROVER_REPL, then the image's REPL
    repl_cwd: str | None = None
    sandbox: str = "auto"
    memory_mb: int = 12288
    timeout: float = 300.0  # wall clock per check (all its commands together)
    header_timeout: float = 300.0  # per process start: a cold `import Mathlib` takes minutes
    # A check that failed for machinery reasons is tried this many times in all, waiting
    # `machinery_backoff_s`, then twice that, ... in between; then the command stops.
    machinery_attempts: int = 3
    machinery_backoff_s: float = 1.0
    workers: int | None = None  # None: min(CPU count - 1, free memory / memory cap), >= 1
    recycle_after: int = 1000
    allow_native: bool = False
    ro_paths: list[str] = field(default_factory=sandboxes.extra_ro_paths)
    docker_image: str = "prover"
    verifier_url: str | None = None  # check on a Kimina-compatible server instead
    text_scan: bool = True  # False (`prover selftest --lean-only`): banned code goes to Lean
    replay: bool = True  # re-check accepted proofs through the kernel in a fresh process
    replay_workers: int | None = None  # replay processes at most (default: workers / 2, >= 1)


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
    replays: int = 0  # accepted proofs sent through the kernel replay rung
    replay_processes: int = 0  # replay processes started
    machinery_retries: int = 0  # check attempts retried after a machinery failure
    crash_rechecks: int = 0  # checks run again (after a canary) because their process died
    # Tactic mode (tactic_session.py): sessions opened, tactics sent to Lean (rebuilding
    # excluded), tactics the scan refused, processes restarted within a session, and tactics
    # sent again to rebuild states in a restarted process.
    tactic_sessions: int = 0
    tactics: int = 0
    tactics_banned: int = 0
    tactic_restarts: int = 0
    tactic_replays: int = 0

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
        self._version_learned = threading.Event()  # set once the first answer is in
        self._cond = threading.Condition()
        self._idle: deque[LeanRepl] = deque()  # oldest first
        self._all: set[LeanRepl] = set()  # every live process, idle or busy (killed on close)
        self._busy: Counter[str] = Counter()  # header key -> processes checking right now
        self._live = 0
        self._deaths = 0  # processes that died and whose slot has not been refilled yet
        self._header_failures: dict[str, HeaderFailure] = {}  # headers that do not elaborate
        self._bad_statements: dict[tuple[str, str], str] = {}  # statements that do not elaborate
        # Processes are started from this one long-lived thread: bwrap's --die-with-parent is
        # tied to the thread that forked it, and worker threads come and go.
        self._launcher = ThreadPoolExecutor(1, thread_name_prefix="lean-launch")
        self._closed = False
        self._breaker = CircuitBreaker()
        self._replayers = Replayers(
            self._start_replayer,
            self.config.replay_workers or max(1, self.workers // 2),
            self.config.recycle_after,
        )

    # -- processes -----------------------------------------------------------------------

    def _new_transport(self) -> Transport:
        try:
            return self._launcher.submit(self._start_transport).result()
        except OSError as exc:
            raise StartFailure(ReplFailure("crash", f"cannot start the REPL: {exc}")) from None

    def _start(self, header: str, key: str) -> LeanRepl:
        with self._cond:
            if key in self._header_failures:
                raise self._header_failures[key]
        for _ in (1, 2):  # a second start if the version question killed the first
            with self._cond:
                if header.strip():
                    self.stats.header_elaborations += 1
                if self._deaths > 0:  # this start refills the slot of a dead process
                    self._deaths -= 1
                    self.stats.restarts += 1
            try:
                repl = LeanRepl(
                    self._new_transport(),
                    header,
                    key=key,
                    header_timeout=self.config.header_timeout,
                    on_header_wait=self._header_wait,
                )
            except HeaderFailure as exc:
                with self._cond:
                    self._header_failures[key] = exc
                raise
            if self._version_known or self._learn_version(repl):
                return repl
            with self._cond:  # the version question killed it: the proof is not charged
                self._deaths += 1
        raise StartFailure(ReplFailure("crash", "the REPL died when asked its Lean version, twice"))

    def _header_wait(self, waited: float) -> None:
        log.warning(
            "prover: still elaborating the header: %.0f s of at most %g s (--header-timeout)",
            waited,
            self.config.header_timeout,
        )

    def _start_replayer(self) -> LeanRepl:
        """A replay process runs no header: each unpickle imports the pickle's own modules."""
        repl = LeanRepl(self._new_transport(), "", key="replay")
        with self._cond:
            self.stats.replay_processes += 1
        return repl

    def _learn_version(self, repl: LeanRepl) -> bool:
        """Ask the first process which Lean it runs; False if that killed it (the next
        process started asks again: a transient death must not leave the version unknown)."""
        with self._cond:
            if self._version_known:
                return True
            self._version_known = True
        try:
            self._lean_version = repl.lean_version()
        except ReplFailure:
            with self._cond:
                self._version_known = False
            return False
        self._version_learned.set()
        return True

    def _acquire(self, header: str, fresh: bool = False) -> LeanRepl:
        key = normalize_header(header)
        evict: LeanRepl | None = None
        with self._cond:
            while True:
                if self._closed:
                    raise PoolClosed("the verifier is shutting down")
                if fresh:  # a new process: what earlier checks left in one cannot matter
                    if self._live < self.workers:
                        self._live += 1
                        break
                    if self._idle:
                        evict = self._idle.popleft()
                        self._all.discard(evict)
                        self.stats.evictions += 1
                        break
                    self._cond.wait()
                    continue
                repl = next((r for r in reversed(self._idle) if r.key == key), None)
                if repl is not None:  # the most recently used process of this header
                    self._idle.remove(repl)
                    if not repl.alive():  # it died while idle (killed from outside)
                        self._all.discard(repl)
                        self._live -= 1
                        self._deaths += 1
                        continue
                    self._busy[key] += 1
                    return repl
                if self._live < self.workers:
                    self._live += 1
                    break
                if self._idle and not self._busy[key]:
                    # no process of this header will free up: make room
                    evict = self._idle.popleft()
                    self._all.discard(evict)
                    self.stats.evictions += 1
                    break
                self._cond.wait()  # a process of this header (or any slot) frees up soon
            self._busy[key] += 1
        if evict is not None:
            evict.close()
        try:
            repl = self._start(header, key)
        except BaseException:
            with self._cond:
                self._live -= 1
                self._busy[key] -= 1
                self._cond.notify_all()
            raise
        with self._cond:
            self._all.add(repl)
            if self._closed:
                repl.close()
        return repl

    def _release(self, repl: LeanRepl) -> None:
        retire = repl.dead or repl.checks_done >= self.config.recycle_after
        with self._cond:
            self._busy[repl.key] -= 1
            if repl.dead:
                self._deaths += 1
            elif retire:
                self.stats.recycles += 1
            if retire or self._closed:
                self._live -= 1
                self._all.discard(repl)
            else:
                self._idle.append(repl)
            self._cond.notify_all()
        if retire or self._closed:
            repl.close()

    @contextlib.contextmanager
    def repl_for(self, header: str, *, fresh: bool = False) -> Iterator[LeanRepl]:
        """Borrow a process whose header environment is `header` (started if needed; with
        `fresh`, always a newly started one)."""
        repl = self._acquire(header, fresh)
        try:
            yield repl
        finally:
            self._release(repl)

    @contextlib.contextmanager
    def tactic_session(
        self, header: str, formal_statement: str, *, context: str = ""
    ) -> Iterator[TacticSession]:
        """A tactic-mode session on `formal_statement` (ending in `:= by`, as in a CheckItem)
        under `header` (and `context`, text between the header and the statement): one process
        is pinned to it until the block ends, then goes back to the pool. `session.root` is
        the statement's goal; `session.run(state, tactic)` runs one tactic (tactic_session.py).
        MachineryFailure (HeaderFailure, StatementFailure) when no root state can be built."""
        from prover.lean.tactic_session import TacticSession

        session = TacticSession(self, header, formal_statement, context=context)
        try:
            yield session
        finally:
            session.close()

    def _count(self, **increments: int) -> None:
        """Add to the named PoolStats counters (from any thread)."""
        with self._cond:
            for name, n in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)

    @property
    def lean_version(self) -> str | None:
        """The Lean version the REPL runs (asked of the first process; None before any ran)."""
        return self._lean_version

    # -- checking ------------------------------------------------------------------------

    def check(self, item: CheckItem) -> Verdict:
        """The verdict on `item`'s proof; MachineryFailure when the machinery could not judge
        it (retries spent, or the circuit breaker open): never a verdict then."""
        start = time.monotonic()
        problem = item_problem(item)  # text Lean cannot even be sent (a lone surrogate, NUL)
        verdict = invalid_input_verdict(item.name, problem) if problem else self._judged(item)
        verdict.time_s = round(time.monotonic() - start, 4)
        with self._cond:
            self.stats.checks += 1
        return verdict

    def _judged(self, item: CheckItem) -> Verdict:
        """`_check` with the machinery rules. A machinery failure is retried with backoff, in
        a newly started process, up to `machinery_attempts` attempts in all. A check whose
        process died (or ran out of memory) on the model's code is run once more in a newly
        started process after a known-good canary check passed there: a second failure is the
        proof's own (`crash`: a policy must not halt a run by writing proofs that crash Lean),
        and the first cannot be blamed on what earlier proofs left in a reused process; a
        failing canary means the machinery is broken."""
        attempts = 0
        recheck = False
        while True:
            self._breaker.check()
            try:
                if recheck:
                    verdict, crashed = self._canary_then_check(item)
                else:
                    verdict, crashed = self._check(item, fresh=attempts > 0)
            except (BreakerOpen, PoolClosed):
                raise
            except MachineryFailure as exc:
                self._breaker.record(True, exc.cause)
                attempts += 1
                if isinstance(exc, HeaderFailure | StatementFailure):  # Lean's own answer
                    raise
                if attempts >= self.config.machinery_attempts:
                    raise MachineryFailure(f"{exc.cause} ({attempts} attempts)") from exc
                with self._cond:
                    self.stats.machinery_retries += 1
                log.info(  # the final failure is the command's one line; this is detail
                    "prover: verifier machinery failed (attempt %d of %d), retrying: %s",
                    attempts,
                    self.config.machinery_attempts,
                    exc.cause,
                )
                time.sleep(self.config.machinery_backoff_s * 2 ** (attempts - 1))
                continue
            self._breaker.record(False)
            if crashed and self._closed:  # we killed it: the proof was not judged
                raise PoolClosed("the verifier is shutting down")
            if crashed and not recheck:
                recheck = True
                with self._cond:
                    self.stats.crash_rechecks += 1
                continue
            if crashed:
                verdict.detail += (
                    " (it failed again in a new process, after a known-good check passed there)"
                )
            return verdict

    def _canary_then_check(self, item: CheckItem) -> tuple[Verdict, bool]:
        """In one newly started process: a known-good check (MachineryFailure unless it is
        accepted), then `item` again."""
        with self.repl_for(item.header, fresh=True) as repl:
            canary, _ = self._check(canary_item(item.header), borrowed=repl)
            if not canary.accepted:
                raise MachineryFailure(
                    "a check's REPL died, and then a known-good check failed too "
                    f"({canary.reason}: {canary.detail or 'no detail'})"
                )
            return self._check(item, borrowed=repl)

    def _base_env(self, repl: LeanRepl, context: str, timeout: float) -> int | None:
        """The header env, or the env of `context` elaborated on it (once per process). Lean's
        messages about the context (its own sorries, say) are not the candidate's."""
        if not context.strip():
            return repl.header_env
        if context not in repl.contexts:
            response = repl.command(context, env=repl.header_env, timeout=timeout)
            if response.env is None:
                raise StatementFailure("the file above the theorem gave no environment")
            repl.contexts[context] = response.env
        return repl.contexts[context]

    def _reference(
        self, repl: LeanRepl, statement: str, context: str, timeout: float
    ) -> tuple[int, str]:
        """Env and name of the benchmark statement elaborated on its own in this process."""
        ref_name = reference_name(context + statement)
        key = context + "\0" + statement
        if key in repl.references:
            return repl.references[key], ref_name
        with self._cond:
            bad = self._bad_statements.get((repl.key, key))
        if bad is None:
            base = self._base_env(repl, context, timeout)
            response = repl.command(
                reference_command(statement, ref_name), env=base, timeout=timeout
            )
            if not response.errors and response.env is not None:
                repl.references[key] = response.env
                return response.env, ref_name
            bad = response.errors[0].data if response.errors else "no environment"
            with self._cond:
                self._bad_statements[(repl.key, key)] = bad
        raise StatementFailure(bad)

    def _check(
        self, item: CheckItem, *, fresh: bool = False, borrowed: LeanRepl | None = None
    ) -> tuple[Verdict, bool]:
        """The verdict, and whether a process died (or ran out of memory) on the model's code
        or its replay: MachineryFailure for what failed before the code was sent. Runs on
        `borrowed` if given, else on a process of the pool (a new one with `fresh`)."""
        scan_began = time.monotonic()
        plan = plan_check(item)
        scan_s = time.monotonic() - scan_began  # the scan is the check's time too
        name = item.name
        rewritten = plan.statement_rewritten

        def verdict(reason: str, **fields: Any) -> Verdict:
            return Verdict(name, reason == "ok", reason, statement_rewritten=rewritten, **fields)  # type: ignore[arg-type]

        if plan.no_proof:
            return verdict("no_proof", detail="nothing to check in the proof text"), False
        if plan.banned and self.config.text_scan:
            return verdict("banned", detail=plan.banned), False
        if scan_s >= self.config.timeout:
            detail = f"the pre-Lean scan alone took {scan_s:.1f} s"
            return verdict("timeout", detail=detail), False
        deadline = float("inf")

        def remaining() -> float:
            return max(0.001, deadline - time.monotonic())

        namespace = open_namespace(item.context) if item.context else ""
        full_name = f"{namespace}.{plan.name}" if namespace else plan.name
        pickled: bytes | None = None
        messages: list[dict[str, Any]] = []
        process = (
            contextlib.nullcontext(borrowed)
            if borrowed is not None
            else self.repl_for(item.header, fresh=fresh)
        )
        try:
            with process as repl:
                if self.config.replay:
                    self.require_replay_support()
                try:  # the statement's own time: no proof text has reached Lean yet
                    env, ref_name = self._reference(
                        repl, item.formal_statement, item.context, self.config.timeout
                    )
                except ReplFailure as exc:  # nothing of the model's was sent yet
                    what = "the file above the theorem" if item.context else "the statement"
                    raise StartFailure(
                        ReplFailure(exc.reason, f"while elaborating {what}: {exc.detail}")
                    ) from None
                except StatementFailure as exc:
                    raise StatementFailure(
                        f"the benchmark statement of {item.name!r} does not elaborate: {exc}"
                    ) from None
                # the proof's clock starts once its code goes to Lean (the scan counts too)
                deadline = time.monotonic() + self.config.timeout - scan_s
                response = repl.command(plan.code, env=env, timeout=remaining())
                repl.checks_done += 1
                messages = [m.to_json() for m in response.messages]
                reason = elaboration_reason(response)
                if reason != "ok":
                    return verdict(reason, messages=messages), False
                final = repl.command(
                    statement_check_command(full_name, ref_name),
                    env=response.env,
                    timeout=remaining(),
                )
                judged = self._judge_final(final, messages, verdict)
                if judged.accepted and self.replays_on(repl) and response.env is not None:
                    # the environment right after the model's code, before our commands
                    pickled = pickle_env(repl, response.env, remaining())
        except ReplFailure as exc:
            died = exc.reason in ("crash", "memory")
            return verdict(exc.reason, messages=messages, detail=exc.detail), died
        except ReplayFailed as exc:
            return verdict(exc.reason, messages=messages, detail=exc.detail), exc.crashed
        if pickled is None:
            return judged, False
        # A check with a context cannot elaborate the statement again after replay (the
        # context's notations and instances are gone, replay.py): it is checked there against
        # this process's own reference, which was rebuilt through the kernel with the rest.
        replay_plan = ReplayPlan(
            item.header,
            (full_name,),
            None if item.context else item.formal_statement,
            reference=ref_name if item.context else None,
        )
        try:
            axioms = self.replay(pickled, replay_plan, deadline)[full_name]
        except ReplayFailed as exc:
            return verdict(exc.reason, messages=messages, detail=exc.detail), exc.crashed
        except KeyError:
            detail = "no `#print axioms` after replay"
            return verdict("replay", messages=messages, detail=detail), False
        reason = axioms_reason(axioms, allow_native=self.config.allow_native)
        if reason != "ok":
            return verdict(
                "replay",
                messages=messages,
                axioms=sorted(axioms),
                detail=f"after replay the proof rests on axioms [{', '.join(sorted(axioms))}]",
            ), False
        judged.axioms = sorted(axioms)
        judged.replayed = True
        return judged, False

    def replays_on(self, repl: LeanRepl) -> bool:
        """Whether the replay rung runs for checks on `repl`: on, and possible (every built-in
        sandbox gives a process an exchange dir; a custom transport may not)."""
        return self.config.replay and repl.exchange is not None

    def require_replay_support(self) -> None:
        """Raise ReplayUnsupported unless this REPL's Lean re-checks on unpickling (call with
        a process started: the first one is asked its version)."""
        if not self._version_learned.wait(60.0):  # another thread may be asking it right now
            raise StartFailure(
                ReplFailure("timeout", "the REPL's Lean version could not be learned in 60 s")
            )
        check_version(self._lean_version)

    def replay(self, pickled: bytes, plan: ReplayPlan, deadline: float) -> dict[str, list[str]]:
        """Judge a pickled environment again in a replay process, by `deadline` (monotonic;
        waiting for a free replay process does not count). Raises ReplayFailed."""
        with self._replayers.borrow() as (replayer, waited):
            deadline += waited
            with self._cond:
                self.stats.replays += 1
            return replay(replayer, pickled, plan, lambda: max(0.001, deadline - time.monotonic()))

    def _judge_final(
        self, final: Any, messages: list[dict[str, Any]], verdict: Callable[..., Verdict]
    ) -> Verdict:
        """The statement check's and `#print axioms`' answer judged (the last rungs)."""
        mismatch = [m for m in final.errors if m.pos is None or m.pos.line == 1]
        if mismatch:
            first = mismatch[0].data.splitlines()[0] if mismatch[0].data else ""
            return verdict(
                "error",
                messages=messages,
                detail=f"{NOT_THE_STATEMENT} ({first})",
            )
        reported = parse_axioms(m for m in final.messages if m.pos is None or m.pos.line == 2)
        if not reported:
            errors = [m.data for m in final.errors] or ["no `#print axioms` answer"]
            return verdict("error", messages=messages, detail=f"#print axioms: {errors[0]}")
        axioms = sorted(next(iter(reported.values())))
        reason = axioms_reason(axioms, allow_native=self.config.allow_native)
        return verdict(reason, axioms=axioms, messages=messages)

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
                    while True:
                        todo.get_nowait()
                feeder.join(timeout=0.001)

    def close(self) -> None:
        """Stop: every process is killed, busy ones too (their checks raise PoolClosed)."""
        with self._cond:
            self._closed = True
            repls, self._idle = list(self._all), deque()
            self._all.clear()
            self._cond.notify_all()
        for repl in repls:
            repl.close()
        self._replayers.close()
        self._launcher.shutdown(wait=False)

    def __enter__(self) -> ReplPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
