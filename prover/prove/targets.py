"""The theorems of a Lean file that `prover prove` should fill, and how to write proofs back."""

from __future__ import annotations

import re
from dataclasses import dataclass

from prover.lean.source import declarations, mask_all, signature_end, split_header

_SORRY = re.compile(r"(?<![\w'.])sorry(?![\w'!?])")
_DOC = re.compile(r"/--.*?-/\s*", re.S)


@dataclass(frozen=True)
class Target:
    """A `theorem`/`lemma`/`example` whose proof is or contains `sorry`."""

    keyword: str
    name: str | None  # fully qualified; None for an example
    local_name: str | None  # as written (the name inside its namespace)
    line: int  # 1-based line of the declaration in the file
    start: int  # offset of the declaration (doc comment and attributes included)
    statement_start: int  # offset of the keyword
    body_start: int  # offset just past the signature's `:=`
    end: int  # offset just past the proof (trailing blank lines excluded)
    statement: str  # `theorem NAME ... :=` as written
    in_prefix: str  # `open ... in` / `set_option ... in` lines before it ("" if none)
    doc: str  # its doc comment, if any (the informal statement, for the prompt)

    @property
    def display(self) -> str:
        return self.name or f"example (line {self.line})"


def find_targets(text: str) -> tuple[str, list[Target]]:
    """(header, targets in file order). A declaration with no `:=` is skipped."""
    header, rest, _ = split_header(text)
    offset = len(header)
    masked = mask_all(rest)
    targets = []
    for decl in declarations(rest):
        if decl.keyword not in ("theorem", "lemma", "example"):
            continue
        key = decl.command.keyword_offset
        sig = signature_end(masked, key, decl.end)
        if sig < 0 or not _SORRY.search(masked, sig, decl.end):
            continue
        # the proof ends at its last token: comments after it belong to the file, not to it
        end = decl.start + len(masked[decl.start : decl.end].rstrip())
        doc = _DOC.match(rest, decl.start)
        cmd = decl.command
        # `open Real in` / `set_option ... in` before the theorem is part of its statement
        prefix = (
            rest[cmd.start : cmd.in_prefix_end].strip() + "\n" if cmd.in_prefix_end >= 0 else ""
        )
        targets.append(
            Target(
                keyword=decl.keyword,
                name=decl.name if decl.keyword != "example" else None,
                local_name=decl.command.name,
                line=header.count("\n") + decl.start_line,
                start=offset + decl.start,
                statement_start=offset + key,
                body_start=offset + sig + 2,
                end=offset + end,
                statement=rest[key : sig + 2],
                in_prefix=prefix,
                doc=doc.group(0) if doc else "",
            )
        )
    return header, targets


def formal_statement(target: Target) -> str:
    """The statement as a benchmark states it: `theorem NAME ... := by` (an example gets a
    name of its own, since a check needs one; it is never written back)."""
    statement = target.statement
    if target.keyword == "example":
        statement = "theorem prover_example_" + str(target.line) + statement[len("example") :]
    elif target.keyword == "lemma":
        statement = "theorem" + statement[len("lemma") :]
    return target.in_prefix + statement + " by"


def write_back(text: str, proofs: dict[int, tuple[str, str]], targets: list[Target]) -> str:
    """`text` with target i's proof replaced: `proofs[i] = (helpers, body after :=)`. Helpers
    go right before the declaration. Targets without a proof are left exactly as they were."""
    for i in sorted(proofs, reverse=True):  # from the end, so earlier offsets stay valid
        target = targets[i]
        helpers, body = proofs[i]
        text = text[: target.body_start] + body.rstrip() + text[target.end :]
        if helpers.strip():
            text = text[: target.start] + helpers.rstrip() + "\n\n" + text[target.start :]
    return text
