"""Lexical scanning of Lean 4 source: comments/strings, header lines, top-level commands.

Pure functions, no Lean. Everything is computed from the tokens of `prover.lean.lexer`, which
reads text as Lean's own lexer does, and in linear time. The masks are copies of the text (same
length, same newlines) so that offsets and line numbers carry over to the original unchanged.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from prover.lean.lexer import Token, is_id_rest, line_col, tokenize


def is_ident_char(c: str) -> bool:
    """Lean's `isIdRest` (union over the supported Lean versions; see `prover.lean.lexer`)."""
    return is_id_rest(c)


@functools.lru_cache(maxsize=64)  # one check scans the same few texts many times
def _tokens(text: str) -> tuple[Token, ...]:
    """The plain reading of `text` (strings without holes); callers that ban code read the
    interpolated one as well (`prover.lean.lexer.tokenize(text, interpolated=True)`)."""
    return tuple(tokenize(text))


_BLANK_RE = re.compile(r"[^\r\n]")
_BOM = "\ufeff"


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with each (start, end) span (sorted, disjoint) blanked; newlines kept."""
    pieces: list[str] = []
    prev = 0
    if text.startswith(_BOM):  # a leading BOM is whitespace to the lexer
        pieces.append(" ")
        prev = 1
    for start, end in spans:
        if end <= start:
            continue
        pieces.append(text[prev:start])
        pieces.append(_BLANK_RE.sub(" ", text[start:end]))
        prev = end
    pieces.append(text[prev:])
    return "".join(pieces)


def _content(tok: Token) -> tuple[int, int]:
    """Span of a comment's or literal's contents, delimiters excluded (kept so that the masked
    text still shows where a comment or literal was, and a doc comment stays recognisable)."""
    s, e, t = tok.start, tok.end, tok.text
    if tok.kind == "comment" and t.startswith("--"):
        return s + 2, e
    if tok.kind in ("comment", "doc_comment"):
        cs = s + 3 if tok.kind == "doc_comment" else s + 2
        closed = len(t) >= 5 and t.endswith("-/")
        return cs, max(cs, e - 2 if closed else e)
    if tok.kind == "char":
        return s + 1, e - 1
    # strings: `"..."`, a piece `"...{` / `}...{` / `}..."`, raw `r#"..."#`
    if t.startswith("r"):
        hashes = len(t) - len(t[1:].lstrip("#")) - 1
        open_len = 2 + hashes
        close = '"' + "#" * hashes
        closed = len(t) >= open_len + len(close) and t.endswith(close)
        return s + open_len, e - len(close) if closed else e
    closed = len(t) >= 2 and t[-1] in '"{'
    return s + 1, e - 1 if closed else e


def _guillemet_spans(tok: Token) -> list[tuple[int, int]]:
    """Contents of each `«...»` part of an identifier or name literal."""
    spans = []
    t = tok.text
    k = t.find("«")
    while k >= 0:
        close = t.find("»", k + 1)
        if close < 0:
            break
        spans.append((tok.start + k + 1, tok.start + close))
        k = t.find("«", close + 1)
    return spans


_LITERALS = ("string", "char")
_COMMENTS = ("comment", "doc_comment")


@functools.lru_cache(maxsize=64)
def _interpolated_tokens(text: str) -> tuple[Token, ...]:
    return tuple(tokenize(text, interpolated=True))


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Offsets inside a span of both sorted, disjoint span lists (linear merge)."""
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _hidden(text: str, spans_of: Callable[[tuple[Token, ...]], list[tuple[int, int]]]) -> str:
    """`text` with blanked what both readings of its strings (plain and interpolated) hide:
    whatever either reading shows as code stays visible, so a scan of the result misses
    nothing that either reading would run."""
    plain = spans_of(_tokens(text))
    if '"' not in text:
        return _masked(text, plain)
    return _masked(text, _intersect(plain, spans_of(_interpolated_tokens(text))))


def _literal_contents(tokens: tuple[Token, ...]) -> list[tuple[int, int]]:
    return [_content(t) for t in tokens if t.kind in _LITERALS or t.kind in _COMMENTS]


