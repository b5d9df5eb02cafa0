"""The `prover` command line: one Typer app, one subcommand per job."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from prover.errors import UsageError
from prover.lean.remote import VerifierUnavailable
from prover.lean.sandbox import ReplNotFound, SandboxUnavailable
from prover.verifier_options import (
    AllowNative,
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

app = typer.Typer(
    name="prover",
    help="Train and evaluate Lean 4 theorem provers; fill `sorry`s with proofs Lean accepted.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root() -> None:
    """Train and evaluate Lean 4 theorem provers; fill `sorry`s with proofs Lean accepted."""


@app.command()
def check(
    file: Annotated[
        Path | None, typer.Argument(help="A .lean file: judge each theorem in it.")
    ] = None,
    jsonl: Annotated[
        Path | None,
        typer.Option(
            "--jsonl", help="Check records {name, header, formal_statement, proof}, one per line."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="JSONL mode: append verdicts here (a re-run skips finished records)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="FILE mode: print one JSON document.")
    ] = False,
    timeout: Timeout = 300.0,
    memory_mb: MemoryMb = 12288,
    sandbox: Sandbox = "auto",
    repl: Repl = None,
    repl_cwd: ReplCwd = None,
    workers: Workers = None,
    allow_native: AllowNative = False,
    recycle_after: RecycleAfter = 1000,
    verifier: VerifierUrl = None,
) -> None:
    """Did Lean accept these proofs? Strict: no error, no sorry, the benchmark's own statement,
    only the standard axioms. Exit 0 only if every proof in FILE is accepted."""
    from prover.check_command import run_file, run_jsonl
    from prover.lean.pool import ReplPool
    from prover.verifier_options import open_verifier

    if (file is None) == (jsonl is None):
        raise UsageError("give either FILE or --jsonl ITEMS.jsonl")
    if jsonl is not None and as_json:
        raise UsageError("--json is for FILE mode; JSONL mode always writes JSON lines")
    if file is not None and out is not None:
        raise UsageError("--out is for --jsonl mode; FILE mode prints its report (--json)")
    config = verifier_config(
        timeout=timeout,
        memory_mb=memory_mb,
        sandbox=sandbox,
        repl=repl,
        repl_cwd=repl_cwd,
        workers=workers,
        allow_native=allow_native,
        recycle_after=recycle_after,
        verifier_url=verifier,
    )
    if file is not None:
        if verifier:
            raise UsageError("FILE mode runs on a local REPL; use --jsonl with --verifier")
        text = read_lean_file(file)  # bad input fails before any REPL starts
        with ReplPool(config) as pool:
            code = run_file(pool, file, text, as_json=as_json)
    else:
        assert jsonl is not None
        with open_verifier(config) as checker:
            code = run_jsonl(checker, jsonl, out)
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    max_queue: Annotated[
        int | None,
        typer.Option(help="Snippets accepted at once (default: 8 per worker); beyond: HTTP 429."),
    ] = None,
    max_request_mb: Annotated[
        float, typer.Option(help="Largest request body accepted (HTTP 413 beyond).")
    ] = 8.0,
    insecure: Annotated[
        bool,
        typer.Option(help="Allow --sandbox none: untrusted code would run unsandboxed."),
    ] = False,
    timeout: Timeout = 300.0,
    memory_mb: MemoryMb = 12288,
    sandbox: Sandbox = "auto",
    repl: Repl = None,
    repl_cwd: ReplCwd = None,
    workers: Workers = None,
    recycle_after: RecycleAfter = 1000,
) -> None:
    """Serve the verifier over HTTP: Kimina-compatible `POST /api/check` and `POST /verify`,
    `GET /health`, `GET /metrics`. Set PROVER_API_KEY to require that key."""
    import os

    import uvicorn

    from prover.lean.pool import ReplPool
    from prover.lean.sandbox import IN_CONTAINER_VAR, resolve_kind
    from prover.server.app import create_app

    config = verifier_config(
        timeout=timeout,
        memory_mb=memory_mb,
        sandbox=sandbox,
        repl=repl,
        repl_cwd=repl_cwd,
        workers=workers,
        allow_native=False,
        recycle_after=recycle_after,
    )
    kind = resolve_kind(sandbox)
    if kind == "none" and not insecure and not os.environ.get(IN_CONTAINER_VAR):
        raise UsageError(
            "prover serve runs code from the network: use a sandbox (bwrap, docker), "
            "or pass --insecure to run it unsandboxed"
        )
    ReplPool(config).close()  # fail now, in one line, if the REPL or sandbox is missing
    app = create_app(
        lambda: ReplPool(config),
        api_key=os.environ.get("PROVER_API_KEY") or None,
        max_queue=max_queue,
        max_request_bytes=int(max_request_mb * 1024 * 1024),
    )
    uvicorn.run(app, host=host, port=port, timeout_graceful_shutdown=int(timeout) + 30)


def read_lean_file(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, expected a .lean file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the pool, which kills its REPL processes


def main() -> None:
    """Console entry point: known failures become one line on stderr and exit 2."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()  # standalone: usage errors are reported by Typer (exit 2), then sys.exit
    except (UsageError, ReplNotFound, SandboxUnavailable, VerifierUnavailable) as exc:
        print(f"prover: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("prover: interrupted", file=sys.stderr)
        sys.exit(130)
