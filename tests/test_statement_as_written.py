"""The model's statement is checked as written, through the pool and the REPL double: Lean's
statement check (not the text) decides whether it is the benchmark's."""

from __future__ import annotations

import json

from prover.lean.pool import ReplPool, VerifierConfig
from prover.lean.verdict import CheckItem

from conftest import plain_factory

HEADER = "import Mathlib\n\nopen BigOperators Real Nat Topology Rat\n\n"
STMT = "theorem mathd_algebra_109 (a b : ℝ) (h₀ : 3 * a + 2 * b = 12) (h₁ : a = 4) : b = 0 := by\n"
RENAMED = STMT.replace("h₀", "h0").replace("h₁", "h1")


def check(fake_repl_script, tmp_path, monkeypatch, proof: str, rules: list[dict]):
    log = tmp_path / "requests.jsonl"
    monkeypatch.setenv("FAKE_REPL_LOG", str(log))
    item = CheckItem("t", HEADER, STMT, proof)
    with ReplPool(
        VerifierConfig(workers=1, timeout=20),
        transport_factory=plain_factory(fake_repl_script(rules)),
    ) as pool:
        verdict = pool.check(item)
    sent = [r["cmd"] for r in map(json.loads, log.read_text().splitlines()) if "cmd" in r]
    return verdict, sent


def test_renamed_binders_accepted_as_written(fake_repl_script, tmp_path, monkeypatch) -> None:
    proof = RENAMED + "  subst h1\n  linarith [h0]\n"
    verdict, sent = check(fake_repl_script, tmp_path, monkeypatch, proof, [])
    assert proof in sent  # the model's statement, not the benchmark's, reached Lean
    assert not any("h₀" in cmd and "linarith [h0]" in cmd for cmd in sent)
    assert (verdict.accepted, verdict.reason) == (True, "ok"), verdict.detail
    assert verdict.statement_rewritten is False


def test_other_statement_rejected_by_lean(fake_repl_script, tmp_path, monkeypatch) -> None:
    # one hypothesis fewer: another statement, whatever the proof
    proof = (
        "theorem mathd_algebra_109 (a b : ℝ) (h₀ : 3 * a + 2 * b = 12) : b = 0 := by\n  linarith\n"
    )
    rules = [{"match": "linarith", "statement_mismatch": True}]
    verdict, sent = check(fake_repl_script, tmp_path, monkeypatch, proof, rules)
    assert proof in sent
    assert (verdict.accepted, verdict.reason) == (False, "error")
    assert "not the benchmark's statement" in verdict.detail
