"""`prover prove` as a user runs it: the real CLI, the `openai` backend against a local
OpenAI-compatible test server (scripted answers), the FakeRepl double as Lean."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from conftest import run_prover
from serving import ScriptedOpenAI, scripted_openai

pytest.importorskip("prover.models.openai_backend", reason="model backends not in this build")

FILE = """import Mathlib

theorem easy : (2 : ℕ) + 2 = 4 := by
  sorry

theorem impossible : (1 : ℕ) = 2 := by
  sorry
"""
ANSWERS = {"easy": ["  simp -- BAD\n```", "  norm_num\n```"], "impossible": ["  simp -- BAD\n```"]}


@pytest.fixture
def openai_server():
    with scripted_openai(ScriptedOpenAI(ANSWERS)) as url:
        yield url


def prove(tmp_path: Path, fake_repl_script, api_base: str, *extra: str):
    bad = {"severity": "error", "pos": {"line": 2, "column": 2}, "endPos": None, "data": "no"}
    repl = fake_repl_script([{"match": "-- BAD", "response": {"messages": [bad]}}])
    return run_prover(
        "prove",
        str(tmp_path / "f.lean"),
        "--backend",
        "openai",
        "--model",
        "deepseek-ai/DeepSeek-Prover-V1.5-SFT",
        "--api-base",
        api_base,
        "--attempts",
        "2",
        "--rounds",
        "1",
        "--sandbox",
        "none",
        "--repl",
        shlex.join(repl.argv),
        *extra,
    )


def test_in_place_writes_only_accepted_proofs_and_keeps_a_backup(
    tmp_path, fake_repl_script, openai_server
) -> None:
    (tmp_path / "f.lean").write_text(FILE)
    result = prove(tmp_path, fake_repl_script, openai_server, "--in-place", "--json")
    assert result.returncode == 1, result.stderr  # `impossible` keeps its sorry
    report = json.loads(result.stdout)
    assert [(t["name"], t["proved"]) for t in report["theorems"]] == [
        ("easy", True),
        ("impossible", False),
    ]
    text = (tmp_path / "f.lean").read_text()
    assert "theorem easy : (2 : ℕ) + 2 = 4 := by\n  norm_num" in text
    assert "theorem impossible : (1 : ℕ) = 2 := by\n  sorry" in text
    assert "BAD" not in text
    assert (tmp_path / "f.lean.bak").read_text() == FILE


def test_without_in_place_the_file_is_untouched(tmp_path, fake_repl_script, openai_server):
    (tmp_path / "f.lean").write_text(FILE)
    result = prove(tmp_path, fake_repl_script, openai_server)
    assert result.returncode == 1
    assert (tmp_path / "f.lean").read_text() == FILE and not (tmp_path / "f.lean.bak").exists()
    assert "+  norm_num" in result.stdout  # the diff
    out = tmp_path / "out.lean"
    prove(tmp_path, fake_repl_script, openai_server, "--output", str(out))
    assert "norm_num" in out.read_text() and (tmp_path / "f.lean").read_text() == FILE


def test_bad_input_exits_2(tmp_path, fake_repl_script, openai_server) -> None:
    result = prove(tmp_path, fake_repl_script, openai_server)  # f.lean does not exist
    assert result.returncode == 2 and "no such file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_file_without_sorry_needs_no_model_and_no_lean(tmp_path) -> None:
    """Nothing to prove: exit 0 at once, before any REPL starts or any model loads (the model
    and the REPL named here do not exist)."""
    lean = tmp_path / "done.lean"
    lean.write_text("theorem t : 1 = 1 := by\n  rfl\n")
    result = run_prover(
        "prove", str(lean), "--model", str(tmp_path / "missing.gguf"),
        "--repl", str(tmp_path / "no-repl"), "--sandbox", "none",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no `sorry` to fill" in result.stderr
    assert lean.read_text() == "theorem t : 1 = 1 := by\n  rfl\n"
