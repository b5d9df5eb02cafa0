"""The benchmark suites that ship with `prover`: one YAML definition per suite, beside this
file, and the data they read in `data/` (JSONL files and a folder of `.lean` files, each with
its licence; `data/README.md` says where each came from).

Read through `importlib.resources`, so an installed package (a wheel, the Docker image) finds
them as a checkout does.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["data_dir", "data_file", "suite_definitions"]

DATA = "data"


def _package_dir() -> Path:
    # A regular install unpacks package data on disk; a zipped import would need
    # `resources.as_file` per file, which a folder suite (PutnamBench's 672 files) cannot use.
    root = resources.files(__name__)
    path = Path(str(root))
    if not path.is_dir():
        raise RuntimeError(f"benchmarks package data is not on disk ({root}); install unzipped")
    return path


def suite_definitions() -> dict[str, Path]:
    """Suite name (the file's stem) -> its YAML definition, sorted by name."""
    return {p.stem: p for p in sorted(_package_dir().glob("*.yaml"))}


def data_dir() -> Path:
    """The folder of shipped suite data: the last place a suite's `data:` is looked for."""
    return _package_dir() / DATA


def data_file(name: str) -> Path | None:
    """A shipped data file or folder by its name in `data/`, or None if none ships."""
    path = data_dir() / name
    return path if path.exists() else None
