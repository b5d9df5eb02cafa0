"""The `prover` command line: one Typer app (`app.py`), one module per command family."""

from prover.cli.app import app, main

__all__ = ["app", "main"]
