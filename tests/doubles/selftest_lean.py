"""Scripted Lean answers for the selftest canaries: rules for the FakeRepl double (script
mode) that answer each canary as real Lean would. They are written from Lean's documented
behaviour, not recorded: the image build's `prover selftest` is where real Lean is checked.
"""

from __future__ import annotations

import json
from pathlib import Path

from prover.lean.canaries import ADD_CHEAT, USE_CHEAT, builtin, redteam_entries
from prover.lean.extract import plan_check
from prover.lean.verdict import CheckItem
from prover.selftest_tactics import HEARTBEAT_THEOREM

SORRY_WARNING = {
    "severity": "warning",
    "pos": {"line": 1, "column": 8},
    "endPos": {"line": 1, "column": 20},
    "data": "declaration uses 'sorry'",
}
# What the kernel says when it re-checks `theorem cheat : False := True.intro` (the replay
# process rebuilds the environment through the kernel, which skipKernelTC had bypassed).
KERNEL_REJECTS_CHEAT = (
    "(kernel) declaration type mismatch, 'cheat' has type\n  True\n"
    "but it is expected to have type\n  False"
)
# The payload cheats: Lean reports nothing, `#print axioms` lists no axiom in the checking
# process, and only the replay fails.
PAYLOAD_ANSWER = {"response": {}, "axioms": [], "replay_error": KERNEL_REJECTS_CHEAT}

# Code that uses `cheat` without the payload (dropped before Lean): Lean knows no `cheat`.
NO_CHEAT = {
    "severity": "error",
    "pos": {"line": 2, "column": 8},
    "endPos": {"line": 2, "column": 18},
    "data": "unknown identifier 'cheat.elim'",
}
PAYLOAD_RULES = [
    {"match": ADD_CHEAT, **PAYLOAD_ANSWER},
    {"match": USE_CHEAT, "response": {"messages": [NO_CHEAT]}, "anchored": True},
]

# canary id -> what Lean answers for its code (keys of a FakeRepl rule, without `match`).
ANSWERS: dict[str, dict] = {
    "classic-sorry": {"response": {"messages": [SORRY_WARNING]}, "axioms": ["sorryAx"]},
    "classic-admit": {"response": {"messages": [SORRY_WARNING]}, "axioms": ["sorryAx"]},
    "classic-axiom": {"response": {}, "axioms": ["propext", "selftest_magic"]},
    "classic-native-decide": {"response": {}, "axioms": ["Lean.ofReduceBool"]},
    # the helper instance makes the statement Lean elaborates differ from the benchmark's
    "classic-instance": {"response": {}, "statement_mismatch": True},
    # Lean elaborates the model's own statement (n % 2 = 1): the check then finds it differs
    "classic-other-statement": {"response": {}},
    "honest-classical": {"response": {}, "axioms": ["propext", "Classical.choice", "Quot.sound"]},
    "honest-omega": {"response": {}, "axioms": ["propext"]},
}


def _target(canary_id: str) -> str:
    canary = next(c for c in builtin("4.24") if c.id == canary_id)
    return canary.theorem or (canary.item.name if canary.item else "")


def canary_rules(overrides: dict[str, dict] | None = None) -> list[dict]:
    """FakeRepl rules for every canary: `overrides` (canary id -> answer) first, then the
    payload (answered wherever it reached Lean), the built-in canaries matched by their
    theorem's declaration, the red-team corpus by its exact command (its `lean` field)."""
    rules = [{"match": f"theorem {_target(cid)} ", **a} for cid, a in (overrides or {}).items()]
    rules += PAYLOAD_RULES
    rules += [{"match": f"theorem {_target(cid)} ", **answer} for cid, answer in ANSWERS.items()]
    for entry in redteam_entries():
        item = CheckItem(entry["id"], entry["header"], entry["formal_statement"], entry["proof"])
        lean = entry.get("lean") or {}
        rule = {"match": plan_check(item).code, "exact": True, "response": lean.get("response", {})}
        if "axioms" in lean:
            rule["axioms"] = lean["axioms"]
        if lean.get("statement_differs"):
            rule["statement_mismatch"] = True
        rules.append(rule)
    return rules


# Tactic mode for prover/selftest_tactics.py (the FakeRepl "tactic_graph"): the states and
# answers real Lean gives there, written from the recorded transcripts' shapes (invalid_tactic:
# an error in a new state; unknown_tactic: the `Lean error` answer, the table's default for a
# tactic it does not know), not recorded for these theorems.
TYPE_MISMATCH = (
    "type mismatch\n  h\nhas type\n  a = b : Prop\nbut is expected to have type\n  b = a : Prop"
)
TACTIC_GRAPH: dict = {
    "states": {
        "symm_root": ["a b : ℕ\nh : a = b\n⊢ b = a"],
        "symm_swapped": ["a b : ℕ\nh : a = b\n⊢ a = b"],
        "heartbeats_root": ["x y : ℝ\nh₀ : x + y = 10\nh₁ : x - y = 2\n⊢ x = 6"],
    },
    "roots": [{"match": f"theorem {HEARTBEAT_THEOREM} ", "state": "heartbeats_root"}],
    "edges": {
        "symm_root": {
            "exact h.symm": "proved",
            "exact h": {"error": TYPE_MISMATCH},
            "symm": "symm_swapped",
        },
        "symm_swapped": {"exact h": "proved"},
        # the FakeRepl enforces a `set_option maxHeartbeats N in` bound: past it, Lean's error
        "heartbeats_root": {"linarith": {"heartbeats": 30000, "to": "proved"}},
    },
}


def tactic_graph(**changes: dict) -> dict:
    """TACTIC_GRAPH with `changes` (state name -> its edges, replacing the table's)."""
    return {**TACTIC_GRAPH, "edges": {**TACTIC_GRAPH["edges"], **changes}}


def write_rules(
    path: Path,
    overrides: dict[str, dict] | None = None,
    *,
    graph: dict | None = None,
    rules: list[dict] | None = None,
) -> Path:
    """The rules file: `rules` first, then the canaries' (with `overrides`), and `graph` (the
    default TACTIC_GRAPH) for tactic mode."""
    everything = [*(rules or []), *canary_rules(overrides)]
    config = {"version": "4.24.0", "rules": everything, "tactic_graph": graph or TACTIC_GRAPH}
    path.write_text(json.dumps(config))
    return path
