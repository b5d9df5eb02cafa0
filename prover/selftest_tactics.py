"""`prover selftest`, tactic mode: what only real Lean can say about the REPL's tactic mode.

Tactic mode (prover/lean/tactics.py, tactic_session.py) was written from recorded REPL
transcripts. Three things are checked against the configured Lean, through a pool session as a
search uses one:
1. the outcome rule (`tactics.tactic_outcome`, `failure_reason`) on a tiny theorem: a closing
   tactic is `proved`, a wrong one `failed` with an error, an unparsable one `failed` with the
   `Lean error` answer, `symm` leaves the swapped goal `open`, and `symm` then `exact h` is
   `proved`. Every tactic is sent as the search sends it (`set_option maxHeartbeats N in T`),
   which also shows that this Lean parses that form. A disagreement is a mismatch (exit 1);
2. whether the per-tactic heartbeat bound takes effect: `linarith` on two real hypotheses, far
   past a bound of 1 (Lean counts heartbeats in thousands of small allocations,
   `maxHeartbeats`), either fails with Lean's "maximum number of heartbeats (1)" error
   (enforced) or succeeds (not enforced). Reported, never a failure: the REPL is known to run
   tactics under its default limit (see `tactics.with_heartbeats`), and the search stays sound
   either way, with the wall-clock timeout as the bound;
3. a found path end to end: the path is assembled and judged by the strict verifier exactly as
   the search does (`search.judge_path`): accepted, through the kernel replay where the pool
   replays.
A remote verifier has no tactic mode: there, all of it is not applicable.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from prover.errors import MachineryFailure
from prover.lean import canaries as canary_set
from prover.lean.pool import ReplPool
from prover.lean.tactic_session import TacticResult, TacticSession
from prover.prove.search import SearchProblem, judge_path

THEOREM = "selftest_tactic_symm"
STATEMENT = f"theorem {THEOREM} (a b : ℕ) (h : a = b) : b = a := by\n"
HEARTBEAT_THEOREM = "selftest_tactic_heartbeats"
HEARTBEAT_STATEMENT = (
    f"theorem {HEARTBEAT_THEOREM} (x y : ℝ) (h₀ : x + y = 10) (h₁ : x - y = 2) : x = 6 := by\n"
)
HEARTBEAT_TACTIC = "linarith"
TINY_HEARTBEATS = 1  # `maxHeartbeats 0` means no limit; 1 is the smallest bound
# Lean's message for a spent budget: "(deterministic) timeout at `whnf`, maximum number of
# heartbeats (N) has been reached" (lean4 src/Lean/CoreM.lean, `throwMaxHeartbeat`), N as set.
_HEARTBEAT_ERROR = re.compile(rf"maximum number of heartbeats \({TINY_HEARTBEATS}\)")

ENFORCED = "enforced"
NOT_ENFORCED = "not enforced: the wall-clock timeout is the only bound"
NOT_SETTLED = "not settled"
NO_TACTIC_MODE = "not applicable: the remote verifier's API has no tactic mode"
PATH = ("symm", "exact h")


@dataclass(frozen=True)
class StepCheck:
    """Tactics run from the root, each after the one before: those before the last must leave
    the state open; the last one's outcome (and reason, or goal text) is the expectation."""

    id: str
    tactics: tuple[str, ...]
    outcome: str  # "proved" | "open" | "failed"
    why: str
    reason: str | None = None  # for "failed": tactics.FailureReason
    goal: str = ""  # for "open": exactly one goal, whose text contains this

    @property
    def expected(self) -> str:
        if self.outcome == "failed":
            return f"failed ({self.reason})"
        if self.outcome == "open":
            return f"open: 1 goal with `{self.goal}`"
        return self.outcome

    def judge(self, outcome: str, reason: str | None, goals: tuple[str, ...]) -> str:
        """Why the last tactic's answer disagrees with the expectation ("" when it agrees)."""
        if outcome != self.outcome:
            return f"expected {self.outcome}, got {outcome}"
        if outcome == "failed" and reason != self.reason:
            return f"failed for another reason: {reason}, not {self.reason}"
        if outcome == "open" and (len(goals) != 1 or self.goal not in goals[0]):
            return f"expected one goal with `{self.goal}`, got {len(goals)} other"
        return ""


STEP_CHECKS: tuple[StepCheck, ...] = (
    StepCheck("tactic-proved", ("exact h.symm",), "proved", "a closing tactic"),
    StepCheck("tactic-error", ("exact h",), "failed", "a type mismatch", reason="error"),
    # the unknown_tactic transcript's `exat 42`: the REPL answers {"message": "Lean error..."}
    StepCheck(
        "tactic-unparsable",
        ("exat h",),
        "failed",
        "a tactic that does not parse",
        reason="lean_error",
    ),
    StepCheck("tactic-open", ("symm",), "open", "a goal left to prove", goal="⊢ a = b"),
    StepCheck("tactic-path", PATH, "proved", "two tactics, the second in the state the first left"),
)
SEARCH_CHECK = "tactic-search-path"


@dataclass
class TacticRow:
    id: str
    expected: str
    got: str  # "" when not run
    result: str  # "ok" | "MISMATCH" | "n/a"
    note: str = ""


