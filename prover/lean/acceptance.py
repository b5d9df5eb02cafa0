"""Strict acceptance: the rungs after the pre-Lean scan, applied to the REPL's answers.

Rung order (the first failing rung gives the reason): error, sorry, axioms. The pre-Lean
rungs (`no_proof`, `banned`) and process failures (`timeout`, `memory`, `crash`) are decided
before these run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from prover.lean.protocol import CommandResponse, Message
from prover.lean.verdict import STANDARD_AXIOMS

# The sorry warning in both quote styles (backticks from Lean v4.28 on).
_SORRY_WARNING = re.compile(r"declaration uses ['`]sorry['`]")
_NATIVE_AXIOMS = frozenset({"Lean.ofReduceBool", "Lean.trustCompiler"})

# `'NAME' depends on axioms: [a, b]` / `'NAME' does not depend on any axioms`; the list may
# be wrapped over several lines by Lean's formatter.
_DEPENDS = re.compile(r"^['`](?P<name>.+?)['`] depends on axioms: \[(?P<axioms>[^\]]*)\]", re.S)
_NO_AXIOMS = re.compile(r"^['`](?P<name>.+?)['`] does not depend on any axioms")


def first_error(response: CommandResponse) -> Message | None:
    errors = response.errors
    return errors[0] if errors else None


def has_sorry(response: CommandResponse) -> bool:
    if response.sorries:
        return True
    return any(
        m.severity in ("warning", "error") and _SORRY_WARNING.search(m.data)
        for m in response.messages
    )


def parse_axioms(messages: Iterable[Message]) -> dict[str, list[str]]:
    """Map each name `#print axioms` reported on to its axioms."""
    found: dict[str, list[str]] = {}
    for message in messages:
        if message.severity != "info":
            continue
        text = message.data.strip()
        if m := _DEPENDS.match(text):
            names = [a.strip().strip("«»") for a in m["axioms"].replace("\n", " ").split(",")]
            found[_unquote(m["name"])] = [a for a in names if a]
        elif m := _NO_AXIOMS.match(text):
            found[_unquote(m["name"])] = []
    return found


def _unquote(name: str) -> str:
    return name.replace("«", "").replace("»", "")


def axioms_reason(axioms: Iterable[str], *, allow_native: bool) -> str:
    """`ok`, or the reason the axiom list fails: `sorry`, `native`, `axiom`."""
    axioms = list(axioms)
    if "sorryAx" in axioms:
        return "sorry"
    native = [a for a in axioms if a in _NATIVE_AXIOMS or "._native." in a]
    others = [a for a in axioms if a not in STANDARD_AXIOMS and a not in native and a != "sorryAx"]
    if others:
        return "axiom"
    if native and not allow_native:
        return "native"
    return "ok"


def elaboration_reason(response: CommandResponse) -> str:
    """`ok`, `error` or `sorry` for the proof command's answer (rungs 3 and 4)."""
    if first_error(response) is not None:
        return "error"
    if has_sorry(response):
        return "sorry"
    return "ok"
