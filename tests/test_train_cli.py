"""`prover train`: the YAML config (round trip, overrides, one-line refusals), the shipped
configs, toy CPU runs of both methods, resume after a SIGKILL, and the train/eval overlap check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from training.train_config import (
    AlphaDPGMethod,
    ConfigError,
    GRPOMethod,
    TrainConfig,
    apply_overrides,
    dump_train_config,
    load_train_config,
    parse_train_config,
)

from conftest import ROOT, run_prover

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
# One-digit countdown puzzles and a four-character alphabet: about one sample in ten is right
# at step 0, so both methods get a signal in two steps.
EASY = [{"name": f"p{t}_{i}", "split": "train", "header": "",
         "formal_statement": json.dumps({"numbers": [1, 2, 3], "target": t})}
        for i in range(4) for t in (1, 2, 3)]  # fmt: skip


def toy_config(tmp_path: Path, method: str = "alpha-dpg", **sections: Any) -> Path:
    """A YAML config for a toy run on EASY (a JSONL suite, countdown verifier)."""
    data = tmp_path / "easy.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in EASY))
    raw: dict[str, Any] = {
        "output_dir": str(tmp_path / "out"),
        "model": {"toy": {"hidden": 32, "layers": 1, "alphabet": "123+"},
                  "prompt_format": "countdown-text"},  # fmt: skip
        "data": {"suite": str(data)},
        "verifier": {"kind": "countdown"},
        "method": {"name": method},
        "sampling": {"num_generations": 4, "max_completion_length": 3},
        "optim": {"learning_rate": 1e-2, "warmup_ratio": 0.0, "per_device_train_batch_size": 8,
                  "max_steps": 2, "precision": "fp32", "gradient_checkpointing": False},
        "save_steps": 1,
        "logging_steps": 1,
    }  # fmt: skip
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / f"{method}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# --- the config --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_load_dump_load_round_trips(path: Path, tmp_path: Path) -> None:
    config = load_train_config(path)
    again = tmp_path / "again.yaml"
    again.write_text(dump_train_config(config))
    assert load_train_config(again) == config
    assert parse_train_config(yaml.safe_load(dump_train_config(config))) == config


def test_overrides_are_yaml_values_at_dotted_keys(tmp_path: Path) -> None:
    path = toy_config(tmp_path)
    config = load_train_config(
        path,
        ["method.alpha=0.25", "optim.learning_rate=2e-6", "model.toy.layers=3",
         "data.limit=5", "data.eval_suite=countdown", "save_total_limit=null",
         "trl.log_completions=true"],
    )  # fmt: skip
    assert config.method == AlphaDPGMethod(alpha=0.25)
    assert config.optim.learning_rate == 2e-6  # PyYAML's "2e-6" string, read as a number
    assert config.model.toy is not None and config.model.toy.layers == 3
    assert (config.data.limit, config.data.eval_suite) == (5, "countdown")
    assert config.trl == {"log_completions": True}
    grpo = load_train_config(path, ["method={name: grpo, scale_rewards: false}"])
    assert grpo.method == GRPOMethod(scale_rewards="none")  # older TRL's spelling
    named = load_train_config(path, ["model=some/model"])  # `model: NAME` shorthand
    assert named.model.name == "some/model" and named.model.toy is None


def test_the_defaults_are_the_papers_setup() -> None:
    config = parse_train_config({"output_dir": "x", "model": "m", "data": {"suite": "s"}})
    assert isinstance(config, TrainConfig)
    assert config.method == AlphaDPGMethod(alpha=0.5, pseudo_reward_clip=10.0, z_default=1e-4)
    o, s = config.optim, config.sampling
    assert (o.learning_rate, o.warmup_ratio, o.max_grad_norm, o.max_steps) == (2e-6, 0.05, 1, 200)
    assert (s.num_generations, s.max_completion_length, s.temperature) == (4, 1024, 1.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.lerning_rate=1"], "optim.lerning_rate: unknown key (did you mean optim.learn"),
        (["samplng.top_p=1"], "samplng: unknown key (did you mean sampling?)"),
        (["method.beta=0.1"], "method.beta: a grpo setting, not alpha-dpg's"),
        (["method.name=ppo"], "method.name: 'ppo' is not one of alpha-dpg, grpo"),
        (["optim.max_steps=many"], "optim.max_steps: expected an integer, got 'many'"),
        (["optim.precision=fp8"], "optim.precision: 'fp8' is not one of auto, fp32, bf16, fp16"),
        (["sampling.num_generations=1"], "sampling.num_generations: must be at least 2"),
        (["model.name=other"], "model: give exactly one of model.name"),
        (["output_dir="], "output_dir: must be set"),
        (["data.suite=null"], "data.suite: required"),
        (["trl.learning_rate=1"], "trl.learning_rate: set by optim.learning_rate"),
        (["trl.fp16=true"], "trl.fp16: set by optim.precision"),
        (["trl.bf16=false"], "trl.bf16: set by optim.precision"),
        (["trl.vllm_importance_sampling_cap=2"],
         "trl.vllm_importance_sampling_cap: set by vllm.importance_sampling_clip_max"),
        (["vllm.importance_sampling_mode=token_mask"],
         "vllm.importance_sampling_mode: token_mask weights each token by its own ratio; "
         "alpha-DPG's gradient is per sequence"),
        (["vllm.importance_sampling_mode=sequence"],
         "vllm.importance_sampling_mode: 'sequence' is not one of sequence_mask, "),
        (["vllm.importance_sampling_clip_min=3"],
         "vllm.importance_sampling_clip_min: must be below importance_sampling_clip_max (3.0)"),
        (["vllm.importance_sampling_clip_max=-1"],
         "vllm.importance_sampling_clip_max: must be at least 0"),
        (["optim=3"], "optim: expected a mapping"),
        (["alpha"], "override 'alpha': expected KEY.PATH=VALUE"),
    ],
)  # fmt: skip
def test_bad_configs_are_refused_in_one_line_naming_the_key(
    tmp_path: Path, overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_train_config(toy_config(tmp_path), overrides)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_apply_overrides_leaves_the_file_data_alone() -> None:
    raw = {"optim": {"max_steps": 3}}
    assert apply_overrides(raw, ["optim.max_steps=5"])["optim"]["max_steps"] == 5
    assert raw == {"optim": {"max_steps": 3}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["optim.lerning_rate=1"], "unknown key (did you mean optim.learning_rate?)"),
        (["method.alpha=half"], "method.alpha: expected a number, got 'half'"),
        (["--resume"], "--resume: no complete checkpoint in"),
    ],
)
def test_the_cli_reports_config_errors_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    path = toy_config(tmp_path)
    done = run_prover("train", str(path), *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"prover: {path}: ") and message in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_the_cli_reports_a_missing_config(tmp_path: Path) -> None:
    done = run_prover("train", str(tmp_path / "nope.yaml"))
    assert (done.returncode, done.stderr) == (2, f"prover: {tmp_path}/nope.yaml: no such file\n")


# --- shipped configs ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path: Path) -> None:
    pytest.importorskip("trl")
    from training.train_run import trainer_args

    config = load_train_config(path)
    args = trainer_args(config, cuda=False)  # TRL's and alpha-DPG's own checks (GPU ones not run)
    assert args.max_steps == config.optim.max_steps
    if path.name.startswith("paper-"):
        assert config.model.name == "deepseek-ai/DeepSeek-Prover-V1.5-SFT"
        assert config.data.eval_suite == "minif2f-test"
        sequences = 4 * args.per_device_train_batch_size * args.gradient_accumulation_steps
        assert sequences == 128 * config.sampling.num_generations == 512  # on 4 GPUs
        o = config.optim
        assert (o.learning_rate, o.warmup_ratio, o.max_grad_norm, o.max_steps) == (
            2e-6, 0.05, 1.0, 200)  # fmt: skip
        assert (args.max_completion_length, args.temperature) == (1024, 1.0)
    if isinstance(config.method, GRPOMethod):
        assert (args.beta, args.scale_rewards, args.epsilon) == (0.0, "none", 0.2)


def test_the_paper_configs_follow_the_reference_scripts() -> None:
    pytest.importorskip("trl")
    from training.train_run import trainer_args

    alpha = trainer_args(load_train_config(ROOT / "configs/paper-alpha-dpg.yaml"), cuda=False)
    assert (alpha.fp16, alpha.bf16) == (True, False)  # alpha-dpg.sh: actor and rollout float16
    grpo = trainer_args(load_train_config(ROOT / "configs/paper-grpo.yaml"), cuda=False)
    assert grpo.loss_type == "dr_grpo"  # rl.sh: token sums over a constant
    assert alpha.warmup_steps == grpo.warmup_steps == 0.05  # rl.sh: 0.0, kept equal here
    # vLLM's sampler correction: kept per sequence (TRL's default mode and cap)
    assert alpha.vllm_importance_sampling_correction
    assert (alpha.vllm_importance_sampling_mode, alpha.vllm_importance_sampling_clip_max) == (
        "sequence_mask", 3.0)  # fmt: skip


def test_the_sampler_correction_settings_reach_trl(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from training.train_run import trainer_args

    path = toy_config(tmp_path)
    args = trainer_args(load_train_config(path, ["vllm.importance_sampling_correction=false"]))
    assert args.vllm_importance_sampling_correction is False
    settings = [
        "vllm.importance_sampling_mode=sequence_truncate",
        "vllm.importance_sampling_clip_min=0.5",
        "vllm.importance_sampling_clip_max=2",
    ]
    args = trainer_args(load_train_config(path, settings))
    assert (args.vllm_importance_sampling_mode, args.vllm_importance_sampling_clip_min,
            args.vllm_importance_sampling_clip_max) == ("sequence_truncate", 0.5, 2.0)  # fmt: skip
    # GRPO may weight tokens one by one (TRL's choice); alpha-DPG may when it does not correct
    grpo = load_train_config(path, ["method.name=grpo", "vllm.importance_sampling_mode=token_mask"])
    assert trainer_args(grpo).vllm_importance_sampling_mode == "token_mask"
    off = ["vllm.importance_sampling_correction=false", "vllm.importance_sampling_mode=token_mask"]
    assert trainer_args(load_train_config(path, off)).vllm_importance_sampling_mode == "token_mask"


# --- the overlap check -------------------------------------------------------------------------


def test_statements_match_whitespace_and_name_blind() -> None:
    from training.train_data import normalise_statement

    a = "theorem mathd_1 (x : ℕ) (h : x = 2) :\n    x + x = 4 := by\n"
    b = "theorem lean_workbook_7   (x : ℕ) (h : x = 2) : x + x = 4 := by"
    assert normalise_statement(a) == normalise_statement(b)
    assert normalise_statement(a) != normalise_statement(a.replace("4", "5"))


def overlap_config(tmp_path: Path) -> Path:
    from harness.suites import load_suite

    held_out = load_suite("countdown", split="test").problems[0]
    spread = held_out.formal_statement.replace(" ", "\n    ")  # other whitespace
    rows = [*EASY, {"name": "leak", "split": "train", "header": "", "formal_statement": spread}]
    path = toy_config(tmp_path, data={"eval_suite": "countdown", "eval_split": "test"})
    Path(yaml.safe_load(path.read_text())["data"]["suite"]).write_text(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    return path


def test_overlap_with_the_eval_suite_warns(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from training.train_run import prepare

    prepared = prepare(load_train_config(overlap_config(tmp_path)), strict_data=False)
    assert len(prepared.rows) == 13
    [warning] = prepared.warnings
    assert warning.startswith("warning: 1 of 13 training statements")
    assert "(leak = countdown_2_0)" in warning


def test_overlap_with_the_eval_suite_is_refused_with_strict_data(tmp_path: Path) -> None:
    path = overlap_config(tmp_path)
    done = run_prover("train", str(path), "--strict-data")
    assert done.returncode == 2, done.stderr
    assert "1 of 13 training statements" in done.stderr and "--strict-data" in done.stderr
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()  # refused before anything was written


# --- prompts and rewards agree with `prover eval` ----------------------------------------------


def test_rows_carry_the_prompts_prover_eval_builds() -> None:
    pytest.importorskip("trl")
    from harness.suites import Problem
    from harness.tasks import prompt_format_for, prompt_problem
    from training.train_data import choose_format, training_rows

    lean = Problem("t", "train", "import Mathlib\n", "theorem t : 1 + 1 = 2 := by\n",
                   {"informal_prefix": "/-- One and one. -/\n"})  # fmt: skip
    for model, name in (("deepseek-ai/DeepSeek-Prover-V1.5-SFT", None), ("some/chat", "kimina")):
        fmt = choose_format("lean", model, name)
        [row] = training_rows([lean], fmt)
        built = prompt_format_for("lean", model, name).build(prompt_problem(lean))
        expected = built.text if built.text is not None else [dict(m) for m in built.messages]
        assert row["prompt"] == expected
        assert row["informal_prefix"] == "/-- One and one. -/\n"
    assert isinstance(row["prompt"], list)  # chat formats: TRL's conversational prompts


def test_the_reward_checks_the_proof_the_format_cuts_out() -> None:
    from harness.suites import Problem
    from prover.lean.verdict import Verdict
    from training.train_data import FormattedReward, choose_format, training_rows

    class Record:
        def __init__(self) -> None:
            self.proofs: list[str] = []

        def check_many(self, items: Any) -> Any:
            for item in items:
                self.proofs.append(item.proof)
                yield item, Verdict(item.name, item.proof.strip() == "rfl", "ok")

    fmt = choose_format("lean", "deepseek-ai/DeepSeek-Prover-V1.5-SFT", None)
    rows = training_rows([Problem("t", "train", "", "theorem t : 2 = 2 := by\n")], fmt)
    verifier = Record()
    columns = {k: [rows[0][k]] * 2 for k in rows[0] if k != "prompt"}
    rewards = FormattedReward(verifier, fmt)(
        [rows[0]["prompt"]] * 2, ["  rfl\n```\nmore text", "  simp\n```"], **columns
    )
    assert rewards == [1.0, 0.0]
    assert verifier.proofs == ["  rfl\n", "  simp\n"]  # cut at the fence, as eval does


# --- runs --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[str]]]:
    """A two-step toy run of each method, in this process (the imports are paid once)."""
    pytest.importorskip("trl")
    from training.train_run import run

    out = {}
    for method in ("alpha-dpg", "grpo"):
        tmp = tmp_path_factory.mktemp(method)
        lines: list[str] = []
        final = run(load_train_config(toy_config(tmp, method)), emit=lines.append)
        out[method] = (final, lines)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("method", ["alpha-dpg", "grpo"])
def test_a_toy_run_saves_a_final_model_prover_eval_loads(finished_runs, method: str) -> None:
    from prover.models.base import Prompt, SamplingParams
    from prover.models.transformers_backend import TransformersBackend

    final, lines = finished_runs[method]
    out = final.parent
    assert final == out / "final" and (out / "checkpoint-2").is_dir()
    assert load_train_config(out / "train_config.yaml").method.name == method
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert [line.split()[1] for line in lines if line.startswith("step ")] == ["1/2", "2/2"]
    assert "reward" in lines[1] and lines[-1].endswith("--prompt-format countdown-text")
    history = json.loads((out / "log_history.json").read_text())
    assert [e["step"] for e in history if "reward" in e] == [1, 2]
    assert (out / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    backend = TransformersBackend(str(final), device="cpu")
    [[completion]] = backend.generate(
        [Prompt(text="Using the numbers 1, 2, 3\n")], SamplingParams(1, 1.0, 1.0, 3, seed=0)
    )
    assert set(completion.text) <= set("123+")
    # the weights moved: the toy model as built (seed 0) is not what was saved
    from transformers import AutoModelForCausalLM

    from training.toy import toy_model, toy_tokenizer

    start = toy_model(toy_tokenizer("123+"), hidden=32, layers=1, seed=0).state_dict()
    saved = AutoModelForCausalLM.from_pretrained(final).state_dict()
    assert any(not (saved[k] == v).all() for k, v in start.items())


@pytest.mark.slow
def test_a_second_run_into_the_same_output_dir_is_refused(finished_runs) -> None:
    from training.train_run import run

    final, _ = finished_runs["alpha-dpg"]
    config = load_train_config(final.parent.parent / "alpha-dpg.yaml")
    with pytest.raises(ConfigError, match=r"already has checkpoints \(up to checkpoint-2\): "
                                          r"continue with --resume"):  # fmt: skip
        run(config)
    changed = load_train_config(final.parent.parent / "alpha-dpg.yaml", ["method.alpha=0.9"])
    with pytest.raises(ConfigError, match=r"--resume: the config differs .* in method\.alpha;"):
        run(changed, resume=True)


SLOW_PROVER = """
import sys, time
import training.train_data as data

