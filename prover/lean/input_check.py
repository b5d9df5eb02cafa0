"""Text that cannot reach Lean intact is judged `invalid_input` before any REPL work.

Every path that brings model or user text to the verifier (JSONL records, `prover serve`
bodies, `--verifier URL` clients) asks `text_problem` / `item_problem` first:
- a lone surrogate (`"\\ud800"` is valid JSON, and Python strings hold it) has no UTF-8 form,
  and the REPL reads UTF-8: it cannot be sent at all;
- a NUL character is never Lean source a proof needs, and tools on the way (C strings, logs)
  may cut the text there, so what is scanned could differ from what Lean reads.
Other control characters travel to Lean as `\\uXXXX` escapes; Lean's own parser decides.
"""

from __future__ import annotations

from typing import Any

from prover.lean.verdict import CheckItem, Verdict

ITEM_TEXT_FIELDS = ("name", "header", "formal_statement", "proof", "context")


def json_type(value: Any) -> str:
    """How JSON calls `value`'s type, for one-line messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def unencodable_at(text: str) -> int | None:
    """Index of the first character with no UTF-8 form (a lone surrogate), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def text_problem(field: str, value: Any) -> str | None:
    """One line saying why `value` cannot be a text field sent to Lean; None if it can."""
    if not isinstance(value, str):
        return f"field `{field}` is {json_type(value)}, not a string"
    bad = unencodable_at(value)
    if bad is not None:
        return (
            f"field `{field}` holds a lone surrogate (U+{ord(value[bad]):04X} at character "
            f"{bad}), which has no UTF-8 form"
        )
    nul = value.find("\0")
    if nul >= 0:
        return f"field `{field}` holds a NUL character (at character {nul})"
    return None


def item_problem(item: CheckItem) -> str | None:
    """Why `item` cannot be checked as it stands, or None."""
    for field in ITEM_TEXT_FIELDS:
        problem = text_problem(field, getattr(item, field))
        if problem is not None:
            return problem
    from prover.lean.statement_shape import reference_refusal  # it imports the Lean lexer

    refused = reference_refusal(item.formal_statement)  # no proof could be judged against it
    return f"formal_statement: {refused}" if refused else None


def clean_name(value: Any) -> str:
    """`value` if it is usable text (to name a verdict), else ""."""
    return value if isinstance(value, str) and text_problem("name", value) is None else ""


def invalid_input_verdict(name: str, detail: str) -> Verdict:
    return Verdict(clean_name(name), False, "invalid_input", detail=detail)


def unencodable_field(value: Any, where: str = "record") -> str | None:
    """Where in a parsed JSON value (`record.extra[2]`) a string or key holds a lone
    surrogate, or None. Iterative: the value may be deep."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if unencodable_at(node) is not None:
                return path
        elif isinstance(node, dict):
            for key, child in node.items():
                if unencodable_at(str(key)) is not None:
                    return f"{path} (a key)"
                stack.append((child, f"{path}.{key}"))
        elif isinstance(node, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(node))
    return None
