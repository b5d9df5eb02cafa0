"""Constructs refused before Lean ever sees the code (helpers + proof body written by a model).

Scanning happens on masked text, so a banned word inside a comment or string is fine.
Not banned here, because Lean itself exposes them: `sorry` / `admit` (sorries, `sorryAx`),
`native_decide` / `decide +native` / `bv_decide` (native axioms), suggestion tactics that
either close the goal with a checked proof or fail (`simp?`, `rw?`, `aesop?`, `says`).
Banned search tactics: `apply?`, `exact?`, `hint`, `library_search` (expensive searches that
may admit the goal and whose result is not reproducible).
"""

from __future__ import annotations

import re

from prover.lean.source import (
    COMMAND_KEYWORDS,
    mask_all,
    mask_comments_and_strings,
    skip_brackets,
)

_NOT_AFTER = r"(?<![\w'.!?₀-₉])"  # not inside an identifier or after a `.` (field access)
_NOT_BEFORE = r"(?![\w'!?₀-₉])"


def _kw(words: str) -> str:
    return _NOT_AFTER + "(?:" + "|".join(words.split()) + ")" + _NOT_BEFORE


# `#` commands that may appear anywhere (a command can start mid-line after a complete term).
# Any other `#word` is a command only at column 0: `#s` (Finset.card) is a term elsewhere.
_HASH_COMMANDS = (
    "exit eval print check check_failure reduce synth guard guard_msgs guard_expr guard_target "
    "help find lint simp norm_num conv time where widget html count_heartbeats explode "
    "leansearch loogle moogle find_home min_imports long_names instances sample test "
    "adaptation_note whnf unfold? kernel_reduce show_term"
)

# Keyword -> description. Keywords are reserved tokens: they cannot be identifiers.
_KEYWORDS: dict[str, str] = {
    "import": "`import` inside the proof (the benchmark header decides the imports)",
    "axiom": "`axiom` declaration (could assume anything)",
    "macro": "`macro` (could redefine a tactic or term)",
    "macro_rules": "`macro_rules` (could redefine a tactic or term)",
    "syntax": "`syntax` declaration (could change how the statement parses)",
    "declare_syntax_cat": "`declare_syntax_cat` (syntax extension)",
    "notation": "`notation` (could change what the statement means)",
    "notation3": "`notation3` (could change what the statement means)",
    "infix": "`infix` notation (could change what the statement means)",
    "infixl": "`infixl` notation (could change what the statement means)",
    "infixr": "`infixr` notation (could change what the statement means)",
    "prefix": "`prefix` notation (could change what the statement means)",
    "postfix": "`postfix` notation (could change what the statement means)",
    "elab": "`elab` (runs unchecked meta code)",
    "elab_rules": "`elab_rules` (runs unchecked meta code)",
    "run_cmd": "`run_cmd` (runs unchecked meta code)",
    "run_tac": "`run_tac` (runs unchecked meta code)",
    "run_elab": "`run_elab` (runs unchecked meta code)",
    "run_meta": "`run_meta` (runs unchecked meta code)",
    "by_elab": "`by_elab` (runs unchecked meta code)",
    "simproc": "`simproc` (runs unchecked meta code)",
    "dsimproc": "`dsimproc` (runs unchecked meta code)",
    "unsafe": "`unsafe` code (bypasses the kernel's checks)",
    "instance": "`instance` declaration (could change how the statement elaborates)",
    "initialize": "`initialize` (runs meta code at import)",
    "builtin_initialize": "`builtin_initialize` (runs meta code at import)",
    "include": "`include` (adds hypotheses to the theorem)",
    "simproc_decl": "`simproc_decl` (runs unchecked meta code)",
    "dsimproc_decl": "`dsimproc_decl` (runs unchecked meta code)",
    "binder_predicate": "`binder_predicate` (could change how the statement parses)",
    "unif_hint": "`unif_hint` (could change how the statement elaborates)",
    "register_simp_attr": "`register_simp_attr` (registers meta code)",
    "hint": "`hint` (search tactic)",
    "apply?": "`apply?` (search tactic; it admits the goal when it finds no proof)",
    "exact?": "`exact?` (search tactic)",
    "library_search": "`library_search` (search tactic)",
}
_KEYWORD_RE = re.compile(
    _NOT_AFTER
    + "("
    + "|".join(re.escape(k) for k in sorted(_KEYWORDS, key=len, reverse=True))
    + ")"
    + _NOT_BEFORE
)
# A `#` command right after a term (`trivial#eval e`) still starts a command: no condition on
# what precedes; `!`/`?` variants (`#eval!`) included.
_HASH_ANY_RE = re.compile(
    r"(#(?:" + "|".join(re.escape(h) for h in _HASH_COMMANDS.split()) + r")[!?]?)" + _NOT_BEFORE
)
_HASH_COL0_RE = re.compile(r"^(#[^\W\d]\w*)", re.M)
# Matched on text with «» removed: `«debug».skipKernelTC` and `«debug.skipKernelTC»` too.
_DEBUG_OPTION_RE = re.compile(r"\bset_option\s+(debug\.[\w.]*)")
_ATTR_BLOCK_RE = re.compile(r"(@\[|\battribute\s*\[)")
_SCOPE_RE = re.compile(_NOT_AFTER + r"(namespace|section|mutual|end|variable)" + _NOT_BEFORE)

