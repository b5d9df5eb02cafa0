"""`prover suite ...` (placeholder until it lands)."""

from __future__ import annotations

import typer

from prover.errors import UsageError

suite_app = typer.Typer(help="Benchmark suites: list and check them.", no_args_is_help=True)


@suite_app.command("check")
def suite_check() -> None:
    """Not yet available."""
    raise UsageError("`prover suite check` is not available yet")
