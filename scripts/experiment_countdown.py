"""The paper's comparison at small scale, on a CPU: GRPO against alpha-DPG (alpha 0, 0.5, 0.999)
from one base model, on countdown puzzles, evaluated with `prover eval` and drawn on the
precision-coverage plane with `prover report`.

Per seed, in order (each part writes its own folder and is skipped once finished):

1. base: a tiny Llama (character tokenizer, `<answer>`/`</answer>` one token each) trained by
   supervised fine-tuning on varied attempts: for each puzzle of a puzzle set of its own (not
   the train or test split), several distinct correct expressions (found by search) mixed with
   plausible wrong ones, so that the base model samples a spread of answers.
2. one training run per method from that base on the suite's train split, the same budget for
   all (steps, prompts x samples per step, learning rate, completion length): TRL's GRPOTrainer
   unmodified (beta 0, scale_rewards none) and AlphaDPGTrainer, the reward the countdown
   verifier's.
3. `prover eval` of the base and of each trained model on the held-out test split.

Then `prover report` over the finished runs: a leaderboard per seed, one over all seeds with the
precision-coverage plot, and a table of means over seeds (results.md).

    python scripts/experiment_countdown.py [--config experiments/countdown_cpu/config.yaml]
        [--seeds 0 1 2 | --only-seed 0] [--results-dir DIR] [--report-only]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from harness.countdown import Puzzle, check_answer, make_puzzles  # noqa: E402

DEFAULT_CONFIG = ROOT / "experiments" / "countdown_cpu" / "config.yaml"
DONE = "done.json"  # written last in a finished part's folder
ANSWER_TOKENS = ("<answer>", "</answer>")


# ---------------------------------------------------------------------------------------------
# Countdown answers: correct ones by search, wrong ones at random


def _combine(
    left: tuple[str, Fraction], right: tuple[str, Fraction]
) -> Iterator[tuple[str, Fraction]]:
    (a, x), (b, y) = left, right
    yield f"({a}+{b})", x + y
    yield f"({a}-{b})", x - y
    yield f"({a}*{b})", x * y
    if y != 0:
        yield f"({a}/{b})", x / y


def _values(numbers: tuple[int, ...], cap: int) -> dict[int, dict[Fraction, list[str]]]:
    """Per subset (a bit mask over `numbers`) of up to three numbers: each value it reaches, with
    up to `cap` expressions (parenthesised) reaching it."""
    table: dict[int, dict[Fraction, list[str]]] = {}
    size = len(numbers)
    for i, number in enumerate(numbers):
        table[1 << i] = {Fraction(number): [str(number)]}
    for mask in sorted(range(1, 1 << size), key=lambda m: m.bit_count()):
        if mask.bit_count() < 2 or mask.bit_count() > 3:
            continue
        found: dict[Fraction, list[str]] = {}
        for left_mask, right_mask in _splits(mask):
            for (a, xs), (b, ys) in itertools.product(
                table[left_mask].items(), table[right_mask].items()
            ):
                for ea, eb in itertools.product(xs[:2], ys[:2]):
                    for expr, value in _combine((ea, a), (eb, b)):
                        exprs = found.setdefault(value, [])
                        if len(exprs) < cap:
                            exprs.append(expr)
        table[mask] = found
    return table


def _splits(mask: int) -> Iterator[tuple[int, int]]:
    """Ordered pairs of non-empty disjoint sub-masks making up `mask`."""
    sub = (mask - 1) & mask
    while sub:
        yield sub, mask ^ sub
        sub = (sub - 1) & mask


def solutions(puzzle: Puzzle, *, max_numbers: int = 4, cap: int = 64) -> list[str]:
    """Distinct correct expressions (no spaces, the outer parentheses dropped) using up to
    `max_numbers` of the puzzle's numbers: every one found up to `cap`, in random-ish order."""
    numbers = puzzle.numbers
    table = _values(numbers, cap=4)
    target = Fraction(puzzle.target)
    found: dict[str, None] = {}

    def add(expr: str) -> None:
        text = expr[1:-1] if expr.startswith("(") and _outer(expr) else expr
        found.setdefault(text, None)

    for mask, values in table.items():
        if mask.bit_count() <= 3:
            for expr in values.get(target, []):
                add(expr)
    if max_numbers >= 4:
        for mask in range(1, 1 << len(numbers)):
            if mask.bit_count() != 4 or len(found) >= cap:
                continue
            for left_mask, right_mask in _splits(mask):
                right = table[right_mask]
                for a, xs in table[left_mask].items():
                    for op, need in _needed(a, target):
                        for eb in right.get(need, [])[:1]:
                            add(f"({xs[0]}{op}{eb})")
    return list(found)[:cap]


