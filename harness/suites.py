"""Benchmark suites: named definitions in the `benchmarks` package, JSONL files, `.lean` folders,
`hf:`.

`load_suite(spec)` takes a suite name (a YAML definition shipped in the `benchmarks` package), a
path (a JSONL file of `{name, split, header, formal_statement, ...}` records, or a folder of
`.lean` files holding one sorry'd theorem each), or `hf:NAME` (a `datasets` dataset, read offline
from a local copy). A suite's data file is looked up in the explicit `search_paths`, then in
`$PROVER_DATA` (colon-separated: a user's own data, or a newer copy, comes first), then in the
data that ships in the `benchmarks` package.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks import data_dir as shipped_data_dir
from benchmarks import suite_definitions
from harness.suite_rules import (
    Exclusion,
    drop_excluded,
    parse_duplicate_policy,
    parse_exclusion,
    rename_duplicates,
)
from prover.jsonl import read_jsonl
from prover.lean.input_check import json_type, text_problem, unencodable_field
from prover.lean.source import (
    declarations,
    mask_all,
    mask_comments_and_strings,
    signature_end,
    split_header,
)
from prover.lean.statement_shape import statement_problem

REQUIRED_FIELDS = ("name", "split", "header", "formal_statement")
OPTIONAL_TEXT_FIELDS = ("context", "informal_prefix")  # sent to Lean / put in prompts
SUITE_KEYS = ("name", "description", "source", "lean_version", "data")


class SuiteError(ValueError):
    """A suite that cannot be loaded; the message is one line."""


@dataclass(frozen=True)
class Problem:
    name: str
    split: str
    header: str
    formal_statement: str  # ends in `:= by`
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # informal_prefix, ...
    where: str = field(default="", compare=False)  # PATH:LINE it was read from, for errors


@dataclass(frozen=True)
class Suite:
    name: str
    lean_version: str | None
    source: str
    problems: list[Problem]
    task: str = "lean"  # which verifier judges it: "lean", or "countdown" (Python-verified)
    # names the definition leaves out of the data on purpose, and why (never silently)
    excluded: tuple[str, ...] = ()
    excluded_reason: str = ""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def known_suites() -> dict[str, Path]:
    """Suite name -> its YAML definition in the `benchmarks` package."""
    return suite_definitions()


def data_search_paths(search_paths: list[Path] | None = None) -> list[Path]:
    """Where a suite's `data:` is looked for, in order: `search_paths`, `$PROVER_DATA`, the
    data shipped in the `benchmarks` package."""
    paths = [Path(p) for p in search_paths or []]
    paths += [Path(p) for p in os.environ.get("PROVER_DATA", "").split(":") if p]
    paths.append(shipped_data_dir())
    return paths


def load_suite(
    spec: str, *, split: str | None = None, search_paths: list[Path] | None = None
) -> Suite:
    """Load a suite by name, path or `hf:NAME`; `split` keeps only problems of that split
    (it overrides a suite definition's own `split`)."""
    spec = str(spec)
    if spec.startswith("hf:"):
        return _select(_load_hf(spec[3:]), split)
    suites = known_suites()
    if spec in suites:
        return _load_defined(suites[spec], split, search_paths)
    path = Path(spec).expanduser()
    if path.exists():
        return _select(_load_path(path, name=path.stem, lean_version=None, source=str(path)), split)
    if os.sep in spec or spec.endswith((".jsonl", ".lean")):
        raise SuiteError(f"suite file {spec} not found")
    known = ", ".join(suites) or "(none)"
    raise SuiteError(
        f"unknown suite {spec!r}: known suites are {known} (or give a JSONL file, a folder "
        "of .lean files, or hf:NAME)"
    )


def _load_defined(yaml_path: Path, split: str | None, search_paths: list[Path] | None) -> Suite:
    try:
        spec = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise SuiteError(f"suite definition {yaml_path}: {_one_line(e)}") from None
    if not isinstance(spec, dict):
        raise SuiteError(f"suite definition {yaml_path}: not a mapping")
    missing = [k for k in SUITE_KEYS if k not in spec]
    if missing:
        raise SuiteError(f"suite definition {yaml_path}: missing {', '.join(missing)}")
    name = str(spec["name"])
    source = _one_line(spec["source"])
    lean_version = None if spec["lean_version"] is None else str(spec["lean_version"])
    data = str(spec["data"])
    task = str(spec.get("task", "lean"))
    if task == "countdown":
        suite = Suite(name, None, source, _countdown_problems(spec, yaml_path), task)
    elif task != "lean":
        raise SuiteError(f"suite definition {yaml_path}: unknown task {task!r} (lean, countdown)")
    elif data.startswith("hf:"):
        suite = _load_hf(data[3:])
        suite = Suite(name, lean_version, source, suite.problems)
    else:
        path = _find_data(data, data_search_paths(search_paths))
        if path is None:
            where = ", ".join(str(p) for p in data_search_paths(search_paths))
            raise SuiteError(
                f"suite {name}: data {data} not found in {where}; get it from {source}; put "
                "it in one of those folders (or set PROVER_DATA)"
            )
        where = f"suite definition {yaml_path}"
        exclusion = parse_exclusion(spec.get("exclude"), where, SuiteError)
        duplicates = parse_duplicate_policy(spec.get("duplicate_names"), where, SuiteError)
        suite = _load_path(
            path, name=name, lean_version=lean_version, source=source,
            exclusion=exclusion, rename=duplicates == "rename",
        )  # fmt: skip
    return _select(suite, split if split is not None else spec.get("split"))


def _find_data(data: str, paths: list[Path]) -> Path | None:
    p = Path(data).expanduser()
    if p.is_absolute():
        return p if p.exists() else None
    for folder in paths:
        if (folder / p).exists():
            return folder / p
    return None


def _select(suite: Suite, split: str | None) -> Suite:
    problems = suite.problems
    if split is not None:
        problems = [p for p in problems if p.split == split]
        if not problems:
            present = ", ".join(sorted({p.split for p in suite.problems})) or "none"
            raise SuiteError(f"suite {suite.name}: no problems in split {split!r} ({present})")
    seen: dict[str, Problem] = {}
    for p in problems:
        first = seen.setdefault(p.name, p)
        if first is not p:
            at = f" (first at {first.where})" if first.where else ""
            raise SuiteError(
                f"{p.where or f'suite {suite.name}'}: duplicate problem name {p.name}{at}"
            )
    return Suite(
        suite.name, suite.lean_version, suite.source, problems, suite.task,
        suite.excluded, suite.excluded_reason,
    )  # fmt: skip


def _countdown_problems(spec: dict[str, Any], yaml_path: Path) -> list[Problem]:
    """Generated puzzles: `splits: {SPLIT: {count, seed, min_numbers, max_numbers}}`. Each
    split has its own seed, so held-out problems never leak into training."""
    from harness.countdown import make_puzzles

    splits = spec.get("splits")
    if not isinstance(splits, dict) or not splits:
        raise SuiteError(f"suite definition {yaml_path}: a countdown suite needs `splits`")
    problems = []
    for split, settings in splits.items():
        try:
            puzzles = make_puzzles(**settings)
        except TypeError as exc:
            raise SuiteError(f"suite definition {yaml_path}: split {split}: {exc}") from None
        problems += [
            Problem(p.name, str(split), "", p.statement(), {"solution": p.solution})
            for p in puzzles
        ]
    return problems


def _load_path(
    path: Path,
    *,
    name: str,
    lean_version: str | None,
    source: str,
    exclusion: Exclusion | None = None,
    rename: bool = False,
) -> Suite:
    exclusion = exclusion or Exclusion(frozenset(), "")
    if path.is_dir():
        problems = _load_lean_folder(path, exclusion)
    else:
        problems = _load_jsonl(path, exclusion, rename)
    if not problems:
        raise SuiteError(f"suite {name}: no problems in {path}")
    excluded = tuple(sorted(exclusion.names))
    return Suite(name, lean_version, source, problems, "lean", excluded, exclusion.reason)


def _statement(text: str) -> str:
    """A statement that ends in `:= by`: a bare `:=`, `:= sorry`, `:= by sorry` ending becomes
    `:= by`; otherwise `text` unchanged."""
    m = re.search(r":=\s*(?:by\s+sorry|sorry|by)?\s*$", text)
    if m is None or re.fullmatch(r":=\s*by\s*", m.group(0)):
        return text
    return text[: m.start()].rstrip() + " := by\n"


def _record(row: dict[str, Any], where: str) -> Problem:
    missing = [k for k in REQUIRED_FIELDS if k not in row]
    if missing:
        raise SuiteError(f"{where}: missing field(s) {', '.join(missing)}")
    bad = [k for k in REQUIRED_FIELDS if not isinstance(row[k], str)]
    if bad:
        raise SuiteError(f"{where}: field(s) {', '.join(bad)} must be strings")
    # Suite text reaches Lean and prompts: text with no UTF-8 form (or a NUL in Lean text)
    # is a one-line error naming the line, not a crash mid-run.
    for k in (*REQUIRED_FIELDS, "context"):
        problem = text_problem(k, row[k]) if isinstance(row.get(k), str) else None
        if problem is not None:
            raise SuiteError(f"{where}: {problem}")
    unencodable = unencodable_field(row)
    if unencodable is not None:
        raise SuiteError(f"{where}: {unencodable} holds a lone surrogate (no UTF-8 form)")
    for k in OPTIONAL_TEXT_FIELDS:
        if row.get(k) is not None and not isinstance(row[k], str):
            raise SuiteError(f"{where}: field `{k}` is {json_type(row[k])}, not a string")
    extra = {k: v for k, v in row.items() if k not in REQUIRED_FIELDS}
    problem = Problem(
        name=row["name"],
        split=row["split"],
        header=row["header"],
        formal_statement=_statement(row["formal_statement"]),
        extra=extra,
        where=where,
    )
    _refuse_unjudgeable(problem, where)
    return problem


def _refuse_unjudgeable(problem: Problem, where: str) -> None:
    """A row the verifier could never judge is refused now, before any sampling, rather than
    stopping a run at its first check (or zeroing the problem's score)."""
    if not problem.name.strip():
        raise SuiteError(f"{where}: field `name` is blank")
    if len(problem.name.splitlines()) > 1:
        raise SuiteError(f"{where}: field `name` spans several lines")
    if not problem.split.strip():
        raise SuiteError(f"{where}: field `split` is blank")
    if _is_puzzle(problem.formal_statement):
        return  # judged by the task's own Python verifier, which reads it as JSON
    bad = statement_problem(problem.formal_statement)
    if bad is not None:
        raise SuiteError(f"{where}: {bad}")


def _is_puzzle(statement: str) -> bool:
    """A JSON object (a countdown puzzle, `harness.countdown.Puzzle.statement`): no Lean
    statement starts with `{`. A JSONL suite does not say its task; the verifier kind does."""
    if not statement.lstrip().startswith("{"):
        return False
    try:
        return isinstance(json.loads(statement), dict)
    except ValueError:
        return False


def _load_jsonl(
    path: Path, exclusion: Exclusion | None = None, rename: bool = False
) -> list[Problem]:
    rows = [(f"{path}:{number}", row) for number, row in read_jsonl(path, SuiteError)]
    if exclusion is not None:
        rows = drop_excluded(rows, exclusion, str(path), SuiteError)
    if rename:
        rows = rename_duplicates(rows)
    return [_record(row, where) for where, row in rows]


def _load_lean_folder(folder: Path, exclusion: Exclusion | None = None) -> list[Problem]:
    files = sorted(folder.glob("*.lean"))
    if not files:
        raise SuiteError(f"no .lean files in {folder}")
    if exclusion is not None and exclusion.names:
        # a folder's problems are named by their files: the list names file stems
        stems = {f.stem for f in files}
        unmatched = sorted(exclusion.names - stems)
        if unmatched:
            missing = ", ".join(unmatched)
            raise SuiteError(f"{folder}: excluded problem(s) {missing} not in the data")
        files = [f for f in files if f.stem not in exclusion.names]
    return [_lean_problem(f) for f in files]


def _lean_problem(path: Path) -> Problem:
    """One sorry'd theorem of a `.lean` file: header = its leading import/set_option/open
    lines, formal_statement = the theorem up to `:= by`; declarations above the theorem go to
    `extra["context"]`, a doc comment on it to `extra["informal_prefix"]`."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte order mark is not Lean text
    except (OSError, UnicodeDecodeError) as e:
        raise SuiteError(f"cannot read {path}: {_one_line(e)}") from None
    header, rest, header_lines = split_header(text)
    theorems = [d for d in declarations(rest) if d.keyword in ("theorem", "lemma") and d.name]
    if len(theorems) > 1:
        theorems = [d for d in theorems if d.name == path.stem] or theorems
    if len(theorems) != 1:
        found = "no theorem" if not theorems else f"{len(theorems)} theorems"
        raise SuiteError(f"{path}: {found}; expected one sorry'd theorem")
    decl = theorems[0]
    cmd = decl.command
    masked = mask_all(rest)
    sig = signature_end(masked, cmd.keyword_offset, cmd.end)
    if sig < 0:
        raise SuiteError(f"{path}: theorem {decl.name} has no `:=`")
    extra: dict[str, Any] = {"path": str(path)}
    start = cmd.start
    delims = mask_comments_and_strings(rest)
    before = delims[start : cmd.keyword_offset]
    lead = len(before) - len(before.lstrip())
    if delims.startswith("/--", start + lead):
        doc_end = delims.find("-/", start + lead + 3)
        if 0 <= doc_end < cmd.keyword_offset:
            extra["informal_prefix"] = rest[start + lead : doc_end + 2] + "\n"
            start = doc_end + 2
            while start < len(rest) and rest[start] in " \t\r\n":
                start += 1
    if mask_all(rest[: cmd.start]).strip():
        extra["context"] = rest[: cmd.start]
    problem = Problem(
        name=decl.name or path.stem,
        split="test",
        header=header,
        formal_statement=rest[start:sig].rstrip() + " := by\n",
        extra=extra,
        where=f"{path}:{header_lines + cmd.start_line}",
    )
    _refuse_unjudgeable(problem, problem.where)
    return problem


def _load_hf(name: str) -> Suite:
    if not name:
        raise SuiteError("hf: needs a dataset name, e.g. hf:OWNER/NAME")
    if "datasets" not in sys.modules:
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        import datasets
    except ImportError:
        raise SuiteError(f"hf:{name} needs the `datasets` package (pip install datasets)") from None
    try:
        local = Path(name).expanduser()
        saved = ("dataset_dict.json", "state.json")
        if local.is_dir() and any((local / f).exists() for f in saved):
            loaded = datasets.load_from_disk(str(local))
        else:
            loaded = datasets.load_dataset(name)
    except Exception as e:  # any failure means: not available here
        raise SuiteError(
            f"hf:{name} is not available offline ({type(e).__name__}: {_one_line(e)[:200]}); "
            "download it first or pass a local copy"
        ) from None
    parts = loaded.items() if isinstance(loaded, dict) else [(None, loaded)]
    problems = []
    for split_name, ds in parts:
        for i, row in enumerate(ds):
            row = dict(row)
            if "split" not in row and split_name is not None:
                row["split"] = split_name
            problems.append(_record(row, f"hf:{name} split {split_name} row {i}"))
    if not problems:
        raise SuiteError(f"hf:{name}: no problems")
    return Suite(name, None, f"hf:{name}", problems)
