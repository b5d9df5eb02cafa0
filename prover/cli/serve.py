"""`prover serve`: the verifier (and optionally a model) over HTTP."""

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
    NoReplay,
    RecycleAfter,
    Repl,
    ReplCwd,
    Sandbox,
    Timeout,
    Workers,
    verifier_config,
)
from prover.errors import UsageError


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
    timeout: Timeout = DEFAULT_TIMEOUT,
    memory_mb: MemoryMb = DEFAULT_MEMORY_MB,
    sandbox: Sandbox = DEFAULT_SANDBOX,
    repl: Repl = None,
    repl_cwd: ReplCwd = None,
    workers: Workers = None,
    recycle_after: RecycleAfter = DEFAULT_RECYCLE_AFTER,
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
    # out of range, these would refuse every request (or silently mean the default): say so now
    if max_queue is not None and max_queue < 1:
        raise UsageError(f"--max-queue {max_queue}: must be at least 1 (snippets accepted at once)")
    if not max_request_mb > 0:
        raise UsageError(f"--max-request-mb {max_request_mb:g}: must be above 0")
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

