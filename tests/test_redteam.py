"""The red-team corpus end to end: every cheating completion is rejected with the right reason,
every honest one accepted, through the pool and the FakeRepl double (which answers each proof
with what real Lean would, as recorded in the corpus's `lean` field)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from prover.lean.extract import plan_check
from prover.lean.pool import ReplPool, VerifierConfig
from prover.lean.verdict import CheckItem

from conftest import plain_factory

# the corpus ships in the package (`prover selftest` runs it too)
CORPUS = Path(str(resources.files("prover.lean.canaries").joinpath("redteam.jsonl")))


def load() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]


def test_corpus_size() -> None:
    entries = load()
    assert sum(e["kind"] == "cheat" for e in entries) >= 25
    assert sum(e["kind"] == "honest" for e in entries) >= 10


def test_every_entry_gets_its_expected_verdict(fake_repl_script, tmp_path, monkeypatch) -> None:
    log = tmp_path / "requests.jsonl"
    monkeypatch.setenv("FAKE_REPL_LOG", str(log))
    entries = load()
    items = {}
    rules = []
    for entry in entries:
        item = CheckItem(entry["id"], entry["header"], entry["formal_statement"], entry["proof"])
        items[entry["id"]] = (entry, item)
        lean = entry.get("lean") or {}
        rule = {"match": plan_check(item).code, "exact": True, "response": lean.get("response", {})}
        if "axioms" in lean:
            rule["axioms"] = lean["axioms"]
        if lean.get("statement_differs"):  # Lean would elaborate another statement
            rule["statement_mismatch"] = True
        rules.append(rule)
    with ReplPool(
        VerifierConfig(workers=2, timeout=20),
        transport_factory=plain_factory(fake_repl_script(rules)),
    ) as pool:
        verdicts = {item.name: v for item, v in pool.check_many(i for _, i in items.values())}
    wrong = {
        key: (entry["expected_reason"], verdicts[key].reason, verdicts[key].detail)
        for key, (entry, _) in items.items()
        if verdicts[key].reason != entry["expected_reason"]
        or verdicts[key].accepted != (entry["expected_reason"] == "ok")
    }
    assert wrong == {}
    # What the scan refused never reached Lean.
    sent = {r["cmd"] for r in map(json.loads, log.read_text().splitlines()) if "cmd" in r}
    scanned_only = {
        e["id"]: plan_check(i).code
        for e, i in items.values()
        if e["expected_reason"] in ("banned", "no_proof")
    }
    assert len(scanned_only) >= 30
    assert {key for key, code in scanned_only.items() if code in sent} == set()