def _needed(a: Fraction, target: Fraction) -> Iterator[tuple[str, Fraction]]:
    """(op, b) with `a op b == target`."""
    yield "+", target - a
    yield "-", a - target
    if a != 0:
        yield "*", target / a
    if target != 0 and a != 0:
        yield "/", a / target


def _outer(expr: str) -> bool:
    """Whether the first parenthesis closes at the end (so the pair wraps everything)."""
    depth = 0
    for i, char in enumerate(expr):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return i == len(expr) - 1
    return False


def random_attempt(rng: random.Random, puzzle: Puzzle, max_numbers: int) -> str:
    """A plausible attempt: a random expression tree over a random subset of the numbers."""
    count = rng.randint(2, min(max_numbers, len(puzzle.numbers)))
    chosen = rng.sample(list(puzzle.numbers), count)

    def build(items: list[int]) -> str:
        if len(items) == 1:
            return str(items[0])
        cut = rng.randint(1, len(items) - 1)
        return f"({build(items[:cut])}{rng.choice('+-*/')}{build(items[cut:])})"

    expr = build(chosen)
    return expr[1:-1] if _outer(expr) else expr


def sft_attempts(rng: random.Random, puzzle: Puzzle, settings: dict[str, Any]) -> list[str]:
    """The base model's training answers for one puzzle: up to `correct` distinct correct ones
    and wrong ones to make `answers` in all."""
    max_numbers = settings["max_numbers_in_answer"]
    correct = solutions(puzzle, max_numbers=max_numbers)
    rng.shuffle(correct)
    picked = correct[: settings["correct_per_puzzle"]]
    wrong: list[str] = []
    for _ in range(50 * settings["answers_per_puzzle"]):
        if len(picked) + len(wrong) >= settings["answers_per_puzzle"]:
            break
        attempt = random_attempt(rng, puzzle, max_numbers)
        if check_answer(puzzle.numbers, puzzle.target, attempt)[0] != "ok":
            wrong.append(attempt)
    return picked + wrong


def completion_text(expr: str) -> str:
    return f"{ANSWER_TOKENS[0]}{expr}{ANSWER_TOKENS[1]}"


def prompt_text(puzzle: Puzzle) -> str:
    """Exactly what `prover eval --prompt-format countdown-text` sends."""
    return f"{puzzle.prompt()}\n"


# ---------------------------------------------------------------------------------------------
# Parts


def make_tokenizer() -> Any:
    """Characters (newline included), plus one token each for `<answer>`, `</answer>` and the
    numbers 10 to 25 (every puzzle number is then one token: copying it from the prompt is one
    step). Ordinary tokens, not special ones, so decoding keeps them."""
    from training.toy import PRINTABLE, toy_tokenizer

    tokenizer = toy_tokenizer(PRINTABLE + "\n")
    tokenizer.add_tokens([*ANSWER_TOKENS, *map(str, range(10, 26))])
    return tokenizer


