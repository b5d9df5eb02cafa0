"""Scripted Lean answers for the selftest canaries: rules for the FakeRepl double (script
mode) that answer each canary as real Lean would. They are written from Lean's documented
behaviour, not recorded: the image build's `prover selftest` is where real Lean is checked.
"""

from __future__ import annotations

import json
from pathlib import Path

from prover.lean.canaries import builtin, redteam_entries
from prover.lean.extract import plan_check
from prover.lean.verdict import CheckItem

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

# canary id -> what Lean answers for its code (keys of a FakeRepl rule, without `match`).
ANSWERS: dict[str, dict] = {
    "cheat-block-comment": PAYLOAD_ANSWER,
    "cheat-doc-comment": PAYLOAD_ANSWER,
    "cheat-plain-string": PAYLOAD_ANSWER,
    "cheat-glued-numeral": PAYLOAD_ANSWER,
    "cheat-glued-char": PAYLOAD_ANSWER,
    "cheat-letterlike-ident": PAYLOAD_ANSWER,
    "cheat-file-header": PAYLOAD_ANSWER,
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
    """FakeRepl rules for every canary: the built-in ones matched by their theorem's
    declaration, the red-team corpus by its exact command (its `lean` field)."""
    answers = {**ANSWERS, **(overrides or {})}
    rules = [{"match": f"theorem {_target(cid)} ", **answer} for cid, answer in answers.items()]
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


def write_rules(path: Path, overrides: dict[str, dict] | None = None) -> Path:
    path.write_text(json.dumps({"version": "4.24.0", "rules": canary_rules(overrides)}))
    return path
