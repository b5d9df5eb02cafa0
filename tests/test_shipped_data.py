"""The benchmark data ships in the `benchmarks` package: every suite loads from it with its
expected size, each file is the one copied (digests), has its licence and a line on its origin,
and a built wheel carries all of it."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest
import yaml

from benchmarks import data_dir, data_file, suite_definitions
from harness.suites import known_suites, load_suite

from conftest import ROOT

PACKAGE = ROOT / "benchmarks"
DATA = PACKAGE / "data"

# suite -> problems per split, as loaded (ProofNet: the file's 371 rows less the 14 `def`
# targets its definition excludes)
EXPECTED = {
    "countdown": {"test": 200},
    "minif2f-test": {"test": 244},
    "minif2f-valid": {"valid": 244},
    "minif2f-deepseek-test": {"test": 244},
    "minif2f-deepseek-valid": {"valid": 244},
    "proofnet": {"valid": 178, "test": 179},
    "putnambench": {"test": 672},
}


@pytest.fixture(autouse=True)
def _no_prover_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVER_DATA", raising=False)


def test_the_package_is_the_repos_benchmarks_folder() -> None:
    # a checkout (editable install) reads the folder at the top of the repository
    assert data_dir() == DATA
    assert set(suite_definitions()) == set(known_suites()) == set(EXPECTED)
    assert data_file("putnambench-lean4.27") == DATA / "putnambench-lean4.27"
    assert data_file("no-such-file.jsonl") is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_suite_loads_from_the_package(name: str) -> None:
    suite = load_suite(name)
    assert dict(Counter(p.split for p in suite.problems)) == EXPECTED[name]
    assert len({p.name for p in suite.problems}) == len(suite.problems)
    if suite.task == "lean":
        assert Path(suite.problems[0].where.rsplit(":", 1)[0]).is_relative_to(DATA)


def test_the_deepseek_minif2f_is_the_same_488_problems() -> None:
    # one name differs in case between the two sources (numbertheory_notEquiv2i2j...)
    ours = {
        p.name.lower() for s in ("minif2f-test", "minif2f-valid") for p in load_suite(s).problems
    }
    theirs = {
        p.name.lower()
        for s in ("minif2f-deepseek-test", "minif2f-deepseek-valid")
        for p in load_suite(s).problems
    }
    assert len(ours) == 488 and ours == theirs


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_proofnet_leaves_out_exactly_the_def_targets() -> None:
    rows = _rows(DATA / "proofnet-lean4.9-deepseek.jsonl")
    assert Counter(r["split"] for r in rows) == {"valid": 185, "test": 186}
    defs = {r["name"] for r in rows if re.match(r"(noncomputable\s+)?def\s", r["formal_statement"])}
    suite = load_suite("proofnet")
    assert set(suite.excluded) == defs and len(defs) == 14
    assert "`def`" in suite.excluded_reason
    description = yaml.safe_load(suite_definitions()["proofnet"].read_text())["description"]
    assert "the 14 rows whose target is a `def`" in description and "357 of" in description


def test_proofnet_keeps_every_statement_and_says_each_rename() -> None:
    """Each problem is its row, word for word (a bare `:=` read as `:= by`); only rows that
    share a name are renamed, to NAME@TAG, with their own name kept."""
    path = DATA / "proofnet-lean4.9-deepseek.jsonl"
    rows = _rows(path)
    shared = {n for n, c in Counter(r["name"] for r in rows).items() if c > 1}
    renamed = 0
    for problem in load_suite("proofnet").problems:
        row = rows[int(problem.where.rsplit(":", 1)[1]) - 1]
        assert problem.header == row["header"]
        assert problem.formal_statement == row["formal_statement"].rstrip() + " by\n"
        if row["name"] in shared:
            renamed += 1
            assert problem.name.startswith(row["name"] + "@")
            assert problem.extra["upstream_name"] == row["name"]
        else:
            assert problem.name == row["name"] and "upstream_name" not in problem.extra
    assert renamed == 41


def _digests() -> dict[str, str]:
    lines = (DATA / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split(maxsplit=1) for line in lines)}


def _shipped_files() -> set[str]:
    return {
        str(p.relative_to(DATA))
        for p in DATA.rglob("*")
        if p.is_file() and p.name not in ("README.md", "SHA256SUMS")
    }


def test_the_data_is_the_copied_data() -> None:
    """SHA256SUMS names every data file and its digest: no statement changes unnoticed."""
    digests = _digests()
    assert set(digests) == _shipped_files()
    for name, digest in digests.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name


def test_every_data_file_has_its_licence_and_origin() -> None:
    readme = (DATA / "README.md").read_text()
    folder = DATA / "putnambench-lean4.27"
    assert len(list(folder.glob("*.lean"))) == 672
    for data, licence in [
        ("minif2f-lean4.24.jsonl", "LICENSE-minif2f-lean4-MIT"),
        ("minif2f-lean4.9-deepseek.jsonl", "LICENSE-deepseek-prover-MIT"),
        ("proofnet-lean4.9-deepseek.jsonl", "LICENSE-deepseek-prover-MIT"),
        ("putnambench-lean4.27/", "putnambench-lean4.27/LICENSE"),
    ]:
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{data}`"))
        assert f"`{licence}`" in row, data
        assert (DATA / licence).is_file(), licence
    assert "MIT License" in (DATA / "LICENSE-minif2f-lean4-MIT").read_text()
    assert "Apache License" in (folder / "LICENSE").read_text()
    # every suite reading a shipped file names where it comes from, and no path outside
    for path in suite_definitions().values():
        text = path.read_text()
        assert "../" not in text, path.name


def _build_wheel(tmp_path: Path) -> Path:
    """`pip wheel .` of a copy of the checkout (the build writes build/ and *.egg-info beside
    the sources), offline and with the installed setuptools."""
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
            ".ruff_cache", "runs",
        ),
    )  # fmt: skip
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(out), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (wheel,) = out.glob("prover-*.whl")
    return wheel


@pytest.mark.slow  # builds a wheel: about 5 s
def test_a_wheel_carries_every_suite_its_data_and_licences(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    repo_files = {
        f"benchmarks/{p.relative_to(PACKAGE)}"
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert repo_files <= names, sorted(repo_files - names)[:5]
    for must in (
        "benchmarks/__init__.py",
        "benchmarks/proofnet.yaml",
        "benchmarks/data/minif2f-lean4.24.jsonl",
        "benchmarks/data/LICENSE-minif2f-lean4-MIT",
        "benchmarks/data/LICENSE-deepseek-prover-MIT",
        "benchmarks/data/putnambench-lean4.27/LICENSE",
        "benchmarks/data/SHA256SUMS",
    ):
        assert must in names
    lean = [n for n in names if n.startswith("benchmarks/data/putnambench-lean4.27/")]
    assert len([n for n in lean if n.endswith(".lean")]) == 672
    print(f"wheel {wheel.name}: {wheel.stat().st_size} bytes")
