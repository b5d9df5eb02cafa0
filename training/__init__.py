"""Training: filtered alpha-divergence (alpha-DPG) and GRPO (see issue 5).

`training.alpha_dpg` is the method's arithmetic (torch only); `training.trainer` and
`training.config` need the `train` extra (TRL).
"""
