"""Reading check items from JSONL and writing verdicts so a re-run skips finished ones."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from prover.errors import UsageError
from prover.jsonl import read_jsonl
from prover.lean.verdict import CheckItem, Verdict

REQUIRED = ("name", "header", "formal_statement", "proof")


def content_key(record: dict[str, Any]) -> str:
    """A hash of what is checked: the same proof of the same statement under the same header."""
    digest = hashlib.sha256(
        json.dumps([record[f] for f in REQUIRED], ensure_ascii=False).encode()
    ).hexdigest()
    return digest[:24]


def read_items(path: Path) -> list[tuple[str, CheckItem]]:
    """All records of a JSONL file as (key, item); a bad line is a UsageError naming it.

    A record's key (its identity across runs, for resuming) is its `id` / `custom_id`, which
    must then be unique; else a hash of what it checks plus its occurrence number, so k equal
    samples of one problem stay k records (pass@k counts each)."""
    items: list[tuple[str, CheckItem]] = []
    seen_ids: dict[str, int] = {}
    occurrences: dict[str, int] = {}
    for number, record in read_jsonl(path, UsageError):
        missing = [f for f in REQUIRED if not isinstance(record.get(f), str)]
        if missing:
            raise UsageError(
                f"{path}:{number}: missing or non-string field(s) {', '.join(missing)}"
            )
        explicit = next(
            (str(record[f]) for f in ("id", "custom_id") if record.get(f) is not None), None
        )
        if explicit is not None:
            if explicit in seen_ids:
                raise UsageError(
                    f"{path}:{number}: id {explicit!r} already used on line {seen_ids[explicit]}"
                )
            seen_ids[explicit] = number
            key = explicit
        else:
            content = content_key(record)
            occurrences[content] = occurrences.get(content, 0) + 1
            key = f"{content}-{occurrences[content]}"
        extra = {k: v for k, v in record.items() if k not in REQUIRED}
        items.append((key, CheckItem(*(record[f] for f in REQUIRED), extra=extra)))
    return items


def finished_keys(path: Path) -> set[str]:
    """Keys of verdicts already in `path`; a torn last line (a crash mid-write) is ignored."""
    if not path.exists():
        return set()
    if not path.is_file():
        raise UsageError(f"{path}: cannot write verdicts (not a file)")
    keys: set[str] = set()
    with path.open("rb") as f:
        for raw in f:
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(record, dict) and "id" in record and "reason" in record:
                keys.add(str(record["id"]))
    return keys


class VerdictWriter:
    """Appends one verdict per line and makes it durable before the next one is written."""

    def __init__(self, stream: IO[str], *, durable: bool) -> None:
        self._stream = stream
        self._durable = durable

    @classmethod
    def open(cls, path: Path) -> VerdictWriter:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A crash mid-line leaves a torn tail: start on a fresh line, so it stays one
            # unreadable line that resuming skips.
            if path.exists() and path.stat().st_size:
                with path.open("rb") as f:
                    f.seek(-1, os.SEEK_END)
                    torn = f.read(1) != b"\n"
                if torn:
                    with path.open("a") as f:
                        f.write("\n")
            return cls(path.open("a", encoding="utf-8"), durable=True)
        except OSError as exc:
            raise UsageError(f"{path}: cannot write verdicts ({exc.strerror})") from None

    def write(self, key: str, verdict: Verdict) -> None:
        record = {"id": key, **verdict.to_json()}
        self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._stream.flush()
        if self._durable:
            os.fsync(self._stream.fileno())

    def close(self) -> None:
        self._stream.close()


def iter_pending(
    items: list[tuple[str, CheckItem]], done: set[str]
) -> Iterator[tuple[str, CheckItem]]:
    """The records whose verdict is not in `done` yet (keys are unique within a file)."""
    return ((key, item) for key, item in items if key not in done)
