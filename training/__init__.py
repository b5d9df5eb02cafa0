"""Training: filtered alpha-divergence (alpha-DPG) and GRPO on the same machinery.

`training.alpha_dpg` is the method's arithmetic (torch only); `training.trainer` and
`training.config` need the `train` extra (TRL).
"""
