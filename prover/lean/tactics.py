"""Tactic mode: what one tactic did to a proof state, and what is sent for it.

The REPL runs a tactic in a proof state with `{"tactic": T, "proofState": N}` and answers with
a new proof state (leanprover-community/repl, REPL/Main.lean `runProofStep`). Facts the
recorded transcripts show (tests/data/repl-transcripts, those whose `.in` sends a tactic):
- a tactic that fails with an error message still gets a new proof state, with the error,
  `goals: []` and `proofStatus: "Incomplete: contains sorry"` (invalid_tactic);
- a tactic that does not parse, or throws (`exact?` finding nothing, a heartbeat timeout),
  comes back as `{"message": "Lean error:\\n..."}` (unknown_tactic, self_proof_check);
- `goals: []` alone does not mean proved: `"Incomplete: contains metavariable(s)"`
  (app_type_mismatch, name_generator) and `"Incomplete: contains sorry"` have none either.
`proofStatus` comes from REPL/Main.lean `getProofStatus` (REPLs from April 2025 on): with no
goal left, it type-checks the whole proof term in the kernel, "Completed" only if that passes
and the term holds no sorry and no metavariable. Older REPLs (the v4.9 one; REPL/JSON.lean
`ProofStepResponse` without the field) say nothing of the kind: there, a goal counts as closed
when the answer has no error, no sorry and no goal left.

Tactic mode never decides acceptance: a proof found this way is assembled into a whole proof
and judged by the strict verifier like any other.
"""

from __future__ import annotations

from typing import Literal

from prover.lean.banned import find_banned
from prover.lean.extract import benchmark_statement
from prover.lean.lexer import tokenize
from prover.lean.protocol import CommandResponse, ReplError, TacticResponse
from prover.lean.repl import LeanRepl

TacticOutcome = Literal["proved", "open", "failed"]
# Why a tactic is a dead branch. From Lean's answer: `error` (an error message), `lean_error`
# (the `{"message": "Lean error..."}` answer), `sorry` (it left a sorry), `incomplete` (no goal
# left, yet not a finished proof). From the machinery: `timeout`, `crash`, `memory` (the process
# failed on it, twice for a crash), `lost` (the state it ran in could not be rebuilt after a
# restart), `invalid_input` (text that cannot be sent), `banned` (refused before sending).
FailureReason = Literal[
    "error",
    "lean_error",
    "sorry",
    "incomplete",
    "timeout",
    "crash",
    "memory",
    "lost",
    "invalid_input",
    "banned",
]

COMPLETED = "Completed"
# Lean's own default `maxHeartbeats` (Lean `src/Lean/CoreM.lean`, option `maxHeartbeats`).
DEFAULT_TACTIC_HEARTBEATS = 200_000


def tactic_outcome(response: TacticResponse | ReplError) -> TacticOutcome:
    """`proved` (no goal left, the proof finished), `open` (goals remain to work on) or
    `failed` (a dead branch), by the rule in this module's docstring. A `ReplError` here is a
    `Lean error` answer (the client raises on any other)."""
    if failure_reason(response) is not None or isinstance(response, ReplError):
        return "failed"
    if response.proof_status is not None:
        return "proved" if response.proof_status == COMPLETED else "open"
    return "open" if response.goals else "proved"


def failure_reason(response: TacticResponse | ReplError) -> FailureReason | None:
    """Why Lean's answer is a dead branch, or None when it is not one."""
    if isinstance(response, ReplError):
        return "lean_error"
    if response.errors:
        return "error"
    if response.sorries:  # a state resting on a sorry proves nothing
        return "sorry"
    if response.proof_status is not None:
        if response.proof_status == COMPLETED:
            return None
        if response.goals:
            return None  # "Incomplete: open goals remain"
        return "sorry" if "sorry" in response.proof_status else "incomplete"
    return None  # older REPL: no error, no sorry; closed if no goal is left


def failure_detail(response: TacticResponse | ReplError) -> str:
    """One line (or Lean's first message) saying why the answer is a dead branch."""
    if isinstance(response, ReplError):
        return response.message.removeprefix("Lean error:").strip()
    if response.errors:
        return response.errors[0].data
    if response.sorries:
        return "the tactic left a sorry"
    return response.proof_status or ""


