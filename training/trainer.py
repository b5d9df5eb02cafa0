"""`AlphaDPGTrainer`: alpha-DPG on TRL's `GRPOTrainer` machinery.

Sampling, batching, distributed training, vLLM, logging and checkpointing are GRPOTrainer's; two
hooks change. `_generate_and_score_completions` replaces GRPO's advantages with alpha-DPG's (from
each completion's summed log-prob under the sampling policy and under the frozen base model, and
the verifier's verdict), and `_compute_loss` is the on-policy policy gradient

    loss = mean over sequences of -A * sum_t log pi(y_t | x, y_<t) / max_completion_length.

TRL keeps a reference model only when beta != 0; alpha-DPG always needs its base, so the trainer
builds it: a copy of the policy as passed (or reloaded from the same path), frozen; with a
`peft_config`, the policy with its adapter disabled.

With vLLM, the samples come from vLLM's numerics, not quite the trainer's policy pi. TRL's
correction (on by default) weights each sequence's term by rho = pi(y) / pi_vLLM(y), which is
exactly what turns an expectation over vLLM's samples into the expectation over pi that the
alpha-DPG gradient is; it sits beside alpha-DPG's own weights (target over pi, inside the
advantages), not on top of them. `AlphaDPGConfig` keeps it per sequence only (a per-token ratio
is not the sequence's), and the share of sequences masked or truncated is logged
(`sampling/importance_sampling_ratio/frac_masked` or `frac_truncated`). Z and the pseudo-rewards
still treat the samples as the policy's, as the reference implementation does.

With steps_per_generation = 1 the loss's forward pass scores the whole batch before any update,
so the policy's sampling log-probs come from it (advantages wait in the batch as None); with
more steps per generation they take a forward pass of their own at generation time.

    from datasets import Dataset
    from harness.countdown import CountdownVerifier, make_puzzles
    from training.rewards import countdown_rows, verifier_reward

    trainer = AlphaDPGTrainer(
        "path/or/hub-id",  # or a model instance
        verifier_reward(CountdownVerifier()),  # or a Lean pool
        AlphaDPGConfig(output_dir="out", alpha=0.5, num_generations=4, ...),
        Dataset.from_list(countdown_rows(make_puzzles(1000))),
    )
    trainer.train()
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from accelerate.utils import is_peft_model
from torch import nn
from trl import GRPOTrainer
from trl.models import prepare_deepspeed, prepare_fsdp
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import (
    add_fused_lm_head,
    create_model_from_path,
    disable_dropout_in_model,
    use_adapter,
)

from training.alpha_dpg import AlphaDPGOutput, alpha_dpg_advantages
from training.config import AlphaDPGConfig
from training.sampler_correction import metric_name, out_of_bounds

# Model inputs besides the token ids that TRL carries in a batch (vision-language models).
_EXTRA_INPUTS = (
    "pixel_values image_grid_thw num_images pixel_attention_mask spatial_shapes num_tiles "
    "image_sizes token_type_ids mm_token_type_ids image_position_ids".split()
)


class AlphaDPGTrainer(GRPOTrainer):
    """GRPOTrainer with alpha-DPG advantages and loss; takes GRPOTrainer's arguments.

    `reward_funcs` score completions 1 (correct) or 0: a sample is correct when the weighted
    reward exceeds 0.5 (see `training.rewards.verifier_reward`). A completion every reward
    function returned None for counts as wrong.
    """

    _tag_names = ["trl", "alpha-dpg"]
    _name = "alpha-DPG"
    args: AlphaDPGConfig

    def __init__(
        self,
        model: str | nn.Module,
        reward_funcs: Any,
        args: AlphaDPGConfig,
        train_dataset: Any = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(args, AlphaDPGConfig):
            raise TypeError(f"args must be an AlphaDPGConfig, got {type(args).__name__}")
        args.check()  # the config may have been edited since it was built
        if is_peft_model(model):
            raise ValueError(
                "pass the base model and a peft_config, not a PeftModel: with a trained adapter "
                "the base model (the adapter as it starts) would be ambiguous"
            )
        peft = kwargs.get("peft_config") is not None
        # a copy before TRL patches the policy; TRL would reload a reference from the model's
        # path, which loses an in-memory model's weights
        base = copy.deepcopy(model) if isinstance(model, nn.Module) and not peft else None
        super().__init__(model, reward_funcs, args, train_dataset, **kwargs)
        if not peft:
            if base is None:
                base = self._load_base(str(model), kwargs.get("quantization_config"))
            self.ref_model = self._prepare_base(base)
        self._rewards_per_func: torch.Tensor | None = None
        self.last_alpha_dpg: AlphaDPGOutput | None = None  # the latest batch's, for inspection

    def _load_base(self, path: str, quantization_config: Any) -> nn.Module:
        """The base model loaded as GRPOTrainer loads the policy from a path."""
        init_kwargs = dict(self.args.model_init_kwargs or {})
        if quantization_config is not None:
            init_kwargs["quantization_config"] = quantization_config
        if self.args.distributed_state.distributed_type in ("MULTI_GPU", "DEEPSPEED"):
            init_kwargs["device_map"] = None
        init_kwargs.setdefault("trust_remote_code", self.args.trust_remote_code)
        return create_model_from_path(path, **init_kwargs)

    def _prepare_base(self, base: nn.Module) -> nn.Module:
        """Frozen, and prepared the way GRPOTrainer prepares its reference model."""
        base.requires_grad_(False)
        base.eval()
        if self.args.disable_dropout:
            disable_dropout_in_model(base)
        add_fused_lm_head(
            base, temperature=self.temperature, cast_lm_head_to_fp32=self.args.cast_lm_head_to_fp32
        )
        if self.is_deepspeed_enabled:
            return prepare_deepspeed(base, self.accelerator)
        if self.is_fsdp_enabled:
            return prepare_fsdp(base, self.accelerator)
        return self.accelerator.prepare_model(base, evaluation_mode=True)

    def _calculate_rewards(
        self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any
    ) -> torch.Tensor:
        # gathered over processes, as the advantages need them
        self._rewards_per_func = super()._calculate_rewards(
            inputs, prompts, completions, completion_ids_list
        )
        return self._rewards_per_func

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        if self.use_vllm and self.vllm_importance_sampling_correction:
            self._log_sampler_correction(output, mode)
        assert self._rewards_per_func is not None  # set by _calculate_rewards just now
        local = len(output["prompt_ids"])
        start = self.accelerator.process_index * local
        device = output["prompt_ids"].device
        mask = _loss_mask(output)
        with (
            torch.no_grad(),
            disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs),
        ):
            output["alpha_dpg_base_logps"] = (self._base_per_token_logps(output) * mask).sum(-1)
            # Each sample's place in the gathered batch, which TRL shuffles before the loss;
            # a prompt's samples are consecutive there.
            output["alpha_dpg_index"] = torch.arange(start, start + local, device=device)
            correct = self._correct(self._rewards_per_func)[start : start + local]
            output["alpha_dpg_correct"] = correct.to(device)
            if mode == "eval" or self.args.steps_per_generation == 1:
                # The loss's own forward pass scores this whole batch, before any update: the
                # advantages wait for it (None), which saves a forward pass of the policy.
                output["advantages"] = None
            else:
                policy = output.get("old_per_token_logps")  # TRL's, when it scored them itself
                if policy is None:
                    policy = self._per_token_logps(self.model, output)
                self._set_advantages(output, (policy * mask).sum(-1), mode)
        return output

    def _log_sampler_correction(self, batch: dict[str, Any], mode: str) -> None:
        """The share of the batch TRL's vLLM correction masks or truncates (over processes)."""
        sampling_mode = self.vllm_importance_sampling_mode
        counts = out_of_bounds(
            batch["old_per_token_logps"],  # TRL scores the batch itself when correcting
            batch["sampling_per_token_logps"],
            _loss_mask(batch),
            sampling_mode,
            self.vllm_importance_sampling_clip_min,
            self.vllm_importance_sampling_clip_max,
        )
        total = self.accelerator.reduce(counts.to(batch["prompt_ids"].device), reduction="sum")
        share = (total[0] / total[1].clamp(min=1.0)).item()
        self._metrics[mode][metric_name(sampling_mode)].append(share)

    def _set_advantages(self, batch: dict[str, Any], policy_logps: torch.Tensor, mode: str) -> None:
        """alpha-DPG advantages over the whole batch (gathered from all processes)."""
        gather = self.accelerator.gather
        index = gather(batch["alpha_dpg_index"]).cpu()
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        result = alpha_dpg_advantages(
            gather(policy_logps.detach().float()),
            gather(batch["alpha_dpg_base_logps"].float()),
            gather(batch["alpha_dpg_correct"].long()).bool(),
            index // group_size,
            self.args.alpha,
            reward_clip=self.args.pseudo_reward_clip,
            z_default=self.args.z_default,
        )
        self.last_alpha_dpg = result
        local = len(policy_logps)
        start = self.accelerator.process_index * local
        advantages = result.advantages[start : start + local]
        batch["advantages"] = advantages.to(policy_logps.device, torch.float32)
        for name, value in result.summary().items():
            self._metrics[mode][f"alpha_dpg/{name}"].append(value)
        # the completions table (in generation order) shows these advantages, not GRPO's
        logged = self._logs["advantages"]
        if len(logged) >= len(index):
            in_order = torch.empty_like(result.advantages)
            in_order[index] = result.advantages
            for _ in range(len(index)):
                logged.pop()
            logged.extend(in_order.tolist())

    def _correct(self, rewards_per_func: torch.Tensor) -> torch.Tensor:
        weights = self.reward_weights.to(rewards_per_func.device)
        rewards = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)
        scored = ~torch.isnan(rewards_per_func).all(dim=1)
        return ((rewards > 0.5) & scored).cpu()

    def _base_per_token_logps(self, batch: dict[str, Any]) -> torch.Tensor:
        if self.ref_model is not None:
            return self._per_token_logps(self.ref_model, batch)
        # PEFT: the policy with its adapter disabled is the base
        with use_adapter(self.accelerator.unwrap_model(self.model), adapter_name=None):
            return self._per_token_logps(self.model, batch)

    def _per_token_logps(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        logps, _, _ = self._forward(model, batch, entropy=False, aux_loss=False)
        return logps

    def _forward(
        self, model: nn.Module, batch: dict[str, Any], *, entropy: bool, aux_loss: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        mode = "train" if self.model.training else "eval"
        batch_size = (
            self.args.per_device_train_batch_size
            if mode == "train"
            else self.args.per_device_eval_batch_size
        )
        return self._get_per_token_logps_and_entropies(
            model,
            torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1),
            torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1),
            batch["completion_ids"].size(1),
            batch_size=batch_size,
            compute_entropy=entropy,
            compute_aux_loss=aux_loss,
            **{key: batch[key] for key in _EXTRA_INPUTS if key in batch},
        )

    def _compute_loss(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        mode = "train" if self.model.training else "eval"
        per_token_logps, entropies, aux_loss = self._forward(
            model, inputs, entropy=True, aux_loss=self.aux_loss_enabled
        )
        mask = _loss_mask(inputs)
        per_token = per_token_logps * mask
        if inputs["advantages"] is None:
            self._set_advantages(inputs, per_token.sum(-1), mode)
        if "importance_sampling_ratio" in inputs:  # vLLM's sampler vs the trainer's numerics
            per_token = per_token * inputs["importance_sampling_ratio"]
        sequence_logps = per_token.sum(-1)
        loss = -(inputs["advantages"] * sequence_logps).mean() / self.max_completion_length
        self._metrics[mode]["policy_loss"].append(
            self.accelerator.gather(loss.detach()).mean().item()
        )
        if mode == "train":  # TRL's loss_is_scaled_for_ga: the trainer scales for accumulation
            loss = loss / self.current_gradient_accumulation_steps
        if aux_loss is not None:
            scale = self.current_gradient_accumulation_steps if mode == "train" else 1.0
            loss = loss + self.router_aux_loss_coef * aux_loss / scale
        assert entropies is not None
        totals = self.accelerator.reduce(
            torch.stack([(entropies * mask).sum(), mask.sum().float()]), reduction="sum"
        )
        self._metrics[mode]["entropy"].append((totals[0] / totals[1].clamp(min=1.0)).item())
        return loss


def _loss_mask(batch: dict[str, Any]) -> torch.Tensor:
    mask = batch["completion_mask"]
    return mask * batch["tool_mask"] if "tool_mask" in batch else mask
