"""`prover train CONFIG.yaml [--resume] [KEY.PATH=VALUE ...]`: alpha-DPG or TRL's GRPO on a
suite, or SFT of a step-level model on traced tactics, from one YAML config (schema:
`training.train_config`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prover.errors import UsageError


def train_command(
    config: Annotated[
        Path, typer.Argument(help="The run's YAML config (see configs/).", metavar="CONFIG.yaml")
    ],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            help="Settings over the file's, as KEY.PATH=VALUE (YAML values): method.alpha=0.25 "
            "optim.max_steps=50 output_dir=runs/a25.",
            show_default=False,
            metavar="KEY.PATH=VALUE",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue from the newest checkpoint in output_dir."),
    ] = False,
    strict_data: Annotated[
        bool,
        typer.Option(
            "--strict-data",
            help="Refuse (not just warn) when training statements are in data.eval_suite.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check the config, the data and the trainer settings; print the resolved "
            "config; load no model.",
        ),
    ] = False,
) -> None:
    """Train a prover with alpha-DPG (or TRL's GRPO) against a verifier, or fine-tune a
    step-level one on traced tactics (method.name: sft): checkpoints in output_dir, the final
    model and tokenizer in output_dir/final (for `prover eval --model`)."""
    from training.train_config import ConfigError, dump_train_config, load_train_config

    try:
        loaded = load_train_config(config, overrides or [])
        if dry_run:
            from training.train_run import prepare, trainer_args

            prepared = prepare(loaded, strict_data=strict_data)
            trainer_args(loaded)
            for line in prepared.warnings:
                typer.echo(line, err=True)
            typer.echo(dump_train_config(loaded), nl=False)
            typer.echo(f"# {prepared.describe()}", err=True)
            return
        from training.train_run import is_main_process, run

        final = run(loaded, resume=resume, strict_data=strict_data)
    except ConfigError as exc:
        raise UsageError(f"{config}: {exc}") from None
    if is_main_process():
        typer.echo(f"final model: {final}")
