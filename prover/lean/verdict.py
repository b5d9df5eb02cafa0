"""What a check is about (`CheckItem`) and what it concluded (`Verdict`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

Reason = Literal[
    "ok",
    "no_proof",
    "banned",
    "timeout",
    "memory",
    "crash",
    "error",
    "sorry",
    "native",
    "axiom",
    "invalid_input",  # the record itself is unusable (not JSON, not UTF-8-encodable, ...)
    "replay",  # the kernel replay rung (replay.py) rejected what the other rungs accepted
]
REASONS: tuple[str, ...] = get_args(Reason)

# Axioms every Mathlib proof may use; anything else fails the last rung.
STANDARD_AXIOMS: frozenset[str] = frozenset({"propext", "Classical.choice", "Quot.sound"})


@dataclass(frozen=True)
class CheckItem:
    """One proof to judge: the benchmark's own `header` and `formal_statement`, the model's `proof`.

    `formal_statement` ends in `:= by`. `proof` is a tactic block or Lean code that declares
    the target theorem (possibly after helpers and its own header lines). Within a `context`,
    the statement's name is resolved in the namespace the context leaves open.
    """

    name: str
    header: str
    formal_statement: str
    proof: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    # Lean text between the header and the statement (a file's declarations above a `sorry`
    # that `prover prove` fills): elaborated once per process, candidates checked on top.
    context: str = ""


@dataclass
class Verdict:
    name: str
    accepted: bool
    reason: Reason
    axioms: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    # Always False since RULES_REVISION 2 (the model's statement is checked as written); kept so
    # the verdict JSON keeps its fields for readers of earlier runs.
    statement_rewritten: bool = False
    time_s: float = 0.0
    detail: str = ""  # one human line: which construct was banned, why the process died, ...
    # True only when the kernel replay rung ran and passed (replay.py); False when it was off,
    # not applicable (FILE mode examples, checks with a context) or not possible (Kimina).
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
