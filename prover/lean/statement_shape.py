"""Is a benchmark statement one the verifier can judge proofs of? Asked when a suite is loaded,
so a bad row is refused before any sampling rather than stopping a run halfway.

The verifier elaborates the statement as a reference axiom (`commands.reference_command`) and
asks Lean whether the proved constant has its type (`commands.statement_check_command`); the
model's proof goes after the statement's `:= by` (`extract.plan_check`). A statement that
refuses any of these could never accept a proof, whatever the model writes.
"""

from __future__ import annotations

import re

from prover.lean.commands import reference_command
from prover.lean.source import declarations, mask_all

_ENDS_IN_BY = re.compile(r":=\s*by\s*$")


def reference_refusal(formal_statement: str) -> str | None:
    """Why the verifier cannot even build its reference for `formal_statement` (no theorem, no
    `:=`): such an item can only be `invalid_input`, never sent to Lean."""
    try:
        reference_command(formal_statement, "reference")
    except ValueError as exc:
        hint = " (a statement ends in `:= by`)" if "`:=`" in str(exc) else ""
        return f"{exc}{hint}"
    return None


def statement_problem(formal_statement: str) -> str | None:
    """One line saying why no proof of `formal_statement` could be judged; None if one can."""
    decls = declarations(formal_statement)
    theorems = [d for d in decls if d.keyword in ("theorem", "lemma")]
    if not theorems:
        found = ", ".join(f"`{d.keyword}`" for d in decls) or "nothing"
        return (
            f"`formal_statement` declares no theorem or lemma (found {found}): "
            "the verifier judges proofs of theorems"
        )
    if len(theorems) > 1:
        names = ", ".join(d.name or "?" for d in theorems)
        return f"`formal_statement` declares {len(theorems)} theorems ({names}); expected one"
    if not theorems[0].name:
        return "the theorem in `formal_statement` has no name"
    refused = reference_refusal(formal_statement)  # what the verifier refuses at a check
    if refused is not None:
        return refused
    if not _ENDS_IN_BY.search(mask_all(formal_statement)):
        tail = " ".join(formal_statement.split())[-40:]
        return f"`formal_statement` must end in `:= by` (it ends in {tail!r})"
    return None
