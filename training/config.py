"""`AlphaDPGConfig`: TRL's `GRPOConfig` plus alpha-DPG's settings, and the ones it refuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import GRPOConfig

from training.alpha_dpg import check_alpha

# generation_kwargs that would change the sampling distribution (or stop it being sampling)
_DISTORTING_KWARGS = frozenset(
    "temperature top_p top_k min_p typical_p epsilon_cutoff eta_cutoff top_h repetition_penalty "
    "encoder_repetition_penalty no_repeat_ngram_size bad_words_ids suppress_tokens "
    "begin_suppress_tokens sequence_bias min_length min_new_tokens num_beams do_sample "
    "penalty_alpha guidance_scale presence_penalty frequency_penalty min_tokens logit_bias "
    "logits_processor structured_outputs allowed_token_ids".split()
)


@dataclass
class AlphaDPGConfig(GRPOConfig):
    """GRPOConfig for `AlphaDPGTrainer`.

    Sampling, batching, generation (transformers or vLLM), logging and checkpointing settings are
    TRL's. The GRPO loss settings (loss_type, epsilon, delta, scale_rewards,
    importance_sampling_level) are not used. Refused, because the importance weights assume
    on-policy samples from the policy itself: any temperature but 1 or truncation of the
    distribution (top_p, top_k, min_p, repetition_penalty, distorting generation_kwargs,
    vllm_structured_outputs_regex), several updates per batch (num_iterations > 1, or
    steps_per_generation not dividing gradient_accumulation_steps), a KL term (beta), a moving
    base (sync_ref_model), masked truncated completions, and TRL's entropy and off-policy
    variants of the GRPO loss.

    TRL's vLLM sampler correction (`vllm_importance_sampling_correction`, on by default) is kept:
    the sequence ratio pi / pi_vLLM is the importance weight from vLLM's samples to the policy's
    expectation. Its token-level modes are refused: a per-token ratio is not a sequence's.
    """

    alpha: float = field(
        default=0.5,
        metadata={"help": "Divergence: 0 forward KL (mass-covering) ... 0.999 reverse KL (RL)."},
    )
    pseudo_reward_clip: float = field(
        default=10.0, metadata={"help": "Upper clip M of the pseudo-reward."}
    )
    z_default: float = field(
        default=1e-4, metadata={"help": "Z of a prompt none of whose samples is correct."}
    )
    # every forward pass of the policy must score the same distribution that sampled
    disable_dropout: bool = field(
        default=True, metadata={"help": "Disable dropout in the policy and the base model."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check()

    def check(self) -> None:
        """Raise ValueError for settings alpha-DPG cannot honour (see the class docstring)."""
        check_alpha(self.alpha)
        if not self.pseudo_reward_clip > 0:
            raise ValueError(f"pseudo_reward_clip must be positive, got {self.pseudo_reward_clip}")
        if not 0 < self.z_default <= 1:
            raise ValueError(f"z_default must lie in (0, 1], got {self.z_default}")
        if self.vllm_importance_sampling_correction and self.vllm_importance_sampling_mode in (
            "token_mask",
            "token_truncate",
        ):
            raise ValueError(
                f"vllm_importance_sampling_mode={self.vllm_importance_sampling_mode} weights each "
                "token by its own ratio; alpha-DPG's gradient is per sequence: use sequence_mask "
                "or sequence_truncate (or vllm_importance_sampling_correction=False)"
            )
        sampling = sampling_problems(self)
        if sampling:
            raise ValueError(
                "alpha-DPG samples at temperature 1 with no truncation (its importance weights "
                "assume samples from the policy itself); refused: " + "; ".join(sampling)
            )
        problems = []
        if self.num_iterations != 1:
            problems.append(f"num_iterations={self.num_iterations} (must be 1)")
        if self.gradient_accumulation_steps % self.steps_per_generation:
            problems.append(
                f"steps_per_generation={self.steps_per_generation} updates the policy within a "
                f"batch (gradient_accumulation_steps={self.gradient_accumulation_steps} must be "
                "a multiple of it)"
            )
        if self.beta != 0.0:
            problems.append(f"beta={self.beta} (alpha-DPG has no KL term; the base stays frozen)")
        if self.sync_ref_model:
            problems.append("sync_ref_model=True (the base model must stay frozen)")
        if self.mask_truncated_completions:
            problems.append("mask_truncated_completions=True (it drops the log-probs Z needs)")
        if (
            self.top_entropy_quantile != 1.0
            or self.entropy_coef != 0.0
            or self.use_adaptive_entropy
        ):
            problems.append("entropy masking or bonus (GRPO loss variants)")
        if self.off_policy_mask_threshold is not None:
            problems.append("off_policy_mask_threshold (a GRPO loss variant)")
        if problems:
            raise ValueError(
                "alpha-DPG is on-policy, one update per batch; refused: " + "; ".join(problems)
            )


def sampling_problems(config: GRPOConfig) -> list[str]:
    """What in `config` would make the samples come from something other than the policy."""
    problems = []
    if config.temperature != 1.0:
        problems.append(f"temperature={config.temperature} (must be 1.0)")
    if config.top_p != 1.0:
        problems.append(f"top_p={config.top_p} (must be 1.0)")
    if config.top_k not in (None, 0, -1):
        problems.append(f"top_k={config.top_k} (must be 0 or None)")
    if config.min_p not in (None, 0.0):
        problems.append(f"min_p={config.min_p} (must be None)")
    if config.repetition_penalty != 1.0:
        problems.append(f"repetition_penalty={config.repetition_penalty} (must be 1.0)")
    kwargs: dict[str, Any] = config.generation_kwargs or {}
    distorting = sorted(_DISTORTING_KWARGS & set(kwargs))
    if distorting:
        problems.append(f"generation_kwargs {distorting}")
    if config.vllm_structured_outputs_regex:
        problems.append("vllm_structured_outputs_regex")
    return problems
