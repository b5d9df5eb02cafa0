"""Verify each distinct checked text once: verdicts keyed by the hash of everything the
verifier sees (checker identity, header, context, statement, proof).

The checker identity carries the Lean version (a proof accepted by one Lean is not evidence
for another) and the acceptance settings. `--cache DIR` keeps the verdicts in DIR/verdicts.sqlite
(SQLite in WAL mode: several runs may share a cache); without it a run still verifies each
distinct text once, from memory.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from prover.lean.verdict import CheckItem

CACHE_FILE = "verdicts.sqlite"
# Verdict reasons that say something about the proof, not about the checker's luck: a timeout
# or a crash may pass on a quieter machine, so those are never cached.
CACHEABLE = frozenset({"ok", "no_proof", "banned", "error", "sorry", "native", "axiom"})


def text_hash(checker: str, item: CheckItem) -> str:
    payload = json.dumps(
        [checker, item.header, item.context, item.formal_statement, item.proof],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class VerdictCache:
    """hash -> (accepted, reason, detail). `path=None`: in memory only."""

    def __init__(self, directory: Path | None = None) -> None:
        self._memory: dict[str, tuple[bool, str, str]] = {}
        self._db: sqlite3.Connection | None = None
        self._pending = 0  # rows written since the last commit
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(directory / CACHE_FILE, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS verdicts "
                "(hash TEXT PRIMARY KEY, accepted INTEGER, reason TEXT, detail TEXT)"
            )
            self._db.commit()

    def get(self, key: str) -> tuple[bool, str, str] | None:
        if key in self._memory:
            return self._memory[key]
        if self._db is None:
            return None
        row = self._db.execute(
            "SELECT accepted, reason, detail FROM verdicts WHERE hash = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        value = (bool(row[0]), str(row[1]), str(row[2]))
        self._memory[key] = value
        return value

    def put(self, key: str, accepted: bool, reason: str, detail: str = "") -> None:
        if reason not in CACHEABLE:
            return
        self._memory[key] = (accepted, reason, detail)
        if self._db is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?)",
                (key, int(accepted), reason, detail[:500]),
            )
            self._pending += 1
            if self._pending >= 256:
                self.commit()

    def commit(self) -> None:
        if self._db is not None:
            self._db.commit()
            self._pending = 0

    def close(self) -> None:
        if self._db is not None:
            self._db.commit()
            self._db.close()
            self._db = None
