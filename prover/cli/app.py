"""The `prover` command line: one Typer app, one subcommand per job."""

from __future__ import annotations

import signal
import sys

import typer

from prover.errors import MachineryFailure, UsageError
from prover.lean.remote import VerifierUnavailable
from prover.lean.replay import ReplayUnsupported
from prover.lean.sandbox import ReplNotFound, SandboxUnavailable

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


# One module per command family (each imports its heavy dependencies lazily).
from prover.cli.check import check  # noqa: E402
from prover.cli.eval import eval_command  # noqa: E402
from prover.cli.prove import prove  # noqa: E402
from prover.cli.report import report_command  # noqa: E402
from prover.cli.selftest import selftest  # noqa: E402
from prover.cli.serve import serve  # noqa: E402
from prover.cli.suite import suite_app  # noqa: E402
from prover.cli.train import train_command  # noqa: E402

app.command("check")(check)
app.command("prove")(prove)
app.command("serve")(serve)
app.command("selftest")(selftest)
app.command("eval")(eval_command)
app.command("report")(report_command)
app.add_typer(suite_app, name="suite")
app.command("train")(train_command)


# Typer's parse errors (a bad value, an unknown option or command, a missing argument): Typer
# from 0.20 on carries its own copy of Click, whose exceptions derive from TyperException;
# before that they are Click's own.
CLI_ERRORS: tuple[type[Exception], ...] = (
    (typer.TyperException,) if hasattr(typer, "TyperException") else ()
)
if not CLI_ERRORS:  # pragma: no cover - older Typer
    import click

    CLI_ERRORS = (click.ClickException,)


def _report_usage(exc: Exception) -> None:
    """A parse error as one line naming where to look. `prover` or `prover suite` with nothing
    after it: Typer has printed the help already, as before."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":
        sys.exit(2)
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    print(f"prover: {' '.join(str(message).split())}{where}", file=sys.stderr)
    sys.exit(int(getattr(exc, "exit_code", 2)))


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the pool, which kills its REPL processes


def main() -> None:
    """Console entry point: known failures become one line on stderr and exit 2."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        # not standalone: a bad option value or an unknown command comes back here as an
        # exception, to be printed as one line like every other bad input
        code = app(standalone_mode=False)
    except CLI_ERRORS as exc:
        _report_usage(exc)
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
        # one line, whatever the cause quotes (a REPL's stderr has line breaks)
        print(f"prover: {prefix}{' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("prover: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Abort:
        print("prover: aborted", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
