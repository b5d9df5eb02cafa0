"""Honest proofs pass the scan: the red-team corpus's honest entries, the 68 real Goedel-Prover
proofs of the Kimina recordings (as files and as model code), and every shipped benchmark
statement under a plain tactic. Prints the false-reject count."""

from __future__ import annotations

import json
import re
import time
from importlib import resources
from pathlib import Path

import pytest

from benchmarks import data_file
from prover.lean.banned import find_banned
from prover.lean.extract import plan_check
from prover.lean.source import split_header
from prover.lean.verdict import CheckItem

from conftest import data_path

# the corpus ships in the package (`prover selftest` runs it too)
CORPUS = Path(str(resources.files("prover.lean.canaries").joinpath("redteam.jsonl")))


def test_redteam_honest_entries_pass() -> None:
    entries = [json.loads(line) for line in CORPUS.read_text().splitlines() if line]
    honest = [e for e in entries if e["kind"] == "honest"]
    rejected = {}
    for e in honest:
        plan = plan_check(CheckItem(e["name"], e["header"], e["formal_statement"], e["proof"]))
        if plan.banned:
            rejected[e["id"]] = plan.banned
    print(f"red-team honest entries: {len(honest)}, false rejects: {len(rejected)}")
    assert rejected == {}


def test_kimina_recordings_pass_the_scan() -> None:
    files = sorted((data_path("kimina-recordings") / "input").glob("*.lean"))
    assert len(files) == 68
    rejected = {}
    for path in files:
        text = path.read_text()
        if reason := find_banned(text, file_mode=True):
            rejected[f"{path.name} (file)"] = reason
        name = re.search(r"^theorem (\S+)", text, re.M)
        assert name, path
        header, rest, _ = split_header(text)
        statement = re.search(rf"theorem {re.escape(name[1])}\b.*?:=\s*by", rest, re.S)
        assert statement, path
        plan = plan_check(CheckItem(name[1], header, statement[0], text))
        if plan.banned:
            rejected[f"{path.name} (model code)"] = plan.banned
    print(f"Kimina recordings: {len(files)} files, false rejects: {len(rejected)}")
    assert rejected == {}


@pytest.mark.parametrize(
    "suite",
    ["minif2f-lean4.24.jsonl", "minif2f-lean4.9-deepseek.jsonl", "proofnet-lean4.9-deepseek.jsonl"],
)
def test_benchmark_statements_pass_under_a_tactic(suite: str) -> None:
    path = data_file(suite)
    assert path is not None, f"{suite} does not ship in the benchmarks package"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rejected = {}
    for row in rows:
        item = CheckItem(row["name"], row["header"], row["formal_statement"], "  simp")
        plan = plan_check(item)
        if plan.banned or plan.no_proof:
            rejected[row["name"]] = plan.banned
    print(f"{suite}: {len(rows)} statements, false rejects: {len(rejected)}")
    assert rejected == {}


def test_putnambench_files_pass_in_file_mode() -> None:
    folder = data_file("putnambench-lean4.27")
    assert folder is not None, "putnambench-lean4.27 does not ship in the benchmarks package"
    files = sorted(folder.glob("*.lean"))
    assert len(files) == 672
    rejected = {p.name: r for p in files if (r := find_banned(p.read_text(), file_mode=True))}
    print(f"putnambench files: {len(files)}, false rejects: {len(rejected)}")
    assert rejected == {}


def test_large_proof_is_judged_in_linear_time() -> None:
    # the quadratic case of the earlier scan: `omega` then lines of `@[simp]`, 160 KB
    stmt = "theorem t (n : ℕ) : n + 0 = n := by\n"
    proof = stmt + "  omega\n" + "@[simp]\n" * (160_000 // 8)
    start = time.perf_counter()
    plan = plan_check(CheckItem("t", "import Mathlib\n", stmt, proof))
    elapsed = time.perf_counter() - start
    print(f"plan_check of {len(proof) // 1000} KB: {elapsed:.2f} s")
    assert plan.banned is not None or plan.no_proof or plan.code
    assert elapsed < 5.0
