"""The kernel replay rung: what a check accepted is rebuilt, constant by constant, through
Lean's kernel in a fresh REPL process, and judged again there.

Why: model code can add a declaration the kernel never checked (`set_option
debug.skipKernelTC true`, then meta code calling `Lean.addDecl`); Lean then reports no error,
no sorry, and `#print axioms` lists no axiom. The pre-Lean scan tries to stop that; this rung
is the guarantee that does not depend on reading text right.

Route (no new Lean program): the checking REPL answers `{"pickleTo": PATH, "env": N}` by
saving the environment's imports and its own constants (`env.constants.map₂`); a replay REPL
answers `{"unpickleEnvFrom": PATH}` with `(← importModules imports {} 0).replay map₂`, which
adds every constant through the kernel again, with empty options (so `debug.skipKernelTC`
is off). leanprover-community/repl at v4.9.0, v4.24.0 and v4.27.0:
`REPL/Snapshots.lean` (`CommandSnapshot.pickle` / `unpickle`), `REPL/Lean/Environment.lean`,
Lean's `src/Lean/Replay.lean` (`Environment.replay`). From REPL v4.30 unpickling uses
`replayToElabEnv`, which does not re-check: `check_version` refuses those.

When the replay throws, `REPL/Main.lean`'s `unpickleCommandSnapshot` does not catch it: the
exception leaves the REPL's loop and the process exits (`uncaught exception: ...` on stderr).
A fork that catches it answers `{"message": ...}`. Both are a failed replay.

The pickle also carries the command state (scopes: namespace, `open`s, options, variables)
the model's code left behind, and the model could have altered the reference constant it
carries. So in the replayed environment the scopes are reset first (our own command, not the
model's), the header's `open`/`set_option` lines sent again, and the benchmark statement
elaborated again as a fresh axiom under an unpredictable name; then the statement check and
`#print axioms` run there. Scoped extensions that the REPL re-activated for the model's
`open`s (instances, notations from imported modules) cannot be deactivated: a residual
that would also need the checking process's reference to have been tampered with. Another:
the reset is itself elaborated under the model's scopes, and `#eval` (as every command run
through Lean's `Command.runTermElabM`, src/Lean/Elab/Command.lean) elaborates the section
`variable` binders left there, which may hold tactic blocks; not closed here.

A check with a context (the user's file above the theorem) cannot elaborate the statement
again: `Environment.replay` carries constants only, so the context's notations, instances,
macros and reducibility attributes are gone, and an honest statement using them would no
longer elaborate. Its statement is checked against the checking process's own reference
axiom instead (`ReplayPlan.reference`): elaborated there before the model's code ran, and
rebuilt through the kernel with every other constant. What that check defeats: meta code that
neutered the checking process's statement check (an elaborator, a macro, an option; all
environment extensions or scopes, which the replay does not carry or we reset). What it does
not: meta code that rewrote the reference constant itself, or a context constant the
statement mentions, in the environment's constant map; the replay would carry the rewrite.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prover.errors import MachineryFailure
from prover.lean.acceptance import parse_axioms
from prover.lean.commands import (
    REFERENCE_PREFIX,
    lean_name,
    reference_command,
    statement_check_command,
)
from prover.lean.repl import LeanRepl, ReplFailure, ReplRefused, StartFailure

# REPL v4.30 unpickles with `replayToElabEnv`: the constants are not re-checked.
UNSAFE_FROM = (4, 30)
MAX_PICKLE_BYTES = 512 * 1024 * 1024
# Each unpickle imports the header's modules once more, and the REPL never frees an
# environment: a replay process is retired after this many replays at most.
REPLAY_RECYCLE_MAX = 8

# Our own command (never model text): back to one root scope with default options, so what
# the model's code left open, set or declared as `variable` does not shape what follows.
SCOPE_RESET = (
    "#eval show Lean.Elab.Command.CommandElabM Unit from "
    'modify fun s => { s with scopes := [{ header := "" }] }'
)
_VERSION = re.compile(r"(\d+)\.(\d+)")


class ReplayClosed(MachineryFailure):
    """The replay processes were closed (the command is stopping)."""


class ReplayUnsupported(Exception):
    """Replay is on but this REPL cannot re-check on unpickling; one line says what to do."""


class ReplayFailed(Exception):
    """The rung rejected the proof (`reason` is `replay`, `timeout` or `memory`); `crashed`:
    because a process died (the pool then runs the check again after a canary)."""

    def __init__(self, reason: str, detail: str, *, crashed: bool = False) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.crashed = crashed


def check_version(version: str | None) -> None:
    """Raise ReplayUnsupported unless `version` (the REPL's Lean) replays through the kernel."""
    m = _VERSION.search(version or "")
    if m is None:
        raise ReplayUnsupported(
            f"kernel replay: cannot tell the REPL's Lean version ({version!r}); replay needs a "
            "REPL older than v4.30: use one, or pass --no-replay"
        )
    if (int(m[1]), int(m[2])) >= UNSAFE_FROM:
        raise ReplayUnsupported(
            f"kernel replay: the REPL runs Lean {version}, whose unpickling does not re-check "
            "declarations (replayToElabEnv, REPL v4.30 on); use a REPL older than v4.30, or "
            "pass --no-replay"
        )


def header_scope_lines(header: str) -> str:
    """The header's `open` and `set_option` lines (with their indented continuations): what
    the reference statement was elaborated under, besides the imports the pickle carries."""
    kept: list[str] = []
    keeping = False
    for line in header.lstrip("\ufeff").splitlines():
        if line[:1].isspace() and line.strip():
            if keeping:
                kept.append(line)
            continue
        keeping = line.startswith(("open ", "set_option "))
        if keeping:
            kept.append(line)
    return "\n".join(kept)


def fresh_reference_name() -> str:
    return f"{REFERENCE_PREFIX}replay_{secrets.token_hex(16)}"


def pickle_name() -> str:
    """Unpredictable: the model's code runs in the process that writes it."""
    return f"prover-{secrets.token_hex(16)}.olean"


def take_file(path: Path, limit: int = MAX_PICKLE_BYTES) -> bytes:
    """Read and delete `path`: a regular file (no link the model's code could have planted),
    at most `limit` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:  # a lost exchange dir as well as a model's tampering: re-checked
        raise ReplayFailed(
            "replay", f"the pickled environment cannot be read ({exc})", crashed=True
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ReplayFailed("replay", "the pickled environment is not a regular file")
        if info.st_size > limit:
            raise ReplayFailed("replay", f"the pickled environment is over {limit >> 20} MB")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    if len(data) > limit:
        raise ReplayFailed("replay", f"the pickled environment is over {limit >> 20} MB")
    return data


def pickle_env(repl: LeanRepl, env: int, timeout: float) -> bytes:
    """The checking process pickles `env`; its bytes (the file is deleted whatever happens)."""
    exchange = repl.exchange
    if exchange is None:
        raise ReplayFailed("replay", "this REPL has no directory to pickle into")
    name = pickle_name()
    try:
        repl.pickle_env(env, exchange.inner_path(name), timeout)
        return take_file(exchange.host_path(name))
    except ReplRefused as exc:
        raise ReplayFailed("replay", f"pickling failed: {_first_line(exc.message)}") from None
    except ReplFailure as exc:
        crashed = exc.reason == "crash"
        reason = "replay" if crashed else exc.reason
        raise ReplayFailed(reason, f"while pickling: {exc.detail}", crashed=crashed) from None
    finally:
        exchange.host_path(name).unlink(missing_ok=True)


@dataclass(frozen=True)
class ReplayPlan:
    """What to judge again in the replayed environment."""

    header: str
    theorems: tuple[str, ...]  # full names whose `#print axioms` runs again
    statement: str | None = None  # the benchmark statement to check `theorems[0]` against
    # the checking process's own reference axiom (its full name) to check `theorems[0]`
    # against: for a check with a context, whose statement cannot be elaborated again
    reference: str | None = None


def replay(replayer: LeanRepl, data: bytes, plan: ReplayPlan, timeout: Callable[[], float]):
    """Rebuild the pickled environment in `replayer` and judge `plan` there: the axioms of
    each theorem (as `parse_axioms` maps them). Raises ReplayFailed."""
    exchange = replayer.exchange
    if exchange is None:
        raise ReplayFailed("replay", "the replay REPL has no directory to unpickle from")
    name = pickle_name()
    path = exchange.host_path(name)
    try:
        try:
            _write_new(path, data)
        except OSError as exc:  # our side of the exchange is gone: nothing was judged
            replayer.close()
            raise StartFailure(
                ReplFailure("crash", f"cannot hand the pickle to the replay process: {exc}")
            ) from None
        try:
            env = replayer.unpickle_env(exchange.inner_path(name), timeout())
        except ReplRefused as exc:
            raise ReplayFailed(
                "replay", f"Lean rejected the environment on replay: {_first_line(exc.message)}"
            ) from None
    except ReplFailure as exc:
        if exc.reason != "crash":  # re-imports under the cap: re-checked in a new process
            raise ReplayFailed(exc.reason, f"replaying: {exc.detail}", crashed=True) from None
        raise ReplayFailed(
            "replay",
            f"the replay process died rebuilding the environment ({_first_line(exc.detail)})",
            crashed=True,
        ) from None
    finally:
        path.unlink(missing_ok=True)
    try:
        return _judge(replayer, env, plan, timeout)
    except ReplFailure as exc:
        crashed = exc.reason == "crash"
        reason = "replay" if crashed else exc.reason
        raise ReplayFailed(
            reason, f"in the replayed environment: {exc.detail}", crashed=crashed
        ) from None


def _judge(replayer: LeanRepl, env: int, plan: ReplayPlan, timeout: Callable[[], float]):
    if plan.statement is None and plan.reference is None:
        query = "\n".join(f"#print axioms _root_.{lean_name(t)}" for t in plan.theorems)
        if not query:
            return {}
        answer = replayer.command(query, env=env, timeout=timeout())
        return parse_axioms(answer.messages)
    # Scopes reset even when no statement is elaborated here: the model's leftover options
    # (`debug.skipKernelTC` would spare our `example` the kernel) and variables do not apply.
    prelude = "\n".join(filter(None, [SCOPE_RESET, header_scope_lines(plan.header)]))
    reset = replayer.command(prelude, env=env, timeout=timeout())
    if reset.errors or reset.env is None:
        first = reset.errors[0].data if reset.errors else "no environment"
        raise ReplayFailed("replay", f"cannot reset the replayed scopes: {_first_line(first)}")
    env = reset.env
    references: list[str] = []
    if plan.reference is not None:
        references.append("_root_." + lean_name(plan.reference))
    if plan.statement is not None:
        fresh = "_root_." + fresh_reference_name()
        reference = replayer.command(
            reference_command(plan.statement, fresh), env=env, timeout=timeout()
        )
        if reference.errors or reference.env is None:
            first = reference.errors[0].data if reference.errors else "no environment"
            raise ReplayFailed(
                "replay",
                f"the benchmark statement does not elaborate after replay: {_first_line(first)}",
            )
        env = reference.env
        references.append(fresh)
    axioms: list[str] | None = None
    for ref_name in references:  # each must hold; the axioms are the same every time
        axioms = _statement_check(replayer, env, plan.theorems[0], ref_name, timeout)
    assert axioms is not None
    return {plan.theorems[0]: axioms}


def _statement_check(
    replayer: LeanRepl, env: int, theorem: str, ref_name: str, timeout: Callable[[], float]
) -> list[str]:
    """`statement_check_command` in the replayed env: the axioms `theorem` rests on there, or
    ReplayFailed when it is not a proof of `ref_name`'s statement."""
    final = replayer.command(statement_check_command(theorem, ref_name), env=env, timeout=timeout())
    mismatch = [m for m in final.errors if m.pos is None or m.pos.line == 1]
    if mismatch:
        raise ReplayFailed(
            "replay",
            "after replay the theorem is not the benchmark's statement "
            f"({_first_line(mismatch[0].data)})",
        )
    reported = parse_axioms(m for m in final.messages if m.pos is None or m.pos.line == 2)
    if not reported:
        errors = [m.data for m in final.errors] or ["no `#print axioms` answer"]
        raise ReplayFailed("replay", f"#print axioms after replay: {_first_line(errors[0])}")
    return next(iter(reported.values()))


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0][:300] if lines else "no message"


