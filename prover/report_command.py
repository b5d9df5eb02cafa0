"""`prover report` (placeholder until it lands)."""

from __future__ import annotations

from prover.errors import UsageError


def report_command() -> None:
    """Not yet available."""
    raise UsageError("`prover report` is not available yet")
