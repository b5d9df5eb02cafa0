"""One `prover train` run: the TRL arguments, model and tokenizer, dataset, verifier reward and
trainer (`AlphaDPGTrainer` or TRL's `GRPOTrainer`) from a `TrainConfig`; checkpoints under
output_dir (TRL's), the final model and tokenizer in output_dir/final. `method.name: sft` runs
in `training.sft_run` (no verifier), on the same conventions."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from prover.errors import MachineryFailure
from training.train_config import (
    AlphaDPGMethod,
    ConfigError,
    SFTMethod,
    TrainConfig,
    config_differences,
    dump_train_config,
    parse_train_config,
)

SAVED_CONFIG = "train_config.yaml"
FINAL = "final"
LOG_HISTORY = "log_history.json"
CURVES = "training_curves.png"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# What the one-line summary of a logging step shows, in this order, when logged.
SUMMARY_KEYS = (
    ("loss", "loss"),
    ("reward", "reward"),
    ("alpha_dpg/pass_rate", "pass"),
    ("alpha_dpg/z/mean", "Z"),
    ("alpha_dpg/ess_fraction", "ess"),
    ("grad_norm", "grad"),
    ("learning_rate", "lr"),
    ("completions/mean_length", "len"),
    ("entropy", "entropy"),
    ("mean_token_accuracy", "acc"),
)
# What training_curves.png plots for SFT (log key -> axis title); the others: curves' defaults
SFT_CURVES = {
    "loss": "training loss (tactic tokens)",
    "mean_token_accuracy": "tactic token accuracy",
    "entropy": "token entropy (nats)",
}


@dataclass
class Prepared:
    """Everything checked and built before the model loads (cheap to get wrong early)."""

    rows: list[dict[str, Any]]
    task: str
    prompt_format: Any
    warnings: list[str]
    suite: str = ""  # the training suite's name and its Lean version (None: not stated)
    lean_version: str | None = None

    def describe(self) -> str:
        return f"{len(self.rows)} prompts ({self.prompt_format.name}), {self.task} verifier"


def checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of each checkpoint-N folder, by step."""
    if not output_dir.is_dir():
        return []
    found = []
    for child in output_dir.iterdir():
        m = _CHECKPOINT.match(child.name)
        if m and child.is_dir():
            found.append((int(m.group(1)), child))
    return sorted(found)


def last_complete_checkpoint(output_dir: Path) -> Path | None:
    """The newest checkpoint whose trainer_state.json (written last) reads back: a run killed
    while saving leaves a folder without it, which TRL's `resume_from_checkpoint=True` would
    pick and fail on."""
    for _, folder in reversed(checkpoints(output_dir)):
        try:
            json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return folder
    return None


def checkpoint_step(folder: Path) -> int:
    """The global step a checkpoint was saved at (its trainer_state.json, else its name)."""
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        return int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        m = _CHECKPOINT.match(folder.name)
        return int(m.group(1)) if m else 0


# What a checkpoint holds beyond the model and tokenizer `save_model` writes into final/.
_TRAINING_STATE = re.compile(
    r"^(optimizer|scheduler|scaler|rng_state.*)\.(pt|pth)$|^trainer_state\.json$"
)


def finish_from_checkpoint(checkpoint: Path, final: Path) -> None:
    """final/ as `save_model` would have written it, from the last checkpoint's model and
    tokenizer files (a run killed after its last checkpoint, before final/ was written)."""
    import shutil

    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for item in checkpoint.iterdir():
        if item.is_file() and not _TRAINING_STATE.match(item.name):
            shutil.copy2(item, partial / item.name)
    partial.rename(final)  # whole or not at all


