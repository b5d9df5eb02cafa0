"""`python -m prover` is the `prover` command."""

from prover.cli import main

main()
