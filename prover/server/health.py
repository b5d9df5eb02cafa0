"""What `GET /health` says about the verifier's machinery: "starting", "ok" or "degraded".

The rule, kept small on purpose:
- "degraded" while the last `DEGRADED_AFTER` (3) machinery failures are all more recent than
  the last success, i.e. 3 or more failures since the last success. A machinery failure is a
  REPL or header that cannot start (`MachineryFailure`, or a `ReplFailure`/`HeaderFailure` of
  the warm-up), counted once per failed request or warm-up round; a success is a warm-up round
  that elaborated the header in every worker, or any snippet that reached Lean, whatever Lean
  answered. Degraded wins over "starting": a server whose REPL cannot start says so instead of
  "starting" for ever.
- "starting" until the warm-up header is elaborated in every worker (at once when warm-up is
  off).
- "ok" otherwise.
"""

from __future__ import annotations

import threading
from typing import Literal

DEGRADED_AFTER = 3
DETAIL_CHARS = 400

Status = Literal["starting", "ok", "degraded"]


def one_line(text: str, limit: int = DETAIL_CHARS) -> str:
    """`text` (stderr included) on one line, cut to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class MachineryHealth:
    """Counts machinery failures since the last success; thread-safe."""

    def __init__(self, *, warm: bool, degraded_after: int = DEGRADED_AFTER) -> None:
        self._lock = threading.Lock()
        self._warm = warm
        self._degraded_after = degraded_after
        self._failures_since_success = 0
        self._last_failure: str | None = None

    def success(self) -> None:
        with self._lock:
            self._failures_since_success = 0

    def failure(self, cause: str) -> None:
        with self._lock:
            self._failures_since_success += 1
            self._last_failure = one_line(cause)

    def mark_warm(self) -> None:
        with self._lock:
            self._warm = True

    @property
    def warm(self) -> bool:
        with self._lock:
            return self._warm

    @property
    def degraded(self) -> bool:
        with self._lock:
            return self._failures_since_success >= self._degraded_after

    def status(self) -> tuple[Status, str | None]:
        """The status and, when not "ok", one line saying why."""
        with self._lock:
            if self._failures_since_success >= self._degraded_after:
                return "degraded", self._last_failure
            if not self._warm:
                last = (
                    f" (last failure: {self._last_failure})" if self._failures_since_success else ""
                )
                return "starting", f"elaborating the warm-up header in every worker{last}"
            return "ok", None