def prepare(config: TrainConfig, *, strict_data: bool) -> Any:
    """Data, task, prompt format and the overlap check; no model, no torch. (SFT: its pairs,
    a `training.sft_run.PreparedSFT`.)"""
    if isinstance(config.method, SFTMethod):
        from training.sft_run import prepare_sft

        return prepare_sft(config)
    from training.train_data import (
        choose_format,
        choose_task,
        load_eval_suite,
        load_training_suite,
        overlap,
        overlap_message,
        training_rows,
    )

    suite = load_training_suite(config.data)
    task = choose_task(suite, config.verifier.kind)
    fmt = choose_format(task, config.model.name or "toy", config.model.prompt_format)
    warnings = []
    if any(p.split == "test" for p in suite.problems):  # e.g. a suite whose default split is test
        warnings.append(f"warning: training on test-split problems of {suite.name} (data.split)")
    held_out = load_eval_suite(config.data)
    if held_out is not None:
        pairs = overlap(suite.problems, held_out.problems)
        if pairs:
            message = overlap_message(pairs, suite, held_out)
            if strict_data:
                raise ConfigError(f"data: {message} (refused: --strict-data)")
            warnings.append(f"warning: {message}")
    rows = training_rows(suite.problems, fmt)
    return Prepared(rows, task, fmt, warnings, suite.name, suite.lean_version)


def optim_arguments(config: TrainConfig, *, cuda: bool) -> dict[str, Any]:
    """The `optim` section as TRL/transformers training arguments, shared by every method."""
    optim = config.optim
    precision = optim.precision
    if precision == "auto":
        precision = "bf16" if cuda and _bf16_supported() else "fp32"
    return {
        "output_dir": config.output_dir,
        "learning_rate": optim.learning_rate,
        "lr_scheduler_type": optim.lr_scheduler_type,
        "warmup_steps": optim.warmup_ratio,  # a float below 1 is a ratio of max_steps
        "max_grad_norm": optim.max_grad_norm,
        "weight_decay": optim.weight_decay,
        "per_device_train_batch_size": optim.per_device_train_batch_size,
        "gradient_accumulation_steps": optim.gradient_accumulation_steps,
        "max_steps": optim.max_steps,
        "seed": optim.seed,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        # transformers 5 renamed it (the old name warns); TRL reads the mirrored old name
        "activation_checkpointing": optim.gradient_checkpointing,
        "use_cpu": not cuda,
    }


def trainer_args(config: TrainConfig, *, cuda: bool | None = None) -> Any:
    """AlphaDPGConfig or GRPOConfig; their refusals (alpha-DPG's temperature 1 and no
    truncation, TRL's batch divisibility, ...) become one-line ConfigErrors. (SFT: TRL's
    SFTConfig.)"""
    if isinstance(config.method, SFTMethod):
        from training.sft_run import sft_args

        return sft_args(config, cuda=cuda)
    from trl import GRPOConfig

    from training.config import AlphaDPGConfig

    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    known = {f.name for f in fields(GRPOConfig)} | {f.name for f in fields(AlphaDPGConfig)}
    for key in config.trl:
        if key not in known:
            raise ConfigError(f"trl.{key}: not a GRPOConfig setting")
    sampling, vllm = config.sampling, config.vllm
    kwargs: dict[str, Any] = {
        **optim_arguments(config, cuda=cuda),
        "num_generations": sampling.num_generations,
        "max_completion_length": sampling.max_completion_length,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "logging_steps": config.logging_steps,
        "report_to": [],
        "disable_tqdm": True,  # the summary callback prints one line per logging step
        "use_vllm": vllm.use_vllm,
        "vllm_mode": vllm.mode,
        "vllm_server_base_url": vllm.server_base_url,
        "vllm_server_host": vllm.server_host,
        "vllm_server_port": vllm.server_port,
        "vllm_gpu_memory_utilization": vllm.gpu_memory_utilization,
        "vllm_tensor_parallel_size": vllm.tensor_parallel_size,
        "vllm_importance_sampling_correction": vllm.importance_sampling_correction,
        "vllm_importance_sampling_mode": vllm.importance_sampling_mode,
        "vllm_importance_sampling_clip_max": vllm.importance_sampling_clip_max,
        "vllm_importance_sampling_clip_min": vllm.importance_sampling_clip_min,
        **config.trl,
    }
    if config.model.name is not None:
        kwargs["model_init_kwargs"] = _init_kwargs(config)  # None for a GGUF file
    method = config.method
    settings = {f.name: getattr(method, f.name) for f in fields(method) if f.name != "name"}
    try:
        if isinstance(method, AlphaDPGMethod):
            return AlphaDPGConfig(**kwargs, **settings)
        return GRPOConfig(**kwargs, **settings)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{method.name}: {_one_line(exc)}") from None


