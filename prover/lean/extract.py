"""Turn a `CheckItem` into the one command sent to Lean in the benchmark header's environment.

The model's answer is either a tactic block or Lean code that declares the target theorem
(possibly after its own header lines and helpers). A tactic block (or `:= term`) is sent under
the benchmark's statement. A declared target is sent as the model wrote it (helpers + its
statement + its body): the statement is never rewritten, so a proof that renames a binder
(`h0` for `h₀`) still names what it bound. Whether that statement is the benchmark's is decided
by Lean afterwards (`commands.statement_check_command`: the kernel compares the two types, for
which binder names and grouping do not matter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prover.lean.banned import find_banned
from prover.lean.source import (
    declarations,
    mask_all,
    signature_end,
    split_header,
    top_level_commands,
)
from prover.lean.verdict import CheckItem


@dataclass(frozen=True)
class CheckPlan:
    name: str  # the target's name, parsed from formal_statement (not item.name)
    code: str  # one REPL cmd in the header's env: helpers + statement + body
    no_proof: bool  # nothing extractable
    banned: str | None  # the scan of `code` (or a helper reusing the target name)
    # For writing an accepted proof back into a file: declarations (and a `set_option ... in`)
    # that go before the theorem, and what follows the statement's `:=`.
    helpers: str = ""
    body: str = ""
    # The statement sent, from its keyword up to and including its `:=` (the model's own when
    # it declared the target, else the benchmark's).
    statement: str = ""
    # Kept in the verdict JSON for readers of earlier runs; always False since the model's
    # statement is no longer replaced (RULES_REVISION 2).
    statement_rewritten: bool = field(default=False, init=False)


_FENCE_RE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[ \t]*$", re.M)
_LEAD_BY_RE = re.compile(r"\s*by(?![\w'!?])")
_LEAD_ASSIGN_RE = re.compile(r"\s*:=")


def strip_code_fence(text: str, name: str | None = None) -> str:
    """The contents of a markdown ```lean block if `text` has one, else `text`.

    With several blocks: the last one that declares `name`, else the last one. An odd number of
    fences starting with an untagged one means a completion that continued a fenced prompt:
    the text before that closing fence is the proof.
    """
    fences = list(_FENCE_RE.finditer(text))
    if not fences:
        return text
    if len(fences) % 2 == 1 and fences[0].group(1) == "":
        return text[: fences[0].start()]
    blocks: list[str] = []
    for k in range(0, len(fences), 2):
        opening = fences[k]
        if opening.group(1).lower() not in ("", "lean", "lean4"):
            continue  # some other language
        end = fences[k + 1].start() if k + 1 < len(fences) else len(text)
        blocks.append(text[opening.end() : end].strip("\n") + "\n")
    if not blocks:
        return text
    if name is not None:
        declaring = [b for b in blocks if any(d.name == name for d in declarations(b))]
        if declaring:
            return declaring[-1]
    return blocks[-1]


def target_name(item: CheckItem) -> str:
    """Name declared by the benchmark statement (falls back to `item.name`)."""
    for decl in declarations(item.formal_statement):
        if decl.keyword in ("theorem", "lemma") and decl.name:
            return decl.name
    return item.name


_TRAILING_BY_RE = re.compile(r":=\s*by\s*$")


def _statement_head(statement: str) -> str:
    """Benchmark statement up to and including its signature-ending `:=` (no `by`)."""
    code = mask_all(statement)
    trailing = _TRAILING_BY_RE.search(code)
    if trailing:  # the benchmark's form `... := by`: a `let x := ...` inside cannot fool it
        return statement[: trailing.start() + 2]
    decls = declarations(statement)
    start = decls[0].command.keyword_offset if decls else 0
    pos = signature_end(code, start, len(code))
    if pos < 0:  # unexpected shape: drop a trailing `by`
        return re.sub(r"\s*\bby\s*$", "", statement.rstrip())
    return statement[: pos + 2]


def statement_key(text: str) -> str:
    """Statement text compared modulo whitespace, comments, «» and `lemma` vs `theorem`."""
    key = re.sub(r"\s+", "", mask_all(text).replace("«", "").replace("»", ""))
    return re.sub(r"^lemma", "theorem", key)


def benchmark_statement(formal_statement: str) -> str:
    """The benchmark statement from its keyword up to and including its `:=`."""
    head = _statement_head(formal_statement)
    return head[_keyword_at(head) :]


def _is_blank(text: str) -> bool:
    return not mask_all(text).strip()


def _indent_block(block: str) -> str:
    """Tactic lines at column 0 would end the `by` block: indent the whole block by two."""
    masked = mask_all(block).splitlines()
    lines = block.splitlines()
    indents = [len(m) - len(m.lstrip()) for m in masked if m.strip()]
    if not indents or min(indents) > 0:
        return block
    return "\n".join("  " + ln if ln.strip() else ln for ln in lines)


def _indent_tail(body: str) -> str:
    """Indent the lines after the first of a `by` body when the model put them at column 0."""
    first, sep, tail = body.partition("\n")
    return first + sep + _indent_block(tail) if sep else body


def _tactic_mode(item: CheckItem, rest: str) -> tuple[str, bool, str]:
    """(code, no_proof, body after `:=`) for a tactic block (or `:= term`)."""
    commands = top_level_commands(rest)
    block = rest[: commands[0].start] if commands else rest
    head = _statement_head(item.formal_statement)
    m = _LEAD_ASSIGN_RE.match(mask_all(block))
    if m and not _LEAD_BY_RE.match(mask_all(block), m.end()):
        term = block[m.end() :].rstrip()  # `:= term`: a term proof
        return f"{head}{term}\n", _is_blank(term), term
    if m:
        block = block[m.end() :]
    m = _LEAD_BY_RE.match(mask_all(block))
    if m:
        block = block[m.end() :]  # a leading `by` is already in the statement
    block = block.strip("\n").rstrip()
    # single line: start it on its own line, indented
    body = _indent_block(block.lstrip(" \t") if "\n" not in block else block)
    return f"{head} by\n{body}\n", _is_blank(block), f" by\n{body}"


def plan_check(item: CheckItem) -> CheckPlan:
    """What to send to Lean for `item`, or why not to send it. The scan reads exactly the
    text sent (`code`), so nothing it did not see reaches Lean."""
    name = target_name(item)
    _header, rest, _n = split_header(strip_code_fence(item.proof, name))
    decls = declarations(rest)
    theorems = [d for d in decls if d.keyword in ("theorem", "lemma")]
    target = next((d for d in theorems if d.name == name), None)
    if target is None:
        # declared inside a namespace the model opened: still the target (the open
        # namespace is then in the code sent, where the scan refuses it)
        target = next((d for d in theorems if d.local_name == name), None)
    if target is None:
        code, no_proof, body = _tactic_mode(item, rest)
        statement = benchmark_statement(item.formal_statement)
        return CheckPlan(name, code, no_proof, find_banned(code), body=body, statement=statement)

    cmd = target.command
    masked = mask_all(rest)
    helpers = rest[: target.start]
    # a `set_option ... in` before the target is kept; its doc comment, attributes and
    # modifiers (`private` would hide the name the statement check asks for) are not sent
    modifier = rest[target.start : cmd.in_prefix_end] if cmd.in_prefix_end >= 0 else ""
    short = name.rsplit(".", 1)[-1]
    reused = next(
        (
            d
            for d in decls
            if d.start < target.start and d.name and d.name.rsplit(".", 1)[-1] == short
        ),
        None,
    )
    sig = signature_end(masked, cmd.keyword_offset, target.end)
    if sig < 0:  # no `:=`: nothing to prove with
        statement = rest[cmd.keyword_offset : target.end].rstrip()
        return CheckPlan(name, statement + "\n", True, None, statement=statement)
    statement = rest[cmd.keyword_offset : sig + 2]
    body = rest[sig + 2 : target.end].rstrip()
    by = _LEAD_BY_RE.match(mask_all(body))
    if by:
        body = _indent_tail(body)
    no_proof = _is_blank(body[by.end() :] if by else body)

    prefix = helpers.rstrip() + "\n\n" if helpers.strip() else ""
    if modifier:
        prefix += modifier.strip() + "\n"
    code = prefix + statement + body + "\n"
    banned = find_banned(code)
    if banned is None and reused is not None:
        banned = f"helper `{reused.local_name}` reuses the target's name `{short}`"
    return CheckPlan(name, code, no_proof, banned, prefix, body, statement)


def _keyword_at(statement: str) -> int:
    decls = declarations(statement)
    return decls[0].command.keyword_offset if decls else 0
