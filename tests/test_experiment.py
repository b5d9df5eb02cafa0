"""scripts/experiment_countdown.py end to end on a tiny config: base model, every method's
training run, `prover eval` of each, the report; a second run skips every finished part."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("trl")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "experiment_countdown.py"
CONFIG = ROOT / "experiments" / "countdown_cpu" / "config.yaml"


def tiny_config(results: Path) -> dict:
    config = yaml.safe_load(CONFIG.read_text())
    config["results_dir"] = str(results)
    config["seeds"] = [0]
    # one method per trainer (TRL's GRPO, alpha-DPG) keeps the test short
    config["methods"] = {name: config["methods"][name] for name in ("grpo", "alpha-0.5")}
    config["base"].update(
        hidden=32, layers=1, heads=2, puzzles=6, answers_per_puzzle=3, correct_per_puzzle=1,
        epochs=1, puzzles_per_batch=3,
    )  # fmt: skip
    config["train"].update(
        steps=1, prompts_per_step=2, num_generations=2, max_completion_length=6, logging_steps=1
    )
    config["eval"].update(limit=2, n=4, max_new_tokens=6, batch=8)
    return config


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.slow
def test_the_experiment_runs_end_to_end_and_resumes(tmp_path):
    results = tmp_path / "results"
    config = tmp_path / "config.yaml"
    settings = tiny_config(results)
    config.write_text(yaml.safe_dump(settings))
    first = run("--config", str(config), "--only-seed", "0")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    names = ["base", *settings["methods"]]
    for name in names:
        assert (results / "seed0" / "models" / name / "model" / "config.json").exists()
        run_results = json.loads((results / "seed0" / "eval" / name / "results.json").read_text())
        assert run_results["n"] == 4 and set(run_results["pass_at_k"]) >= {"1", "4"}
    timings = json.loads((results / "seed0" / "timings.json").read_text())
    assert set(timings) == {"base", *(f"train {m}" for m in settings["methods"]),
                            *(f"eval {n}" for n in names)}  # fmt: skip
    table = (results / "results.md").read_text()
    assert all(f"| {name} | 1 |" in table for name in names)
    assert (results / "precision_coverage.png").stat().st_size > 0
    assert all(f"| {name} | 1 |" in table.split("## Training")[1] for name in settings["methods"])
    assert (results / "training_curves.png").stat().st_size > 0
    assert (results / "precision_coverage_means.png").stat().st_size > 0
    second = run("--config", str(config), "--only-seed", "0")
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("skipped") == len(timings)


def test_countdown_solutions_are_correct():
    import random

    from harness.countdown import check_answer, make_puzzles

    sys.path.insert(0, str(SCRIPT.parent))
    from experiment_countdown import random_attempt, solutions

    rng = random.Random(0)
    for puzzle in make_puzzles(40, seed=9):
        found = solutions(puzzle)
        assert len(found) == len(set(found))
        for expr in found:
            assert check_answer(puzzle.numbers, puzzle.target, expr)[0] == "ok", (puzzle, expr)
        attempt = random_attempt(rng, puzzle, 4)
        assert check_answer(puzzle.numbers, puzzle.target, attempt)[0] in ("ok", "error")


def _shape(value: object) -> object:
    """A config's nested keys (its values dropped): what the script reads from it."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return None


@pytest.mark.parametrize(
    "path", sorted((ROOT / "experiments").glob("*/config.yaml")), ids=lambda p: p.parent.name
)
def test_every_committed_experiment_config_has_the_keys_the_script_reads(path):
    """A second experiment's config is a copy with values changed: a key renamed or dropped
    there would only fail half an hour into its run."""
    reference = yaml.safe_load(CONFIG.read_text())
    config = yaml.safe_load(path.read_text())
    assert {k: v for k, v in _shape(config).items() if k != "methods"} == {
        k: v for k, v in _shape(reference).items() if k != "methods"
    }
    assert config["name"] == path.parent.name
    assert Path(config["results_dir"]) == path.parent.relative_to(ROOT) / "results"
    for method in config["methods"].values():
        assert method["trainer"] in ("grpo", "alpha-dpg")
