"""The red-team corpus: the pre-Lean scan refuses exactly the entries it should."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from benchmarks import data_dir
from prover.lean.extract import plan_check
from prover.lean.verdict import REASONS, CheckItem

# the corpus ships in the package (`prover selftest` runs it too)
CORPUS = Path(str(resources.files("prover.lean.canaries").joinpath("redteam.jsonl")))
ENTRIES: list[dict[str, Any]] = [json.loads(ln) for ln in CORPUS.read_text().splitlines() if ln]
BENCH = data_dir() / "minif2f-lean4.24.jsonl"  # the miniF2F that ships with the package


def test_corpus_shape() -> None:
    ids = [e["id"] for e in ENTRIES]
    assert len(ids) == len(set(ids))
    assert sum(e["kind"] == "cheat" for e in ENTRIES) >= 30
    assert sum(e["kind"] == "honest" for e in ENTRIES) >= 12
    for e in ENTRIES:
        assert e["kind"] in ("cheat", "honest")
        assert e["expected_reason"] in REASONS
        assert e["expected_reason"] not in ("timeout", "memory", "crash")
        assert isinstance(e["lean"], dict)
        if e["kind"] == "honest":
            assert e["expected_reason"] == "ok"
        if e["expected_reason"] not in ("banned", "no_proof"):
            messages = e["lean"]["response"].get("messages", [])
            errors = [m for m in messages if m["severity"] == "error"]
            # an error comes from the proof's own answer, or from the statement check when
            # the model's statement (checked as written) is not the benchmark's
            differs = bool(e["lean"].get("statement_differs"))
            assert (bool(errors) or differs) == (e["expected_reason"] == "error"), e["id"]
            assert not (errors and differs), e["id"]


def test_statements_are_real_minif2f() -> None:
    rows = {json.loads(ln)["name"]: json.loads(ln) for ln in BENCH.read_text().splitlines()}
    for e in ENTRIES:
        row = rows[e["name"]]
        assert (e["header"], e["formal_statement"]) == (row["header"], row["formal_statement"])


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_scan_outcome(entry: dict[str, Any]) -> None:
    item = CheckItem(entry["name"], entry["header"], entry["formal_statement"], entry["proof"])
    plan = plan_check(item)
    assert plan.name == entry["name"]
    expected = entry["expected_reason"]
    if expected == "banned":
        assert plan.banned is not None
    elif expected == "no_proof":
        assert plan.no_proof and plan.banned is None
    else:
        assert plan.banned is None, plan.banned
        assert not plan.no_proof
        # the statement sent is the model's own when it declared the target
        assert plan.statement in plan.code