# Attributes that change compiled code / instance resolution or register meta code.
_BAD_ATTRS: dict[str, str] = {
    "implemented_by": "`@[implemented_by]` (swaps in unchecked code)",
    "extern": "`@[extern]` (swaps in unchecked code)",
    "csimp": "`@[csimp]` (replaces compiled code)",
    "instance": "instance attribute (could change how the statement elaborates)",
    "default_instance": "`default_instance` (could change how numerals elaborate)",
    "tactic": "`@[tactic]` (registers meta code as a tactic)",
    "term_elab": "`@[term_elab]` (registers meta code)",
    "command_elab": "`@[command_elab]` (registers meta code)",
    "macro": "`@[macro]` (registers a macro)",
    "delab": "`@[delab]` (registers meta code)",
    "app_unexpander": "`@[app_unexpander]` (registers meta code)",
    "init": "`@[init]` (runs meta code)",
    "simproc": "`@[simproc]` (registers meta code)",
    "norm_num": "`@[norm_num]` extension (registers meta code)",
    "positivity": "`@[positivity]` extension (registers meta code)",
    "env_extension": "`@[env_extension]` (registers meta code)",
    "cpass": "`@[cpass]` (changes compiled code)",
    "term_parser": "`@[term_parser]` (registers a parser)",
    "tactic_parser": "`@[tactic_parser]` (registers a parser)",
    "command_parser": "`@[command_parser]` (registers a parser)",
}


# In a user's own file (FILE mode of `prover check`) the statements are the file's own, so what
# only guards a benchmark statement against helpers placed before it is allowed there; unchecked
# meta code, `axiom`, `debug.*` options and compiled-code swaps stay banned.
_FILE_MODE_KEYWORDS = frozenset(
    {
        "macro", "macro_rules", "syntax", "declare_syntax_cat", "notation", "notation3", "infix",
        "infixl", "infixr", "prefix", "postfix", "instance", "include",
    }
)  # fmt: skip
_FILE_MODE_ATTRS = frozenset({"instance", "default_instance", "macro", "app_unexpander"})
_FILE_MODE_HASH = frozenset({"#check", "#print", "#reduce", "#synth", "#help", "#where"})


def _bad_attribute(content: str, file_mode: bool = False) -> str | None:
    """Description of the first banned attribute in the contents of `@[...]`, or None."""
    for part in content.split(","):
        words = re.findall(r"[\w.?!]+", part)
        while words and words[0] in ("local", "scoped"):
            words = words[1:]
        if not words:
            continue
        name = words[0]
        if file_mode and name in _FILE_MODE_ATTRS:
            continue
        if name in _BAD_ATTRS:
            return _BAD_ATTRS[name]
        if name.endswith("_parser") or name.endswith("_elab") or name.startswith("builtin_"):
            return f"`@[{name}]` (builtin meta attribute)"
        if name == "aesop" and "tactic" in words:
            return "`@[aesop ... tactic]` (registers meta code as a tactic)"
    return None


