"""Fixtures: the recorded Lean output in `tests/data/`, the FakeRepl test double and a
session-wide model cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from prover.lean.sandbox import ReplCommand, SandboxConfig, transport_factory
from prover.lean.transport import Transport

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = Path(__file__).resolve().parent / "data"
FAKE_REPL = Path(__file__).resolve().parent / "doubles" / "fake_repl.py"


@pytest.fixture(scope="session", autouse=True)
def prover_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """PROVER_CACHE for the session (and the `prover` processes tests start): GGUF conversions
    go there, never to the user's ~/.cache, and the first test that loads SmolLM2 converts it
    for all the others (a cached load takes seconds, a conversion most of a minute)."""
    folder = tmp_path_factory.mktemp("prover-cache")
    before = os.environ.get("PROVER_CACHE")
    os.environ["PROVER_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("PROVER_CACHE", None)
    else:
        os.environ["PROVER_CACHE"] = before


def data_path(relative: str) -> Path:
    """A file or folder of `tests/data/` (recorded REPL transcripts, Kimina recordings). The
    data is in the repository: a missing path is a broken checkout, so the test fails."""
    path = TEST_DATA / relative
    assert path.exists(), f"test data {relative} missing from {TEST_DATA}"
    return path


@pytest.fixture
def fake_repl_script(tmp_path: Path) -> Callable[..., ReplCommand]:
    """Write a FakeRepl rules file and return the command that starts it."""

    def make(rules: list[dict] | None = None, **config: object) -> ReplCommand:
        path = tmp_path / f"rules-{len(list(tmp_path.glob('rules-*')))}.json"
        path.write_text(json.dumps({"rules": rules or [], **config}))
        return ReplCommand((sys.executable, str(FAKE_REPL), "script", str(path)))

    return make


def plain_factory(command: ReplCommand, memory_mb: int = 4096) -> Callable[[], Transport]:
    """Start the double as a plain subprocess (sandbox `none`)."""
    return transport_factory("none", command, SandboxConfig("none", memory_mb))


def run_prover(
    *args: str, env: dict | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`prover ARGS...` as a user runs it: a real process, its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "prover", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def python_ro_paths() -> list[str]:
    """What a Python test double needs mounted inside bubblewrap."""
    return sorted({sys.prefix, sys.base_prefix, str(FAKE_REPL.parent), str(ROOT)})
