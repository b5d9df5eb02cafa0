"""alpha_dpg_advantages against values worked out by hand from the formulas in docs/alpha-dpg.md."""

from __future__ import annotations

import math

import pytest
import torch

from training.alpha_dpg import alpha_dpg_advantages


def run(policy, base, correct, groups, alpha, **kwargs):
    return alpha_dpg_advantages(
        torch.tensor(policy, dtype=torch.float64),
        torch.tensor(base, dtype=torch.float64),
        torch.tensor(correct),
        groups,
        alpha,
        **kwargs,
    )


def close(tensor: torch.Tensor, expected: list[float], tol: float = 1e-12) -> bool:
    return torch.allclose(tensor, torch.tensor(expected, dtype=torch.float64), atol=tol, rtol=tol)


def test_policy_equal_to_base_gives_the_pass_rate_as_z() -> None:
    # group a: 2 of 4 correct; group b: 2 samples, both wrong
    out = run([-3.0] * 6, [-3.0] * 6, [True, False, True, False, False, False], list("aaaabb"), 0.5)
    assert close(out.z, [0.5] * 4 + [1e-4] * 2)
    r = math.sqrt(2) - 1  # (p/pi)^(1 - alpha) - 1 with p/pi = 1/Z = 2
    assert close(out.pseudo_rewards, [r, -1, r, -1, -1, -1])
    # leave-one-out: the mean of the other three rewards of group a
    assert close(out.advantages[:4], [(2 * r + 2) / 3, (-2 - 2 * r) / 3] * 2)
    assert close(out.advantages[4:], [0.0, 0.0])  # all wrong: no signal
    assert out.advantages.dtype == out.pseudo_rewards.dtype == out.z.dtype == torch.float64
    summary = out.summary()
    assert summary["pass_rate"] == pytest.approx(2 / 6)
    assert summary["z/min"] == pytest.approx(1e-4) and summary["z/max"] == pytest.approx(0.5)
    assert summary["frac_clipped"] == 0.0


def test_importance_weights_estimate_z_and_rewards() -> None:
    policy, base = [-1.0, -1.5, -2.0], [-2.0, -2.0, -2.5]
    out = run(policy, base, [True, True, False], [0, 0, 0], 0.25)
    w = [math.exp(b - p) for p, b in zip(policy, base, strict=True)]
    z = (w[0] + w[1]) / 3  # the wrong sample counts in the mean with weight 0
    r = [(w[0] / z) ** 0.75 - 1, (w[1] / z) ** 0.75 - 1, -1.0]
    assert close(out.z, [z] * 3)
    assert close(out.pseudo_rewards, r)
    assert close(out.advantages, [r[i] - (sum(r) - r[i]) / 2 for i in range(3)])
    assert close(out.group_ess, [(w[0] + w[1]) ** 2 / (w[0] ** 2 + w[1] ** 2)])


def test_z_is_capped_at_one() -> None:
    # mean importance weight cosh(1) > 1: Z = 1, so at alpha = 0 the reward is w - 1
    out = run([-2.0, -3.0], [-1.0, -4.0], [True, True], ["x", "x"], 0.0)
    assert close(out.z, [1.0, 1.0])
    r = [math.e - 1, 1 / math.e - 1]
    assert close(out.pseudo_rewards, r)
    assert close(out.advantages, [r[0] - r[1], r[1] - r[0]])


def test_rewards_are_clipped_above() -> None:
    out = run([-10.0, -1.0], [-1.0, -1.0], [True, False], [0, 0], 0.0)
    assert out.pseudo_rewards[0].item() == 10.0  # e^9 - 1, clipped at M = 10
    assert out.clipped.tolist() == [True, False]
    assert out.summary()["frac_clipped"] == 0.5
    lower = run([-10.0, -1.0], [-1.0, -1.0], [True, False], [0, 0], 0.0, reward_clip=3.0)
    assert lower.pseudo_rewards[0].item() == 3.0
    assert close(lower.advantages, [4.0, -4.0])


def test_alpha_near_one_approaches_a_binary_reward() -> None:
    out = run([-3.0] * 4, [-3.0] * 4, [True, False, True, False], [0] * 4, 0.999)
    r = 2**0.001 - 1  # tiny: correct is worth about 0, wrong -1
    assert close(out.pseudo_rewards, [r, -1, r, -1])
    assert 0 < r < 1e-3
    assert close(out.advantages, [(2 * r + 2) / 3, -(2 * r + 2) / 3] * 2)