def make_model(tokenizer: Any, settings: dict[str, Any], seed: int) -> Any:
    """A fresh tiny Llama (as training.toy's) with tied input and output embeddings: copying a
    number from the prompt then needs no learnt map from one embedding to the other."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    hidden = settings["hidden"]
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=settings["layers"],
        num_attention_heads=settings["heads"],
        num_key_value_heads=settings["heads"],
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=settings["tie_embeddings"],
        # transformers' 0.02 suits hidden sizes near 1000; at 128 the queries and keys start so
        # small that attention stays uniform (and its gradient tiny) for hundreds of steps
        initializer_range=settings["init_std"],
    )
    return LlamaForCausalLM(config)


def build_base(config: dict[str, Any], seed: int, out: Path) -> dict[str, Any]:
    """Supervised fine-tuning of a fresh tiny Llama on varied attempts; saved to out/model."""
    import torch

    settings = config["base"]
    rng = random.Random(seed)
    puzzles = make_puzzles(
        settings["puzzles"],
        seed=settings["puzzle_seed"] + seed,
        min_numbers=settings["min_numbers"],
        max_numbers=settings["max_numbers"],
    )
    tokenizer = make_tokenizer()
    eos = tokenizer.eos_token_id
    groups: list[tuple[list[int], list[list[int]]]] = []  # (prompt, its answers)
    correct = 0
    for puzzle in puzzles:
        attempts = sft_attempts(rng, puzzle, settings)
        if len(attempts) < settings["answers_per_puzzle"]:
            continue  # every group the same size (rare: too few distinct wrong attempts)
        correct += sum(check_answer(puzzle.numbers, puzzle.target, a)[0] == "ok" for a in attempts)
        answers = [tokenizer(completion_text(a))["input_ids"] + [eos] for a in attempts]
        groups.append((tokenizer(prompt_text(puzzle))["input_ids"], answers))
    model = make_model(tokenizer, settings, seed)
    params = sum(p.numel() for p in model.parameters())
    answers_total = len(groups) * settings["answers_per_puzzle"]
    print(
        f"  base: {len(groups)} puzzles, {answers_total} answers ({correct} correct), "
        f"Llama {params / 1e6:.2f}M params",
        flush=True,
    )
    torch.manual_seed(seed)
    batch_size = settings["puzzles_per_batch"]
    steps = settings["epochs"] * math.ceil(len(groups) / batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["learning_rate"])
    warmup = max(1, int(0.05 * steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))),
    )
    model.train()
    losses: list[float] = []
    step = 0
    for _epoch in range(settings["epochs"]):
        order = list(range(len(groups)))
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            loss = _shared_prompt_loss(
                model, [groups[i] for i in order[start : start + batch_size]], tokenizer
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            step += 1
            if step % 50 == 0 or step == steps:
                recent = statistics.fmean(losses[-50:])
                print(f"  base: step {step}/{steps} loss {recent:.3f}", flush=True)
    model.eval()
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    return {
        "puzzles": len(groups),
        "answers": answers_total,
        "correct_answers": correct,
        "params": params,
        "steps": steps,
        "final_loss": statistics.fmean(losses[-50:]),
    }


def _shared_prompt_loss(
    model: Any, groups: list[tuple[list[int], list[list[int]]]], tokenizer: Any
) -> Any:
    """Mean cross-entropy of the answers' tokens given their prompt, each prompt encoded once
    (its KV cache repeated for its answers): the prompt is most of the tokens, the answers short.
    Same loss as one padded sequence per (prompt, answer) with the prompt's tokens unlabelled."""
    import torch
    from transformers import DynamicCache

    pad = tokenizer.pad_token_id
    per = len(groups[0][1])
    width = max(len(p) for p, _ in groups)
    prompts = torch.full((len(groups), width), pad, dtype=torch.long)
    prompt_mask = torch.zeros_like(prompts)
    for row, (prompt, _) in enumerate(groups):  # left-padded, as generation pads
        prompts[row, width - len(prompt) :] = torch.tensor(prompt)
        prompt_mask[row, width - len(prompt) :] = 1
    positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    first = model(
        input_ids=prompts, attention_mask=prompt_mask, position_ids=positions, cache=cache,
        use_cache=True, logits_to_keep=1,
    ).logits  # fmt: skip
    cache.batch_repeat_interleave(per)
    answers = [a for _, group in groups for a in group]
    length = max(len(a) for a in answers)
    ids = torch.full((len(answers), length), pad, dtype=torch.long)
    labels = torch.full((len(answers), length), -100, dtype=torch.long)
    answer_mask = torch.zeros_like(ids)
    for row, answer in enumerate(answers):
        ids[row, : len(answer)] = torch.tensor(answer)
        labels[row, : len(answer)] = torch.tensor(answer)
        answer_mask[row, : len(answer)] = 1
    prompt_lengths = prompt_mask.sum(-1).repeat_interleave(per)
    logits = model(
        input_ids=ids,
        attention_mask=torch.cat([prompt_mask.repeat_interleave(per, 0), answer_mask], dim=1),
        position_ids=prompt_lengths[:, None] + torch.arange(length)[None, :],
        cache=cache,
    ).logits
    # token j of an answer is predicted at position j - 1; token 0 at the prompt's last one
    logits = torch.cat([first.repeat_interleave(per, 0), logits[:, :-1]], dim=1)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())