def _bf16_supported() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _init_kwargs(config: TrainConfig) -> dict[str, Any] | None:
    """from_pretrained keywords for the policy and alpha-DPG's base, which TRL loads from the
    path; None for a GGUF file, which `load_model` loads itself."""
    from prover.models.errors import ModelBackendError
    from prover.models.registry import resolve_model

    try:
        _, gguf = resolve_model(config.model.name or "")
    except ModelBackendError as exc:
        raise ConfigError(f"model.name: {exc}") from None
    if gguf:
        return None
    out: dict[str, Any] = {"dtype": config.model.dtype}
    if config.model.revision:
        out["revision"] = config.model.revision
    if config.model.trust_remote_code:
        out["trust_remote_code"] = True
    return out


def load_model(config: TrainConfig) -> tuple[Any, Any]:
    """(model or its path, tokenizer). A path lets TRL load the policy (and AlphaDPGTrainer
    the base) with model_init_kwargs; the toy model and GGUF files are loaded here."""
    section = config.model
    if section.toy is not None:
        from training.toy import PRINTABLE, toy_model, toy_tokenizer

        toy = section.toy
        tokenizer = toy_tokenizer(toy.alphabet or PRINTABLE)
        return toy_model(tokenizer, hidden=toy.hidden, layers=toy.layers, seed=toy.seed), tokenizer
    from transformers import AutoTokenizer

    from prover.models.registry import resolve_model

    path, gguf = resolve_model(section.name or "")
    kwargs: dict[str, Any] = {"trust_remote_code": section.trust_remote_code}
    if gguf:
        kwargs["gguf_file"] = gguf
    if section.revision:
        kwargs["revision"] = section.revision
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        raise ConfigError(f"model.name: cannot load the tokenizer of {section.name!r}: "
                          f"{_one_line(exc)[:300]}") from None  # fmt: skip
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if gguf is None:
        return path, tokenizer
    # TRL reads a path's config without gguf_file (and fails): load it here
    import torch
    from transformers import AutoModelForCausalLM

    dtype = section.dtype if section.dtype == "auto" else getattr(torch, section.dtype)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
    if getattr(model, "hf_quantizer", None) is not None:
        # GGUF weights are dequantised on load, but the model stays marked quantised, which
        # the Trainer refuses to fine-tune (and the saved config would say GGUF)
        model.hf_quantizer.remove_quantization_config(model)
    return model, tokenizer


def check_resume(config: TrainConfig, output_dir: Path, resume: bool) -> Path | None:
    """The checkpoint to continue from (None: a fresh run); refuses a fresh run over
    checkpoints, a resume with nothing to resume, and a resume with a changed config."""
    found = checkpoints(output_dir)
    if not resume:
        if found:
            raise ConfigError(
                f"output_dir {output_dir} already has checkpoints (up to {found[-1][1].name}): "
                "continue with --resume, or choose another output_dir"
            )
        if (output_dir / FINAL).exists():
            raise ConfigError(f"output_dir {output_dir} holds a finished run ({FINAL}/)")
        return None
    checkpoint = last_complete_checkpoint(output_dir)
    if checkpoint is None:
        raise ConfigError(f"--resume: no complete checkpoint in {output_dir}; start afresh "
                          "without --resume")  # fmt: skip
    saved = output_dir / SAVED_CONFIG
    if saved.exists():
        import yaml

        try:
            old = parse_train_config(yaml.safe_load(saved.read_text(encoding="utf-8")))
        except (ConfigError, yaml.YAMLError) as exc:
            raise ConfigError(f"--resume: {saved} no longer loads ({_one_line(exc)})") from None
        changed = config_differences(old, config)
        if changed:
            raise ConfigError(
                f"--resume: the config differs from the run's ({saved}) in {', '.join(changed)}; "
                "a resumed run may only change max_steps, saving, logging, verifier and vllm"
            )
    return checkpoint


