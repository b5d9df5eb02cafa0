"""`prover prove`: fill the `sorry`s of a Lean file with proofs Lean accepted."""
