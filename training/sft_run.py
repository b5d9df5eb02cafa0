"""One `prover train` run with `method.name: sft`: TRL's `SFTTrainer` on (state, tactic) pairs
read from LeanDojo's traced-tactic format (`training.tactic_data`), written as prompt/completion
text by a step format (`training.step_text`), the loss on the tactic only.

Model loading, checkpoints (TRL's, under output_dir), `--resume`, the summary lines,
`train_config.yaml`, `final/`, `log_history.json` and `training_curves.png` are as for the other
methods (`training.train_run`). No verifier is opened: SFT learns from the data alone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from training.step_text import StepText, step_text_for
from training.tactic_data import TacticDataError, TacticOptions, read_traced_tactics
from training.train_config import ConfigError, SFTMethod, TrainConfig


@dataclass
class PreparedSFT:
    """The pairs as prompt/completion rows, checked before the model loads."""

    rows: list[dict[str, Any]]
    step_text: StepText
    theorems: int
    warnings: list[str]

    @property
    def prompt_format(self) -> StepText:  # what the dry run and the start line name
        return self.step_text

    def describe(self) -> str:
        return (f"{len(self.rows)} (state, tactic) pairs from {self.theorems} theorems "
                f"({self.step_text.name}), no verifier")  # fmt: skip


def method_of(config: TrainConfig) -> SFTMethod:
    assert isinstance(config.method, SFTMethod)
    return config.method


def prepare_sft(config: TrainConfig) -> PreparedSFT:
    """The training rows: {prompt, completion} per pair, TRL's prompt-completion format (with
    `completion_only_loss`, the prompt's tokens carry no loss)."""
    method = method_of(config)
    try:
        step_text = step_text_for(config.model.name, config.model.prompt_format)
    except ValueError as exc:
        raise ConfigError(f"model.prompt_format: {exc}") from None
    options = TacticOptions(method.annotated, method.keep_marks, method.normalize_whitespace)
    try:
        data = read_traced_tactics(config.data.tactics or "", options, limit=config.data.limit)
    except TacticDataError as exc:
        raise ConfigError(f"data.tactics: {exc}") from None
    rows = [row for pair in data.pairs if (row := step_text.row(pair)) is not None]
    warnings = []
    unread = len(data.pairs) - len(rows)
    if unread:
        warnings.append(f"warning: {unread} of {len(data.pairs)} tactics would not read back "
                        f"from a {step_text.name} completion: dropped")  # fmt: skip
    if not rows:
        raise ConfigError(f"model.prompt_format: {step_text.name} reads back none of the "
                          f"{len(data.pairs)} tactics of {config.data.tactics}")  # fmt: skip
    if data.skipped_no_goals:
        n = data.skipped_no_goals
        warnings.append(f"note: {n} step{'s' if n != 1 else ''} on 'no goals' skipped")
    return PreparedSFT(rows, step_text, data.theorems, warnings)


def sft_args(config: TrainConfig, *, cuda: bool | None = None) -> Any:
    """TRL's SFTConfig from the config; its refusals become one-line ConfigErrors."""
    from trl import SFTConfig

    from training.train_run import _init_kwargs, optim_arguments

    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    known = {f.name for f in fields(SFTConfig)}
    for key in config.trl:
        if key not in known:
            raise ConfigError(f"trl.{key}: not an SFTConfig setting")
    method = method_of(config)
    kwargs: dict[str, Any] = {
        **optim_arguments(config, cuda=cuda),
        "max_length": method.max_length,
        "completion_only_loss": True,  # learn the tactic, not the state
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "logging_steps": config.logging_steps,
        "report_to": [],
        "disable_tqdm": True,  # the summary callback prints one line per logging step
        **config.trl,
    }
    if config.model.name is not None:
        kwargs["model_init_kwargs"] = _init_kwargs(config)  # None for a GGUF file
    try:
        return SFTConfig(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"sft: {' '.join(str(exc).split())}") from None


def run_sft(
    config: TrainConfig, *, resume: bool = False, emit: Callable[[str], None] | None = None
) -> Path:
    """Train; returns output_dir/final. ConfigError for whatever the user can fix."""
    from training import train_run as base

    say = emit or (lambda line: print(line, file=sys.stderr, flush=True))
    output_dir = Path(config.output_dir)
    checkpoint = base.check_resume(config, output_dir, resume)
    if checkpoint is not None:
        step = base.checkpoint_step(checkpoint)
        if step >= config.optim.max_steps:
            return base._already_finished(output_dir, checkpoint, step, config, say)
    prepared = prepare_sft(config)
    args = sft_args(config)
    main_process = base.is_main_process()
    if main_process:
        for line in prepared.warnings:
            say(line)
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / base.SAVED_CONFIG).write_text(base.dump_train_config(config), "utf-8")
    base._quiet()
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # TRL's dataset preparation: one bar per map, not a log
    model, tokenizer = base.load_model(config)
    if isinstance(prepared.rows[0]["prompt"], list) and not getattr(
        tokenizer, "chat_template", None
    ):
        raise ConfigError(f"model.prompt_format: {prepared.step_text.name} is a chat format and "
                          "the model has no chat template: choose a text one (bfs-prover, "
                          "llemma-goal)")  # fmt: skip
    trainer = build_sft_trainer(prepared, args, model, tokenizer, [base.summary_callback(say)])
    kept = len(trainer.train_dataset)
    if main_process:
        dropped = len(prepared.rows) - kept
        if dropped:
            say(f"warning: {dropped} of {len(prepared.rows)} pairs are longer than "
                f"method.max_length ({args.max_length} tokens) with their tactic cut off: "
                "dropped")  # fmt: skip
        where = f" from {checkpoint.name}" if checkpoint else ""
        say(f"sft: {kept} pairs ({prepared.step_text.name}), {config.optim.max_steps} steps "
            f"(~{_epochs(config, kept):.3g} epochs){where}")  # fmt: skip
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    final = output_dir / base.FINAL
    trainer.save_model(str(final))  # with the tokenizer (the trainer's processing_class)
    if main_process:
        base.write_training_log(trainer.state.log_history, output_dir, "sft")
        say(f"training curves: {output_dir / base.CURVES}")
        say(
            f"step-level model ({prepared.step_text.name} prompts): prove with `prover prove "
            f"FILE.lean --search best-first --model {final} --prompt-format "
            f"{prepared.step_text.name}`, or evaluate with `prover eval SUITE` and the same options"
        )
    return final


def build_sft_trainer(
    prepared: PreparedSFT, args: Any, model: Any, tokenizer: Any, callbacks: list[Any]
) -> Any:
    """TRL's SFTTrainer over the prompt/completion rows; `callbacks` replace the printer."""
    from datasets import Dataset
    from transformers import PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model,
        args,
        train_dataset=Dataset.from_list(prepared.rows),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)
    if len(trainer.train_dataset) == 0:
        raise ConfigError(f"method.max_length: every pair is longer than {args.max_length} "
                          "tokens with its tactic: nothing to train on")  # fmt: skip
    return trainer


def _epochs(config: TrainConfig, pairs: int) -> float:
    per_step = config.optim.per_device_train_batch_size * config.optim.gradient_accumulation_steps
    return config.optim.max_steps * per_step / max(pairs, 1)