def test_alpha_near_zero_matches_alpha_zero() -> None:
    args = ([-2.0, -1.0, -3.0], [-2.5, -1.2, -2.0], [True, True, False], [0, 0, 0])
    at_zero, near_zero = run(*args, 0.0), run(*args, 1e-9)
    assert torch.allclose(at_zero.advantages, near_zero.advantages, atol=1e-7)
    assert at_zero.summary()["alpha_divergence"] == pytest.approx(
        near_zero.summary()["alpha_divergence"], abs=1e-7
    )


@pytest.mark.parametrize(
    ("alpha", "expected"),
    [
        (0.5, (1 - math.sqrt(0.5)) / 0.25),  # (1 - integral pi^a p^(1-a)) / (a (1 - a)), = sqrt(Z)
        (0.0, math.log(2)),  # KL(p || pi) = log(1 / Z) when pi = base
    ],
)
def test_divergence_estimate(alpha: float, expected: float) -> None:
    out = run([-3.0] * 4, [-3.0] * 4, [True, False, True, False], [0] * 4, alpha)
    assert out.summary()["alpha_divergence"] == pytest.approx(expected, rel=1e-12)


def test_group_of_one_has_no_baseline() -> None:
    out = run([-1.0, -2.0, -2.0], [-1.0, -2.0, -2.0], [True, False, True], ["solo", "g", "g"], 0.5)
    assert out.z[0].item() == 1.0
    assert out.advantages[0].item() == out.pseudo_rewards[0].item() == 0.0  # (1/1)^0.5 - 1
    wrong_alone = run([-1.0], [-1.0], [False], ["solo"], 0.5)
    assert wrong_alone.advantages.tolist() == [-1.0]


def test_log_probs_near_minus_1000_stay_finite_and_shift_invariant() -> None:
    policy = [-1000.0, -1010.0, -990.0, -1005.0, -1200.0, -1000.0]
    base = [-1003.0, -1001.0, -1000.0, -1100.0, -400.0, -1000.0]
    correct = [True, True, False, True, True, False]
    groups = [0, 0, 0, 0, 1, 1]
    out = run(policy, base, correct, groups, 0.25)
    for tensor in (out.advantages, out.pseudo_rewards, out.z, out.group_ess):
        assert torch.isfinite(tensor).all()
    assert all(math.isfinite(v) for v in out.summary().values())
    # only differences of log-probs matter
    shifted = run([p + 1000 for p in policy], [b + 1000 for b in base], correct, groups, 0.25)
    assert torch.allclose(out.advantages, shifted.advantages, atol=1e-9)
    assert torch.allclose(out.z, shifted.z, rtol=1e-9)
    assert out.pseudo_rewards[4].item() == 10.0  # base/policy = e^800 clips rather than overflows
    assert out.z[4].item() == 1.0


def test_float32_inputs_are_computed_in_float64() -> None:
    policy, base = [-5.25, -6.5, -7.0], [-5.0, -7.25, -6.0]
    as64 = run(policy, base, [True, True, False], [0, 0, 0], 0.5)
    as32 = alpha_dpg_advantages(
        torch.tensor(policy, dtype=torch.float32),
        torch.tensor(base, dtype=torch.float32),
        torch.tensor([True, True, False]),
        [0, 0, 0],
        0.5,
    )
    assert as32.advantages.dtype == torch.float64
    # these log-probs are exact in float32
    assert torch.allclose(as32.advantages, as64.advantages, atol=1e-12)


def test_tensor_and_list_group_ids_agree() -> None:
    args = ([-1.0, -2.0, -1.5, -3.0], [-1.2, -1.8, -1.5, -2.0], [True, False, True, True])
    from_list = run(*args, ["p", "p", "q", "q"], 0.5)
    from_tensor = run(*args, torch.tensor([7, 7, 3, 3]), 0.5)
    assert torch.equal(from_list.advantages, from_tensor.advantages)
    assert from_tensor.group.tolist() == [0, 0, 1, 1]
    # interleaved groups are grouped by id, not by position
    interleaved = run(*args, ["p", "q", "p", "q"], 0.5)
    assert interleaved.group_size.tolist() == [2, 2]
    assert interleaved.group_correct.tolist() == [2, 1]


@pytest.mark.parametrize("alpha", [1.0, 1.5, -0.1, math.nan])
def test_alpha_outside_zero_one_is_refused(alpha: float) -> None:
    with pytest.raises(ValueError, match="0.999"):
        run([-1.0], [-1.0], [True], [0], alpha)


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one length"):
        run([-1.0, -2.0], [-1.0], [True, False], [0, 0], 0.5)
