"""Filtered alpha-divergence (alpha-DPG) advantages: the method's arithmetic, free of any trainer.

The method of "Whatever Remains Must Be True" (Kruszewski et al. 2025, arXiv 2512.05962; its
reference code is naver/alpha-dpg). For each prompt x the target is the base model filtered by
the verifier, p_x(y) = pi_base(y|x) v(x, y) / Z_x. From sequence log-probs of samples drawn from
the policy pi, per sample:

    log w  = log pi_base(y) - log pi(y)                        (importance log-weight)
    Z_x    = min(1, mean over the group of v * w)               (z_default if no sample is correct)
    R      = expm1((1 - alpha) * (log w - log Z_x))  if correct, else -1
             = (p_x / pi)^(1 - alpha) - 1, clipped above at reward_clip
    A      = R - mean R of the other samples of the group   (A = R for a group of one)

Everything is computed in float64 and in log space, so log-probs near -1000 neither underflow nor
overflow.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch

# exp() of anything above this overflows float64; diagnostics clamp log-weights here to stay finite
_MAX_LOG = 600.0


@dataclass(frozen=True)
class AlphaDPGOutput:
    """Per-sample tensors (length N) and per-group tensors (length G, groups in order of first
    appearance; `group` maps each sample to its group)."""

    advantages: torch.Tensor  # (N,) float64
    pseudo_rewards: torch.Tensor  # (N,) float64, after clipping
    z: torch.Tensor  # (N,) float64: the Z of the sample's group
    clipped: torch.Tensor  # (N,) bool: the pseudo-reward was clipped at reward_clip
    group: torch.Tensor  # (N,) int64
    group_log_z: torch.Tensor  # (G,) float64
    group_size: torch.Tensor  # (G,) int64
    group_correct: torch.Tensor  # (G,) int64: correct samples in the group
    # Kish effective sample size (sum w)^2 / sum w^2 of the weights v * pi_base / pi, in samples
    # (0 for a group with no correct sample): how many samples the Z estimate really rests on.
    group_ess: torch.Tensor  # (G,) float64
    # Estimated D_alpha(pi || p_x) per group, NaN for a group with no correct sample (p_x unknown).
    group_divergence: torch.Tensor  # (G,) float64

    def summary(self) -> dict[str, float]:
        """Scalars to log per step (NaN where there is nothing to average):

        pass_rate: correct samples / samples. z/mean, z/min, z/max: over groups (prompts).
        pseudo_reward/*, advantage/*: over samples, rewards after clipping. frac_clipped:
        samples whose reward hit reward_clip. ess: Kish effective sample size of each group's
        importance weights, mean over groups with a correct sample; ess_fraction: the same
        divided by the group size (1: all weights equal). alpha_divergence: estimated
        D_alpha(pi || p_x), mean over groups with a correct sample (see `_divergence_terms`).
        """
        z = self.group_log_z.exp()
        has_correct = self.group_correct > 0
        ess_fraction = self.group_ess / self.group_size
        return {
            "pass_rate": self.group_correct.sum().item() / self.group_size.sum().item(),
            "z/mean": z.mean().item(),
            "z/min": z.min().item(),
            "z/max": z.max().item(),
            "pseudo_reward/mean": self.pseudo_rewards.mean().item(),
            "pseudo_reward/std": _std(self.pseudo_rewards),
            "pseudo_reward/max": self.pseudo_rewards.max().item(),
            "advantage/mean": self.advantages.mean().item(),
            "advantage/std": _std(self.advantages),
            "advantage/abs_mean": self.advantages.abs().mean().item(),
            "frac_clipped": self.clipped.double().mean().item(),
            "ess": _mean_or_nan(self.group_ess[has_correct]),
            "ess_fraction": _mean_or_nan(ess_fraction[has_correct]),
            "alpha_divergence": _mean_or_nan(self.group_divergence[has_correct]),
        }


def alpha_dpg_advantages(
    policy_logps: torch.Tensor,
    base_logps: torch.Tensor,
    correct: torch.Tensor,
    group_ids: Sequence[Hashable] | torch.Tensor,
    alpha: float,
    reward_clip: float = 10.0,
    z_default: float = 1e-4,
) -> AlphaDPGOutput:
    """Advantages of one batch of samples under filtered alpha-divergence.

    policy_logps, base_logps: each completion's summed token log-prob under the sampling policy and
    under the frozen base model; correct: the verifier's verdicts; group_ids: the prompt of each
    sample (samples of one prompt form a group). alpha in [0, 1).
    """
    check_alpha(alpha)
    if not reward_clip > 0:
        raise ValueError(f"reward_clip must be positive, got {reward_clip}")
    if not 0 < z_default <= 1:
        raise ValueError(f"z_default must lie in (0, 1], got {z_default}")
    policy = torch.as_tensor(policy_logps).detach().to("cpu", torch.float64)
    base = torch.as_tensor(base_logps).detach().to("cpu", torch.float64)
    ok = torch.as_tensor(correct).detach().to("cpu", torch.bool)
    group, num_groups = _group_index(group_ids)
    n = policy.numel()
    if n == 0:
        raise ValueError("no samples")
    shapes_differ = base.shape != policy.shape or ok.shape != policy.shape
    if policy.dim() != 1 or shapes_differ or len(group) != n:
        raise ValueError(
            "policy_logps, base_logps, correct and group_ids must be 1-D and of one length, got "
            f"{tuple(policy.shape)}, {tuple(base.shape)}, {tuple(ok.shape)}, {len(group)}"
        )
    if not (torch.isfinite(policy).all() and torch.isfinite(base).all()):
        raise ValueError("policy_logps and base_logps must be finite")

    size = torch.zeros(num_groups, dtype=torch.int64).index_add_(0, group, torch.ones_like(group))
    n_correct = torch.zeros(num_groups, dtype=torch.int64).index_add_(0, group, ok.long())
    has_correct = n_correct > 0

    # log Z = logsumexp over the group's correct samples of log w, minus log(group size)
    log_w = base - policy
    masked = torch.where(ok, log_w, -math.inf)
    peak = torch.full((num_groups,), -math.inf, dtype=torch.float64)
    peak = peak.scatter_reduce(0, group, masked, reduce="amax", include_self=True)
    peak = torch.where(has_correct, peak, 0.0)  # all wrong: no exp(-inf - -inf) = NaN
    scaled = torch.where(ok, (log_w - peak[group]).exp(), 0.0)  # in (0, 1]: no overflow
    total = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group, scaled)
    total_sq = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group, scaled**2)
    log_z = peak + total.clamp(min=1e-300).log() - size.double().log()
    log_z = torch.where(has_correct, log_z.clamp(max=0.0), math.log(z_default))
    ess = torch.where(has_correct, total**2 / total_sq.clamp(min=1e-300), 0.0)

    # R = (p/pi)^(1 - alpha) - 1, log(p/pi) = log w - log Z; the exponent is capped just above the
    # clip before expm1 so that huge ratios clip instead of overflowing
    log_ratio = log_w - log_z[group]
    exponent = (1.0 - alpha) * log_ratio
    cap = math.log1p(reward_clip)
    raw = torch.expm1(exponent.clamp(max=cap + 1.0))
    clipped = ok & (exponent > cap)
    rewards = torch.where(ok, raw.clamp(max=reward_clip), -1.0)

    # leave-one-out baseline: the mean reward of the group's other samples (none for a group of one)
    reward_sum = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group, rewards)
    others = (size[group] - 1).double()
    baseline = torch.where(others > 0, (reward_sum[group] - rewards) / others.clamp(min=1.0), 0.0)
    advantages = rewards - baseline

    divergence_terms = _divergence_terms(log_ratio.clamp(max=_MAX_LOG), ok, alpha)
    divergence_sum = torch.zeros(num_groups, dtype=torch.float64).index_add_(
        0, group, divergence_terms
    )
    divergence = torch.where(has_correct, divergence_sum / size.double(), math.nan)

    return AlphaDPGOutput(
        advantages=advantages,
        pseudo_rewards=rewards,
        z=log_z.exp()[group],
        clipped=clipped,
        group=group,
        group_log_z=log_z,
        group_size=size,
        group_correct=n_correct,
        group_ess=ess,
        group_divergence=divergence,
    )


def check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha < 1.0:  # also refuses NaN
        raise ValueError(
            f"alpha must lie in [0, 1), got {alpha}: at alpha = 1 (reverse KL) a wrong answer's "
            "pseudo-reward is -infinity; use alpha = 0.999 for the RL-like end, as the paper does"
        )


def _divergence_terms(log_ratio: torch.Tensor, ok: torch.Tensor, alpha: float) -> torch.Tensor:
    """Per-sample terms whose mean over a group estimates D_alpha(pi || p_x) from samples of pi.

    D = E_p[f(pi/p)] = E_pi[w f(1/w)] with w = p/pi, f the Amari f_alpha. A correct sample gives
    (w^(1-a) - a - (1-a) w) / (a (a - 1)), written as (w * expm1(-a log w) / a + w - 1) / (a - 1)
    so that a -> 0 tends smoothly to KL(p || pi)'s w log w - w + 1. A wrong sample (p = 0) gives
    lim t->inf f(t)/t = 1 / (1 - a). With Z estimated from the same samples (and not capped), this
    equals -mean(R) / (a (1 - a)) with R the unclipped pseudo-reward.
    """
    w = log_ratio.exp()
    scaled = torch.expm1(-alpha * log_ratio) / alpha if alpha > 0 else -log_ratio
    correct_term = (w * scaled + w - 1.0) / (alpha - 1.0)
    return torch.where(ok, correct_term, 1.0 / (1.0 - alpha))


def _group_index(group_ids: Sequence[Hashable] | torch.Tensor) -> tuple[torch.Tensor, int]:
    """Each sample's group as 0..G-1, numbered in order of first appearance."""
    keys = group_ids.tolist() if isinstance(group_ids, torch.Tensor) else list(group_ids)
    numbering: dict[Hashable, int] = {}
    index = [numbering.setdefault(key, len(numbering)) for key in keys]
    return torch.tensor(index, dtype=torch.int64), len(numbering)


def _std(values: torch.Tensor) -> float:
    return values.std().item() if values.numel() > 1 else 0.0


def _mean_or_nan(values: torch.Tensor) -> float:
    return values.mean().item() if values.numel() else math.nan
