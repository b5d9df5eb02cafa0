"""Verdicts for the 68 real Goedel-Prover proofs that a Kimina Lean Server recorded.

The FakeRepl double answers each proof with the server's recorded REPL answer (a timeout is
replayed as silence, so our own deadline has to fire). The recordings hold no `#print axioms`
answer: the double reports the standard three, which is what Lean prints for Mathlib proofs
with no sorry (the server accepted them).
"""

from __future__ import annotations

import json
import re

import pytest

from prover.lean.extract import plan_check
from prover.lean.pool import ReplPool, VerifierConfig
from prover.lean.source import split_header
from prover.lean.verdict import CheckItem

from conftest import data_path, plain_factory

TIMEOUTS = {
    "lean_workbook_10036",
    "lean_workbook_10090",
    "lean_workbook_10303",
    "lean_workbook_1036",
}


def recordings() -> list[tuple[str, str, dict]]:
    root = data_path("kimina-recordings")
    out = []
    for lean in sorted((root / "input").glob("*.lean")):
        answer = json.loads((root / "output" / f"{lean.stem}.json").read_text())["results"][0]
        text = lean.read_text()
        name = re.search(r"^theorem (\S+)", text, re.M)
        assert name, lean
        out.append((name.group(1), text, answer))
    return out


def as_item(name: str, text: str) -> CheckItem:
    """The recording as a benchmark item: its header and statement, the whole file as proof."""
    header, rest, _ = split_header(text)
    match = re.search(rf"theorem {re.escape(name)}\b.*?:=\s*by", rest, re.S)
    assert match, name
    return CheckItem(name, header, match.group(0), text)


def test_kimina_recordings_verdicts(fake_repl_script) -> None:
    cases = recordings()
    assert len(cases) == 68
    rules = []
    for name, _, answer in cases:
        if answer["error"]:
            assert "timed out" in answer["error"]
            rules.append({"match": f"theorem {name} ", "sleep_s": 1000})
        else:
            response = {k: v for k, v in answer["response"].items() if k != "time"}
            rules.append({"match": f"theorem {name} ", "response": response})
    command = fake_repl_script(rules)
    config = VerifierConfig(workers=2, timeout=2.0)
    verdicts = {}
    with ReplPool(config, transport_factory=plain_factory(command)) as pool:
        for item, verdict in pool.check_many(as_item(n, t) for n, t, _ in cases):
            verdicts[item.name] = verdict
        stats = pool.stats
    assert {n for n, v in verdicts.items() if v.reason == "timeout"} == TIMEOUTS
    rejected = {
        n: (v.reason, v.detail) for n, v in verdicts.items() if not v.accepted and n not in TIMEOUTS
    }
    assert rejected == {}
    assert all(
        v.axioms == ["Classical.choice", "Quot.sound", "propext"]
        for n, v in verdicts.items()
        if n not in TIMEOUTS
    )
    # Each timeout kills a process; only replacements (and switches to the one recording with
    # another header) elaborate a header again.
    assert stats.restarts <= len(TIMEOUTS)
    assert stats.header_elaborations - stats.restarts - stats.evictions <= config.workers


@pytest.mark.parametrize("name", ["lean_workbook_10009", "lean_workbook_1001"])
def test_recording_is_checked_against_its_own_statement(name: str) -> None:
    text = next(t for n, t, _ in recordings() if n == name)
    item = as_item(name, text)
    assert item.header.startswith("import Mathlib\nimport Aesop")
    plan = plan_check(item)
    assert not plan.no_proof and plan.banned is None and not plan.statement_rewritten
    assert "import" not in plan.code and f"theorem {name}" in plan.code