def _code_only(tokens: tuple[Token, ...]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for t in tokens:
        if t.kind in _COMMENTS:
            spans.append((t.start, t.end))
        elif t.kind in _LITERALS:
            spans.append(_content(t))
        elif (t.kind == "ident" or t.kind == "name_lit") and "«" in t.text:
            spans.extend(_guillemet_spans(t))
    return spans


def mask_comments_and_strings(text: str) -> str:
    """Same length and newlines; contents of comments, strings and char literals become spaces.

    The delimiters (`--`, `/-`, `-/`, quotes) are kept so the result still shows where a
    comment or literal was (a doc comment before a declaration stays recognisable). A string's
    `{...}` is kept when it is code in the interpolated reading (`s!"{e}"`), and text that the
    plain reading sees as code stays too: only what both readings hide is blanked.
    """
    return _hidden(text, _literal_contents)


def strip_comments(text: str) -> str:
    """Same length and newlines; comments blanked entirely (delimiters too), literals kept."""
    return _masked(text, [(t.start, t.end) for t in _tokens(text) if t.kind in _COMMENTS])


def mask_all(text: str) -> str:
    """Comments blanked entirely, literal contents (and «name» contents) blanked: only code
    tokens remain (code in either reading of the strings, as `mask_comments_and_strings`)."""
    return _hidden(text, _code_only)


# ---------------------------------------------------------------------------------------------
# Header

_HEADER_LINE = re.compile(r"(import|set_option|open)\s")
_IN_TOKEN = re.compile(r"(?<![\w'.])in(?![\w'])")


def _lines(text: str) -> list[str]:
    """Lines with their `\\n` (Lean's only line break; `str.splitlines` knows more)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    return lines


def split_header(text: str) -> tuple[str, str, int]:
    """Split leading `import` / `set_option` / `open` lines (and blank lines) off `text`.

    A `set_option ... in` / `open ... in` modifies the next command, so it ends the header.
    A leading BOM goes with the header. Returns (header_text, rest_text, header_line_count),
    header_text + rest_text == text.
    """
    code = mask_all(text)  # a leading BOM is a space there
    lines = _lines(text)
    masked_lines = _lines(code)
    delim_lines = _lines(mask_comments_and_strings(text))
    if masked_lines:
        masked_lines[0] = masked_lines[0][1:] if text.startswith(_BOM) else masked_lines[0]
    offset = 0
    i = 0
    end = 0  # offset just past the last header line accepted so far
    count = 0
    while i < len(lines):
        m = masked_lines[i]
        if "/--" in delim_lines[i]:
            break  # a doc comment belongs to the command after it
        if not m.strip():
            offset += len(lines[i])
            i += 1
            end, count = offset, i
            continue
        if not _HEADER_LINE.match(m):
            break
        # the command plus its indented continuation lines (blank lines in between allowed)
        j = i + 1
        group = [m]
        while j < len(lines) and (
            not masked_lines[j].strip() or masked_lines[j][:1] in (" ", "\t")
        ):
            group.append(masked_lines[j])
            j += 1
        while j > i + 1 and not masked_lines[j - 1].strip():
            j -= 1  # trailing blank lines are header lines of their own
            group.pop()
        if _IN_TOKEN.search("".join(group)):
            break
        offset += sum(len(x) for x in lines[i:j])
        i = j
        end, count = offset, i
    if end == 0 and text.startswith(_BOM):
        end = 1  # the BOM alone: never part of the code
    return text[:end], text[end:], count


def normalize_header(header: str) -> str:
    """Key that identifies a header for pooling: comment-free, non-blank, right-stripped lines."""
    lines = (ln.rstrip() for ln in strip_comments(header.removeprefix(_BOM)).split("\n"))
    return "\n".join(ln for ln in lines if ln)


# ---------------------------------------------------------------------------------------------
# Top-level commands

COMMAND_KEYWORDS: frozenset[str] = frozenset(
    "theorem lemma def example abbrev instance structure class inductive axiom opaque "
    "namespace section end open set_option variable universe attribute macro "
    "macro_rules syntax notation infix infixl infixr prefix postfix elab elab_rules "
    "run_cmd run_tac run_elab run_meta mutual deriving initialize builtin_initialize "
    "alias include omit export".split()
)
MODIFIERS: frozenset[str] = frozenset(
    "private protected noncomputable unsafe partial nonrec local scoped".split()
)
DECL_KEYWORDS: frozenset[str] = frozenset(
    "theorem lemma def example abbrev instance structure class inductive axiom opaque".split()
)
# keywords followed by the name they declare or open
_NAMED = DECL_KEYWORDS | {"namespace", "section", "end"}


@dataclass(frozen=True)
class Command:
    keyword: str  # "theorem", "#eval", "@[" (attributes before no known keyword), ...
    name: str | None  # the name as written after the keyword, if it takes one
    start: int  # offset of the command (its `set_option ... in` / doc comment / attributes)
    end: int  # start of the next top-level command, or len(text)
    start_line: int  # 1-based
    end_line: int  # 1-based line of the command's last non-blank character
    keyword_offset: int = 0  # offset of the keyword itself
    modifiers: tuple[str, ...] = ()  # private, unsafe, local, ...
    attributes: tuple[str, ...] = ()  # contents of each `@[...]`
    in_prefix_end: int = -1  # end of leading `set_option/open ... in` modifiers (-1: none)


@functools.lru_cache(maxsize=16)
def _bracket_matches(code: str) -> dict[int, int]:
    """For each `[` in `code`: the offset just past its matching `]` (len(code) if none)."""
    matches: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACKET_RE.finditer(code):
        if m.group() == "[":
            stack.append(m.start())
        elif stack:
            matches[stack.pop()] = m.end()
    for i in stack:
        matches[i] = len(code)
    return matches


_BRACKET_RE = re.compile(r"[\[\]]")


def skip_brackets(code: str, i: int) -> int:
    """`code[i]` is `[`: offset just past the matching `]` (or len(code)).

    Matches are computed once per text, so calling it at every `[` stays linear."""
    if code[i : i + 1] == "[":
        return _bracket_matches(code)[i]
    depth = 0
    for j in range(i, len(code)):
        if code[j] == "[":
            depth += 1
        elif code[j] == "]":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(code)


class _Cursor:
    """Code tokens of a text (comments skipped) with what the command scan needs."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.all = _tokens(text)
        self.code = [t for t in self.all if t.kind != "comment"]  # doc comments stay
        self.n = len(self.code)
        self.line_col = line_col(text)

    def text_at(self, k: int) -> str:
        return self.code[k].text if k < self.n else ""

    def kind_at(self, k: int) -> str:
        return self.code[k].kind if k < self.n else ""

    def at_line_start(self, k: int) -> bool:
        start = self.code[k].start
        if start == 0 or self.text[start - 1] == "\n":
            return True
        return start == 1 and self.text.startswith(_BOM)


_OPENERS = frozenset({"[", "@["})


def _parse_prefix(
    cur: _Cursor, k: int
) -> tuple[str, int, tuple[str, ...], tuple[str, ...], int] | None | int:
    """Parse [doc comment] [@[...]]* [modifier]* keyword at code token `k`.

    Returns (keyword, keyword_token, modifiers, attributes, next_token), or the index of the
    token that ended the prefix when no command starts there (every later start inside the
    prefix ends at the same token with no attribute: none starts a command either).
    """
    attrs: list[str] = []
    mods: list[str] = []
    j = k
    if cur.kind_at(j) == "doc_comment":
        tok = cur.code[j]
        if tok.text.startswith("/-!") or not (len(tok.text) >= 5 and tok.text.endswith("-/")):
            return j + 1  # a module doc (or unterminated) comment is not attached to a command
        j += 1
    while j < cur.n:
        t = cur.code[j].text
        if t == "@[":
            close = _matching_close(cur, j)
            end = cur.code[close].start if close < cur.n else len(cur.text)
            attrs.append(_masked_code(cur.text)[cur.code[j].end : end])
            j = close + 1
            continue
        if cur.code[j].kind == "ident" and t in MODIFIERS:
            mods.append(t)
            j += 1
            continue
        break
    t = cur.text_at(j)
    if cur.kind_at(j) == "ident" and t in COMMAND_KEYWORDS:
        return t, j, tuple(mods), tuple(attrs), j + 1
    if cur.kind_at(j) == "symbol" and len(t) > 1 and t[0] == "#" and not attrs and not mods:
        return t, j, (), (), j + 1
    if attrs:
        return "@[", k, tuple(mods), tuple(attrs), j
    return j


def _matching_close(cur: _Cursor, j: int) -> int:
    """Index of the `]` closing the `[`/`@[` token at `j` (cur.n if none)."""
    depth = 0
    while j < cur.n:
        t = cur.code[j].text
        if t in _OPENERS:
            depth += 1
        elif t == "]":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return cur.n


@functools.lru_cache(maxsize=16)
def _masked_code(text: str) -> str:
    return mask_comments_and_strings(text)


_OPEN_IN_WORDS = frozenset({"(", ")", "hiding", "renaming", "scoped", "→", "-", ">"})


def _in_modifier_end(cur: _Cursor, kw: str, k: int) -> int:
    """For `set_option`/`open` at token `k`: index of the token after its `in` (on the same
    line), or -1 if it is not a modifier."""
    line = cur.line_col(cur.code[k].start)[0]

    def same_line(j: int) -> bool:
        return j < cur.n and cur.line_col(cur.code[j].start)[0] == line

    if kw == "set_option":  # set_option NAME VALUE in
        if same_line(k + 3) and cur.code[k + 3].text == "in":
            return k + 4
        return -1
    j = k + 1
    while same_line(j):
        tok = cur.code[j]
        if tok.text == "in":
            return j + 1
        if tok.kind != "ident" and tok.text not in _OPEN_IN_WORDS:
            return -1
        j += 1
    return -1


def top_level_commands(text: str) -> list[Command]:
    """Commands that start at column 0 (comments and strings read as Lean reads them), in
    order.

    Leading `set_option ... in` / `open ... in` modifiers are merged into the command they
    modify (Lean parses them as one command); one followed by no command is not a command
    (it is a tactic-level modifier inside a proof). Attributes followed by no keyword make one
    `@[` command. Linear in the text: every token is looked at a bounded number of times.
    """
    cur = _Cursor(text)
    found: list[tuple[int, str, int, tuple[str, ...], tuple[str, ...], int]] = []
    k = 0
    while k < cur.n:
        if not cur.at_line_start(k):
            k += 1
            continue
        parsed = _parse_prefix(cur, k)
        if isinstance(parsed, int):
            k = max(parsed, k + 1)
            continue
        kw, kw_tok, mods, attrs, nxt = parsed
        in_end = -1
        while kw in ("set_option", "open") and not mods and not attrs:
            after_in = _in_modifier_end(cur, kw, kw_tok)
            if after_in < 0:
                break
            inner = _parse_prefix(cur, after_in)
            if isinstance(inner, int):
                kw, nxt = "", max(inner, after_in)
                break
            in_end = cur.code[after_in - 1].end
            kw, kw_tok, mods, attrs, nxt = inner
        if kw:
            kw_off = cur.code[kw_tok].start
            found.append((cur.code[k].start, kw, kw_off, mods, attrs, in_end))
            # a name on the keyword's line is read below; skip what the prefix consumed
        k = max(nxt, k + 1)
    out: list[Command] = []
    for idx, (start, kw, kw_off, mods, attrs, in_end) in enumerate(found):
        end = found[idx + 1][0] if idx + 1 < len(found) else len(text)
        name = _declared_name(cur, kw, kw_off) if kw in _NAMED else None
        last = _last_non_blank(text, start, end)
        out.append(
            Command(
                keyword=kw,
                name=name,
                start=start,
                end=end,
                start_line=cur.line_col(start)[0],
                end_line=cur.line_col(max(last, start))[0],
                keyword_offset=kw_off,
                modifiers=mods,
                attributes=attrs,
                in_prefix_end=in_end,
            )
        )
    return out


def _declared_name(cur: _Cursor, kw: str, kw_off: int) -> str | None:
    """The name written after the keyword at `kw_off`, if any."""
    j = _token_index(cur, kw_off) + 1
    if kw == "instance" and cur.text_at(j) == "(":  # (priority := ...)
        while j < cur.n and cur.code[j].text != ")":
            j += 1
        j += 1
    if cur.kind_at(j) != "ident":
        return None
    name = cur.code[j].text
    if name in COMMAND_KEYWORDS or name in ("where", "extends"):
        return None
    return name


def _token_index(cur: _Cursor, offset: int) -> int:
    lo, hi = 0, cur.n
    while lo < hi:
        mid = (lo + hi) // 2
        if cur.code[mid].start < offset:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _last_non_blank(text: str, start: int, end: int) -> int:
    """Offset of the last non-whitespace character of text[start:end] (start - 1 if none)."""
    j = end - 1
    while j >= start and text[j].isspace():
        j -= 1
    return j


# ---------------------------------------------------------------------------------------------
# Declarations


@dataclass(frozen=True)
class Declaration:
    keyword: str  # theorem, lemma, def, example, instance, ...
    name: str | None  # fully qualified (namespaces applied, `_root_.` removed); None: example
    local_name: str | None  # the name as written after the keyword
    start: int
    end: int
    start_line: int
    end_line: int
    command: Command


def _strip_guillemets(name: str) -> str:
    return name.replace("«", "").replace("»", "")


def declarations(text: str) -> list[Declaration]:
    """Declarations (theorem, lemma, def, example, ...) with names qualified by `namespace`s."""
    scopes: list[tuple[str, list[str]]] = []  # (kind, namespace components it added)
    out: list[Declaration] = []
    for cmd in top_level_commands(text):
        kw = cmd.keyword
        if kw == "namespace" and cmd.name:
            scopes.append(("namespace", _strip_guillemets(cmd.name).split(".")))
        elif kw in ("section", "mutual"):
            scopes.append((kw, []))
        elif kw == "end":
            if scopes:
                scopes.pop()
        elif kw in DECL_KEYWORDS:
            name = None
            if cmd.name is not None:
                local = _strip_guillemets(cmd.name)
                if local.startswith("_root_."):
                    name = local[len("_root_.") :]
                else:
                    prefix = [part for _k, parts in scopes for part in parts]
                    name = ".".join([*prefix, local])
            out.append(
                Declaration(
                    keyword=kw,
                    name=name,
                    local_name=cmd.name,
                    start=cmd.start,
                    end=cmd.end,
                    start_line=cmd.start_line,
                    end_line=cmd.end_line,
                    command=cmd,
                )
            )
    return out


def open_namespace(text: str) -> str:
    """The namespace still open at the end of `text` (`""` at the root), e.g. `Foo.Bar`."""
    scopes: list[list[str]] = []
    for cmd in top_level_commands(text):
        if cmd.keyword == "namespace" and cmd.name:
            scopes.append(_strip_guillemets(cmd.name).split("."))
        elif cmd.keyword in ("section", "mutual"):
            scopes.append([])
        elif cmd.keyword == "end" and scopes:
            scopes.pop()
    return ".".join(part for parts in scopes for part in parts)


def signature_end(code: str, start: int, end: int) -> int:
    """Offset of the first `:=` at bracket depth 0 in masked `code[start:end]`, or -1."""
    depth = 0
    i = start
    while i < end:
        c = code[i]
        if c in "([{⟨⦃⟦":
            depth += 1
        elif c in ")]}⟩⦄⟧":
            depth = max(depth - 1, 0)
        elif c == ":" and depth == 0 and code.startswith(":=", i):
            return i
        i += 1
    return -1