def train_method(
    config: dict[str, Any], name: str, seed: int, base_dir: Path, out: Path
) -> dict[str, Any]:
    """One method's training run from the base model; the final model saved to out/model."""
    from datasets import Dataset
    from transformers import AutoTokenizer, PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from harness.countdown import CountdownVerifier
    from harness.suites import load_suite
    from training.config import AlphaDPGConfig
    from training.rewards import problem_row, verifier_reward
    from training.toy import CPU_SETTINGS
    from training.trainer import AlphaDPGTrainer

    train = config["train"]
    method = dict(config["methods"][name])
    kind = method.pop("trainer")
    suite = load_suite(config["suite"], split=train["split"])
    rows = [
        problem_row(prompt_text(_puzzle(p)), p.name, p.formal_statement) for p in suite.problems
    ]
    settings: dict[str, Any] = {
        **CPU_SETTINGS,
        "output_dir": str(out / "trainer"),
        "seed": seed,
        "data_seed": seed,
        "max_steps": train["steps"],
        "per_device_train_batch_size": train["prompts_per_step"] * train["num_generations"],
        "num_generations": train["num_generations"],
        "max_completion_length": train["max_completion_length"],
        "learning_rate": train["learning_rate"],
        "lr_scheduler_type": train["lr_scheduler_type"],
        "warmup_steps": train["warmup_steps"],
        "max_grad_norm": train["max_grad_norm"],
        "temperature": 1.0,
        "top_p": 1.0,
        "beta": 0.0,
        "logging_steps": train["logging_steps"],
        "disable_dropout": True,
        **method,
    }
    model_dir = str(base_dir / "model")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    reward = verifier_reward(CountdownVerifier())
    if kind == "grpo":
        args: GRPOConfig = GRPOConfig(**settings)
        trainer_class: type[GRPOTrainer] = GRPOTrainer
    elif kind == "alpha-dpg":
        args = AlphaDPGConfig(**settings)
        trainer_class = AlphaDPGTrainer
    else:
        raise SystemExit(f"method {name}: unknown trainer {kind!r} (grpo or alpha-dpg)")
    trainer = trainer_class(
        model_dir, reward, args, Dataset.from_list(rows), processing_class=tokenizer
    )
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(StepPrinter(name))
    trainer.train()
    trainer.save_model(str(out / "model"))
    tokenizer.save_pretrained(out / "model")
    log = trainer.state.log_history
    (out / "log_history.json").write_text(json.dumps(log, indent=1))
    rewards = [entry["reward"] for entry in log if "reward" in entry]
    return {
        "trainer": kind,
        "steps": trainer.state.global_step,
        "first_reward": rewards[0] if rewards else None,
        "last_rewards_mean": statistics.fmean(rewards[-5:]) if rewards else None,
    }


def _puzzle(problem: Any) -> Puzzle:
    spec = json.loads(problem.formal_statement)
    return Puzzle(problem.name, tuple(spec["numbers"]), spec["target"], "")


