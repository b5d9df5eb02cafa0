"""Reading check items from JSONL and writing verdicts so a re-run skips finished ones."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from prover.errors import UsageError
from prover.lean.verdict import CheckItem, Verdict

REQUIRED = ("name", "header", "formal_statement", "proof")


def item_key(record: dict[str, Any]) -> str:
    """A record's identity across runs: its `id` / `custom_id`, else a hash of what is checked
    (the same proof of the same statement is one check, whichever line holds it)."""
    for field in ("id", "custom_id"):
        if record.get(field) is not None:
            return str(record[field])
    digest = hashlib.sha256(
        json.dumps([record[f] for f in REQUIRED], ensure_ascii=False).encode()
    ).hexdigest()
    return digest[:24]


def read_items(path: Path) -> list[tuple[str, CheckItem]]:
    """All records of a JSONL file as (key, item); a bad line is a UsageError naming it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    items: list[tuple[str, CheckItem]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise UsageError(f"{path}:{number}: expected a JSON object")
        missing = [f for f in REQUIRED if not isinstance(record.get(f), str)]
        if missing:
            raise UsageError(
                f"{path}:{number}: missing or non-string field(s) {', '.join(missing)}"
            )
        extra = {k: v for k, v in record.items() if k not in REQUIRED}
        item = CheckItem(*(record[f] for f in REQUIRED), extra=extra)
        items.append((item_key(record), item))
    return items


def finished_keys(path: Path) -> set[str]:
    """Keys of verdicts already in `path`; a torn last line (a crash mid-write) is ignored."""
    if not path.exists():
        return set()
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
        path.parent.mkdir(parents=True, exist_ok=True)
        # A crash mid-line leaves a torn tail: start on a fresh line so it stays one bad line.
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            with path.open("a") as f:
                f.write("\n")
        return cls(path.open("a", encoding="utf-8"), durable=True)

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
    seen: set[str] = set()
    for key, item in items:
        if key in done or key in seen:
            continue
        seen.add(key)
        yield key, item
