"""A run's durable record: RUN_DIR/run.json (what the run is) and RUN_DIR/samples.jsonl.

samples.jsonl is append-only. A `sample` line holds one generated completion; a `verdict` line
holds what the verifier said about it. Both are fsync'd in groups: a background thread syncs
whatever was written in the last quarter second, so a finished sample is on disk within a
second of being stored, without one fsync per line. A kill or a full disk can leave a torn last
line; it is cut off on reopening (and said so), and only that sample (in flight) is redone.
A write that fails (a full disk, an I/O error) stops the run with `StoreWriteError`: one line
naming the file and the OS error; everything written before stays.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from prover.errors import UsageError

SAMPLES = "samples.jsonl"
MANIFEST = "run.json"
SYNC_INTERVAL_S = 0.25


class StoreError(ValueError):
    """A run directory that cannot be used as asked; the message is one line."""


class StoreWriteError(UsageError):
    """Writing a run's file failed (ENOSPC, EIO, ...): one line naming the file and the OS
    error. What was written before it stays; `--resume` continues from there."""


def write_failed(path: Path, exc: OSError) -> StoreWriteError:
    why = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    return StoreWriteError(f"{path}: cannot write ({why})")


@dataclass
class Sample:
    problem: str
    index: int
    completion: str
    tokens: int = 0
    finish: str | None = None
    # filled once verified
    accepted: bool | None = None
    reason: str | None = None
    detail: str = ""
    text_hash: str | None = None
    source: str | None = None  # "verifier" | "cache" | "duplicate" | "search"
    verify_s: float = 0.0
    # a search's own figures (expansions, why it stopped, ...); None for a sampled completion
    search: dict[str, Any] | None = None

    @property
    def verified(self) -> bool:
        return self.accepted is not None


@dataclass
class StoredRun:
    manifest: dict[str, Any]
    samples: dict[tuple[str, int], Sample] = field(default_factory=dict)
    bytes: int = 0
    repaired: str = ""  # one line when reopening cut a torn last line off samples.jsonl


class RunStore:
    """Single writer (the eval loop's thread); a daemon thread does the grouped fsyncs."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / SAMPLES
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._dirty = threading.Event()
        self._closed = threading.Event()
        self._syncer: threading.Thread | None = None
        self._sync_error: OSError | None = None  # an fsync that failed: data may be lost

    # --- opening -------------------------------------------------------------------------

    def check_create(self) -> None:
        """`create`'s refusal, with nothing written: a run can be refused before it starts."""
        if self.path.exists() and self.path.stat().st_size > 0:
            raise StoreError(
                f"{self.run_dir} already holds a run: pass --resume to continue it, "
                "or choose another --out"
            )

    def create(self, manifest: dict[str, Any]) -> StoredRun:
        """A new run: refuse a directory that already holds samples of another run."""
        self.check_create()
        self._lock()
        try:
            _write_atomic(self.run_dir / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
        except OSError as exc:
            raise write_failed(self.run_dir / MANIFEST, exc) from None
        self._open()
        return StoredRun(manifest)

    def _lock(self) -> None:
        """One process per run directory: a second writer would interleave its samples."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.run_dir / ".lock", os.O_WRONLY | os.O_CREAT, 0o644)
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise StoreError(f"{self.run_dir}: cannot use as a run directory ({why})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"{self.run_dir} is in use by another prover eval") from None
        self._lock_fd = fd

    def resume(self, manifest: dict[str, Any], *, keys: Iterable[str]) -> StoredRun:
        """Reopen a run; `keys` name the manifest entries that must match (what defines the
        samples: suite, model, sampling, ...), so a resumed run never mixes two experiments."""
        keys = tuple(keys)
        self.check_resume(manifest, keys=keys)  # before the lock, which creates the folder
        self._lock()
        try:
            stored = self.check_resume(manifest, keys=keys)  # again, now that it is ours
            run = self._load(stored)
            self._open()
        except BaseException:
            self.close()  # a refused resume leaves the directory free
            raise
        return run

    def check_resume(self, manifest: dict[str, Any], *, keys: Iterable[str]) -> dict[str, Any]:
        """`resume`'s refusals, with nothing written; the stored manifest."""
        if not (self.run_dir / MANIFEST).exists():
            raise StoreError(f"{self.run_dir}: nothing to resume (no {MANIFEST})")
        stored = read_manifest(self.run_dir)
        differ = [k for k in keys if stored.get(k) != manifest.get(k)]
        if differ:
            k = differ[0]
            raise StoreError(
                f"{self.run_dir} was run with "
                f"{difference(k, stored.get(k), manifest.get(k))}: "
                "resume with the same settings or choose another --out"
            )
        return stored

    def _load(self, manifest: dict[str, Any]) -> StoredRun:
        run = StoredRun(manifest)
        if not self.path.exists():
            return run
        data = self.path.read_bytes()
        # a torn tail: a partial last line, or the zeros a power loss can leave after it
        end = data.rstrip(b"\0").rfind(b"\n") + 1
        if end < len(data):  # a torn last line from a kill or a full disk: in flight
            try:
                with open(self.path, "r+b") as f:
                    f.truncate(end)
            except OSError as exc:
                raise write_failed(self.path, exc) from None
            run.repaired = (
                f"{self.path}: cut a torn last line ({len(data) - end} bytes, from an "
                "interrupted write); that sample is done again"
            )
        run.bytes = end
        for number, line in enumerate(data[:end].splitlines(), 1):
            try:
                record = json.loads(line)
                _apply(run.samples, record)
            except (ValueError, KeyError, TypeError):
                raise StoreError(f"{self.path}:{number}: not a sample record") from None
        return run

    def _open(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot write ({exc.strerror})") from None
        self._syncer = threading.Thread(target=self._sync_loop, name="store-sync", daemon=True)
        self._syncer.start()

    # --- writing -------------------------------------------------------------------------

    def add_samples(self, samples: Iterable[Sample]) -> int:
        return self._append([_sample_line(s) for s in samples])

    def add_verdicts(self, samples: Iterable[Sample]) -> int:
        return self._append([_verdict_line(s) for s in samples])

    def add_decided(self, samples: Iterable[Sample]) -> int:
        """Samples that come with their verdict (a search's): both lines in one write, so a
        kill leaves the pair whole, or a verdict-less sample that resume does again."""
        samples = list(samples)
        return self._append(
            [_sample_line(s) for s in samples] + [_verdict_line(s) for s in samples]
        )

    def _append(self, records: list[dict[str, Any]]) -> int:
        if not records:
            return 0
        assert self._fd is not None, "store not opened"
        if self._sync_error is not None:
            raise write_failed(self.path, self._sync_error)
        data = "".join(_line(r) for r in records).encode()
        view = memoryview(data)
        try:
            while view:  # one write() per group: a kill leaves whole lines, or a torn last one
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:  # a full disk: what is on it stays, a torn tail is cut later
            raise write_failed(self.path, exc) from None
        self._dirty.set()
        return len(data)

    def _sync_loop(self) -> None:
        while not self._closed.wait(SYNC_INTERVAL_S):
            self.sync()

    def sync(self) -> None:
        if self._dirty.is_set() and self._fd is not None:
            self._dirty.clear()
            try:
                os.fsync(self._fd)
            except OSError as exc:
                if exc.errno != errno.EBADF:  # EBADF: closed under us at shutdown
                    self._sync_error = exc  # EIO, ENOSPC: reported by the next write or close

    def close(self) -> None:
        if self._fd is None:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            return
        self._closed.set()
        if self._syncer is not None:
            self._syncer.join()
        self.sync()
        os.close(self._fd)
        self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None
        if self._sync_error is not None:
            error, self._sync_error = self._sync_error, None
            raise write_failed(self.path, error)

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sample_line(s: Sample) -> dict[str, Any]:
    line: dict[str, Any] = {
        "type": "sample",
        "problem": s.problem,
        "index": s.index,
        "completion": s.completion,
        "tokens": s.tokens,
        "finish": s.finish,
    }
    if s.search is not None:
        line["search"] = s.search
    return line


def _verdict_line(s: Sample) -> dict[str, Any]:
    line: dict[str, Any] = {
        "type": "verdict",
        "problem": s.problem,
        "index": s.index,
        "accepted": s.accepted,
        "reason": s.reason,
        "hash": s.text_hash,
        "source": s.source,
        "verify_s": round(s.verify_s, 4),
    }
    if s.detail:
        line["detail"] = s.detail[:500]
    return line


def _apply(samples: dict[tuple[str, int], Sample], record: dict[str, Any]) -> None:
    key = (str(record["problem"]), int(record["index"]))
    if record["type"] == "sample":
        samples[key] = Sample(
            key[0], key[1], str(record["completion"]), int(record.get("tokens") or 0),
            record.get("finish"),
        )  # fmt: skip
        search = record.get("search")
        if search is not None:
            samples[key].search = dict(search)
    elif record["type"] == "verdict":
        sample = samples[key]  # a verdict always follows its sample
        sample.accepted = bool(record["accepted"])
        sample.reason = record.get("reason")
        sample.detail = record.get("detail", "")
        sample.text_hash = record.get("hash")
        sample.source = record.get("source")
        sample.verify_s = float(record.get("verify_s") or 0.0)
    else:
        raise ValueError(record["type"])


def _line(record: dict[str, Any]) -> str:
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode()
    except UnicodeEncodeError:  # a lone surrogate from a model: escaped, read back the same
        line = json.dumps(record)
    return line + "\n"


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / MANIFEST
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable ({' '.join(str(exc).split())})") from None
    if not isinstance(stored, dict):
        raise StoreError(f"{path}: not a run manifest (expected a JSON object)")
    return stored


@contextlib.contextmanager
def atomic_file(path: Path, errors: str = "strict") -> Iterator[TextIO]:
    """A text file written whole or not at all: written, fsync'd, renamed over `path`, the
    folder fsync'd; on any error the temporary file goes and the old `path` stays as it was."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8", errors=errors) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _write_atomic(path: Path, text: str) -> None:
    with atomic_file(path) as f:
        f.write(text)


def write_json_atomic(path: Path, payload: Any) -> None:
    _write_atomic(path, json.dumps(payload, indent=1, ensure_ascii=False) + "\n")


def difference(key: str, stored: Any, now: Any) -> str:
    """How a setting differs, in one line: for lists (the problems) the entries only one side
    has, for mappings (sampling) the entries that differ; long values are never cut to two
    prefixes that look the same."""
    if isinstance(stored, list) and isinstance(now, list):
        gone = [x for x in stored if x not in now]
        new = [x for x in now if x not in stored]
        if not gone and not new:
            return f"the same {len(stored)} {key} in another order"
        parts = [f"only in the stored run: {_first(gone)}"] if gone else []
        if new:
            parts.append(f"only now: {_first(new)}")
        return f"{len(stored)} {key}, not {len(now)} ({'; '.join(parts)})"
    if isinstance(stored, dict) and isinstance(now, dict):
        keys = sorted({*stored, *now}, key=str)
        changed = [k for k in keys if stored.get(k) != now.get(k)]
        return ", ".join(
            f"{key}.{k}={_short(stored.get(k))}, not {_short(now.get(k))}" for k in changed
        )
    return f"{key}={_short(stored)}, not {_short(now)}"


def _first(names: list[Any], shown: int = 5) -> str:
    text = ", ".join(_short(x) for x in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."
