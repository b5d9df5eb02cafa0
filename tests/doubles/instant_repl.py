#!/usr/bin/env python3
"""InstantRepl: a Lean REPL test double that answers as fast as Python can, for measuring the
pool's own overhead. Same framing as the real REPL (request lines up to a blank line; answer,
then a blank line); every proof is accepted with the standard axioms and the statement check
(line 1 of the final command) passes."""

import sys

AXIOMS = (
    '{"messages": [{"severity": "info", "pos": {"line": 2, "column": 0}, "endPos": null,\n'
    ' "data": "\'x\' depends on axioms: [propext, Classical.choice, Quot.sound]"}],\n'
    ' "env": ENV}\n\n'
)


def main() -> None:
    env = 0
    pending = False
    out = sys.stdout
    for line in sys.stdin:
        if line.strip():
            pending = pending or line
            continue
        if not pending:
            sys.exit("empty request")
        if "#print axioms" in pending:  # the verifier's final check: its line 2
            out.write(AXIOMS.replace("ENV", str(env)))
        else:
            out.write(f'{{"env":\n {env}}}\n\n')
        out.flush()
        env += 1
        pending = False


if __name__ == "__main__":
    main()