def summary_callback(emit: Callable[[str], None]) -> Any:
    from transformers import TrainerCallback

    class Summary(TrainerCallback):
        """One line per logging step (main process only), then one for the whole run. Its
        times and step count are this `train()` call's (a resumed run counts from its
        checkpoint), on one clock, so the last line agrees with the step lines."""

        def __init__(self) -> None:
            self.started = time.monotonic()
            self.first_step = 0  # the checkpoint's step on a resume

        def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            self.started = time.monotonic()
            self.first_step = state.global_step

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            elapsed = time.monotonic() - self.started
            if "train_runtime" in logs:
                run = state.global_step - self.first_step
                emit(f"done: {run} step{'s' if run != 1 else ''} in {elapsed:.1f}s, "
                     f"step {state.global_step}/{state.max_steps}")  # fmt: skip
                return
            parts = [f"step {state.global_step}/{state.max_steps}"]
            parts += [
                f"{label} {_number(logs[key])}"
                for key, label in SUMMARY_KEYS
                if logs.get(key) is not None
            ]
            parts.append(f"{elapsed:.0f}s")
            emit("  ".join(parts))

    return Summary()


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


def _check_lean_version(config: TrainConfig, prepared: Prepared, verifier: Any) -> str | None:
    """The known-good check, then the suite's Lean version against the checker's: another Lean
    is refused (LeanVersionMismatch) unless `verifier.allow_version_mismatch`; a warning line
    when it is allowed or a side is unknown."""
    from harness.tasks import learn_lean_version
    from prover.lean.lean_version import check_suite_version

    version = learn_lean_version(verifier, str(prepared.rows[0].get("header", "")))
    return check_suite_version(
        prepared.suite,
        prepared.lean_version,
        version,
        allow_mismatch=config.verifier.allow_version_mismatch,
        override="set verifier.allow_version_mismatch: true",
    )


def run(
    config: TrainConfig,
    *,
    resume: bool = False,
    strict_data: bool = False,
    emit: Callable[[str], None] | None = None,
) -> Path:
    """Train; returns output_dir/final. ConfigError for whatever the user can fix."""
    if isinstance(config.method, SFTMethod):
        from training.sft_run import run_sft

        return run_sft(config, resume=resume, emit=emit)
    say = emit or (lambda line: print(line, file=sys.stderr, flush=True))
    output_dir = Path(config.output_dir)
    checkpoint = check_resume(config, output_dir, resume)
    if checkpoint is not None:
        step = checkpoint_step(checkpoint)
        if step >= config.optim.max_steps:
            # Trainer.train would still run one more step before it checks max_steps
            return _already_finished(output_dir, checkpoint, step, config, say)
    prepared = prepare(config, strict_data=strict_data)
    args = trainer_args(config)
    main_process = is_main_process()
    if main_process:
        for line in prepared.warnings:
            say(line)
    _quiet()
    verifier = open_task_verifier(config, prepared.task)
    close = getattr(verifier, "close", lambda: None)
    try:  # a known-good check first: a broken verifier stops the run before the model loads
        if prepared.task == "lean" and prepared.rows:
            warning = _check_lean_version(config, prepared, verifier)
            if warning and main_process:
                say(warning)
        if main_process:  # written once the verifier is known to fit: a refusal leaves nothing
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / SAVED_CONFIG).write_text(dump_train_config(config), encoding="utf-8")
        model, tokenizer = load_model(config)
    except MachineryFailure as exc:
        with contextlib.suppress(Exception):
            close()
        raise MachineryFailure(f"{exc.cause}; before training: nothing was trained") from exc
    except BaseException:
        with contextlib.suppress(Exception):
            close()
        raise
    from training.train_data import is_conversational

    if is_conversational(prepared.rows) and not getattr(tokenizer, "chat_template", None):
        close()
        raise ConfigError(
            f"model.prompt_format: {prepared.prompt_format.name} is a chat format and the model "
            "has no chat template: choose a text format (deepseek-v1.5, countdown-text)"
        )
    trainer = None
    try:
        trainer = build_trainer(config, prepared, args, model, tokenizer, verifier,
                                [summary_callback(say)])  # fmt: skip
        where = f" from {checkpoint.name}" if checkpoint else ""
        if main_process:
            say(f"{config.method.name}: {len(prepared.rows)} prompts "
                f"({prepared.prompt_format.name}), {prepared.task} verifier, "
                f"{config.optim.max_steps} steps{where}")  # fmt: skip
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        final = output_dir / FINAL
        trainer.save_model(str(final))  # with the tokenizer (the trainer's processing_class)
    except MachineryFailure as exc:
        # the step in hand is dropped whole: no checkpoint, no final model from its rewards
        with contextlib.suppress(Exception):
            close()
        step = trainer.state.global_step if trainer is not None else 0
        raise MachineryFailure(f"{exc.cause}; {stopped_at(output_dir, step)}") from exc
    except BaseException:
        with contextlib.suppress(Exception):
            close()  # the failure in hand is the one to report
        raise
    close()
    if main_process:
        write_training_log(trainer.state.log_history, output_dir, config.method.name)
        say(f"training curves: {output_dir / CURVES}")
        suite = config.data.eval_suite or ("countdown" if prepared.task == "countdown" else "SUITE")
        say(f"evaluate with: prover eval {suite} --model {final} "
            f"--prompt-format {prepared.prompt_format.name}")  # fmt: skip
    return final