def _hits(code: str, names: str, file_mode: bool = False) -> list[tuple[int, str]]:
    """`code`: comments and the contents of literals and «names» blanked; `names`: comments
    and literals blanked, «» removed (for option names, whose offsets are approximate)."""
    hits: list[tuple[int, str]] = []
    for m in _KEYWORD_RE.finditer(code):
        if not (file_mode and m.group(1) in _FILE_MODE_KEYWORDS):
            hits.append((m.start(), _KEYWORDS[m.group(1)]))
    for m in (*_HASH_ANY_RE.finditer(code), *_HASH_COL0_RE.finditer(code)):
        if not (file_mode and m.group(1) in _FILE_MODE_HASH):
            hits.append((m.start(1), f"`{m.group(1)}` command"))
    for m in _DEBUG_OPTION_RE.finditer(names):
        hits.append((m.start(), f"`set_option {m.group(1)}` weakens checking"))
    for m in _ATTR_BLOCK_RE.finditer(code):
        open_ = m.end() - 1
        close = skip_brackets(code, open_)  # just past `]`, or the end when unclosed
        content = code[open_ + 1 : close - 1 if code[close - 1] == "]" else close]
        bad = _bad_attribute(content, file_mode)
        if bad:
            hits.append((m.start(), bad))
    if not file_mode:
        hits.extend(_scope_hits(code))
    return hits


def _scope_hits(code: str) -> list[tuple[int, str]]:
    """`variable` (it adds hypotheses to every later theorem, the target included) and a
    `namespace` or `mutual` left open (the statement would land inside it). An open `section`
    is harmless once `variable` is refused (`noncomputable section` without its `end`)."""
    stack: list[tuple[int, str]] = []
    hits: list[tuple[int, str]] = []
    for m in _SCOPE_RE.finditer(code):
        word = m.group(1)
        if word == "end":
            if stack:
                stack.pop()
        elif word == "variable":
            hits.append((m.start(), "`variable` (adds hypotheses to the theorem)"))
        else:
            name = re.match(r"\s*([^\s]*)", code[m.end() :])
            label = f"{word} {name.group(1)}".strip() if name and word == "namespace" else word
            stack.append((m.start(), label))
    unclosed = [label for _, label in stack if not label.startswith("section")]
    if unclosed:
        # reported where the code ends: everything before it may still be fine
        hits.append((len(code), f"`{unclosed[0]}` left open (the statement would land inside it)"))
    return hits


def find_banned(code: str, *, file_mode: bool = False) -> str | None:
    """A short description of the first banned construct in `code`, or None.

    `file_mode`: `code` is a user's own file whose statements are its own (see above).
    """
    names = mask_comments_and_strings(code).replace("«", "").replace("»", "")
    hits = _hits(mask_all(code), names, file_mode)
    if not hits:
        return None
    return min(hits, key=lambda h: h[0])[1]


# In the proof body (after the statement's `:=`) a command keyword at any column ends the
# proof and runs as a command of its own (`  end`, `  theorem decoy ...`): refused. Tactic
# forms `open ... in` / `set_option ... in` stay allowed.
_BODY_COMMAND_RE = re.compile(
    _NOT_AFTER
    + "("
    + "|".join(
        sorted(
            COMMAND_KEYWORDS | {"lemma", "private", "protected", "noncomputable", "where"},
            key=len,
            reverse=True,
        )
    )
    + ")"
    + _NOT_BEFORE
    + r"|(@\[)"
)
_TACTIC_IN_RE = re.compile(r"(open|set_option)\b[^\n]*?\bin" + _NOT_BEFORE)


def find_command_in_body(body: str) -> str | None:
    """A command hidden in a proof body, or None."""
    code = mask_all(body)
    for m in _BODY_COMMAND_RE.finditer(code):
        word = m.group(1) or m.group(2)
        if word in ("open", "set_option") and _TACTIC_IN_RE.match(code, m.start()):
            continue
        return f"`{word}` inside the proof body (a command there runs after the theorem)"
    return None
