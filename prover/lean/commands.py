"""Lean commands the verifier writes itself (never model text): the reference statement and the
final check that the theorem Lean proved is the benchmark's own statement.

Why a reference: helpers placed before the statement (instances, notations, namespaces, section
variables, shadowing names) can change what the very same statement text means. The benchmark
statement is therefore elaborated on its own right after the header, as an axiom under a private
name; the model's code runs after it, and the check asks Lean (and the kernel, through
`example`) that the proved constant has the reference's type.
"""

from __future__ import annotations

import hashlib
import re

from prover.lean.source import declarations, is_ident_char, mask_all, signature_end

REFERENCE_PREFIX = "prover_reference_"
# How a verdict's detail starts when the statement check fails: the theorem the model proved
# (checked as written) is not the benchmark's statement. Followed by Lean's first error line.
NOT_THE_STATEMENT = "not the benchmark's statement"
_TRAILING_ASSIGN = re.compile(r":=\s*(by\s*)?$")
_PLAIN_COMPONENT = re.compile(r"[^\W\d][\w'!?₀-₉ₐ-ₜᵢ-ᵥⱼ]*")


def lean_name(name: str) -> str:
    """`name` as Lean source: components that are not plain identifiers get «escaped»."""
    parts = name.split(".")
    return ".".join(p if _PLAIN_COMPONENT.fullmatch(p) else f"«{p}»" for p in parts)


def reference_name(formal_statement: str) -> str:
    digest = hashlib.sha256(formal_statement.encode()).hexdigest()[:16]
    return REFERENCE_PREFIX + digest


def reference_command(formal_statement: str, ref_name: str) -> str:
    """The benchmark statement as an axiom named `ref_name`: it gives the statement's type,
    elaborated before any model code, with no `sorry` warning to tell apart from the model's;
    a proof that used it would list it under `#print axioms` and fail."""
    decls = [d for d in declarations(formal_statement) if d.keyword in ("theorem", "lemma")]
    if not decls:
        raise ValueError("the formal statement declares no theorem")
    start = decls[0].command.keyword_offset
    j = start + len(decls[0].keyword)
    while j < len(formal_statement) and formal_statement[j] in " \t\n":
        j += 1
    k = j
    while k < len(formal_statement) and (
        is_ident_char(formal_statement[k]) or formal_statement[k] in ".«»"
    ):
        k += 1
    masked = mask_all(formal_statement)
    trailing = _TRAILING_ASSIGN.search(masked)
    end = trailing.start() if trailing else signature_end(masked, start, len(masked))
    if end < 0:
        raise ValueError("the formal statement has no `:=`")
    return formal_statement[:start] + f"axiom {ref_name}" + formal_statement[k:end].rstrip()


def statement_check_command(name: str, ref_name: str) -> str:
    """Line 1: the kernel accepts the proved constant at the reference's type (so a proof of
    `name` is a proof of the benchmark statement). Line 2: the axioms it rests on. `_root_`
    so a namespace the model left open cannot substitute another constant."""
    target = f"_root_.{lean_name(name)}"
    return f"example : type_of% @{ref_name} := @{target}\n#print axioms {target}"
