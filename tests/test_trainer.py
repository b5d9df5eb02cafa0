"""AlphaDPGTrainer runs real TRL steps on CPU: a tiny random Llama, countdown puzzles, the
countdown verifier. TRL's own GRPOTrainer runs on the same setup as the baseline."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402
from trl.trainer.utils import shuffle_sequence_dict  # noqa: E402

from harness.countdown import CountdownVerifier, Puzzle  # noqa: E402
from prover.lean.verdict import CheckItem, Verdict  # noqa: E402
from training.alpha_dpg import alpha_dpg_advantages  # noqa: E402
from training.config import AlphaDPGConfig  # noqa: E402
from training.rewards import countdown_rows, verifier_reward  # noqa: E402
from training.toy import CPU_SETTINGS, toy_model, toy_tokenizer  # noqa: E402
from training.trainer import AlphaDPGTrainer  # noqa: E402

# A small alphabet and one-digit answers: about one sample in ten is correct at step 0.
ALPHABET = "123+"
PUZZLES = [Puzzle(f"p{t}", (1, 2, 3), t, str(t)) for t in (1, 2, 3)]
SETTINGS: dict[str, Any] = {
    **CPU_SETTINGS,
    "per_device_train_batch_size": 8,
    "num_generations": 4,
    "max_completion_length": 3,
    "learning_rate": 1e-2,
    "logging_steps": 1,
}
ALPHA_DPG_METRICS = [
    f"alpha_dpg/{name}"
    for name in (
        "pass_rate z/mean z/min z/max pseudo_reward/mean pseudo_reward/std advantage/mean "
        "advantage/std frac_clipped ess ess_fraction alpha_divergence"
    ).split()
]


class AcceptIf:
    """The pool's interface; accepts the proofs that contain one of `chars` ("": none)."""

    def __init__(self, chars: str) -> None:
        self.chars = chars

    def __call__(self, text: str) -> bool:
        return any(c in text for c in self.chars)

    def check_many(self, items: Iterable[CheckItem]) -> Iterator[tuple[CheckItem, Verdict]]:
        for item in items:
            ok = self(item.proof)
            yield item, Verdict(item.name, ok, "ok" if ok else "error")


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return toy_tokenizer(ALPHABET)


@pytest.fixture
def dataset() -> Dataset:
    return Dataset.from_list(countdown_rows(PUZZLES * 8))


def alpha_config(tmp_path: Path, **overrides: Any) -> AlphaDPGConfig:
    return AlphaDPGConfig(output_dir=str(tmp_path), **{**SETTINGS, "max_steps": 2, **overrides})


def trainer_for(tokenizer: Any, dataset: Dataset, args: AlphaDPGConfig, verifier: Any = None):
    model = toy_model(tokenizer)
    trainer = AlphaDPGTrainer(
        model,
        verifier_reward(verifier or CountdownVerifier()),
        args,
        dataset,
        processing_class=tokenizer,
    )
    return trainer, copy.deepcopy(model.state_dict())


