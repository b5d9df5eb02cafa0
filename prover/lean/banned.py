"""The pre-Lean scan: what is refused before Lean ever sees the code.

It reads the exact text sent to Lean as Lean's own lexer does (`lexer.tokenize`), in both
string readings (plain, and every string interpolated), and bans what either reading finds:
only tokens matter, so a comment or a string can neither hide a command nor fake one.

Model code (a JSONL proof, a `prove` candidate: everything `extract.plan_check` sends) is held
to an allowlist of commands (`keywords.ALLOWED_COMMANDS`): every command keyword of Lean,
Batteries, Aesop and Mathlib is a command start wherever it appears (Lean starts a command
wherever the previous one ends, mid-line too), and any other than a proof needs is banned.
Options and attributes have allowlists of their own. Meta code at tactic or term level
(`run_tac`, `by_elab`, ...) and search tactics are on a denylist, in both modes.

A user's own file (FILE mode of `prover check`) keeps its wider rules, as a denylist: its
statements are its own, so instances, notations and macros are allowed; unchecked meta code,
`axiom`, `debug.*` options and compiled-code swaps are not. Its header (leading `import`s) is
scanned like the rest: only `import` itself is allowed there.

Identifiers at column 0 are not judged by themselves: every tactic name is an identifier to
this lexer (tactic lines at column 0 are common in honest proofs), a non-keyword identifier at a
command position is a parse error that the `error` rung rejects, and a keyword of a library the
header imports beyond Lean, Batteries, Aesop and Mathlib is not known here (the replay rung
re-checks what any such command added).

Not banned here, because Lean itself exposes them: `sorry` / `admit` (sorries, `sorryAx`),
`native_decide` / `decide +native` / `bv_decide` (native axioms), suggestion tactics that
either close the goal with a checked proof or fail (`simp?`, `rw?`, `aesop?`, `says`).
Banned search tactics: `apply?`, `exact?`, `hint`, `library_search` (expensive searches that
may admit the goal and whose result is not reproducible).
"""

from __future__ import annotations

from dataclasses import dataclass

from prover.lean.keywords import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_COMMANDS,
    ALLOWED_OPTION_PREFIXES,
    ALLOWED_OPTIONS,
    COMMAND_KEYWORDS,
    HASH_COMMANDS,
)
from prover.lean.lexer import GLUE_SENSITIVE, Token, tokenize

_META = "(runs unchecked meta code)"
# Banned in both modes, wherever they appear: meta code, kernel bypasses, search tactics.
_DENIED: dict[str, str] = {
    "run_cmd": f"`run_cmd` {_META}",
    "run_tac": f"`run_tac` {_META}",
    "run_elab": f"`run_elab` {_META}",
    "run_meta": f"`run_meta` {_META}",
    "by_elab": f"`by_elab` {_META}",
    "elab": f"`elab` {_META}",
    "elab_rules": f"`elab_rules` {_META}",
    "elab_stx_quot": f"`elab_stx_quot` {_META}",
    "simproc": f"`simproc` {_META}",
    "dsimproc": f"`dsimproc` {_META}",
    "simproc_decl": f"`simproc_decl` {_META}",
    "dsimproc_decl": f"`dsimproc_decl` {_META}",
    "builtin_simproc": f"`builtin_simproc` {_META}",
    "builtin_dsimproc": f"`builtin_dsimproc` {_META}",
    "builtin_simproc_decl": f"`builtin_simproc_decl` {_META}",
    "builtin_dsimproc_decl": f"`builtin_dsimproc_decl` {_META}",
    "simproc_pattern": f"`simproc_pattern` {_META}",
    "builtin_simproc_pattern": f"`builtin_simproc_pattern` {_META}",
    "declare_simp_like_tactic": f"`declare_simp_like_tactic` {_META}",
    "declare_config_elab": f"`declare_config_elab` {_META}",
    "declare_command_config_elab": f"`declare_command_config_elab` {_META}",
    "register_simp_attr": "`register_simp_attr` (registers meta code)",
    "register_label_attr": "`register_label_attr` (registers meta code)",
    "register_option": "`register_option` (registers meta code)",
    "register_builtin_option": "`register_builtin_option` (registers meta code)",
    "test_extern": f"`test_extern` {_META}",
    "initialize": "`initialize` (runs meta code at import)",
    "builtin_initialize": "`builtin_initialize` (runs meta code at import)",
    "unsafe": "`unsafe` code (bypasses the kernel's checks)",
    "axiom": "`axiom` declaration (could assume anything)",
    "sudo": "`sudo set_option` (sets options nothing declared)",
    "binder_predicate": "`binder_predicate` (could change how the statement parses)",
    "unif_hint": "`unif_hint` (could change how the statement elaborates)",
    "hint": "`hint` (search tactic)",
    "apply?": "`apply?` (search tactic; it admits the goal when it finds no proof)",
    "exact?": "`exact?` (search tactic)",
    "library_search": "`library_search` (search tactic)",
}
# Tactics only: a user's own file may use these words as names (model code may not at all).
_SEARCH_TACTICS = frozenset({"hint", "apply?", "exact?", "library_search"})
# Descriptions of commands model code may not use (any other: a generic one).
_NOT_IN_PROOFS: dict[str, str] = {
    "import": "`import` inside the proof (the benchmark header decides the imports)",
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
    "instance": "`instance` declaration (could change how the statement elaborates)",
    "include": "`include` (adds hypotheses to the theorem)",
    "variable": "`variable` (adds hypotheses to the theorem)",
    "mutual": "`mutual` block (the statement could land inside it)",
}
# In a user's own file these only guard a benchmark statement against helpers before it.
_FILE_MODE_ALLOWED_ATTRS = frozenset({"instance", "default_instance", "macro", "app_unexpander"})
_FILE_MODE_HASH = frozenset({"#check", "#print", "#reduce", "#synth", "#help", "#where"})

