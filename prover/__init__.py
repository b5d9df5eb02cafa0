"""prover: train and evaluate Lean 4 theorem provers; fill `sorry`s with proofs Lean accepted."""

__version__ = "0.1.0"
