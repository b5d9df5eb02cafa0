#!/usr/bin/env python3
"""InstantRepl: a Lean REPL test double that answers as fast as Python can, for measuring the
pool's own overhead. Same framing as the real REPL (request lines up to a blank line; answer,
then a blank line); every proof is accepted with the standard axioms and the statement check
(line 1 of the final command) passes. A `pickleTo` writes a stub file where asked and an
`unpickleEnvFrom` answers a new environment, so the kernel replay rung runs too. Tactic mode:
a command ending in `:= by sorry` opens a proof state, and every tactic leads to a new state
with one new goal (`⊢ goal N`), so a search over it never merges states nor ends by itself."""

import json
import sys

AXIOMS = (
    '{"messages": [{"severity": "info", "pos": {"line": 2, "column": 0}, "endPos": null,\n'
    ' "data": "\'x\' depends on axioms: [propext, Classical.choice, Quot.sound]"}],\n'
    ' "env": ENV}\n\n'
)

VERSION = (
    '{"messages": [{"severity": "info", "pos": {"line": 1, "column": 0}, "endPos": null,\n'
    ' "data": "\\"4.24.0\\""}],\n "env": ENV}\n\n'
)


def main() -> None:
    env = 0
    state = -1  # proof states, counted like the REPL's
    pending = False
    out = sys.stdout
    for line in sys.stdin:
        if line.strip():
            pending = pending or line
            continue
        if not pending:
            sys.exit("empty request")
        if pending.startswith('{"pickleTo"'):
            request = json.loads(pending)
            with open(request["pickleTo"], "w") as f:
                f.write("pickled")
            out.write(f'{{"env":\n {request["env"]}}}\n\n')
            out.flush()
            pending = False
            continue
        if pending.startswith('{"tactic"'):  # a new state, one new goal
            state += 1
            out.write(
                f'{{"proofState": {state},\n "goals": ["⊢ goal {state}"],\n'
                ' "proofStatus": "Incomplete: open goals remain"}\n\n'
            )
            out.flush()
            pending = False
            continue
        if 'by sorry"' in pending:  # the root of a search
            state += 1
            out.write(
                f'{{"sorries": [{{"proofState": {state}, "goal": "⊢ goal {state}",\n'
                ' "pos": {"line": 1, "column": 0}, "endPos": {"line": 1, "column": 5}}],\n'
                f' "env": {env}}}\n\n'
            )
            out.flush()
            env += 1
            pending = False
            continue
        if "Lean.versionString" in pending:  # a Lean whose unpickling re-checks (replay.py)
            out.write(VERSION.replace("ENV", str(env)))
        elif "#print axioms" in pending:  # the verifier's final check: its line 2
            out.write(AXIOMS.replace("ENV", str(env)))
        else:
            out.write(f'{{"env":\n {env}}}\n\n')
        out.flush()
        env += 1
        pending = False


if __name__ == "__main__":
    main()