# Attributes that change compiled code or instance resolution, or register meta code.
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
# Header tokens of a file: `module`? `prelude`? then `public? meta? import all? Name` each.
_IMPORT_MODIFIERS = frozenset({"public", "meta", "private"})


@dataclass(frozen=True)
class Hit:
    offset: int  # where in the scanned text
    description: str  # one short line


def scan(text: str, *, file_mode: bool = False) -> list[Hit]:
    """Every banned construct of `text`, in any reading (unsorted, may repeat): strings plain
    or interpolated, and symbols with or without a following `'`/`-`/`/` glued on (whether a
    char literal or comment starts right after a symbol depends on the imported token table;
    see `lexer.tokenize`)."""
    hits: list[Hit] = []
    interpolated = (False, True) if '"' in text else (False,)  # differs only around strings
    glued = (False, True) if GLUE_SENSITIVE.search(text) else (False,)
    for interp in interpolated:
        for glue in glued:
            hits += _scan_tokens(text, tokenize(text, interpolated=interp, glued=glue), file_mode)
    return hits


def find_banned(code: str, *, file_mode: bool = False) -> str | None:
    """A short description of the first banned construct in `code`, or None.

    `file_mode`: `code` is a user's own whole file (header included; see above).
    """
    hits = scan(code, file_mode=file_mode)
    return min(hits, key=lambda h: h.offset).description if hits else None


def _option_allowed(name: str) -> bool:
    return name in ALLOWED_OPTIONS or name.startswith(ALLOWED_OPTION_PREFIXES)


def _brackets(code: list[Token]) -> dict[int, int]:
    """Index of each `[` / `@[` -> index of its matching `]` (unmatched ones left out)."""
    close_of: dict[int, int] = {}
    stack: list[int] = []
    for i, tok in enumerate(code):
        if tok.kind != "symbol":
            continue
        if tok.text == "[" or tok.text == "@[":
            stack.append(i)
        elif tok.text == "]" and stack:
            close_of[stack.pop()] = i
    return close_of


def _header_length(code: list[Token]) -> int:
    """How many leading tokens form a file's import header (Lean's `Module.header`)."""
    j = 0
    for word in ("module", "prelude"):
        if j < len(code) and code[j].text == word:
            j += 1
    while True:
        k = j
        while k < len(code) and code[k].text in _IMPORT_MODIFIERS:
            k += 1
        if k >= len(code) or code[k].text != "import":
            return j
        k += 1
        if k < len(code) and code[k].text == "all":
            k += 1
        if k < len(code) and code[k].kind == "ident":
            k += 1
        j = k


