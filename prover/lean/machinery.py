"""Telling the machinery's failures from the model's, and how long to keep trying.

A check's outcome is a verdict about the proof only when the machinery that judged it worked.
`CircuitBreaker` stops a command at once when most recent checks failed for machinery reasons;
`canary_item` is the known-good check that tells a proof that crashes Lean from a Lean that
crashes on everything.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from prover.errors import MachineryFailure
from prover.lean.verdict import CheckItem

CANARY_NAME = "prover_canary_check"


def canary_item(header: str) -> CheckItem:
    """A check every working verifier accepts under any header: core Lean, no Mathlib."""
    return CheckItem(
        "prover-canary",
        header,
        f"theorem {CANARY_NAME} : (2 : Nat) + 2 = 4 := by",
        "rfl",
    )


class BreakerOpen(MachineryFailure):
    """Most recent checks failed for machinery reasons: stop now, retry nothing."""


@dataclass
class CircuitBreaker:
    """Opens when at least `threshold` of the last `window` check attempts failed for
    machinery reasons (only once `window` attempts were seen), and stays open."""

    window: int = 20
    threshold: float = 0.8
    _outcomes: deque[bool] = field(default_factory=deque)  # True: a machinery failure
    _last_cause: str = ""
    _open: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, failed: bool, cause: str = "") -> None:
        with self._lock:
            self._outcomes.append(failed)
            if len(self._outcomes) > self.window:
                self._outcomes.popleft()
            if failed:
                self._last_cause = cause
            failures = sum(self._outcomes)
            if len(self._outcomes) == self.window and failures >= self.threshold * self.window:
                self._open = (
                    f"{failures} of the last {self.window} checks failed for machinery reasons "
                    f"(last: {self._last_cause})"
                )

    def check(self) -> None:
        """Raise BreakerOpen once the breaker opened."""
        with self._lock:
            if self._open is not None:
                raise BreakerOpen(self._open)
