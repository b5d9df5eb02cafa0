"""Training: filtered alpha-divergence (alpha-DPG) and GRPO (see issue 5)."""
