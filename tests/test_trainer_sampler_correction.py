"""The share of a batch TRL's vLLM sampler correction masks or truncates, computed from the
trainer's and vLLM's per-token log-probs as TRL 1.16 computes its ratio (no vLLM needed)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from training.sampler_correction import metric_name, out_of_bounds  # noqa: E402

# Three completions of up to four tokens; the third is one token shorter (padding at the end).
MASK = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.float32)
SAMPLER = torch.zeros(3, 4)


def trainer_logps(*rows: list[float]) -> torch.Tensor:
    """Per-token log-prob differences trainer - vLLM (vLLM's are 0 here)."""
    return torch.tensor(rows, dtype=torch.float32)


def test_a_sequence_whose_ratio_exceeds_the_cap_counts_and_padding_does_not():
    diffs = trainer_logps(
        [0.5, 0.5, 0.2, 0.0],  # sum 1.2: ratio 3.32 > 3, masked
        [0.5, 0.5, 0.0, 0.0],  # sum 1.0: ratio 2.72, kept
        [0.1, 0.0, 0.0, 9.0],  # 9.0 sits on padding: ratio 1.11, kept
    )
    counts = out_of_bounds(diffs, SAMPLER, MASK, "sequence_mask", None, 3.0)
    assert counts.tolist() == [1.0, 3.0]
    # the same bounds truncate in the truncate mode: the same sequence leaves them
    assert out_of_bounds(diffs, SAMPLER, MASK, "sequence_truncate", None, 3.0).tolist() == [1, 3]
    # no upper bound: nothing leaves
    assert out_of_bounds(diffs, SAMPLER, MASK, "sequence_mask", None, None).tolist() == [0, 3]


def test_a_lower_bound_catches_sequences_vllm_favoured():
    diffs = trainer_logps([-1.0, -1.0, 0, 0], [0, 0, 0, 0], [0.3, 0, 0, 0])  # e^-2, 1, e^0.3
    counts = out_of_bounds(diffs, SAMPLER, MASK, "sequence_mask", 0.5, 3.0)
    assert counts.tolist() == [1.0, 3.0]


def test_token_modes_count_completion_tokens():
    diffs = trainer_logps(
        [2.0, 0.0, 0.0, 0.0],  # e^2 = 7.4 > 3
        [0.0, -3.0, 0.0, 0.0],  # e^-3 = 0.05 < 0.1
        [0.0, 0.0, 0.0, 5.0],  # padding: not a token
    )
    counts = out_of_bounds(diffs, SAMPLER, MASK, "token_truncate", 0.1, 3.0)
    assert counts.tolist() == [2.0, 11.0]


def test_tokens_vllm_gave_no_log_prob_count_as_ratio_one():
    sampler = SAMPLER.clone()
    sampler[0, 0] = math.nan  # the first token's ratio is 1, whatever the trainer says
    diffs = trainer_logps([5.0, 1.2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0])
    # the second token alone (e^1.2 = 3.3) leaves the bounds, and so does the sequence
    assert out_of_bounds(diffs, sampler, MASK, "token_mask", None, 3.0).tolist() == [1, 11]
    assert out_of_bounds(diffs, sampler, MASK, "sequence_mask", None, 3.0).tolist() == [1, 3]


def test_the_metric_says_masked_or_truncated():
    assert metric_name("sequence_mask") == "sampling/importance_sampling_ratio/frac_masked"
    assert metric_name("token_mask") == "sampling/importance_sampling_ratio/frac_masked"
    assert metric_name("sequence_truncate") == "sampling/importance_sampling_ratio/frac_truncated"


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="unknown importance sampling mode 'sequence'"):
        out_of_bounds(SAMPLER, SAMPLER, MASK, "sequence", None, 3.0)