@dataclass
class Replayers:
    """A small pool of replay processes. They run no header (each unpickle imports the
    pickle's own modules), so one kind serves every header; bounded by `size`."""

    start: Callable[[], LeanRepl]
    size: int
    recycle_after: int
    started: int = 0
    _idle: deque[LeanRepl] = field(default_factory=deque)
    _all: set[LeanRepl] = field(default_factory=set)
    _live: int = 0
    _closed: bool = False
    _cond: threading.Condition = field(default_factory=threading.Condition)

    @contextlib.contextmanager
    def borrow(self) -> Iterator[tuple[LeanRepl, float]]:
        """A replay process and the seconds spent waiting for it (not the proof's time)."""
        began = time.monotonic()
        repl: LeanRepl | None = None
        with self._cond:
            while True:
                if self._closed:
                    raise ReplayClosed("the verifier is shutting down")
                if self._idle:
                    candidate = self._idle.pop()
                    if candidate.alive():
                        repl = candidate
                        break
                    self._all.discard(candidate)
                    self._live -= 1
                    continue
                if self._live < self.size:
                    self._live += 1
                    break
                self._cond.wait()
        if repl is None:
            try:
                repl = self.start()
            except BaseException:
                with self._cond:
                    self._live -= 1
                    self._cond.notify_all()
                raise
            with self._cond:
                self.started += 1
                self._all.add(repl)
                if self._closed:
                    repl.close()
        waited = time.monotonic() - began
        try:
            yield repl, waited
        finally:
            repl.checks_done += 1
            self._release(repl)

    def _release(self, repl: LeanRepl) -> None:
        retire = repl.dead or repl.checks_done >= min(self.recycle_after, REPLAY_RECYCLE_MAX)
        with self._cond:
            if retire or self._closed:
                self._live -= 1
                self._all.discard(repl)
            else:
                self._idle.append(repl)
            self._cond.notify_all()
        if retire or self._closed:
            repl.close()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            repls = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._cond.notify_all()
        for repl in repls:
            repl.close()
