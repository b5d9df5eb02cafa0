"""One search's tactic-mode session on one REPL process of the pool.

Proof states live in the process that made them, so a session pins one process for its whole
life (`ReplPool.tactic_session`); the pool recycles processes between sessions only. Each state
keeps the tactics that lead to it from the root. When the process is lost mid-session (crash,
memory, timeout), the next tactic gets a new process and the states it needs are rebuilt by
sending those tactics again, transparently. The failure rules are the pool's (machinery.py):
- a tactic whose process dies (crash, memory) is run once more in a new process, after a
  known-good check passed there: dying twice is the tactic's own verdict, a dead branch, and
  a failing known-good check is a MachineryFailure;
- a timeout is the tactic's verdict at once (a dead branch), its process is replaced;
- a tactic sent again to rebuild a state follows the same rule: when its process dies, a new
  process, a known-good check there, and the path once more; dying again makes the state lost;
- a state that cannot be rebuilt (its tactics fail, answer other goals, time out, or kill the
  process twice) is lost: every tactic run from it or below it is a dead branch;
- a process that cannot start, or cannot elaborate the header or the statement, is a
  MachineryFailure (retried with backoff first, as the pool does for checks).

Nothing here accepts a proof: a path found is assembled into a whole proof and judged by the
strict verifier.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from prover.errors import MachineryFailure
from prover.lean.machinery import BreakerOpen, canary_item
from prover.lean.pool import PoolClosed, ReplPool, StatementFailure
from prover.lean.protocol import Message, TacticResponse
from prover.lean.repl import HeaderFailure, LeanRepl, ReplFailure, StartFailure
from prover.lean.tactics import (
    DEFAULT_TACTIC_HEARTBEATS,
    FailureReason,
    RootFailure,
    banned_tactic,
    failure_detail,
    failure_reason,
    start_proof,
    tactic_outcome,
    with_heartbeats,
)

ResultOutcome = Literal["proved", "open", "failed", "banned"]
_ROOT = 0
_AGAIN = " (it failed again in a new process, after a known-good check passed there)"


@dataclass(frozen=True)
class TacticState:
    """A proof state of one session. `id` is the session's own (it stays valid across process
    restarts); `goals` are Lean's pretty-printed goals, one text each (empty once proved);
    `tactics` the path from the root, as given to `TacticSession.run`."""

    id: int
    goals: tuple[str, ...]
    tactics: tuple[str, ...] = ()

    @property
    def depth(self) -> int:
        return len(self.tactics)


@dataclass(frozen=True)
class TacticResult:
    """What one tactic did. `proved`: no goal left (`state` is the finished state, its
    `tactics` the whole path); `open`: `state` has goals left; `failed`: a dead branch, `reason`
    says why; `banned`: the scan refused the tactic, nothing was sent."""

    outcome: ResultOutcome
    state: TacticState | None = None
    reason: FailureReason | None = None
    detail: str = ""
    messages: tuple[Message, ...] = ()
    time_s: float = 0.0


@dataclass(frozen=True)
class _Node:
    parent: int | None
    sent: str  # exact text sent from the parent state (empty for the root)
    state: TacticState


class _Lost(Exception):
    """A state could not be rebuilt in the current process."""


class _DiedRebuilding(Exception):
    """The process died on a tactic sent again to rebuild state `node`."""

    def __init__(self, node: int, failure: ReplFailure) -> None:
        super().__init__(str(failure))
        self.node = node


class TacticSession:
    """Tactics on one statement, all in one pinned process. Made by `ReplPool.tactic_session`;
    used by one thread at a time."""

    def __init__(
        self, pool: ReplPool, header: str, formal_statement: str, *, context: str = ""
    ) -> None:
        self.header = header
        self.formal_statement = formal_statement
        self.context = context
        self._pool = pool
        self._repl: LeanRepl | None = None
        self._nodes: list[_Node] = []
        self._ids: dict[int, int] = {}  # session state id -> proof state id in this process
        self._lost: dict[int, str] = {}  # states that could not be rebuilt -> why
        # the process lent out (`lent`) and its state ids: taken back by the next tactic
        self._lent: tuple[LeanRepl | None, dict[int, int]] | None = None
        goals = self._start(fresh=False)
        self._nodes.append(_Node(None, "", TacticState(_ROOT, goals)))
        pool._count(tactic_sessions=1)

    @property
    def root(self) -> TacticState:
        """The statement's own goal, before any tactic."""
        return self._nodes[_ROOT].state

    def run(
        self,
        state: TacticState,
        tactic: str,
        *,
        timeout: float | None = None,
        heartbeats: int | None = DEFAULT_TACTIC_HEARTBEATS,
    ) -> TacticResult:
        """Run `tactic` in `state` (a state of this session): within `timeout` seconds of wall
        clock (default: the pool's check timeout), sent as `set_option maxHeartbeats
        HEARTBEATS in TACTIC` (None: as it is). Raises MachineryFailure only when the
        machinery cannot go on (see the module's docstring); every failure of the tactic
        itself is a `failed` result."""
        began = time.monotonic()
        self._own(state)
        sent = with_heartbeats(tactic, heartbeats)
        banned = banned_tactic(sent, self.formal_statement)
        if banned is not None:
            self._pool._count(tactics_banned=1)
            elapsed = round(time.monotonic() - began, 4)
            return TacticResult("banned", None, "banned", banned, time_s=elapsed)
        limit = self._pool.config.timeout if timeout is None else timeout

        def failed(
            reason: FailureReason, detail: str, messages: tuple[Message, ...] = ()
        ) -> TacticResult:
            elapsed = round(time.monotonic() - began, 4)
            return TacticResult("failed", None, reason, detail, messages, elapsed)

        lost = self._lost_above(state.id)
        if lost is not None:
            return failed("lost", lost)
        retried = False
        died_rebuilding: set[int] = set()  # states whose rebuilding killed a process once
        while True:
            try:
                repl = self._live()
                final = frozenset(died_rebuilding)
                proof_state = self._proof_state(state.id, limit, died_before=final)
                self._pool._count(tactics=1)
                repl.checks_done += 1
                response = repl.tactic(sent, proof_state, limit)
                break
            except _Lost as exc:
                return failed("lost", str(exc))
            except _DiedRebuilding as exc:
                # a death is no verdict before a known-good check passed and it died again
                died_rebuilding.add(exc.node)
                self._restart(canary=True)
                continue
            except ReplFailure as exc:
                if exc.reason in ("crash", "memory") and not retried:
                    retried = True  # a new process, a known-good check, then once more
                    self._restart(canary=True)
                    continue
                reason: FailureReason = exc.reason  # type: ignore[assignment]
                return failed(reason, exc.detail + (_AGAIN if retried else ""))
        why = failure_reason(response)
        messages = response.messages if isinstance(response, TacticResponse) else ()
        if why is not None:
            return failed(why, failure_detail(response), messages)
        assert isinstance(response, TacticResponse)
        node = self._add(state, tactic, sent, response)
        elapsed = round(time.monotonic() - began, 4)
        return TacticResult(tactic_outcome(response), node, None, "", messages, elapsed)

    @contextlib.contextmanager
    def lent(self) -> Iterator[None]:
        """Give the pinned process back to the pool for the block; the next tactic takes one
        again. A search's whole-proof check (`pool.check`) needs a process of the pool while
        the search holds one: with one worker there is no other. The session then gets the
        same process back when it is still free, its proof states intact; otherwise another
        one, where the states are rebuilt when needed, as after a restart. Taking it back
        waits for the next tactic: a search that ends on an accepted proof needs no process,
        and a failure to start one must not cost it that proof."""
        if self._lent is not None:  # still lent out: nothing to give back
            kept, self._lent = self._lent, None
        else:
            kept = (self._repl, dict(self._ids))
            self._repl, self._ids = None, {}
            if kept[0] is not None:
                self._pool._release(kept[0])
        yield  # an error in the block ends the session: no process is taken again for it
        self._lent = kept

    def close(self) -> None:
        """Give the process back to the pool (it is recycled there if it did enough work)."""
        repl, self._repl = self._repl, None
        self._ids.clear()
        self._lent = None  # lent out: already back in the pool
        if repl is not None:
            self._pool._release(repl)

    # -- states --------------------------------------------------------------------------

    def _own(self, state: TacticState) -> None:
        if not (0 <= state.id < len(self._nodes)) or self._nodes[state.id].state != state:
            raise ValueError(f"state {state.id} is not a state of this session")

    def _add(
        self, parent: TacticState, tactic: str, sent: str, response: TacticResponse
    ) -> TacticState:
        state = TacticState(len(self._nodes), response.goals, (*parent.tactics, tactic.strip()))
        self._nodes.append(_Node(parent.id, sent, state))
        self._ids[state.id] = response.proof_state
        return state

    def _lost_above(self, state_id: int | None) -> str | None:
        while state_id is not None:
            if state_id in self._lost:
                return self._lost[state_id]
            state_id = self._nodes[state_id].parent
        return None

    def _proof_state(
        self, state_id: int, timeout: float, *, died_before: frozenset[int] = frozenset()
    ) -> int:
        """The id of `state_id` in the current process, rebuilding it (and the states above
        it that this process lacks) by sending their tactics again. A process death on a
        state not in `died_before` raises _DiedRebuilding (the caller restarts, with a
        known-good check); on one in it, or any other failure, the state is lost."""
        missing: list[int] = []
        node_id: int | None = state_id
        while node_id is not None and node_id not in self._ids:
            missing.append(node_id)
            node_id = self._nodes[node_id].parent
        assert self._repl is not None
        for node_id in reversed(missing):
            node = self._nodes[node_id]
            assert node.parent is not None  # the root is always known once started
            self._pool._count(tactic_replays=1)
            self._repl.checks_done += 1
            try:
                response = self._repl.tactic(node.sent, self._ids[node.parent], timeout)
            except ReplFailure as exc:
                died = exc.reason in ("crash", "memory")
                if died and node_id not in died_before:
                    raise _DiedRebuilding(node_id, exc) from None
                again = _AGAIN if died else ""
                self._lost[node_id] = f"rebuilding the state after a restart: {exc}{again}"
                raise _Lost(self._lost[node_id]) from None
            if (
                failure_reason(response) is not None
                or not isinstance(response, TacticResponse)
                or response.goals != node.state.goals
            ):
                self._lost[node_id] = (
                    "rebuilding the state after a restart gave another answer: "
                    + (failure_detail(response) or "other goals")
                )
                raise _Lost(self._lost[node_id])
            self._ids[node_id] = response.proof_state
        return self._ids[state_id]

    # -- the process ---------------------------------------------------------------------

    def _live(self) -> LeanRepl:
        if self._repl is None and self._lent is not None:
            kept, self._lent = self._lent, None
            if self._start(fresh=False, keep=kept) != self.root.goals:
                raise MachineryFailure("the statement's goal changed in another REPL process")
        if self._repl is None or not self._repl.alive():
            self._restart(canary=False)  # lost to a timeout (or killed from outside)
        assert self._repl is not None
        return self._repl

    def _restart(self, *, canary: bool) -> None:
        """A new process in place of the lost one; with `canary`, a known-good check must pass
        there first (MachineryFailure otherwise)."""
        self.close()
        self._pool._count(tactic_restarts=1)
        goals = self._start(fresh=True)
        assert self._repl is not None
        if canary:
            verdict, _ = self._pool._check(canary_item(self.header), borrowed=self._repl)
            if not verdict.accepted:
                raise MachineryFailure(
                    "a tactic's REPL died, and then a known-good check failed too "
                    f"({verdict.reason}: {verdict.detail or 'no detail'})"
                )
        if goals != self.root.goals:
            raise MachineryFailure("the statement's goal changed after the REPL was restarted")

    def _start(
        self, *, fresh: bool, keep: tuple[LeanRepl | None, dict[int, int]] | None = None
    ) -> tuple[str, ...]:
        """Borrow a process and build the root state there; the pool's machinery rules
        (retries with backoff, the circuit breaker) apply. With `keep` (a process this session
        gave back, and its state ids), getting that same process back keeps its states."""
        pool = self._pool
        attempts = 0
        while True:
            pool._breaker.check()
            try:
                repl = pool._acquire(self.header, fresh=fresh or attempts > 0)
                if keep is not None and repl is keep[0] and repl.alive():
                    self._repl, self._ids = repl, dict(keep[1])
                    return self.root.goals
                try:
                    proof_state, goals = self._root(repl)
                except BaseException:
                    pool._release(repl)
                    raise
            except (BreakerOpen, PoolClosed):
                raise
            except MachineryFailure as exc:
                pool._breaker.record(True, exc.cause)
                attempts += 1
                if isinstance(exc, HeaderFailure | StatementFailure):  # Lean's own answer
                    raise
                if attempts >= pool.config.machinery_attempts:
                    raise MachineryFailure(f"{exc.cause} ({attempts} attempts)") from exc
                pool._count(machinery_retries=1)
                time.sleep(pool.config.machinery_backoff_s * 2 ** (attempts - 1))
                continue
            pool._breaker.record(False)
            self._repl = repl
            self._ids = {_ROOT: proof_state}
            return goals

    def _root(self, repl: LeanRepl) -> tuple[int, tuple[str, ...]]:
        timeout = self._pool.config.timeout
        try:
            base = self._pool._base_env(repl, self.context, timeout)
            return start_proof(repl, self.formal_statement, base, timeout)
        except ReplFailure as exc:  # nothing of the model's was sent yet
            what = "the file above the theorem" if self.context else "the statement"
            raise StartFailure(
                ReplFailure(exc.reason, f"while elaborating {what}: {exc.detail}")
            ) from None
        except RootFailure as exc:
            raise StatementFailure(
                f"the benchmark statement gives no proof state to search from: {exc}"
            ) from None