checked = data.FormattedReward.__call__

def slowly(self, *args, **kwargs):  # a step a second: time to kill the run between checkpoints
    time.sleep(1.0)
    return checked(self, *args, **kwargs)

data.FormattedReward.__call__ = slowly
sys.argv = ["prover", *sys.argv[1:]]
from prover.cli import main
main()
"""


@pytest.mark.slow
def test_resume_after_sigkill_continues_from_the_last_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from training.train_run import last_complete_checkpoint

    steps = 5
    path = toy_config(tmp_path, optim={"max_steps": steps})
    out = tmp_path / "out"
    script = tmp_path / "slow_prover.py"
    script.write_text(textwrap.dedent(SLOW_PROVER))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), "train", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while last_complete_checkpoint(out) is None:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    checkpoint = last_complete_checkpoint(out)
    assert checkpoint is not None
    killed_at = int(checkpoint.name.split("-")[1])
    assert killed_at < steps and not (out / "final").exists()

    done = run_prover("train", str(path), "--resume")
    assert done.returncode == 0, done.stderr
    assert f"from checkpoint-{killed_at}" in done.stderr
    logged = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("step ")]
    assert logged == [f"{s}/{steps}" for s in range(killed_at + 1, steps + 1)]
    state = json.loads((out / f"checkpoint-{steps}" / "trainer_state.json").read_text())
    assert state["global_step"] == steps
    # one history: the steps before the kill (restored) and after it, each once
    assert [e["step"] for e in state["log_history"] if "loss" in e] == list(range(1, steps + 1))
    assert done.stdout.strip() == f"final model: {out / 'final'}"
    assert (out / "final" / "model.safetensors").exists()


# --- a finished run, a broken verifier, the summary lines ---------------------------------------


def copy_run(finished_runs, method: str, to: Path) -> tuple[Path, Path]:
    """(config, output_dir) of a copy of a finished toy run: tests may resume it freely."""
    import shutil

    final, _ = finished_runs[method]
    shutil.copytree(final.parent, to)
    return final.parent.parent / f"{method}.yaml", to


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["alpha-dpg", "grpo"])
def test_resuming_a_finished_run_trains_nothing(finished_runs, method: str, tmp_path: Path) -> None:
    config, out = copy_run(finished_runs, method, tmp_path / "run")
    final, history = snapshot(out / "final"), (out / "log_history.json").read_bytes()
    done = run_prover("train", str(config), f"output_dir={out}", "--resume")
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"already finished: step 2/2 in {out}\n"
    assert done.stdout == f"final model: {out / 'final'}\n"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert snapshot(out / "final") == final  # not written again
    assert (out / "log_history.json").read_bytes() == history


@pytest.mark.slow
def test_a_finished_run_that_died_before_final_gets_it_from_its_checkpoint(
    finished_runs, tmp_path: Path
) -> None:
    import shutil

    config, out = copy_run(finished_runs, "alpha-dpg", tmp_path / "run")
    shutil.rmtree(out / "final")
    (out / "log_history.json").unlink()
    done = run_prover("train", str(config), f"output_dir={out}", "--resume")
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        f"already finished: step 2/2 in {out} (final/ written from checkpoint-2)\n"
    )
    weights = (out / "checkpoint-2" / "model.safetensors").read_bytes()
    assert (out / "final" / "model.safetensors").read_bytes() == weights
    assert {"config.json", "tokenizer.json"} <= {p.name for p in (out / "final").iterdir()}
    assert not list((out / "final").glob("optimizer.pt"))
    assert not (out / "final.partial").exists()
    history = json.loads((out / "log_history.json").read_text())
    assert [e["step"] for e in history if "reward" in e] == [1, 2]


@pytest.mark.slow
def test_a_raised_max_steps_trains_only_the_new_steps_and_says_so(
    finished_runs, tmp_path: Path
) -> None:
    config, out = copy_run(finished_runs, "grpo", tmp_path / "run")
    done = run_prover("train", str(config), f"output_dir={out}", "optim.max_steps=3", "--resume")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("step ")] == ["3/3"]
    [summary] = [line for line in lines if line.startswith("done: ")]
    assert summary.startswith("done: 1 step in ") and summary.endswith(", step 3/3")
    assert (out / "checkpoint-3").is_dir() and not (out / "checkpoint-4").exists()


BROKEN_VERIFIER = Path(__file__).resolve().parent / "doubles" / "broken_verifier_prover.py"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["alpha-dpg", "grpo"])
def test_a_machinery_failure_stops_training_without_a_checkpoint_of_its_step(
    tmp_path: Path, method: str
) -> None:
    pytest.importorskip("trl")
    path = toy_config(tmp_path, method)
    out, log = tmp_path / "out", tmp_path / "checks.log"
    # a step checks 8 completions: check 10 falls in step 2
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BREAK_ON_CHECK": "10", "CHECK_LOG": str(log)}
    done = subprocess.run(
        [sys.executable, str(BROKEN_VERIFIER), "train", str(path)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    last = done.stderr.splitlines()[-1]
    assert last == (
        "prover: verifier machinery failed (not a verdict on any proof): the REPL could not "
        "start (double: check 10); training stopped in step 2; continue from checkpoint-1 with "
        "--resume once the verifier works"
    )
    assert [line for line in done.stderr.splitlines() if line.startswith("prover:")] == [last]
    logged = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("step ")]
    assert logged == ["1/2"]
    assert log.read_text().split() == [str(i) for i in range(1, 11)]  # stopped at once
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]
    assert not (out / "final").exists() and not (out / "log_history.json").exists()


@pytest.mark.slow
def test_a_machinery_failure_in_the_first_step_leaves_no_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    path = toy_config(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BREAK_ON_CHECK": "1"}
    done = subprocess.run(
        [sys.executable, str(BROKEN_VERIFIER), "train", str(path)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].endswith(
        "(double: check 1); training stopped in step 1, before any checkpoint: start it again"
    )
    assert not list((tmp_path / "out").glob("checkpoint-*"))


def test_the_last_summary_line_counts_the_steps_this_run_trained() -> None:
    pytest.importorskip("trl")
    from types import SimpleNamespace

    from training.train_run import summary_callback

    lines: list[str] = []
    summary = summary_callback(lines.append)
    state = SimpleNamespace(global_step=2, max_steps=5, is_world_process_zero=True)
    summary.on_train_begin(None, state, None)  # resumed from checkpoint-2
    for step in (3, 4, 5):
        state.global_step = step
        summary.on_log(None, state, None, logs={"loss": 0.5})
    summary.on_log(None, state, None, logs={"train_runtime": 1000.0})
    assert [line.split()[:2] for line in lines[:3]] == [["step", "3/5"], ["step", "4/5"],
                                                         ["step", "5/5"]]  # fmt: skip
    assert lines[3].startswith("done: 3 steps in ") and lines[3].endswith(", step 5/5")
    # one clock for both: the run's time is not TRL's own (which it measures elsewhere)
    seconds = float(lines[3].split()[4].rstrip("s,"))
    assert seconds < 60 and seconds >= float(lines[2].split()[-1].rstrip("s")) - 1


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_a_broken_lean_verifier_stops_training_before_the_model_loads(tmp_path: Path) -> None:
    """A known-good check runs first: no step may learn from a verifier that cannot judge."""
    suite = tmp_path / "lean.jsonl"
    rows = [
        {"name": f"t{i}", "split": "train", "header": "import Mathlib\n",
         "formal_statement": f"theorem t{i} : {i} + 1 = {i + 1} := by\n"}
        for i in range(4)
    ]  # fmt: skip
    suite.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = toy_config(
        tmp_path,
        data={"suite": str(suite)},
        model={"prompt_format": "deepseek-v1.5"},
        verifier={"kind": "lean", "repl": "sh -c 'exit 1'", "sandbox": "none", "replay": False},
    )
    done = run_prover("train", str(path))
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "machinery failed" in last and "before training: nothing was trained" in last
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "out").glob("checkpoint-*"))
    assert not (tmp_path / "out" / "final").exists()


def minif2f_training_config(tmp_path: Path, fake_repl_script) -> tuple[Path, dict[str, str]]:
    """A toy run on `minif2f-test` (its YAML says Lean v4.24.0; four problems here, found via
    PROVER_DATA) with a Lean verifier, FakeRepl reporting Lean v4.9.0; the config and env."""
    data = tmp_path / "data"
    data.mkdir()
    rows = [
        {"name": f"t{i}", "split": "test", "header": "import Mathlib\n",
         "formal_statement": f"theorem t{i} : {i} + 1 = {i + 1} := by\n"}
        for i in range(4)
    ]  # fmt: skip
    (data / "minif2f-lean4.24.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    repl = " ".join(fake_repl_script(version="4.9.0").argv)
    verifier = {"kind": "lean", "repl": repl, "sandbox": "none", "replay": False}
    path = toy_config(tmp_path, data={"suite": "minif2f-test"},
                      model={"prompt_format": "deepseek-v1.5"}, verifier=verifier)  # fmt: skip
    return path, {"PROVER_DATA": str(data)}


@pytest.mark.slow  # several seconds: CI runs it in the slow pass
def test_training_on_a_checker_on_another_lean_is_refused(tmp_path: Path, fake_repl_script):
    path, env = minif2f_training_config(tmp_path, fake_repl_script)
    refused = run_prover("train", str(path), env=env)
    assert refused.returncode == 2, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last == (
        "prover: suite minif2f-test is written for Lean v4.24.0 but the checker runs Lean "
        "v4.9.0: run it on a checker built for v4.24.0 (`docker build -t prover:v4.24.0 "
        "--build-arg LEAN_VERSION=v4.24.0 .`), or set verifier.allow_version_mismatch: true to "
        "run it anyway"
    )
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "out").exists()  # no model loaded, nothing written


@pytest.mark.slow
def test_training_on_another_lean_runs_when_allowed(tmp_path: Path, fake_repl_script) -> None:
    path, env = minif2f_training_config(tmp_path, fake_repl_script)
    allowed = run_prover("train", str(path), "verifier.allow_version_mismatch=true", env=env)
    assert allowed.returncode == 0, allowed.stderr
    assert "Lean v4.9.0 (a mismatch allowed)" in allowed.stderr
    assert (tmp_path / "out" / "final").is_dir()
