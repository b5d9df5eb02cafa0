"""`prover train` (placeholder until it lands)."""

from __future__ import annotations

from prover.errors import UsageError


def train_command() -> None:
    """Not yet available."""
    raise UsageError("`prover train` is not available yet")
