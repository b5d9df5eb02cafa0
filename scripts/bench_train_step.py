"""Seconds per training step: alpha-DPG against TRL's GRPO (beta = 0 and beta > 0).

Same tiny random Llama (character tokenizer, built offline), same countdown prompts, batch,
completion length and seed for all three; CPU. A step is one optimizer update, generation and
verification included (timed by a callback from step begin to step end). Each method runs
`--rounds` times, the rounds interleaved to spread machine noise; the first step of each run
is a warm-up and not counted; the figure is the median step.

    python scripts/bench_train_step.py [--steps 4] [--rounds 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import PrinterCallback, TrainerCallback  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from harness.countdown import CountdownVerifier, make_puzzles  # noqa: E402
from training.config import AlphaDPGConfig  # noqa: E402
from training.rewards import countdown_rows, verifier_reward  # noqa: E402
from training.toy import CPU_SETTINGS, toy_model, toy_tokenizer  # noqa: E402
from training.trainer import AlphaDPGTrainer  # noqa: E402

METHODS = ("alpha-DPG", "GRPO beta=0", "GRPO beta=0.04")


class StepTimer(TrainerCallback):
    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def run(method: str, model_dir: str, tokenizer: Any, dataset: Dataset, opts: Any) -> list[float]:
    settings: dict[str, Any] = {
        **CPU_SETTINGS,
        "output_dir": tempfile.mkdtemp(prefix="bench-train-"),
        "per_device_train_batch_size": opts.prompts * opts.generations,
        "num_generations": opts.generations,
        "max_completion_length": opts.completion_length,
        "max_steps": opts.steps + 1,  # + the warm-up step
        "learning_rate": 1e-5,
        "logging_steps": 1_000_000,
    }
    reward = verifier_reward(CountdownVerifier())
    timer = StepTimer()
    if method == "alpha-DPG":
        args: GRPOConfig = AlphaDPGConfig(alpha=0.5, **settings)
        trainer_class: type[GRPOTrainer] = AlphaDPGTrainer
    else:
        args = GRPOConfig(beta=float(method.split("=")[1]), **settings)
        trainer_class = GRPOTrainer
    trainer = trainer_class(
        model_dir, reward, args, dataset, processing_class=tokenizer, callbacks=[timer]
    )
    trainer.remove_callback(PrinterCallback)  # TRL's per-run log lines
    trainer.train()
    return timer.seconds[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="measured steps per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each method")
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step")
    parser.add_argument("--generations", type=int, default=4, help="samples per prompt")
    parser.add_argument("--completion-length", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    # on a shared machine, OpenMP threads that wait for a busy core cost more than they give
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    opts = parser.parse_args()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' renamings
    torch.set_num_threads(opts.threads)

    tokenizer = toy_tokenizer()
    model = toy_model(tokenizer, hidden=opts.hidden, layers=opts.layers)
    params = sum(p.numel() for p in model.parameters())
    rows = countdown_rows(make_puzzles(opts.prompts * (opts.steps + 1), seed=1))
    dataset = Dataset.from_list(rows)
    print(
        f"model: Llama {params / 1e6:.2f}M params (hidden {opts.hidden}, {opts.layers} layers); "
        f"{opts.prompts} prompts x {opts.generations} samples per step, "
        f"{opts.completion_length} completion tokens at most; CPU, {opts.threads} of "
        f"{os.cpu_count()} cores"
    )
    seconds: dict[str, list[float]] = {method: [] for method in METHODS}
    with tempfile.TemporaryDirectory() as model_dir:
        model.save_pretrained(model_dir)  # GRPO's reference model reloads from a path
        for round_ in range(opts.rounds):
            order = METHODS if round_ % 2 == 0 else METHODS[::-1]
            for method in order:
                seconds[method] += run(method, model_dir, tokenizer, dataset, opts)
    median = {method: statistics.median(values) for method, values in seconds.items()}
    for method in METHODS:
        values = seconds[method]
        print(
            f"{method}: {median[method]:.3f} s/step (median of {len(values)}; "
            f"min {min(values):.3f}, max {max(values):.3f})"
        )
    ratio = median["alpha-DPG"] / median["GRPO beta=0"]
    print(f"alpha-DPG / GRPO(beta=0): {ratio:.2f}x (target <= 1.3)")
    print(f"alpha-DPG / GRPO(beta=0.04): {median['alpha-DPG'] / median['GRPO beta=0.04']:.2f}x")


if __name__ == "__main__":
    main()