def with_heartbeats(tactic: str, heartbeats: int | None) -> str:
    """`tactic` bounded by `heartbeats` (None: sent as it is), as the `set_option ... in` tactic
    (Lean `src/Lean/Parser/Command.lean`, `Lean.Parser.Tactic.set_option`: "acts like
    `set_option opt val` at the command level, but it sets the option only within the tactics
    `tacs`"). A multi-line tactic goes on the lines after `in`, each indented by two, so that
    its own indentation still lays out one tactic sequence.

    Caveat, from Lean's sources: the tactic form sets the option through `withOptions`, which
    in the Lean versions read updates `maxRecDepth` but not the running `maxHeartbeats` limit
    (`MonadWithOptions CoreM` in `src/Lean/CoreM.lean`; lean4 PR 8646), and the REPL's tactic
    mode runs every tactic under Lean's default limit of 200000 whatever the environment sets
    (leanprover-community/repl issue 69). A tactic past that default fails in Lean (a
    `Lean error` answer) either way; the wall-clock timeout stays the last resort."""
    text = tactic.strip()
    if heartbeats is None:
        return text
    if heartbeats < 1:
        raise ValueError(f"heartbeats must be a positive number, not {heartbeats}")
    if "\n" not in text:
        return f"set_option maxHeartbeats {heartbeats} in {text}"
    lines = tactic.strip("\n").rstrip().splitlines()
    body = "\n".join("  " + line if line.strip() else line for line in lines)
    return f"set_option maxHeartbeats {heartbeats} in\n{body}"


_SORRY_WORDS = frozenset({"sorry", "admit"})


def banned_tactic(sent: str, formal_statement: str) -> str | None:
    """Why `sent` (the exact text to be sent) must not reach Lean, or None. The scan of whole
    proofs (`banned.find_banned`) reads it as the proof body `by SENT` under the statement, as
    `extract.plan_check` would send it; and a `sorry` or `admit` is refused too: in tactic mode
    there is no later sorry rung before the search would build on the state it leaves."""
    body = "\n".join("  " + line for line in sent.splitlines())
    code = f"{benchmark_statement(formal_statement)} by\n{body}\n"
    banned = find_banned(code)
    if banned is not None:
        return banned
    for interpolated in (False, True):
        for token in tokenize(sent, interpolated=interpolated):
            if token.kind == "ident" and token.text in _SORRY_WORDS:
                return f"`{token.text}` (a tactic-mode step must not close a goal by sorry)"
    return None


def root_command(formal_statement: str) -> str:
    """The command whose one `sorry` gives the statement's root proof state: the statement as
    written (up to its `:=`) then `by sorry`, as the REPL's transcripts do (`theorem foo (x :
    Int) : x = x := by sorry`, have_by_sorry)."""
    return f"{benchmark_statement(formal_statement)} by sorry"


class RootFailure(Exception):
    """The statement's `by sorry` command did not give exactly one proof state."""


def root_state(response: CommandResponse) -> tuple[int, tuple[str, ...]]:
    """(proof state id, goals) of the root, from the answer to `root_command`. The REPL joins
    the goals of a sorry with a newline into one text (REPL/Main.lean `sorries`); a statement's
    root has exactly one goal, so that text is the goal."""
    if response.errors:
        first = response.errors[0].data
        raise RootFailure(first.splitlines()[0] if first else "the statement has an error")
    states = [s for s in response.sorries if s.proof_state is not None]
    if len(states) != 1:
        raise RootFailure(f"expected one sorry with a proof state, the REPL gave {len(states)}")
    assert states[0].proof_state is not None
    return states[0].proof_state, (states[0].goal,)


def start_proof(
    repl: LeanRepl, formal_statement: str, env: int | None, timeout: float
) -> tuple[int, tuple[str, ...]]:
    """(proof state id, goals) of `formal_statement`'s root in `repl`, elaborated on `env` (the
    header's, or a context's on top of it). RootFailure when the statement does not elaborate
    or gives no single proof state; ReplFailure when the process fails."""
    response = repl.command(root_command(formal_statement), env=env, timeout=timeout)
    return root_state(response)
