"""Verify each distinct checked text once: verdicts keyed by the hash of everything the
verifier sees (checker identity, header, context, statement, proof).

The checker identity carries the Lean version (a proof accepted by one Lean is not evidence
for another) and the acceptance settings. `--cache DIR` keeps the verdicts in DIR/verdicts.sqlite
(SQLite in WAL mode: several runs may share a cache); without it a run still verifies each
distinct text once, from memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from pathlib import Path

from prover.lean.verdict import CheckItem

CACHE_FILE = "verdicts.sqlite"
# Verdict reasons that say something about the proof, not about the checker's luck: a timeout
# or a crash may pass on a quieter machine, so those are never cached.
CACHEABLE = frozenset(
    {"ok", "no_proof", "banned", "error", "sorry", "native", "axiom", "invalid_input"}
)


def text_hash(checker: str, item: CheckItem) -> str:
    payload = json.dumps(
        [checker, item.header, item.context, item.formal_statement, item.proof],
        ensure_ascii=False,
    )
    # surrogatepass: a model's text may hold a lone surrogate; hashing it must not crash
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


class CacheError(ValueError):
    """A cache directory that cannot be used; the message is one line."""


class VerdictCache:
    """hash -> (accepted, reason, detail). `directory=None`: in memory only.

    Writes are committed at least every COMMIT_S seconds, in short transactions, so runs that
    share the cache never wait long on each other; a cache that fails mid-run (disk full, a
    locked database) is dropped with a warning, never the run."""

    COMMIT_S = 0.5

    def __init__(self, directory: Path | None = None) -> None:
        self._memory: dict[str, tuple[bool, str, str]] = {}
        self._db: sqlite3.Connection | None = None
        self._last_commit = time.monotonic()
        self.warning: str | None = None  # set when the persistent cache was dropped
        if directory is None:
            return
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(directory / CACHE_FILE, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS verdicts "
                "(hash TEXT PRIMARY KEY, accepted INTEGER, reason TEXT, detail TEXT)"
            )
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"--cache {directory}: cannot use it ({_one_line(exc)})") from None

    def get(self, key: str) -> tuple[bool, str, str] | None:
        if key in self._memory:
            return self._memory[key]
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT accepted, reason, detail FROM verdicts WHERE hash = ?", (key,)
            ).fetchone()
        except sqlite3.Error as exc:
            self._drop(exc)
            return None
        if row is None:
            return None
        value = (bool(row[0]), str(row[1]), str(row[2]))
        self._memory[key] = value
        return value

    def put(self, key: str, accepted: bool, reason: str, detail: str = "") -> None:
        if reason not in CACHEABLE:
            return
        self._memory[key] = (accepted, reason, detail)
        if self._db is None:
            return
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?)",
                (key, int(accepted), reason, detail[:500]),
            )
            if time.monotonic() - self._last_commit >= self.COMMIT_S:
                self.commit()
        except sqlite3.Error as exc:
            self._drop(exc)

    def commit(self) -> None:
        if self._db is None:
            return
        try:
            self._db.commit()
        except sqlite3.Error as exc:
            self._drop(exc)
        self._last_commit = time.monotonic()

    def _drop(self, exc: Exception) -> None:
        self.warning = f"verdict cache dropped ({_one_line(exc)}); this run goes on without it"
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def close(self) -> None:
        self.commit()
        if self._db is not None:
            self._db.close()
            self._db = None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