@dataclass
class TacticReport:
    rows: list[TacticRow]
    heartbeats: str  # ENFORCED | NOT_ENFORCED | NOT_SETTLED | "n/a"
    heartbeats_detail: str = ""
    skipped: str = ""  # why tactic mode was not checked at all

    @property
    def mismatches(self) -> list[TacticRow]:
        return [r for r in self.rows if r.result == "MISMATCH"]

    def lines(self) -> list[str]:
        """The named lines of the text output."""
        if self.skipped:
            return [f"selftest: tactic mode: {self.skipped}"]
        ok = sum(r.result == "ok" for r in self.rows)
        beats = self.heartbeats + (f" ({self.heartbeats_detail})" if self.heartbeats_detail else "")
        return [
            f"selftest: tactic mode: {len(self.rows)} checks, {ok} ok, "
            f"{len(self.mismatches)} mismatched",
            f"selftest: tactic heartbeats: {beats}",
        ]

    def to_json(self) -> dict:
        return {
            "ok": not self.mismatches,
            "rows": [asdict(r) for r in self.rows],
            "heartbeats": self.heartbeats,
            "heartbeats_detail": self.heartbeats_detail,
            "skipped": self.skipped,
        }


def not_applicable(why: str = NO_TACTIC_MODE) -> TacticReport:
    checks = [c.id for c in STEP_CHECKS] + [SEARCH_CHECK]
    return TacticReport([TacticRow(c, "-", "", "n/a", why) for c in checks], "n/a", skipped=why)


def run_tactic_checks(pool: ReplPool, version: str, *, replay: bool) -> TacticReport:
    """The checks of the module docstring on `pool`, under the canary header of `version`.
    `replay`: the pool replays accepted proofs (the probe said so). MachineryFailure (exit 2)
    when tactic mode cannot run at all."""
    header = canary_set.HEADERS[version]
    try:
        with pool.tactic_session(header, STATEMENT) as session:
            rows = [_step_row(session, check) for check in STEP_CHECKS]
            rows.append(_search_row(pool, session, header, replay=replay))
        with pool.tactic_session(header, HEARTBEAT_STATEMENT) as session:
            heartbeats, detail = _heartbeats(session)
    except MachineryFailure as exc:
        raise MachineryFailure(f"tactic mode: {exc.cause}") from None
    return TacticReport(rows, heartbeats, detail)


def _got(result: TacticResult) -> str:
    if result.outcome == "failed":
        return f"failed ({result.reason})"
    if result.outcome == "open" and result.state is not None:
        goals = result.state.goals
        target = goals[0].splitlines()[-1] if goals and goals[0] else ""
        if len(goals) == 1:
            return f"open: 1 goal with `{target}`"
        return f"open: {len(goals)} goals" + (f", the first with `{target}`" if target else "")
    return result.outcome


def _detail(result: TacticResult) -> str:
    text = result.detail or (result.state.goals[0] if result.state and result.state.goals else "")
    return " ".join(text.split())[:160]


def _step_row(session: TacticSession, check: StepCheck) -> TacticRow:
    state = session.root
    for index, tactic in enumerate(check.tactics):
        result = session.run(state, tactic)
        last = index == len(check.tactics) - 1
        if not last and (result.outcome != "open" or result.state is None):
            note = f"step {index + 1} `{tactic}` did not leave an open state: {_detail(result)}"
            return TacticRow(check.id, check.expected, _got(result), "MISMATCH", note)
        if last:
            goals = result.state.goals if result.state is not None else ()
            why = check.judge(result.outcome, result.reason, goals)
            detail = _detail(result)
            note = f"{why}: {detail}" if why and detail else why
            return TacticRow(
                check.id, check.expected, _got(result), "MISMATCH" if why else "ok", note
            )
        assert result.state is not None
        state = result.state
    raise AssertionError("a check has at least one tactic")


def _search_row(pool: ReplPool, session: TacticSession, header: str, *, replay: bool) -> TacticRow:
    expected = "ok, replayed" if replay else "ok"
    state = session.root
    for tactic in PATH:
        result = session.run(state, tactic)
        if result.state is None:
            note = f"`{tactic}` failed in tactic mode: {_detail(result)}"
            return TacticRow(SEARCH_CHECK, expected, _got(result), "MISMATCH", note)
        state = result.state
    if state.goals:
        note = f"the path left goals: {_detail(result)}"
        return TacticRow(SEARCH_CHECK, expected, _got(result), "MISMATCH", note)
    problem = SearchProblem(THEOREM, header, STATEMENT)
    verdict = judge_path(problem, state.tactics, verifier=pool, session=session)
    if verdict is None:
        note = "the verifier would not read the assembled proof as the path"
        return TacticRow(SEARCH_CHECK, expected, "not judged", "MISMATCH", note)
    got = verdict.reason + (", replayed" if verdict.replayed else "")
    good = verdict.accepted and (verdict.replayed or not replay)
    errors = [m.get("data", "") for m in verdict.messages if m.get("severity") == "error"]
    why = verdict.detail or (errors[0] if errors else "")
    note = "" if good else " ".join(why.split())[:160] or "the assembled proof was not accepted"
    return TacticRow(SEARCH_CHECK, expected, got, "ok" if good else "MISMATCH", note)


def _heartbeats(session: TacticSession) -> tuple[str, str]:
    """(ENFORCED | NOT_ENFORCED | NOT_SETTLED, a detail)."""
    result = session.run(session.root, HEARTBEAT_TACTIC, heartbeats=TINY_HEARTBEATS)
    sent = f"`set_option maxHeartbeats {TINY_HEARTBEATS} in {HEARTBEAT_TACTIC}`"
    if result.outcome == "proved":
        return NOT_ENFORCED, f"{sent} succeeded"
    texts = [result.detail, *(m.data for m in result.messages)]
    if result.outcome == "failed" and any(_HEARTBEAT_ERROR.search(t) for t in texts):
        return ENFORCED, f"{sent} failed with Lean's heartbeat error"
    return NOT_SETTLED, f"{sent}: {_got(result)}: {_detail(result) or 'no detail'}"
