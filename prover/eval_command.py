"""`prover eval` (placeholder until it lands)."""

from __future__ import annotations

from prover.errors import UsageError


def eval_command() -> None:
    """Not yet available."""
    raise UsageError("`prover eval` is not available yet")