class StepPrinter(TrainerCallback):
    """One line per logging step: the mean reward (the pass rate of the step's samples)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if logs and "reward" in logs:
            z = logs.get("alpha_dpg/z/mean")
            print(
                f"  {self.name}: step {state.global_step}/{state.max_steps} "
                f"reward {logs['reward']:.3f} entropy {logs.get('entropy', float('nan')):.3f}"
                + (f" z {z:.3f}" if z is not None else ""),
                flush=True,
            )


def evaluate(config: dict[str, Any], model_dir: Path, run_dir: Path, label: str) -> None:
    """`prover eval` of one model on the held-out split; resumes a run cut short."""
    ev = config["eval"]
    command = [
        sys.executable, "-m", "prover", "eval", config["suite"],
        "--split", ev["split"], "--model", str(model_dir),
        "--prompt-format", "countdown-text", "--n", str(ev["n"]), "--limit", str(ev["limit"]),
        "--max-new-tokens", str(ev["max_new_tokens"]), "--temperature", "1", "--top-p", "1",
        "--seed", str(ev["seed"]), "--batch", str(ev["batch"]), "--label", label,
        "--out", str(run_dir),
    ]  # fmt: skip
    if (run_dir / "run.json").exists():
        command.append("--resume")
    done = subprocess.run(command, cwd=ROOT, env=_env(config), text=True)
    if done.returncode != 0:
        raise SystemExit(f"prover eval failed for {label} (exit {done.returncode})")


def _env(config: dict[str, Any]) -> dict[str, str]:
    threads = str(config["threads"])
    return {
        **os.environ,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


# ---------------------------------------------------------------------------------------------
# Running and reporting


def run_seed(config: dict[str, Any], seed: int, results: Path) -> dict[str, float]:
    """Every part of one seed, finished ones skipped; seconds per part run now (or before)."""
    folder = results / f"seed{seed}"
    timings: dict[str, float] = {}

    def part(name: str, out: Path, work: Any) -> None:
        done = out / DONE
        if done.exists():
            seconds = json.loads(done.read_text())["seconds"]
            print(f"[seed {seed}] {name}: done before ({seconds:.0f} s), skipped", flush=True)
            timings[name] = seconds
            return
        print(f"[seed {seed}] {name} ...", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        info = work(out) or {}
        seconds = time.monotonic() - started
        done.write_text(json.dumps({"seconds": seconds, **info}, indent=1))
        timings[name] = seconds
        print(f"[seed {seed}] {name}: {seconds:.0f} s", flush=True)

    base = folder / "models" / "base"
    part("base", base, lambda out: build_base(config, seed, out))
    for name in config["methods"]:
        part(
            f"train {name}",
            folder / "models" / name,
            lambda out, name=name: train_method(config, name, seed, base, out),
        )
    for name in ["base", *config["methods"]]:
        run_dir = folder / "eval" / name

        def work(out: Path, name: str = name, run_dir: Path = run_dir) -> None:
            evaluate(config, folder / "models" / name / "model", run_dir, f"{name} s{seed}")

        if (run_dir / "results.json").exists() and not (folder / "eval-done" / name).exists():
            (folder / "eval-done" / name).mkdir(parents=True, exist_ok=True)
        part(f"eval {name}", folder / "eval-done" / name, work)
    total = sum(timings.values())
    print(f"[seed {seed}] all parts: {total:.0f} s ({total / 60:.1f} min)", flush=True)
    (folder / "timings.json").write_text(json.dumps(timings, indent=1))
    return timings


def report(config: dict[str, Any], results: Path) -> None:
    """Leaderboards (per seed and over all) and the precision-coverage plots, from whatever
    evaluations have finished; results.md with means over seeds."""
    from harness.plots import plot_method_means

    names = ["base", *config["methods"]]
    seeds = sorted(int(p.name[4:]) for p in results.glob("seed*") if p.name[4:].isdigit())
    runs: dict[tuple[int, str], Path] = {}
    for seed in seeds:
        for name in names:
            path = results / f"seed{seed}" / "eval" / name / "results.json"
            if path.exists():
                runs[(seed, name)] = path
    if not runs:
        print("report: no finished evaluations yet", flush=True)
        return
    sections = [f"# {config['name']}: results\n", _describe(config)]
    sections.append(_mean_table(config, names, seeds, runs))
    means_plot = results / "precision_coverage_means.png"
    plot_method_means(
        {n: [json.loads(runs[(s, n)].read_text()) for s in seeds if (s, n) in runs] for n in names},
        means_plot,
    )
    sections.append(f"![precision-coverage plane, means over seeds]({means_plot.name})\n")
    sections.append(_training_section(config, seeds, results))
    all_plot = results / "precision_coverage.png"
    sections.append(
        "## All seeds: leaderboard\n\n"
        + _prover_report(config, list(runs.values()), all_plot)
        + f"\n![precision-coverage plane]({all_plot.name})\n"
    )
    for seed in seeds:
        paths = [runs[(seed, n)] for n in names if (seed, n) in runs]
        if not paths:
            continue
        plot = results / f"seed{seed}" / "precision_coverage.png"
        sections.append(
            f"## Seed {seed}\n\n"
            + _prover_report(config, paths, plot)
            + f"\n![seed {seed}](seed{seed}/{plot.name})\n"
            + _timing_table(results / f"seed{seed}")
        )
    (results / "results.md").write_text("\n".join(sections), encoding="utf-8")
    print(f"report: wrote {results / 'results.md'} and {all_plot}", flush=True)


def _training_section(config: dict[str, Any], seeds: list[int], results: Path) -> str:
    """Training curves of every method (mean over the seeds whose run finished) and a table of
    the training pass rate, entropy and answer length early and late in training."""
    from training.curves import curve_table, plot_training_curves

    logs: dict[str, list[Any]] = {}
    for name in config["methods"]:
        for seed in seeds:
            path = results / f"seed{seed}" / "models" / name / "log_history.json"
            if path.exists():
                logs.setdefault(name, []).append(json.loads(path.read_text()))
    if not logs:
        return ""
    plot = results / "training_curves.png"
    plot_training_curves(logs, plot)
    return (
        "## Training\n\nOn the train split, from the trainers' logs (each entry the mean of "
        f"{config['train']['logging_steps']} steps); per method the mean over seeds, in "
        "brackets the lowest and highest seed at the end.\n\n"
        + curve_table(logs)
        + f"\n![training curves]({plot.name})\n"
    )


def _prover_report(config: dict[str, Any], paths: list[Path], plot: Path) -> str:
    command = [sys.executable, "-m", "prover", "report", *map(str, paths), "--markdown",
               "--plot", str(plot)]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=_env(config), text=True, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"prover report failed: {done.stderr.strip()}")
    return done.stdout


def _describe(config: dict[str, Any]) -> str:
    ev, train = config["eval"], config["train"]
    return (
        f"Suite `{config['suite']}`, split `{ev['split']}`, first {ev['limit']} problems, "
        f"n = {ev['n']} samples each (temperature 1, top-p 1, at most {ev['max_new_tokens']} "
        f"new tokens). Training: {train['steps']} steps x {train['prompts_per_step']} prompts "
        f"x {train['num_generations']} samples, lr {train['learning_rate']}, at most "
        f"{train['max_completion_length']} completion tokens. Settings: `config.yaml`.\n"
    )


def _mean_table(
    config: dict[str, Any], names: list[str], seeds: list[int], runs: dict[tuple[int, str], Path]
) -> str:
    """Mean over seeds of pass@k (powers of two) and, per method, the spread over seeds."""
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256) if k <= config["eval"]["n"]]
    header = "| method | seeds | " + " | ".join(f"pass@{k}" for k in ks) + " |"
    lines = [
        "## Mean over seeds\n",
        "Each cell: mean over the seeds that finished, its 95% bootstrap interval over problems "
        "(each problem's pass@k averaged over the seeds, problems resampled) and, with two or "
        "more seeds, ± the standard deviation over seeds (the interval is problem noise, the ± "
        "seed noise).\n",
        header,
        "|" + "---|" * (len(ks) + 2),
    ]
    for name in names:
        loaded = [json.loads(runs[(s, name)].read_text()) for s in seeds if (s, name) in runs]
        if not loaded:
            continue
        intervals = _seed_mean_intervals(loaded, ks)
        cells = []
        for k in ks:
            values = [r["pass_at_k"][str(k)] for r in loaded]
            mean = statistics.fmean(values)
            lo, hi = intervals[k]
            cell = f"{mean:.1%} [{lo * 100:.1f}, {hi * 100:.1f}]"
            if len(values) > 1:
                cell += f" ± {statistics.stdev(values) * 100:.1f}"
            cells.append(cell)
        lines.append(f"| {name} | {len(loaded)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _seed_mean_intervals(
    loaded: list[dict[str, Any]], ks: list[int]
) -> dict[int, tuple[float, float]]:
    """95% bootstrap interval over problems of the mean over seeds of pass@k: each problem's
    pass@k averaged over the runs (which cover the same problems), problems resampled."""
    from harness.metrics import bootstrap_mean_intervals, pass_at_k

    per_run = [{p["name"]: (p["n"], p["c"]) for p in run["problems"]} for run in loaded]
    names = sorted(set.intersection(*(set(run) for run in per_run)))
    columns = {
        str(k): [statistics.fmean(pass_at_k(*run[name], k) for run in per_run) for name in names]
        for k in ks
    }
    return {int(k): bounds for k, bounds in bootstrap_mean_intervals(columns).items()}


def _timing_table(folder: Path) -> str:
    path = folder / "timings.json"
    if not path.exists():
        return ""
    timings = json.loads(path.read_text())
    rows = [f"| {name} | {seconds:.0f} |" for name, seconds in timings.items()]
    total = sum(timings.values())
    return (
        "\nWall time per part (seconds, this machine):\n\n| part | s |\n|---|---|\n"
        + "\n".join(rows)
        + f"\n| total | {total:.0f} ({total / 60:.1f} min) |\n"
    )


def load_config(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: config's)")
    parser.add_argument("--only-seed", type=int, help="run this one seed only")
    parser.add_argument("--results-dir", type=Path, help="default: the config's results_dir")
    parser.add_argument("--report-only", action="store_true", help="only write the report")
    opts = parser.parse_args()
    config = load_config(opts.config)
    results = opts.results_dir or ROOT / config["results_dir"]
    seeds = [opts.only_seed] if opts.only_seed is not None else opts.seeds or config["seeds"]

    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(config["threads"])
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    results.mkdir(parents=True, exist_ok=True)
    if not opts.report_only:
        for seed in seeds:
            run_seed(config, seed, results)
    report(config, results)


if __name__ == "__main__":
    main()