def stopped_at(output_dir: Path, step: int) -> str:
    """Where a run stopped by a machinery failure stands, and how to go on."""
    checkpoint = last_complete_checkpoint(output_dir)
    if checkpoint is None:
        return f"training stopped in step {step + 1}, before any checkpoint: start it again"
    return (f"training stopped in step {step + 1}; continue from {checkpoint.name} "
            "with --resume once the verifier works")  # fmt: skip


def _already_finished(
    output_dir: Path,
    checkpoint: Path,
    step: int,
    config: TrainConfig,
    say: Callable[[str], None],
) -> Path:
    """A resume of a run that reached max_steps: nothing to train; final/ is left as it is
    (written from the checkpoint only where the run died before writing it)."""
    final, max_steps, method = output_dir / FINAL, config.optim.max_steps, config.method.name
    if not is_main_process():
        return final
    if final.exists():
        say(f"already finished: step {step}/{max_steps} in {output_dir}")
        return final
    finish_from_checkpoint(checkpoint, final)
    state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    write_training_log(state.get("log_history", []), output_dir, method)
    say(f"already finished: step {step}/{max_steps} in {output_dir} "
        f"(final/ written from {checkpoint.name})")  # fmt: skip
    return final


def write_training_log(log: list[dict[str, Any]], output_dir: Path, name: str) -> None:
    """output_dir/log_history.json (every logged step, resumed runs included, as TRL keeps
    them in its state) and output_dir/training_curves.png drawn from it."""
    from training.curves import plot_training_curves

    (output_dir / LOG_HISTORY).write_text(json.dumps(log, indent=1), encoding="utf-8")
    if name == "sft":
        plot_training_curves({name: [log]}, output_dir / CURVES, metrics=SFT_CURVES)
    else:
        plot_training_curves({name: [log]}, output_dir / CURVES)


def is_main_process() -> bool:
    """Process 0 of a distributed run (`accelerate launch`, torchrun), or the only one."""
    from accelerate import PartialState

    return PartialState().is_main_process


def _quiet() -> None:
    """No per-save progress bars, and not the deprecation TRL 1.16 trips in transformers 5
    (`is_gradient_checkpointing`) at every step: the summary lines are the log."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)


def open_task_verifier(config: TrainConfig, task: str) -> Any:
    """The task's verifier as `prover eval` opens it: countdown's, a Lean pool or a server."""
    from harness.eval_run import make_verifier
    from prover.cli.verifier_options import verifier_config

    v = config.verifier
    return make_verifier(
        task,
        verifier_config(
            timeout=v.timeout, memory_mb=v.memory_mb, sandbox=v.sandbox, repl=v.repl,
            repl_cwd=v.repl_cwd, workers=v.workers, allow_native=v.allow_native,
            recycle_after=v.recycle_after, verifier_url=v.url, replay=v.replay,
            header_timeout=v.header_timeout,
        ),
    )  # fmt: skip


def build_trainer(
    config: TrainConfig,
    prepared: Prepared,
    args: Any,
    model: Any,
    tokenizer: Any,
    verifier: Any,
    callbacks: list[Any],
) -> Any:
    """AlphaDPGTrainer or GRPOTrainer over the prepared rows; `callbacks` replace the printer."""
    from datasets import Dataset
    from transformers import PrinterCallback, ProgressCallback

    from training.train_data import FormattedReward

    if isinstance(config.method, AlphaDPGMethod):
        from training.trainer import AlphaDPGTrainer as Trainer
    else:
        from trl import GRPOTrainer as Trainer
    trainer = Trainer(
        model,
        FormattedReward(verifier, prepared.prompt_format),
        args,
        Dataset.from_list(prepared.rows),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)
    return trainer


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