def changed(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> list[str]:
    return [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]


def logged(trainer: Any, key: str) -> list[float]:
    return [entry[key] for entry in trainer.state.log_history if key in entry]


@pytest.mark.slow
def test_alpha_dpg_steps_train_the_policy_and_log_the_method(tokenizer, dataset, tmp_path):
    args = alpha_config(tmp_path, max_steps=3, eval_strategy="steps", eval_steps=3)
    model = toy_model(tokenizer)
    before = copy.deepcopy(model.state_dict())
    trainer = AlphaDPGTrainer(
        model,
        verifier_reward(CountdownVerifier()),
        args,
        dataset,
        eval_dataset=Dataset.from_list(countdown_rows(PUZZLES[:2])),
        processing_class=tokenizer,
    )
    trainer.train()
    assert changed(trainer.model, before)
    assert not changed(trainer.ref_model, before)  # the base stays frozen
    assert max(logged(trainer, "alpha_dpg/pass_rate")) > 0  # there was a signal to learn from
    for key in ALPHA_DPG_METRICS + ["reward", "entropy", "policy_loss", "completions/mean_length"]:
        assert len(logged(trainer, key)) == 3, key
    assert all(0 < z <= 1 for z in logged(trainer, "alpha_dpg/z/min"))
    assert len(logged(trainer, "eval_alpha_dpg/pass_rate")) == 1
    trainer.save_model(str(tmp_path / "final"))
    saved = type(model).from_pretrained(tmp_path / "final").state_dict()
    assert all(torch.equal(saved[k], v) for k, v in trainer.model.state_dict().items())


@pytest.mark.slow
def test_all_wrong_groups_give_no_gradient(tokenizer, dataset, tmp_path):
    trainer, before = trainer_for(tokenizer, dataset, alpha_config(tmp_path), AcceptIf(""))
    trainer.train()
    assert not changed(trainer.model, before)
    assert logged(trainer, "grad_norm") == [0.0, 0.0]
    assert logged(trainer, "alpha_dpg/pass_rate") == [0.0, 0.0]
    assert logged(trainer, "alpha_dpg/z/max") == [pytest.approx(1e-4)] * 2


def score_batch(trainer: AlphaDPGTrainer) -> tuple[dict[str, Any], torch.Tensor]:
    """One generation batch (each prompt num_generations times) and its loss, as in a step."""
    rows = [row for row in countdown_rows(PUZZLES) for _ in range(trainer.num_generations)]
    trainer.model.train()
    batch = shuffle_sequence_dict(trainer._generate_and_score_completions(rows))  # as TRL does
    trainer.current_gradient_accumulation_steps = trainer.args.gradient_accumulation_steps
    loss = trainer.compute_loss(trainer.model, batch)
    result = trainer.last_alpha_dpg
    # two correct samples and a wrong one: else the advantages do not depend on the weights
    mixed = (result.group_correct > 1) & (result.group_correct < result.group_size)
    assert mixed.any()
    return batch, loss


def sequence_logps(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """Summed completion log-probs from a plain forward pass (no TRL code)."""
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.double()
    width = batch["completion_ids"].size(1)
    logps = logits[:, -width - 1 : -1].log_softmax(-1)
    tokens = logps.gather(-1, batch["completion_ids"].unsqueeze(-1)).squeeze(-1)
    return (tokens * batch["completion_mask"]).sum(-1)


# accumulation 1: advantages wait for the loss's forward pass; 2: computed at generation time,
# from a forward pass of their own (the batch is split over two updates' worth of steps)
@pytest.mark.slow
@pytest.mark.parametrize("accumulation", [1, 2])
def test_advantages_and_loss_come_from_policy_and_base_log_probs(
    accumulation, tokenizer, dataset, tmp_path
):
    # a "1" or "2" in the completion passes: groups mix right and wrong answers
    verifier = AcceptIf("12")
    args = alpha_config(tmp_path, alpha=0.25, gradient_accumulation_steps=accumulation)
    trainer, before = trainer_for(tokenizer, dataset, args, verifier)
    base = toy_model(tokenizer)  # not a deepcopy: TRL's patched forward would follow the policy
    base.load_state_dict(before)
    with torch.no_grad():  # move the policy away from the base, so the weights matter
        for param in trainer.model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    batch, loss = score_batch(trainer)
    texts = tokenizer.batch_decode(batch["completion_ids"], skip_special_tokens=True)
    policy_logps = sequence_logps(trainer.model, batch)
    expected = alpha_dpg_advantages(
        policy_logps,
        sequence_logps(base, batch),
        torch.tensor([verifier(text) for text in texts]),
        batch["alpha_dpg_index"] // trainer.num_generations,  # TRL shuffled the batch
        0.25,
    )
    assert torch.allclose(batch["advantages"].double(), expected.advantages, atol=1e-4)
    # mean of -A * (sequence log-prob) / max_completion_length, scaled for accumulation
    policy_term = -(expected.advantages * policy_logps).mean().item() / 3
    assert loss.item() == pytest.approx(policy_term / accumulation, abs=1e-5)


@pytest.mark.slow
def test_at_the_start_z_is_the_pass_rate(tokenizer, dataset, tmp_path):
    trainer, _ = trainer_for(tokenizer, dataset, alpha_config(tmp_path), AcceptIf("12"))
    score_batch(trainer)
    result = trainer.last_alpha_dpg
    has_correct = result.group_correct > 0
    pass_rate = result.group_correct / result.group_size
    z = result.group_log_z.exp()
    assert torch.allclose(z[has_correct], pass_rate[has_correct].double(), atol=1e-5)
    assert torch.allclose(z[~has_correct], torch.tensor(1e-4, dtype=torch.float64))


@pytest.mark.slow
def test_base_model_reloads_from_the_policy_path(tokenizer, dataset, tmp_path):
    toy_model(tokenizer, seed=3).save_pretrained(tmp_path / "model")
    trainer = AlphaDPGTrainer(
        str(tmp_path / "model"),
        verifier_reward(CountdownVerifier()),
        alpha_config(tmp_path / "out"),
        dataset,
        processing_class=tokenizer,
    )
    policy, base = trainer.model.state_dict(), trainer.ref_model.state_dict()
    assert policy.keys() == base.keys()
    assert all(torch.equal(policy[k], base[k]) for k in policy)
    assert not any(p.requires_grad for p in trainer.ref_model.parameters())


@pytest.mark.parametrize(
    "setting",
    [
        {"temperature": 0.7},
        {"top_p": 0.95},
        {"top_k": 20},
        {"min_p": 0.05},
        {"repetition_penalty": 1.1},
        {"generation_kwargs": {"top_p": 0.5}},
    ],
)
def test_sampling_other_than_the_policy_is_refused(setting, tmp_path):
    with pytest.raises(ValueError, match="temperature 1 with no truncation"):
        alpha_config(tmp_path, **setting)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"num_iterations": 2}, "num_iterations=2"),
        ({"steps_per_generation": 2}, "steps_per_generation=2"),
        ({"beta": 0.04}, "no KL term"),
        ({"sync_ref_model": True}, "frozen"),
        ({"alpha": 1.0}, "0.999"),
    ],
)
def test_off_policy_and_unsupported_settings_are_refused(setting, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        alpha_config(tmp_path, **setting)


@pytest.mark.parametrize("mode", ["token_mask", "token_truncate"])
def test_per_token_sampler_correction_is_refused(mode, tmp_path):
    with pytest.raises(
        ValueError, match=f"vllm_importance_sampling_mode={mode} weights each token"
    ):
        alpha_config(tmp_path, vllm_importance_sampling_mode=mode)
    # with the correction off the mode is not used
    alpha_config(
        tmp_path, vllm_importance_sampling_mode=mode, vllm_importance_sampling_correction=False
    )


@pytest.mark.slow
def test_the_sampler_correction_weights_each_sequence_and_its_share_is_logged(
    tokenizer, dataset, tmp_path, monkeypatch
):
    trainer, _ = trainer_for(tokenizer, dataset, alpha_config(tmp_path), AcceptIf("12"))
    batch, _ = score_batch(trainer)  # the advantages are now in the batch
    size = len(batch["advantages"])
    # TRL's sequence-mode ratio, (B, 1): some sequences masked (0), others weighted
    ratio = torch.tensor([0.0, 0.5, 1.0, 2.5] * (size // 4)).unsqueeze(-1)
    batch["importance_sampling_ratio"] = ratio
    loss = trainer.compute_loss(trainer.model, batch)
    weighted = ratio.squeeze(-1).double() * sequence_logps(trainer.model, batch)
    expected = -(batch["advantages"].double() * weighted).mean().item() / 3
    assert loss.item() == pytest.approx(expected, abs=1e-5)

    # With vLLM, TRL's batch carries both log-probs; vLLM's here: the trainer's, but for the
    # first sequence, where vLLM gave its second token a probability 5x lower (ratio 5 > 3).
    rows = [row for row in countdown_rows(PUZZLES) for _ in range(trainer.num_generations)]
    from_trl = trainer._generate_and_score_completions(rows)
    width = from_trl["completion_ids"].size(1)
    from_trl["old_per_token_logps"] = torch.full((len(rows), width), -1.0)
    from_trl["sampling_per_token_logps"] = from_trl["old_per_token_logps"].clone()
    from_trl["completion_mask"][0] = 1
    from_trl["sampling_per_token_logps"][0, 1] -= math.log(5.0)
    monkeypatch.setattr(GRPOTrainer, "_generate_and_score_completions", lambda self, _: from_trl)
    key = "sampling/importance_sampling_ratio/frac_masked"
    trainer._generate_and_score_completions(rows)
    assert key not in trainer._metrics["train"]  # no vLLM, no correction: nothing to log
    trainer.use_vllm = True
    trainer._generate_and_score_completions(rows)
    assert trainer._metrics["train"][key] == [pytest.approx(1 / len(rows))]


def test_a_config_edited_after_construction_is_checked_again(tokenizer, dataset, tmp_path):
    args = alpha_config(tmp_path)
    args.top_p = 0.9
    with pytest.raises(ValueError, match="top_p=0.9"):
        trainer_for(tokenizer, dataset, args)


@pytest.mark.slow
def test_grpo_baseline_runs_on_the_same_setup(tokenizer, dataset, tmp_path):
    model = toy_model(tokenizer)
    before = copy.deepcopy(model.state_dict())
    args = GRPOConfig(output_dir=str(tmp_path), **{**SETTINGS, "max_steps": 3})
    trainer = GRPOTrainer(
        model, verifier_reward(CountdownVerifier()), args, dataset, processing_class=tokenizer
    )
    trainer.train()
    assert len(logged(trainer, "rewards/verifier/mean")) == 3
    assert changed(trainer.model, before)
