"""How much of a batch TRL's vLLM sampler correction masks or truncates.

With vLLM, TRL (1.16, `GRPOTrainer._generate_and_score_completions`) weights the loss by
rho = exp(trainer log-prob - vLLM log-prob), summed over the completion for the `sequence_*`
modes and per token for the `token_*` modes. Tokens vLLM gave no log-prob for (NaN) count as
rho = 1. A rho outside [clip_min, clip_max] (a bound of None is no bound) is set to 0 by the
`*_mask` modes and clipped to the bound by the `*_truncate` modes. TRL logs rho's min, mean and
max, not how often it left the bounds; `out_of_bounds` counts that, computed the same way.
"""

from __future__ import annotations

import torch

from training.train_config import IMPORTANCE_SAMPLING_MODES

MODES = IMPORTANCE_SAMPLING_MODES


def out_of_bounds(
    trainer_logps: torch.Tensor,
    sampler_logps: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    clip_min: float | None,
    clip_max: float | None,
) -> torch.Tensor:
    """[units whose ratio left the bounds, units], as a float tensor of two (to sum over
    processes). Units are completions for the `sequence_*` modes, completion tokens (where
    `mask` is set) for the `token_*` modes. Per-token log-probs are (B, T); `mask` is the loss
    mask (completion and tool masks)."""
    if mode not in MODES:
        raise ValueError(f"unknown importance sampling mode {mode!r} (one of {', '.join(MODES)})")
    diff = torch.nan_to_num((trainer_logps - sampler_logps) * mask, nan=0.0)
    if mode.startswith("sequence_"):
        ratio = diff.sum(-1).exp()
        counted = torch.ones_like(ratio, dtype=torch.bool)
    else:
        ratio = diff.exp()
        counted = mask.bool()
    outside = torch.zeros_like(counted)
    if clip_max is not None:
        outside |= ratio > clip_max
    if clip_min is not None:
        outside |= ratio < clip_min
    return torch.stack([(outside & counted).sum(), counted.sum()]).float()


def metric_name(mode: str) -> str:
    """The logged key: the share masked (`*_mask` modes) or truncated (`*_truncate` modes)."""
    return "sampling/importance_sampling_ratio/" + (
        "frac_masked" if mode.endswith("_mask") else "frac_truncated"
    )
