"""`prover train` with `method.name: sft`: its config keys and one-line refusals, the rows TRL's
SFTTrainer trains on (loss on the tactic only), and a short toy run over the LeanDojo-format
fixture: the loss falls, final/ is written, `--resume` continues from the last checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from training.train_config import ConfigError, SFTMethod, load_train_config

from conftest import ROOT, data_path, run_prover

FIXTURE = data_path("leandojo-tactics/train.json")


def sft_config(tmp_path: Path, **sections: Any) -> Path:
    """A toy SFT config over the fixture (7 pairs, one batch per step)."""
    raw: dict[str, Any] = {
        "output_dir": str(tmp_path / "out"),
        "model": {"toy": {"hidden": 32, "layers": 1}},
        "data": {"tactics": str(FIXTURE)},
        "method": {"name": "sft", "max_length": 256},
        "optim": {"learning_rate": 1e-2, "lr_scheduler_type": "constant", "warmup_ratio": 0.0,
                  "per_device_train_batch_size": 8, "max_steps": 4, "precision": "fp32",
                  "gradient_checkpointing": False},
        "save_steps": 2,
        "logging_steps": 1,
    }  # fmt: skip
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# --- the config --------------------------------------------------------------------------------


def test_sft_keys_load_with_their_defaults(tmp_path: Path) -> None:
    config = load_train_config(sft_config(tmp_path), ["method={name: sft}"])
    assert config.method == SFTMethod(max_length=2048, annotated=False, keep_marks=False,
                                      normalize_whitespace=False)  # fmt: skip
    assert config.data.tactics == str(FIXTURE) and config.data.suite is None
    again = load_train_config(sft_config(tmp_path), ["method.annotated=true"])
    assert isinstance(again.method, SFTMethod) and again.method.annotated


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.tactics=null"], "data.tactics: required by method.name: sft"),
        (["data.suite=countdown"], "data.suite: not read by method.name: sft"),
        (["data.eval_suite=minif2f-test"], "data.eval_suite: not read by method.name: sft"),
        (["method={name: grpo}", "data.suite=countdown"],
         "data.tactics: read by method.name: sft only, not grpo"),
        (["method.alpha=0.5"], "method.alpha: a alpha-dpg setting, not sft's (sft: max_length,"),
        (["method.max_length=1"], "method.max_length: must be at least 2, got 1"),
        (["method.annotated=maybe"], "method.annotated: expected true or false, got 'maybe'"),
        (["method.max_lenght=9"],
         "method.max_lenght: unknown key (did you mean method.max_length?)"),
        (["trl.max_length=9"], "trl.max_length: set by method.max_length"),
        (["vllm.use_vllm=true", "model.toy=null", "model.name=m"],
         "vllm.use_vllm: sft generates nothing"),
        (["method.name=sft2"], "method.name: 'sft2' is not one of alpha-dpg, grpo, sft"),
    ],
)  # fmt: skip
def test_bad_sft_configs_are_refused_in_one_line(
    tmp_path: Path, overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_train_config(sft_config(tmp_path), overrides)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_the_sft_settings_reach_trl(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from trl import SFTConfig

    from training.train_run import trainer_args

    args = trainer_args(load_train_config(sft_config(tmp_path), ["trl.packing=false"]), cuda=False)
    assert isinstance(args, SFTConfig)
    assert (args.max_length, args.completion_only_loss, args.max_steps) == (256, True, 4)
    assert (args.learning_rate, args.save_steps, args.logging_steps, args.bf16) == (
        1e-2,
        2,
        1,
        False,
    )
    with pytest.raises(ConfigError, match=r"^trl\.reward_weights: not an SFTConfig setting$"):
        trainer_args(load_train_config(sft_config(tmp_path), ["trl.reward_weights=[1]"]))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model.prompt_format=kimina"],
         "model.prompt_format: prompt format 'kimina' is a whole-proof format; a best-first "
         "search needs a step-level one (bfs-prover, internlm-step, llemma-fewshot, "
         "llemma-goal)"),
        (["data.tactics=BAD"],
         "data.tactics: BAD: theorem 0 (T.t), tactic 0: state_before: missing"),
        (["data.tactics=nope.json"], "data.tactics: nope.json: no such file"),
    ],
)  # fmt: skip
def test_the_cli_refuses_bad_sft_data_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"full_name": "T.t", "traced_tactics": [{"tactic": "simp"}]}]))
    args = [a.replace("BAD", str(bad)) for a in args]
    path = sft_config(tmp_path)
    # from tmp_path, where nope.json is looked for (this checkout's prover, not an installed one)
    done = run_prover("train", str(path), *args, "--dry-run", cwd=tmp_path,
                      env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"prover: {path}: {message.replace('BAD', str(bad))}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a process that imports TRL: 10-20 s on 2 cores
def test_a_dry_run_counts_the_pairs(tmp_path: Path) -> None:
    done = run_prover("train", str(sft_config(tmp_path)), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["method"]["name"] == "sft"
    assert done.stderr.splitlines() == [
        "note: 1 step on 'no goals' skipped",
        "# 7 (state, tactic) pairs from 5 theorems (bfs-prover), no verifier",
    ]


def test_a_chat_format_on_a_model_without_a_chat_template_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from training.train_run import run

    config = load_train_config(sft_config(tmp_path), ["model.prompt_format=internlm-step"])
    with pytest.raises(ConfigError, match=r"^model\.prompt_format: internlm-step is a chat format "
                                          r"and the model has no chat template"):  # fmt: skip
        run(config, emit=lambda line: None)
    assert not list((tmp_path / "out").glob("checkpoint-*"))


def test_the_shipped_toy_config_reads_the_fixture() -> None:
    from training.train_run import prepare

    config = load_train_config(ROOT / "configs/cpu-toy-sft.yaml")
    assert Path(config.data.tactics or "") == FIXTURE.relative_to(ROOT)
    absolute = load_train_config(ROOT / "configs/cpu-toy-sft.yaml", [f"data.tactics={FIXTURE}"])
    prepared = prepare(absolute, strict_data=False)
    assert len(prepared.rows) == 7


# --- what the trainer trains on ----------------------------------------------------------------


def test_the_loss_falls_on_the_tactic_and_its_end_only(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from training.sft_run import build_sft_trainer, prepare_sft
    from training.train_run import load_model, trainer_args

    config = load_train_config(sft_config(tmp_path))
    prepared = prepare_sft(config)
    assert prepared.rows[0] == {"prompt": "n : ℕ\n⊢ 2 * n = n + n:::", "completion": "rw [two_mul]"}
    model, tokenizer = load_model(config)
    trainer = build_sft_trainer(prepared, trainer_args(config, cuda=False), model, tokenizer, [])
    row = trainer.train_dataset[0]
    learnt = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    assert tokenizer.decode(learnt) == "rw [two_mul]<eos>"
    prompt_length = len(tokenizer(prepared.rows[0]["prompt"])["input_ids"])
    assert set(row["labels"][:prompt_length]) == {-100}


def test_pairs_longer_than_max_length_are_dropped_and_none_left_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from training.sft_run import build_sft_trainer, prepare_sft
    from training.train_run import load_model, trainer_args

    config = load_train_config(sft_config(tmp_path), ["method.max_length=24"])
    prepared = prepare_sft(config)
    model, tokenizer = load_model(config)
    trainer = build_sft_trainer(prepared, trainer_args(config, cuda=False), model, tokenizer, [])
    assert 0 < len(trainer.train_dataset) < 7  # the short states stay, the long ones go
    tiny = load_train_config(sft_config(tmp_path), ["method.max_length=4"])
    with pytest.raises(ConfigError, match=r"^method\.max_length: every pair is longer than 4 "):
        build_sft_trainer(prepared, trainer_args(tiny, cuda=False), model, tokenizer, [])


# --- a toy run ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_sft(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """(config, output_dir, summary lines) of a 4-step toy SFT run, in this process."""
    pytest.importorskip("trl")
    from training.train_run import run

    tmp = tmp_path_factory.mktemp("sft")
    path = sft_config(tmp)
    lines: list[str] = []
    final = run(load_train_config(path), emit=lines.append)
    return path, final.parent, lines


@pytest.mark.slow
def test_a_toy_sft_run_lowers_the_loss_and_writes_final(finished_sft) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.toy import toy_model, toy_tokenizer

    _, out, lines = finished_sft
    assert lines[1] == "sft: 7 pairs (bfs-prover), 4 steps (~4.57 epochs)"
    assert [line.split()[1] for line in lines if line.startswith("step ")] == [
        "1/4", "2/4", "3/4", "4/4"]  # fmt: skip
    history = json.loads((out / "log_history.json").read_text())
    losses = [e["loss"] for e in history if "loss" in e]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.5
    assert (out / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert load_train_config(out / "train_config.yaml").method == SFTMethod(max_length=256)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    final = out / "final"
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= {
        p.name for p in final.iterdir()
    }
    tokenizer = AutoTokenizer.from_pretrained(final)
    assert tokenizer.decode(tokenizer("rw [two_mul]")["input_ids"]) == "rw [two_mul]"
    start = toy_model(toy_tokenizer(), hidden=32, layers=1, seed=0).state_dict()
    saved = AutoModelForCausalLM.from_pretrained(final).state_dict()
    assert any(not (saved[k] == v).all() for k, v in start.items())
    assert lines[-1] == (
        f"step-level model (bfs-prover prompts): prove with `prover prove FILE.lean --search "
        f"best-first --model {final} --prompt-format bfs-prover`, or evaluate with `prover eval "
        "SUITE` and the same options"
    )


@pytest.mark.slow
def test_resume_continues_an_sft_run_from_its_last_checkpoint(finished_sft, tmp_path) -> None:
    import shutil

    from training.train_run import run

    path, out, _ = finished_sft
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "final")
    shutil.rmtree(copy / "checkpoint-4")  # as if killed after step 3
    config = load_train_config(path, [f"output_dir={copy}"])
    with pytest.raises(ConfigError, match=r"already has checkpoints \(up to checkpoint-2\)"):
        run(config)
    changed = load_train_config(path, [f"output_dir={copy}", "method.max_length=128"])
    with pytest.raises(ConfigError, match=r"differs from the run's .* in method\.max_length;"):
        run(changed, resume=True)
    lines: list[str] = []
    final = run(config, resume=True, emit=lines.append)
    assert lines[1].endswith("4 steps (~4.57 epochs) from checkpoint-2")
    assert [line.split()[1] for line in lines if line.startswith("step ")] == ["3/4", "4/4"]
    state = json.loads((copy / "checkpoint-4" / "trainer_state.json").read_text())
    assert [e["step"] for e in state["log_history"] if "loss" in e] == [1, 2, 3, 4]
    assert (final / "model.safetensors").exists()
    again: list[str] = []
    run(config, resume=True, emit=again.append)
    assert again == [f"already finished: step 4/4 in {copy}"]
