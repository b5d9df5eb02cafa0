"""(state, tactic) pairs from LeanDojo's traced-tactic format, for step-level fine-tuning.

The format is LeanDojo Benchmark 4's (`train.json`, `val.json`, `test.json`): a JSON list of
theorems, each `{url, commit, file_path, full_name, start, end, traced_tactics}`, and each traced
tactic `{tactic, annotated_tactic, state_before, state_after}`, where `annotated_tactic` is
`[text, provenances]`: the tactic with each premise marked `<a>...</a>` and, per mark, its
provenance `{full_name, def_path, def_pos, def_end_pos}`. Source: the exporter in
lean-dojo/LeanDojo `scripts/generate-benchmark-lean4.ipynb` (`export_proofs`) and
`TracedTactic.get_annotated_tactic`; the reading follows ReProver's `generator/datamodule.py` and
`common.py` (`format_state`, `format_tactic`, `remove_marks`). Only the data format is used here,
not the (deprecated) LeanDojo package.

Each pair is one tactic step: the goals before it (the prompt's state) and the tactic (the
completion). A step whose state is "no goals" teaches nothing and is skipped, as LeanDojo's own
exporter does. Bad input raises `TacticDataError`, one line naming the file and the record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NO_GOALS = "no goals"
MARK_START, MARK_END = "<a>", "</a>"
_MARK = re.compile(r"<a>(?P<ident>.+?)</a>")
# Lean 3's pretty printer heads a multi-goal state with "N goals"; ReProver drops it
_GOAL_COUNT = re.compile(r"^\d+ goals")
_SPACES = re.compile(r"\s+")


class TacticDataError(ValueError):
    """Traced-tactic data that cannot be read; the message is one line, naming the file and the
    record (theorem index and name, tactic index)."""


@dataclass(frozen=True)
class TacticOptions:
    """How a traced tactic becomes training text (ReProver's `GeneratorDataset` options).

    annotated: the tactic from `annotated_tactic`, each marked premise written as its full name
        from the provenance (ReProver's `format_tactic`); else the tactic as written (`tactic`).
    keep_marks: keep the `<a>`/`</a>` premise marks (ReProver keeps them for retrieval);
        without them the text is plain Lean.
    normalize_whitespace: collapse each run of whitespace in the tactic into one space
        (ReProver's `normalize_tactics`, on in its configs). Off by default here: Lean 4 tactics
        are layout-sensitive (a multi-line `induction ... with` or `calc` stops parsing).
    """

    annotated: bool = False
    keep_marks: bool = False
    normalize_whitespace: bool = False


@dataclass(frozen=True)
class TacticPair:
    """One traced step: the state a tactic was run on, the tactic, and where it comes from."""

    state: str
    tactic: str
    state_after: str
    full_name: str
    file_path: str
    index: int  # the tactic's place in its theorem's traced_tactics
    # the tactics traced before it in its theorem, in order: the path to it for a linear proof
    # (InternLM2.5-StepProver's prompt shows it); nested tactics make it an approximation
    previous: tuple[str, ...] = ()


@dataclass(frozen=True)
class TacticData:
    pairs: list[TacticPair]
    theorems: int  # records read
    skipped_no_goals: int  # steps whose state_before was "no goals"


def read_traced_tactics(
    path: str | Path, options: TacticOptions = TacticOptions(), *, limit: int | None = None
) -> TacticData:
    """The (state, tactic) pairs of a LeanDojo JSON file, in file order (the first `limit`)."""
    path = Path(path)
    records = _load(path)
    pairs: list[TacticPair] = []
    skipped = 0
    for i, record in enumerate(records):
        for pair in _pairs(path, i, record, options):
            if pair is None:
                skipped += 1
                continue
            if limit is not None and len(pairs) >= limit:
                return TacticData(pairs, i + 1, skipped)
            pairs.append(pair)
    if not pairs:
        raise TacticDataError(
            f"{path}: no (state, tactic) pairs in {len(records)} theorems "
            f"({skipped} steps on 'no goals' skipped)"
        )
    return TacticData(pairs, len(records), skipped)


def _load(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TacticDataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TacticDataError(f"{path}: a folder; give one split's file, e.g. "
                              f"{path / 'train.json'}") from None  # fmt: skip
    except (OSError, UnicodeDecodeError) as exc:
        raise TacticDataError(f"{path}: cannot read it ({_one_line(exc)})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TacticDataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno} column "
                              f"{exc.colno})") from None  # fmt: skip
    if not isinstance(data, list):
        raise TacticDataError(f"{path}: expected a JSON list of theorems (LeanDojo's format), "
                              f"got {_kind(data)}")  # fmt: skip
    return data


def _pairs(path: Path, i: int, record: Any, options: TacticOptions) -> Iterator[TacticPair | None]:
    """The record's pairs; None for each step skipped on 'no goals'."""
    where = f"{path}: theorem {i}"
    if not isinstance(record, dict):
        raise TacticDataError(f"{where}: expected an object, got {_kind(record)}")
    name = record.get("full_name")
    if not isinstance(name, str):
        raise TacticDataError(f"{where}: full_name: {_wrong(record, 'full_name', 'a string')}")
    where = f"{where} ({name})"
    file_path = record.get("file_path", "")
    if not isinstance(file_path, str):
        raise TacticDataError(f"{where}: file_path: expected a string, got {_kind(file_path)}")
    tactics = record.get("traced_tactics")
    if not isinstance(tactics, list):
        raise TacticDataError(
            f"{where}: traced_tactics: {_wrong(record, 'traced_tactics', 'a list')}"
        )
    previous: list[str] = []
    for j, step in enumerate(tactics):
        here = f"{where}, tactic {j}"
        if not isinstance(step, dict):
            raise TacticDataError(f"{here}: expected an object, got {_kind(step)}")
        before, after = _text(step, "state_before", here), _text(step, "state_after", here)
        tactic = _tactic(step, here, options)
        if before.strip() == NO_GOALS:
            yield None
        else:
            yield TacticPair(format_state(before), tactic, format_state(after), name, file_path,
                             j, tuple(previous))  # fmt: skip
        previous.append(tactic)


def _text(step: dict[str, Any], key: str, where: str) -> str:
    value = step.get(key)
    if not isinstance(value, str):
        raise TacticDataError(f"{where}: {key}: {_wrong(step, key, 'a string')}")
    return value


def _wrong(record: dict[str, Any], key: str, expected: str) -> str:
    return "missing" if key not in record else f"expected {expected}, got {_kind(record[key])}"


def _tactic(step: dict[str, Any], where: str, options: TacticOptions) -> str:
    if options.annotated:
        text = format_annotated(step.get("annotated_tactic"), where)
    else:
        text = _text(step, "tactic", where)
    if options.normalize_whitespace:
        text = _SPACES.sub(" ", text).strip()
    if not options.keep_marks:
        text = remove_marks(text)
    if not text.strip():
        raise TacticDataError(f"{where}: the tactic is empty")
    return text


def format_annotated(annotated: Any, where: str) -> str:
    """An `annotated_tactic` `[text, provenances]` with each `<a>ident</a>` replaced by
    `<a>full name</a>` from its provenance (ReProver's `format_tactic`)."""
    if (
        not isinstance(annotated, Sequence)
        or isinstance(annotated, str)
        or len(annotated) != 2
        or not isinstance(annotated[0], str)
        or not isinstance(annotated[1], list)
    ):
        shown = "missing" if annotated is None else f"got {_kind(annotated)}"
        raise TacticDataError(f"{where}: annotated_tactic: expected [text, provenances], {shown}")
    text, provenances = annotated
    marks = list(_MARK.finditer(text))
    if len(marks) != len(provenances):
        raise TacticDataError(f"{where}: annotated_tactic: {len(marks)} marked premises but "
                              f"{len(provenances)} provenances")  # fmt: skip
    out, last = [], 0
    for k, (mark, provenance) in enumerate(zip(marks, provenances, strict=True)):
        full_name = provenance.get("full_name") if isinstance(provenance, dict) else None
        if not isinstance(full_name, str) or not full_name:
            raise TacticDataError(f"{where}: annotated_tactic: provenance {k} has no full_name")
        out.append(f"{text[last : mark.start()]}{MARK_START}{full_name}{MARK_END}")
        last = mark.end()
    out.append(text[last:])
    return "".join(out)


def format_state(state: str) -> str:
    """The state without a leading "N goals" line (ReProver's `format_state`)."""
    m = _GOAL_COUNT.match(state)
    return state[m.end() :].strip() if m else state


def remove_marks(text: str) -> str:
    return text.replace(MARK_START, "").replace(MARK_END, "")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(value), repr(value))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
