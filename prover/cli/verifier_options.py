"""The verifier options every Lean-running command takes (`check`, later `prove`, `eval`, ...)."""

from __future__ import annotations

from typing import Annotated

import typer

from prover.lean.pool import VerifierConfig

PANEL = "Verifier"

Timeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        help="Wall-clock seconds per check; the REPL is killed and restarted after.",
        rich_help_panel=PANEL,
        min=0.001,
    ),
]
MemoryMb = Annotated[
    int,
    typer.Option(
        "--memory-mb",
        help="Address-space cap per REPL process (RLIMIT_AS / container limit).",
        rich_help_panel=PANEL,
        min=64,
    ),
]
Sandbox = Annotated[
    str,
    typer.Option(
        "--sandbox",
        help="auto | bwrap | docker | none. auto = bwrap when it works here (none inside the "
        "project's container). `none` runs the REPL as a plain subprocess: for trusted input only.",
        rich_help_panel=PANEL,
    ),
]
Repl = Annotated[
    str | None,
    typer.Option(
        "--repl",
        help="Command that starts a Lean REPL (default: $PROVER_REPL, else the image's "
        "`lake env /opt/lean/repl/.lake/build/bin/repl` in /opt/lean/mathlib4).",
        rich_help_panel=PANEL,
    ),
]
ReplCwd = Annotated[
    str | None,
    typer.Option(
        "--repl-cwd",
        help="Directory the REPL runs in (default: $PROVER_REPL_CWD).",
        rich_help_panel=PANEL,
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="REPL processes checking at once (default: min(CPUs - 1, free memory / "
        "memory cap), at least 1).",
        rich_help_panel=PANEL,
        min=1,
    ),
]
AllowNative = Annotated[
    bool,
    typer.Option(
        "--allow-native",
        help="Accept proofs that use native evaluation (native_decide).",
        rich_help_panel=PANEL,
    ),
]
VerifierUrl = Annotated[
    str | None,
    typer.Option(
        "--verifier",
        help="Send checks to a Kimina-compatible server (`prover serve`, a Kimina Lean Server "
        "fleet) instead of a local REPL pool; $PROVER_API_KEY is sent as its API key.",
        rich_help_panel=PANEL,
        envvar="PROVER_VERIFIER_URL",
    ),
]
RecycleAfter = Annotated[
    int,
    typer.Option(
        "--recycle-after",
        help="Restart a REPL after this many checks (it never frees memory).",
        rich_help_panel=PANEL,
        min=1,
    ),
]
# Defaults live once, in VerifierConfig: every command's option defaults read them from there.
DEFAULT_HEADER_TIMEOUT = VerifierConfig.header_timeout
DEFAULT_TIMEOUT = VerifierConfig.timeout
DEFAULT_MEMORY_MB = VerifierConfig.memory_mb
DEFAULT_SANDBOX = VerifierConfig.sandbox
DEFAULT_RECYCLE_AFTER = VerifierConfig.recycle_after
HeaderTimeout = Annotated[
    float,
    typer.Option(
        "--header-timeout",
        help="Seconds a REPL process may take to elaborate its header (`import Mathlib` ...), "
        "apart from --timeout; a line is printed every 30 s while it runs. A failing start is "
        "retried twice, then the command stops (exit 2).",
        rich_help_panel=PANEL,
        min=0.001,
    ),
]
NoReplay = Annotated[
    bool,
    typer.Option(
        "--no-replay",
        help="Skip the kernel replay rung (an accepted proof's environment rebuilt through "
        "Lean's kernel in a fresh REPL, then judged again). Needed for REPLs from v4.30 on, "
        "whose unpickling does not re-check.",
        rich_help_panel=PANEL,
    ),
]

AllowVersionMismatch = Annotated[
    bool,
    typer.Option(
        "--allow-version-mismatch",
        help="Run a suite on a checker whose Lean version differs from the suite's (a warning "
        "instead of exit 2; statements may not elaborate).",
        rich_help_panel=PANEL,
    ),
]


def verifier_config(
    *,
    timeout: float,
    memory_mb: int,
    sandbox: str,
    repl: str | None,
    repl_cwd: str | None,
    workers: int | None,
    allow_native: bool,
    recycle_after: int,
    verifier_url: str | None = None,
    replay: bool = True,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
) -> VerifierConfig:
    return VerifierConfig(
        verifier_url=verifier_url,
        repl=repl,
        repl_cwd=repl_cwd,
        sandbox=sandbox,
        memory_mb=memory_mb,
        timeout=timeout,
        workers=workers,
        allow_native=allow_native,
        recycle_after=recycle_after,
        replay=replay,
        header_timeout=header_timeout,
    )