class _Scanner:
    """One pass over one reading's code tokens (identifiers and symbols)."""

    def __init__(self, text: str, code: list[Token], file_mode: bool) -> None:
        self.text = text
        self.code = code
        self.file_mode = file_mode
        self.hits: list[Hit] = []
        self.close_of = _brackets(code)
        self.attr_kinds: set[int] = set()  # `local` / `scoped` inside attribute brackets
        self.header = _header_length(code) if file_mode else 0
        self.scopes: list[str] = []  # `namespace X` / `section` not yet ended (model code)

    def hit(self, tok: Token, description: str) -> None:
        self.hits.append(Hit(tok.start, description))

    def at_line_start(self, tok: Token) -> bool:
        k = tok.start - 1
        return k < 0 or self.text[k] == "\n" or (k == 0 and self.text[0] == "\ufeff")

    def run(self) -> list[Hit]:
        code = self.code
        for i, tok in enumerate(code):
            word = tok.text
            if tok.kind == "symbol":
                if word == "@[":
                    self.attributes(i)
                elif word.startswith("#") and len(word) > 1:
                    self.hash_command(tok)
                continue
            if word in _DENIED:
                if not (self.file_mode and word in _SEARCH_TACTICS and self.used_as_name(i)):
                    self.hit(tok, _DENIED[word])
            elif word in COMMAND_KEYWORDS and not self.not_a_command(i, word):
                self.command(i, tok)
        # a `section` left open is harmless once `variable` is refused (`noncomputable section`)
        unclosed = [label for label in self.scopes if label != "section"]
        if unclosed:  # reported where the code ends: everything before it may still be fine
            where = f"`{unclosed[0]}` left open (the statement would land inside it)"
            self.hits.append(Hit(len(self.text), where))
        return self.hits

    def used_as_name(self, i: int) -> bool:
        """A tactic name is an identifier elsewhere (the tactic category's leading identifiers
        are not reserved): `(hint : P)`, `have hint : P`, `⟨hint, h⟩`."""
        before = self.code[i - 1].text if i > 0 else ""
        after = self.code[i + 1].text if i + 1 < len(self.code) else ""
        return before in ("(", "{", "⦃", "⟨", "[", ",") or after in (":", ",", "⟩", ")", "]")

    def not_a_command(self, i: int, word: str) -> bool:
        """The known non-command uses of a command keyword."""
        if i in self.attr_kinds:  # `@[local simp]`
            return True
        if word == "scoped" and i > 0 and self.code[i - 1].text == "open":  # `open scoped X`
            return True
        if word in ("local", "scoped") and i + 1 < len(self.code):
            # `local notation`: the command it modifies is judged (and described) itself
            return self.code[i + 1].text in COMMAND_KEYWORDS
        return i < self.header  # a file's own `import` lines

    def command(self, i: int, tok: Token) -> None:
        word = tok.text
        if word == "set_option":
            self.option(i)
        elif word == "attribute" and i + 1 < len(self.code) and self.code[i + 1].text == "[":
            self.attributes(i + 1)
        if self.file_mode:
            if word == "import":
                self.hit(tok, "`import` after the file's header")
            return
        if word not in ALLOWED_COMMANDS:
            described = _NOT_IN_PROOFS.get(word)
            self.hit(tok, described or f"`{word}` (not a command a proof may use)")
        elif word == "namespace":
            name = self.code[i + 1].text if i + 1 < len(self.code) else ""
            self.scopes.append(f"namespace {name}".strip())
        elif word == "section":
            self.scopes.append("section")
        elif word == "end" and self.scopes:
            self.scopes.pop()

    def option(self, i: int) -> None:
        """`set_option NAME ...` (command, term or tactic form): NAME, «» taken off."""
        if i + 1 >= len(self.code) or self.code[i + 1].kind != "ident":
            return  # not an option name: a parse error to Lean
        name = self.code[i + 1].text.replace("«", "").replace("»", "")
        if name == "debug" or name.startswith("debug."):
            self.hit(self.code[i], f"`set_option {name}` weakens checking")
        elif not self.file_mode and not _option_allowed(name):
            self.hit(self.code[i], f"`set_option {name}` (not an option a proof may set)")

    def hash_command(self, tok: Token) -> None:
        word = tok.text
        known = next((word[:k] for k in range(len(word), 1, -1) if word[:k] in HASH_COMMANDS), None)
        if known is None and not self.at_line_start(tok):
            return  # `#s`: Finset.card of `s`
        if self.file_mode and (known or word) in _FILE_MODE_HASH:
            return
        self.hit(tok, f"`{word}` command")

    def attributes(self, opener: int) -> None:
        """The attribute instances in `@[...]` / `attribute [...]`: `local`/`scoped`, `-`, then
        the name and its arguments, separated by `,` (nested brackets skipped)."""
        code = self.code
        end = self.close_of.get(opener, len(code))
        j = opener + 1
        name: str | None = None
        while j < end:
            tok = code[j]
            if tok.text in ("[", "@[") and j in self.close_of:
                j = self.close_of[j] + 1
                continue
            if name is None:
                if tok.text in ("local", "scoped"):
                    self.attr_kinds.add(j)
                elif tok.text != "-":
                    name = tok.text
                    self.attribute_name(tok)
            elif tok.text == "," or (tok.text == ":=" and code[j - 1].text == "attr"):
                # `to_additive (attr := a, b)` applies a, b to the declaration too (Mathlib
                # `Mathlib/Tactic/ToAdditive/Frontend.lean`): each is judged as an attribute
                name = None
            elif name == "aesop" and tok.text == "tactic":
                self.hit(tok, "`@[aesop ... tactic]` (registers meta code as a tactic)")
            j += 1

    def attribute_name(self, tok: Token) -> None:
        name = tok.text
        if self.file_mode:
            if name in _FILE_MODE_ALLOWED_ATTRS:
                return
            if name in _BAD_ATTRS:
                self.hit(tok, _BAD_ATTRS[name])
            elif name.endswith(("_parser", "_elab")) or name.startswith("builtin_"):
                self.hit(tok, f"`@[{name}]` (builtin meta attribute)")
        elif name not in ALLOWED_ATTRIBUTES:
            self.hit(tok, _BAD_ATTRS.get(name) or f"`@[{name}]` (not an attribute a proof may use)")


def _scan_tokens(text: str, tokens: list[Token], file_mode: bool) -> list[Hit]:
    code = [t for t in tokens if t.kind == "ident" or t.kind == "symbol"]
    return _Scanner(text, code, file_mode).run()
