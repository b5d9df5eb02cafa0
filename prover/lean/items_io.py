"""Reading check items from JSONL and writing verdicts so a re-run skips finished ones."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from prover.errors import UsageError
from prover.jsonl import BadLine, iter_json_lines, parse_json_text
from prover.lean.input_check import (
    clean_name,
    invalid_input_verdict,
    json_type,
    text_problem,
    unencodable_at,
)
from prover.lean.statement_shape import reference_refusal
from prover.lean.verdict import CheckItem, Verdict

REQUIRED = ("name", "header", "formal_statement", "proof")
ID_FIELDS = ("id", "custom_id")


@dataclass(frozen=True)
class InvalidRecord:
    """A line that cannot be checked; it still gets a verdict (`invalid_input`), so one bad
    record never stops the others and every non-blank input line has one verdict."""

    line: int
    name: str  # the record's `name` when it is usable text, else ""
    problem: str  # one line: why

    @property
    def detail(self) -> str:
        return f"line {self.line}: {self.problem}"

    def verdict(self) -> Verdict:
        return invalid_input_verdict(self.name, self.detail)


Entry = CheckItem | InvalidRecord


def content_key(record: dict[str, Any]) -> str:
    """A hash of what is checked: the same proof of the same statement under the same header."""
    payload = json.dumps([record[f] for f in REQUIRED], ensure_ascii=False)
    # surrogatepass: a key must exist for any str, even one that cannot be checked
    digest = hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:24]


def _explicit_id(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """(key, problem) from `id` / `custom_id`: a string, or an integer written in decimal (its
    canonical JSON form). Anything else (an object, a float, a boolean) is no key: the record
    is `invalid_input`, keyed by its line, never by a Python repr."""
    for field in ID_FIELDS:
        value = record.get(field)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value), None
        if not isinstance(value, str):
            return None, f"`{field}` is {json_type(value)}: an id is a string or an integer"
        problem = text_problem(field, value)
        if problem is not None:
            return None, problem
        return value, None
    return None, None


def _record_problem(value: Any) -> str | None:
    if isinstance(value, BadLine):
        return str(value)
    if not isinstance(value, dict):
        return f"expected a JSON object, got {json_type(value)}"
    missing = [f for f in REQUIRED if f not in value]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    for field in REQUIRED:
        problem = text_problem(field, value[field])
        if problem is not None:
            return problem
    return reference_refusal(value["formal_statement"])  # else the check itself would fail


def read_items(path: Path) -> list[tuple[str, Entry]]:
    """Every non-blank line of a JSONL file as (key, item), or (key, InvalidRecord) for a line
    that cannot be checked: not JSON, not UTF-8, not an object, nested too deep, duplicate
    keys, a required field missing or not a string, text with no UTF-8 form or a NUL, an id
    that is neither a string nor an integer. Decided per line so the others still run.

    A record's key (its identity across runs, for resuming) is its `id` / `custom_id`; else,
    for a checkable record, a hash of what it checks plus its occurrence number, so k equal
    samples of one problem stay k records (pass@k counts each); else `line N`. Keys must be
    unique within a file: a clash is a UsageError (a verdict could not be told apart), found
    before any work, so nothing already written is touched."""
    entries: list[tuple[str, Entry]] = []
    seen: dict[str, int] = {}
    occurrences: dict[str, int] = {}
    for number, value in iter_json_lines(path, UsageError):
        record = value if isinstance(value, dict) else {}
        explicit, id_problem = _explicit_id(record)
        problem = _record_problem(value) or id_problem
        entry: Entry
        if problem is None:
            entry = CheckItem(
                *(record[f] for f in REQUIRED),
                extra={k: v for k, v in record.items() if k not in REQUIRED},
            )
            if explicit is None:
                content = content_key(record)
                occurrences[content] = occurrences.get(content, 0) + 1
                explicit = f"{content}-{occurrences[content]}"
        else:
            entry = InvalidRecord(number, clean_name(record.get("name")), problem)
        key = explicit if explicit is not None else f"line {number}"
        if key in seen:
            shown = repr(key) if len(key) <= 80 else repr(key[:80]) + "..."
            raise UsageError(f"{path}:{number}: id {shown} already used on line {seen[key]}")
        seen[key] = number
        entries.append((key, entry))
    return entries


def finished_keys(path: Path) -> set[str]:
    """Keys of verdicts already in `path`; a torn last line (a crash mid-write) is ignored.
    A device or a pipe (`/dev/stdout`) holds nothing to resume from: never read."""
    if not path.exists():
        return set()
    if path.is_dir():
        raise UsageError(f"{path}: cannot write verdicts (a directory)")
    if not path.is_file():
        return set()
    keys: set[str] = set()
    with path.open("rb") as f:
        for raw in f:
            try:
                record = parse_json_text(raw)
            except BadLine:
                continue
            key = record.get("id") if isinstance(record, dict) else None
            if isinstance(key, str) and "reason" in record:
                keys.add(key)
    return keys


def repair_torn_tail(path: Path) -> str | None:
    """Make `path` end on a whole line before verdicts are appended to it. A last line with no
    newline is what a kill or a full disk leaves mid-write: a whole verdict keeps its line (the
    newline is added); a torn one (or the zeros of a power loss) is cut off, and its record is
    checked again. Returns one line saying what was cut, or None."""
    try:
        with path.open("r+b") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return None
            f.seek(max(0, size - _TAIL_WINDOW))
            window = f.read()
            if window.endswith(b"\n"):
                return None
            cut = window.rfind(b"\n")
            if cut < 0 and size > len(window):  # a last line longer than the window
                f.seek(0)
                window = f.read()
                cut = window.rfind(b"\n")
            start = size - len(window) + cut + 1
            try:
                record = parse_json_text(window[cut + 1 :])
            except BadLine:
                record = None
            if isinstance(record, dict) and "reason" in record:
                f.write(b"\n")
                return None
            f.truncate(start)
    except OSError as exc:
        raise UsageError(f"{path}: cannot repair its last line ({exc.strerror})") from None
    return (
        f"prover check: {path}: cut a torn last line ({size - start} bytes, from an interrupted "
        "write); its record is checked again"
    )


_TAIL_WINDOW = 1 << 20


class VerdictWriter:
    """Appends one verdict per line and makes it durable before the next one is written. A
    failed write (a full disk, an I/O error) is a UsageError naming the file and the OS error;
    the lines written before it stay, and a re-run cuts a torn last one."""

    def __init__(self, stream: IO[str], *, durable: bool, name: str = "stdout") -> None:
        self._stream = stream
        self._durable = durable
        self._name = name
        self._failed = False
        self.repaired: str | None = None  # what `open` cut off the end of the file

    @classmethod
    def open(cls, path: Path) -> VerdictWriter:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            repaired = repair_torn_tail(path) if path.is_file() else None
            writer = cls(path.open("a", encoding="utf-8"), durable=True, name=str(path))
        except OSError as exc:
            raise UsageError(f"{path}: cannot write verdicts ({exc.strerror})") from None
        writer.repaired = repaired
        return writer

    def write(self, key: str, verdict: Verdict) -> None:
        record = {"id": key, **verdict.to_json()}
        line = json.dumps(record, ensure_ascii=False)
        if unencodable_at(line) is not None:
            # text from elsewhere (a remote server's messages) with a lone surrogate: \u
            # escapes keep the line valid JSON instead of failing halfway through a write
            line = json.dumps(record, ensure_ascii=True)
        try:
            self._stream.write(line + "\n")
            self._stream.flush()
            if self._durable:
                os.fsync(self._stream.fileno())
        except OSError as exc:
            self._failed = True
            raise self._error(exc) from None

    def _error(self, exc: OSError) -> UsageError:
        why = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
        return UsageError(f"{self._name}: cannot write verdicts ({why})")

    def close(self) -> None:
        try:
            self._stream.close()
        except OSError as exc:
            if not self._failed:  # else already reported; the unwritten rest is dropped
                raise self._error(exc) from None


def iter_pending(items: list[tuple[str, Entry]], done: set[str]) -> Iterator[tuple[str, Entry]]:
    """The records whose verdict is not in `done` yet (keys are unique within a file)."""
    return ((key, item) for key, item in items if key not in done)
