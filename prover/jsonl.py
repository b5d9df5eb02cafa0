"""Reading JSONL input files line by line, where no line can crash the reader.

`parse_json_text` turns every way a line can be bad into `BadLine` (one line of text):
invalid JSON, a number Python refuses (over 4300 digits), nesting deeper than `MAX_DEPTH`
(Python's parser raises RecursionError near 1000 levels; later code that walks the record,
`repr` or `json.dumps`, could too), and duplicate keys (RFC 8259 leaves their meaning to each
parser: one tool could see `"proof": "rfl"` where another sees the second `"proof"`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Far above any honest record (a few levels), far below Python's recursion limit.
MAX_DEPTH = 64


class BadLine(ValueError):
    """A line that is not an acceptable JSON value; the message is one line."""


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:  # iterative: a walk must not recurse on what it guards against
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_json_text(text: str | bytes) -> Any:
    """The JSON value of `text`; `BadLine` for anything not acceptable (see the module doc)."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise BadLine(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    except _DuplicateKey as exc:
        raise BadLine(f"duplicate key {ascii(str(exc)[:80])} in a JSON object") from None
    except RecursionError:
        raise BadLine(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:  # e.g. an integer over 4300 digits
        raise BadLine(f"invalid JSON ({' '.join(str(exc).split())[:200]})") from None
    if _deeper_than(value, MAX_DEPTH):
        raise BadLine(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def iter_json_lines(path: Path, error: type[Exception]) -> Iterator[tuple[int, Any]]:
    """(line number, JSON value or `BadLine`) for each non-blank line; `error(message)` only
    when the file itself cannot be read. Each line is decoded on its own, so one line that is
    not UTF-8 spoils only itself."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected a JSONL file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    # split on "\n" only: U+2028 and friends are legal inside JSON strings
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, BadLine(f"not UTF-8 text (byte {exc.start} of the line)")
            continue
        if not line.strip():
            continue
        try:
            yield number, parse_json_text(line)
        except BadLine as bad:
            yield number, bad


def read_jsonl(path: Path, error: type[Exception]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; `error("PATH:LINE: why")` at the first
    line that is not a JSON object (for inputs where one bad line spoils the whole file)."""
    from prover.lean.input_check import json_type

    for number, value in iter_json_lines(path, error):
        if isinstance(value, BadLine):
            raise error(f"{path}:{number}: {value}")
        if not isinstance(value, dict):
            raise error(f"{path}:{number}: expected a JSON object, got {json_type(value)}")
        yield number, value
