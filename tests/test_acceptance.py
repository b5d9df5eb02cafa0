"""Reading `#print axioms` answers and judging them."""

from __future__ import annotations

import pytest

from prover.lean.acceptance import axioms_reason, parse_axioms
from prover.lean.protocol import Message


def info(text: str) -> list[Message]:
    return [Message("info", text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "'t' depends on axioms: [propext, Classical.choice, Quot.sound]",
            {"t": ["propext", "Classical.choice", "Quot.sound"]},
        ),
        (
            "'t' depends on axioms: [propext,\n Classical.choice,\n Quot.sound]",
            {"t": ["propext", "Classical.choice", "Quot.sound"]},
        ),
        ("'t' does not depend on any axioms", {"t": []}),
        ("`t` depends on axioms: [sorryAx]", {"t": ["sorryAx"]}),
        # an escaped name can hold `]`, `,` and spaces: it is one axiom, never standard
        (
            "'t' depends on axioms: [Classical.choice, Quot.sound, «]», propext, sorryAx]",
            {"t": ["Classical.choice", "Quot.sound", "«]»", "propext", "sorryAx"]},
        ),
        ("'t' depends on axioms: [«Quot.sound, propext»]", {"t": ["«Quot.sound, propext»"]}),
        (
            "'t' depends on axioms: [t._native.native_decide.ax_1_1]",
            {"t": ["t._native.native_decide.ax_1_1"]},
        ),
        ("'t' depends on axioms: [propext", {}),  # torn: not an answer
    ],
)
def test_parse_axioms(text: str, expected: dict) -> None:
    assert parse_axioms(info(text)) == expected


def test_escaped_names_are_custom_axioms() -> None:
    (axioms,) = parse_axioms(info("'t' depends on axioms: [«]», «Quot.sound»]")).values()
    assert axioms_reason(axioms, allow_native=True) == "axiom"


def test_only_info_messages_count() -> None:
    assert parse_axioms([Message("error", "'t' does not depend on any axioms")]) == {}
