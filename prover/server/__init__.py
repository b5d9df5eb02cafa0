"""`prover serve`: the HTTP face of the verifier (and, later, of the prover)."""
