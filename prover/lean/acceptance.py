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
# Bump when any rung (here, in the banned scan or in the verifier's own commands) changes what
# is accepted: verdicts cached under an older revision are then not reused.
RULES_REVISION = 3  # 2: statement checked as written; allowlist scan over Lean's tokens;
# 3: a `crash` is judged only after a re-check beside a known-good canary (machinery apart)

_SORRY_WARNING = re.compile(r"declaration uses ['`]sorry['`]")
_NATIVE_AXIOMS = frozenset({"Lean.ofReduceBool", "Lean.trustCompiler"})

# `'NAME' depends on axioms: [a, b]` / `'NAME' does not depend on any axioms`; the list may
# be wrapped over several lines by Lean's formatter, and a name may be «escaped» (it can then
# hold `]`, `,` or spaces), so the list is tokenised, not split.
_DEPENDS = re.compile(r"^['`](?P<name>.+?)['`] depends on axioms: \[(?P<rest>.*)$", re.S)
_NO_AXIOMS = re.compile(r"^['`](?P<name>.+?)['`] does not depend on any axioms\s*$", re.S)
_NAME_TOKEN = re.compile(r"\s*((?:«[^»]*»|[^,\]\s«]+)+)\s*([,\]])")


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


def _axiom_list(rest: str) -> list[str] | None:
    """Names in `a, «b]», c]...`; None when the text is not such a list."""
    names: list[str] = []
    pos = 0
    if rest.lstrip().startswith("]"):
        return []
    while True:
        m = _NAME_TOKEN.match(rest, pos)
        if m is None:
            return None
        names.append(m.group(1))
        pos = m.end()
        if m.group(2) == "]":
            return names


def parse_axioms(messages: Iterable[Message]) -> dict[str, list[str]]:
    """Map each name `#print axioms` reported on to its axioms (names as Lean prints them,
    «escapes» kept, so `«Quot.sound»` is never mistaken for `Quot.sound`)."""
    found: dict[str, list[str]] = {}
    for message in messages:
        if message.severity != "info":
            continue
        text = message.data.strip()
        if m := _DEPENDS.match(text):
            axioms = _axiom_list(m["rest"])
            if axioms is not None:
                found[m["name"]] = axioms
        elif m := _NO_AXIOMS.match(text):
            found[m["name"]] = []
    return found


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
