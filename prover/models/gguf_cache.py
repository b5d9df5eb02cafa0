"""A cache of GGUF models as transformers loads them: dequantized once, then read back fast.

transformers reads a GGUF file by converting its tokenizer and dequantizing every tensor, which
for SmolLM2-135M takes most of a minute on 2 cores and would happen on every command. The
result (weights in the loaded dtype, as safetensors, and the tokenizer) is saved once under
`cache_root()` and loaded from there the next time. An entry is keyed by the GGUF file (real
path, size, mtime) and everything that changes the conversion (transformers' version, the
dtype); it is written to a temporary folder and renamed into place, so a reader sees a whole
entry or none."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

# Bumped when what an entry holds changes: old entries are then never read.
FORMAT = 1
MARKER = "prover-gguf-cache.json"
# A temporary folder this old was left by a killed writer (a save takes seconds).
STALE_TMP_S = 3600.0


def cache_root() -> Path:
    """$PROVER_CACHE/models, else $XDG_CACHE_HOME/prover/models (default ~/.cache)."""
    base = os.environ.get("PROVER_CACHE")
    if base:
        return Path(base).expanduser() / "models"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "prover" / "models"


@dataclass(frozen=True)
class EntryKey:
    """What a cached conversion depends on; equal keys, interchangeable entries."""

    gguf: str  # the GGUF file's real path
    size: int
    mtime_ns: int
    transformers: str
    dtype: str
    format: int = FORMAT

    @classmethod
    def of(cls, gguf_file: Path, dtype: str) -> EntryKey:
        import transformers

        real = gguf_file.resolve()
        stat = real.stat()
        return cls(str(real), stat.st_size, stat.st_mtime_ns, transformers.__version__, dtype)

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def folder(self, root: Path) -> Path:
        return root / f"{Path(self.gguf).stem}-{self.digest()}"

    def same_source(self, other: EntryKey) -> bool:
        """The same file at the same dtype: `other` is an outdated version of this entry."""
        return (self.gguf, self.dtype) == (other.gguf, other.dtype)


def lookup(key: EntryKey, root: Path | None = None) -> Path | None:
    """The complete entry for `key`, or None."""
    folder = key.folder(root or cache_root())
    return folder if _read_key(folder) == key else None


def store(key: EntryKey, save: Callable[[Path], None], root: Path | None = None) -> Path:
    """Write an entry with `save(folder)` and move it into place at once; returns its folder.
    Another process storing the same entry first is fine (its entry is kept). Outdated entries
    of the same file and dtype are removed. Raises OSError (and whatever `save` raises), leaving
    no partial entry behind."""
    root = root or cache_root()
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(root)
    final = key.folder(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        save(tmp)
        (tmp / MARKER).write_text(json.dumps(asdict(key), sort_keys=True))
        try:
            os.rename(tmp, final)  # atomic on one filesystem; fails if `final` exists
        except OSError:
            if _read_key(final) != key:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _remove_outdated(root, key, keep=final)
    return final


def discard(folder: Path) -> None:
    """Remove an entry that failed to load (a torn write survived a crash, a disk error)."""
    shutil.rmtree(folder, ignore_errors=True)


def _read_key(folder: Path) -> EntryKey | None:
    try:
        return EntryKey(**json.loads((folder / MARKER).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _remove_outdated(root: Path, key: EntryKey, keep: Path) -> None:
    for folder in root.iterdir():
        if folder == keep or folder.name.startswith("."):
            continue
        old = _read_key(folder)
        if old is not None and old != key and old.same_source(key):
            shutil.rmtree(folder, ignore_errors=True)


def _remove_stale_tmp(root: Path) -> None:
    now = time.time()
    for folder in root.glob(".*"):
        try:
            if folder.is_dir() and now - folder.stat().st_mtime > STALE_TMP_S:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass
