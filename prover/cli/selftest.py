"""`prover selftest`: the verifier against its built-in canaries on the configured Lean."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from prover.cli.verifier_options import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MEMORY_MB,
    DEFAULT_RECYCLE_AFTER,
    DEFAULT_SANDBOX,
    DEFAULT_TIMEOUT,
    HeaderTimeout,
    MemoryMb,
    RecycleAfter,
    Repl,
    ReplCwd,
    Sandbox,
    Timeout,
    VerifierUrl,
    Workers,
    verifier_config,
)


def selftest(
    lean_only: Annotated[
        bool,
        typer.Option(
            "--lean-only",
            help="Text scan off: show that Lean's own rungs (error, sorry, axioms, kernel "
            "replay) reject every cheat; scan-only refusals are skipped with a reason.",
        ),
    ] = False,
    lean_version: Annotated[
        str | None,
        typer.Option(
            "--lean-version",
            help="Canaries for this Lean (4.9, 4.24, 4.27; default: the version the verifier "
            "runs).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    timeout: Timeout = DEFAULT_TIMEOUT,
    memory_mb: MemoryMb = DEFAULT_MEMORY_MB,
    sandbox: Sandbox = DEFAULT_SANDBOX,
    repl: Repl = None,
    repl_cwd: ReplCwd = None,
    workers: Workers = None,
    recycle_after: RecycleAfter = DEFAULT_RECYCLE_AFTER,
    header_timeout: HeaderTimeout = DEFAULT_HEADER_TIMEOUT,
    verifier: VerifierUrl = None,
) -> None:
    """Check the verifier against built-in canaries (honest proofs and known cheats) on the
    configured Lean, and the REPL's tactic mode (its outcome rule, a found path judged end to end,
    whether the per-tactic heartbeat bound takes effect). Exit 0 if every answer is the
    expected one, 1 on any mismatch, 2 if the checks cannot run at all (no REPL, header fails,
    server unreachable)."""
    from prover.selftest import MachineryFailure, render, run_selftest

    config = verifier_config(
        timeout=timeout,
        memory_mb=memory_mb,
        sandbox=sandbox,
        repl=repl,
        repl_cwd=repl_cwd,
        workers=workers,
        allow_native=False,  # the canaries expect the default: native_decide is rejected
        recycle_after=recycle_after,
        header_timeout=header_timeout,
        verifier_url=verifier,
    )
    try:
        outcome = run_selftest(config, lean_only=lean_only, lean_version=lean_version)
    except MachineryFailure as exc:
        print(
            f"prover selftest: cannot run the canaries (no verdict about any canary): {exc}",
            file=sys.stderr,
        )
        raise typer.Exit(2) from None
    render(outcome, as_json=as_json)
    raise typer.Exit(0 if outcome.ok else 1)


