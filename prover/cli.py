"""The `prover` command line: one Typer app, one subcommand per job."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from prover.errors import MachineryFailure, UsageError
from prover.lean.remote import VerifierUnavailable
from prover.lean.replay import ReplayUnsupported
from prover.lean.sandbox import ReplNotFound, SandboxUnavailable
from prover.model_options import (
    ApiBase,
    ApiKey,
    Backend,
    MaxNewTokens,
    Model,
    PromptFormatName,
    Seed,
    Temperature,
    TopP,
)
from prover.verifier_options import (
    DEFAULT_HEADER_TIMEOUT,
    AllowNative,
    HeaderTimeout,
    MemoryMb,
    NoReplay,
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
    header_timeout: HeaderTimeout = DEFAULT_HEADER_TIMEOUT,
    no_replay: NoReplay = False,
    verifier: VerifierUrl = None,
) -> None:
    """Did Lean accept these proofs? Strict: no error, no sorry, the benchmark's own statement,
    only the standard axioms. Exit 0 only if every proof in FILE is accepted."""
    from prover.check_command import run_file, run_jsonl
    from prover.verifier_options import open_verifier

    if (file is None) == (jsonl is None):
        raise UsageError("give either FILE or --jsonl ITEMS.jsonl")
    if jsonl is not None and as_json:
        raise UsageError("--json is for FILE mode; JSONL mode always writes JSON lines")
    if file is not None and out is not None:
        raise UsageError("--out is for --jsonl mode; FILE mode prints its report (--json)")
    if jsonl is not None and out is not None:
        from prover.check_command import refuse_output_over_input

        refuse_output_over_input(jsonl, out)  # before any verdict is appended to the input
    config = verifier_config(
        timeout=timeout,
        memory_mb=memory_mb,
        sandbox=sandbox,
        repl=repl,
        repl_cwd=repl_cwd,
        workers=workers,
        allow_native=allow_native,
        recycle_after=recycle_after,
        header_timeout=header_timeout,
        replay=not no_replay,
        verifier_url=verifier,
    )
    if file is not None:
        text = read_lean_file(file)  # bad input fails before any REPL starts
        with open_verifier(config) as checker:
            code = run_file(checker, file, text, as_json=as_json)
    else:
        assert jsonl is not None
        with open_verifier(config) as checker:
            code = run_jsonl(checker, jsonl, out)
    raise typer.Exit(code)


@app.command()
def prove(
    file: Annotated[Path, typer.Argument(help="A .lean file whose `sorry`s to fill.")],
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Rewrite FILE (a FILE.bak backup is kept).")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the filled file here.")
    ] = None,
    diff: Annotated[
        bool, typer.Option("--diff", help="Print a unified diff (the default).")
    ] = False,
    attempts: Annotated[int, typer.Option(help="Candidates sampled per round.", min=1)] = 8,
    rounds: Annotated[int, typer.Option(help="Rounds per theorem at most.", min=1)] = 4,
    budget: Annotated[
        float | None, typer.Option(help="Seconds per theorem at most.", min=0)
    ] = None,
    feedback: Annotated[
        bool, typer.Option(help="Show the model Lean's errors for its best failed attempt.")
    ] = True,
    backend: Backend = "transformers",
    model: Model = None,
    api_base: ApiBase = None,
    api_key: ApiKey = None,
    prompt_format: PromptFormatName = None,
    temperature: Temperature = 1.0,
    top_p: TopP = 0.95,
    max_new_tokens: MaxNewTokens = 2048,
    seed: Seed = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    timeout: Timeout = 300.0,
    memory_mb: MemoryMb = 12288,
    sandbox: Sandbox = "auto",
    repl: Repl = None,
    repl_cwd: ReplCwd = None,
    workers: Workers = None,
    allow_native: AllowNative = False,
    recycle_after: RecycleAfter = 1000,
    header_timeout: HeaderTimeout = DEFAULT_HEADER_TIMEOUT,
    no_replay: NoReplay = False,
    verifier: VerifierUrl = None,
) -> None:
    """Fill every `sorry` in FILE with a proof Lean accepted. Exit 0 if all were filled,
    1 if some remain, 2 on bad input. Without --in-place or --output, FILE is never changed."""
    from prover.models.base import SamplingParams
    from prover.models.errors import ModelBackendError
    from prover.models.registry import default_model, load_backend
    from prover.prompts import format_for_model, get_format
    from prover.prove_command import run_prove
    from prover.verifier_options import open_verifier

    if sum((in_place, output is not None, diff)) > 1:
        raise UsageError("choose one of --in-place, --output, --diff")
    text = read_lean_file(file)
    if output is not None:  # found before hours of proving, not after
        if output.resolve() == file.resolve():
            raise UsageError("--output is FILE itself: use --in-place (it keeps a backup)")
        if output.is_dir() or not output.parent.is_dir():
            raise UsageError(f"{output}: cannot write there (no such directory, or a directory)")
    config = verifier_config(
        timeout=timeout,
        memory_mb=memory_mb,
        sandbox=sandbox,
        repl=repl,
        repl_cwd=repl_cwd,
        workers=workers,
        allow_native=allow_native,
        recycle_after=recycle_after,
        header_timeout=header_timeout,
        replay=not no_replay,
        verifier_url=verifier,
    )
    model_name = model or default_model(backend)
    try:
        fmt = get_format(prompt_format or format_for_model(model_name))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with open_verifier(config) as checker:
        try:
            llm = load_backend(backend, model_name, api_base=api_base, api_key=api_key)
        except ModelBackendError as exc:
            raise UsageError(str(exc)) from None
        try:
            code = run_prove(
                file,
                text,
                backend=llm,
                prompt_format=fmt,
                verifier=checker,
                attempts=attempts,
                rounds=rounds,
                budget_s=budget,
                params=SamplingParams(attempts, temperature, top_p, max_new_tokens, seed),
                feedback=feedback,
                mode="in-place" if in_place else "output" if output else "diff",
                output=output,
                as_json=as_json,
            )
        finally:
            llm.close()
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (1-65535).")] = 8000,
    warm_header: Annotated[
        str,
        typer.Option(
            help="Elaborate this header in every worker at start, in the background; /health "
            'answers 503 "starting" until then. "" turns the warm-up off.'
        ),
    ] = "import Mathlib",
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
    model: Annotated[
        str | None,
        typer.Option(
            help="Load this model to answer POST /prove (off by default).", rich_help_panel="Model"
        ),
    ] = None,
    backend: Annotated[
        str, typer.Option(help="transformers | vllm | openai", rich_help_panel="Model")
    ] = "transformers",
    api_base: Annotated[str | None, typer.Option(rich_help_panel="Model")] = None,
    prompt_format: Annotated[str | None, typer.Option(rich_help_panel="Model")] = None,
    timeout: Timeout = 300.0,
    memory_mb: MemoryMb = 12288,
    sandbox: Sandbox = "auto",
    repl: Repl = None,
    repl_cwd: ReplCwd = None,
    workers: Workers = None,
    recycle_after: RecycleAfter = 1000,
    header_timeout: HeaderTimeout = DEFAULT_HEADER_TIMEOUT,
    no_replay: NoReplay = False,
) -> None:
    """Serve the verifier over HTTP: Kimina-compatible `POST /api/check` and `POST /verify`,
    `GET /health`, `GET /metrics`. Set PROVER_API_KEY to require that key."""
    import contextlib
    import os

    import uvicorn

    from prover.lean.pool import ReplPool
    from prover.lean.sandbox import IN_CONTAINER_VAR, resolve_kind
    from prover.server.app import create_app
    from prover.server.listen import listening_socket

    config = verifier_config(
        timeout=timeout,
        memory_mb=memory_mb,
        sandbox=sandbox,
        repl=repl,
        repl_cwd=repl_cwd,
        workers=workers,
        allow_native=False,
        recycle_after=recycle_after,
        header_timeout=header_timeout,
        replay=not no_replay,
    )
    kind = resolve_kind(sandbox)
    if kind == "none" and not insecure and not os.environ.get(IN_CONTAINER_VAR):
        raise UsageError(
            "prover serve runs code from the network: use a sandbox (bwrap, docker), "
            "or pass --insecure to run it unsandboxed"
        )
    sock = listening_socket(host, port)  # a bad --host/--port: one line, before any REPL
    try:
        ReplPool(config).close()  # fail now, in one line, if the REPL or sandbox is missing
        prover = None
        if model is not None:  # loaded now: a bad model is a one-line error, not a traceback
            from prover.models.errors import ModelBackendError
            from prover.models.registry import load_backend
            from prover.prompts import format_for_model, get_format

            try:
                fmt = get_format(prompt_format or format_for_model(model))
                key = os.environ.get("OPENAI_API_KEY")
                prover = (load_backend(backend, model, api_base=api_base, api_key=key), fmt)
            except (ValueError, ModelBackendError) as exc:
                raise UsageError(str(exc)) from None
        app = create_app(
            lambda: ReplPool(config),
            prover=prover,
            api_key=os.environ.get("PROVER_API_KEY") or None,
            max_queue=max_queue,
            max_request_bytes=int(max_request_mb * 1024 * 1024),
            warm_header=warm_header,
        )
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=int(timeout) + 30)
        )
        shown = f"[{host}]" if ":" in host else host
        print(f"prover serve: listening on http://{shown}:{port}", file=sys.stderr, flush=True)
        # as `uvicorn.run`: a signal uvicorn re-raises after its clean shutdown ends quietly
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    finally:
        sock.close()


@app.command()
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
    timeout: Timeout = 300.0,
    memory_mb: MemoryMb = 12288,
    sandbox: Sandbox = "auto",
    repl: Repl = None,
    repl_cwd: ReplCwd = None,
    workers: Workers = None,
    recycle_after: RecycleAfter = 1000,
    header_timeout: HeaderTimeout = DEFAULT_HEADER_TIMEOUT,
    verifier: VerifierUrl = None,
) -> None:
    """Check the verifier against built-in canaries (honest proofs and known cheats) on the
    configured Lean. Exit 0 if every verdict is the expected one, 1 on any mismatch, 2 if the
    canaries cannot run at all (no REPL, header fails, server unreachable)."""
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
    raise typer.Exit(1 if outcome.mismatches else 0)


# Subcommands that live in their own modules (each imports its heavy dependencies lazily).
from prover.eval_command import eval_command  # noqa: E402
from prover.report_command import report_command  # noqa: E402
from prover.suite_command import suite_app  # noqa: E402
from prover.train_command import train_command  # noqa: E402

app.command("eval")(eval_command)
app.command("report")(report_command)
app.add_typer(suite_app, name="suite")
app.command("train")(train_command)


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
        # utf-8-sig: a leading byte order mark is an encoding signature, not Lean text
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    nul = text.find("\0")
    if nul >= 0:  # never Lean source; tools on the way could cut the text there
        raise UsageError(f"{path}: holds a NUL character (line {text.count(chr(10), 0, nul) + 1})")
    return text


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the pool, which kills its REPL processes


def main() -> None:
    """Console entry point: known failures become one line on stderr and exit 2."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()  # standalone: usage errors are reported by Typer (exit 2), then sys.exit
    except (
        UsageError,
        MachineryFailure,
        ReplNotFound,
        SandboxUnavailable,
        VerifierUnavailable,
        ReplayUnsupported,
    ) as exc:
        prefix = (
            "verifier machinery failed (not a verdict on any proof): "
            if isinstance(exc, MachineryFailure) and not isinstance(exc, VerifierUnavailable)
            else ""
        )
        print(f"prover: {prefix}{exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("prover: interrupted", file=sys.stderr)
        sys.exit(130)
