"""What a suite definition may say about its data rows, applied before any row is read as a
problem: an explicit exclusion list with its reason, and what to do with duplicate names.

No rule ever edits a statement. An excluded row is left out by name, and every name on the
list must match exactly one row (a stale list is an error, not a silent no-op). Duplicate
names, under `duplicate_names: rename`: a row identical to an earlier one is dropped; rows
that differ keep their statements and are told apart by a stable name,
`NAME@` + the first 8 hex digits of the SHA-256 of their header and statement, so the same
problem keeps its name whatever the file order or the split asked for. Rows whose header and
statement are the same but that differ elsewhere (split, informal text) are left clashing, and
the loader refuses them: no rule can say which one is the benchmark's.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

DUPLICATE_POLICIES = ("refuse", "rename")
UPSTREAM_NAME = "upstream_name"  # the row's own name, kept in `extra` when it is renamed

Row = tuple[str, dict[str, Any]]  # (PATH:LINE, the JSON object)


@dataclass(frozen=True)
class Exclusion:
    names: frozenset[str]
    reason: str


def parse_exclusion(value: Any, where: str, error: Callable[[str], Exception]) -> Exclusion:
    """`exclude: {reason: TEXT, names: [NAME, ...]}`; absent -> nothing excluded."""
    if value is None:
        return Exclusion(frozenset(), "")
    if not isinstance(value, dict) or set(value) != {"reason", "names"}:
        raise error(f"{where}: `exclude` needs exactly `reason` and `names`")
    names, reason = value["names"], value["reason"]
    if not isinstance(reason, str) or not reason.strip():
        raise error(f"{where}: `exclude.reason` must say why")
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise error(f"{where}: `exclude.names` must be a list of problem names")
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    if repeated:
        raise error(f"{where}: `exclude.names` lists {', '.join(repeated)} more than once")
    return Exclusion(frozenset(names), " ".join(reason.split()))


def parse_duplicate_policy(value: Any, where: str, error: Callable[[str], Exception]) -> str:
    policy = "refuse" if value is None else value
    if policy not in DUPLICATE_POLICIES:
        raise error(
            f"{where}: `duplicate_names` is {policy!r}; one of {', '.join(DUPLICATE_POLICIES)}"
        )
    return str(policy)


def drop_excluded(
    rows: Sequence[Row], exclusion: Exclusion, source: str, error: Callable[[str], Exception]
) -> list[Row]:
    """`rows` without the excluded ones; each excluded name must match exactly one row."""
    if not exclusion.names:
        return list(rows)
    matched = Counter(r.get("name") for _, r in rows if r.get("name") in exclusion.names)
    unmatched = sorted(n for n in exclusion.names if matched[n] == 0)
    if unmatched:
        raise error(f"{source}: excluded problem(s) {', '.join(unmatched)} not in the data")
    ambiguous = sorted(n for n, count in matched.items() if count > 1)
    if ambiguous:
        raise error(f"{source}: excluded name(s) {', '.join(ambiguous)} match several rows")
    return [(where, r) for where, r in rows if r.get("name") not in exclusion.names]


def statement_tag(header: str, formal_statement: str) -> str:
    digest = hashlib.sha256(f"{header}\0{formal_statement}".encode()).hexdigest()
    return digest[:8]


def rename_duplicates(rows: Sequence[Row]) -> list[Row]:
    """Identical rows dropped (the first kept); rows sharing a name but not a statement
    renamed `NAME@TAG` (see the module doc). Rows without string fields are left as they
    are: the loader refuses them with its own message."""
    seen: set[str] = set()
    distinct: list[Row] = []
    for where, row in rows:
        identity = json.dumps(row, sort_keys=True, ensure_ascii=False)
        if identity not in seen:  # the same record again is one problem, counted once
            seen.add(identity)
            distinct.append((where, row))
    counts = Counter(r.get("name") for _, r in distinct)
    out: list[Row] = []
    for where, row in distinct:
        name, header, statement = row.get("name"), row.get("header"), row.get("formal_statement")
        if not isinstance(name, str) or counts[name] < 2:
            out.append((where, row))
        elif isinstance(header, str) and isinstance(statement, str):
            tag = statement_tag(header, statement)
            out.append((where, {**row, "name": f"{name}@{tag}", UPSTREAM_NAME: name}))
        else:
            out.append((where, row))
    return out
