"""Lexical scanning of Lean 4 source: comments/strings, header lines, top-level commands.

Pure functions, no Lean. Everything works on a *masked* copy of the text (same length, same
newlines) so that offsets and line numbers carry over to the original text unchanged.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# Characters that may occur inside a Lean identifier (a rough but safe superset): letters
# (incl. Greek, ℝ-style letterlike symbols), digits, subscripts, `_`, `'`, `!`, `?`.
_SUBSCRIPTS = "₀₁₂₃₄₅₆₇₈₉ₐₑₒₓₔₕₖₗₘₙₚₛₜᵢᵣᵤᵥⱼ"


def is_ident_char(c: str) -> bool:
    return c.isalnum() or c in "_'!?" or c in _SUBSCRIPTS


def _char_literal_end(text: str, i: int) -> int:
    """End offset of a char literal starting at text[i] == "'", or -1 if it is not one."""
    n = len(text)
    if i + 2 >= n:
        return -1
    if text[i + 1] == "\\":
        # '\n', '\\', '\'', '\x41', '\u{1F600}'
        m = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|.)'").match(
            text, i + 1
        )
        return m.end() if m else -1
    if text[i + 1] not in "'\n" and text[i + 2] == "'":
        return i + 3
    return -1


@functools.lru_cache(maxsize=64)  # one check scans the same few texts many times
def _scan(text: str) -> tuple[tuple[str, int, int, int, int], ...]:
    """Spans of comments, literals and «escaped» identifiers:
    (kind, start, end, content_start, content_end).

    kind is "line", "block", "string", "char" or "ident". content_* excludes the delimiters.
    An unterminated block comment or string runs to the end of the text (as in Lean).
    `{...}` inside any string literal is scanned as code: in an interpolated string (`s!`,
    `m!`, `throwError "..."`) it is code, and over-reading a plain string only costs a false
    alarm, never a hidden construct.
    """
    spans: list[tuple[str, int, int, int, int]] = []
    n = len(text)
    i = 0
    braces: list[int] = []  # brace depth of each interpolation we are inside
    while i < n:
        c = text[i]
        if braces and c == "{":
            braces[-1] += 1
            i += 1
        elif braces and c == "}":
            if braces[-1] == 0:
                braces.pop()
                i = _string_segment(text, i, spans, braces)  # the string goes on
            else:
                braces[-1] -= 1
                i += 1
        elif c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            spans.append(("line", i, j, i + 2, j))
            i = j
        elif c == "/" and text.startswith("/-", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/-", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("-/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            content_end = j - 2 if depth == 0 else n
            # keep the third character of `/--` / `/-!` so doc comments stay recognisable
            cs = i + 3 if text[i + 2 : i + 3] in ("-", "!") and content_end >= i + 3 else i + 2
            spans.append(("block", i, j, cs, max(content_end, cs)))
            i = j
        elif c == "«":
            # an escaped identifier: `«"»`, `«--»` or `«end»` are names, not a string, a
            # comment or a keyword
            k = text.find("»", i + 1)
            j = n if k < 0 else k + 1
            spans.append(("ident", i, j, i + 1, n if k < 0 else k))
            i = j
        elif c == '"':
            i = _string_segment(text, i, spans, braces)
        elif (
            c == "r"
            and (i == 0 or not is_ident_char(text[i - 1]))
            and re.match(r'r#*"', text[i : i + 40])
        ):
            # raw string r"..." / r#"..."#: no escapes, no interpolation
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)  # type: ignore[union-attr]
            close = '"' + hashes
            k = text.find(close, i + 2 + len(hashes))
            j = n if k < 0 else k + len(close)
            spans.append(("string", i, j, i + 2 + len(hashes), n if k < 0 else k))
            i = j
        elif c == "'" and (i == 0 or not is_ident_char(text[i - 1])):
            j = _char_literal_end(text, i)
            if j < 0:
                i += 1
            else:
                spans.append(("char", i, j, i + 1, j - 1))
                i = j
        else:
            i += 1
    return tuple(spans)


def _string_segment(
    text: str, i: int, spans: list[tuple[str, int, int, int, int]], braces: list[int]
) -> int:
    """Scan string text after the delimiter at `i` (`"` or an interpolation's `}`) up to the
    closing `"` (returns the offset after it) or an unescaped `{` (enters code)."""
    n = len(text)
    j = i + 1
    while j < n and text[j] not in '"{':
        j += 2 if text[j] == "\\" else 1
    j = min(j, n)
    if j < n and text[j] == "{":
        spans.append(("string", i, j, i + 1, j))
        braces.append(0)
        return j + 1
    spans.append(("string", i, min(j + 1, n), i + 1, j))
    return j + 1


def _blank(chars: list[str], start: int, end: int) -> None:
    for k in range(start, end):
        if chars[k] not in "\r\n":
            chars[k] = " "


def mask_comments_and_strings(text: str) -> str:
    """Same length and newlines; contents of comments, strings and char literals become spaces.

    The delimiters (`--`, `/-`, `-/`, quotes) are kept so the result still shows where a
    comment or literal was (a doc comment before a declaration stays recognisable).
    """
    chars = list(text)
    for kind, _s, _e, cs, ce in _scan(text):
        if kind != "ident":  # a «name» stays readable (declarations are found by name)
            _blank(chars, cs, ce)
    return "".join(chars)


def strip_comments(text: str) -> str:
    """Same length and newlines; comments blanked entirely (delimiters too), literals kept."""
    chars = list(text)
    for kind, s, e, _cs, _ce in _scan(text):
        if kind in ("line", "block"):
            _blank(chars, s, e)
    return "".join(chars)


def mask_all(text: str) -> str:
    """Comments blanked entirely, literal contents blanked: only code tokens remain."""
    chars = list(text)
    for kind, s, e, cs, ce in _scan(text):
        if kind in ("line", "block"):
            _blank(chars, s, e)
        else:
            _blank(chars, cs, ce)
    return "".join(chars)


# ---------------------------------------------------------------------------------------------
# Header

_HEADER_LINE = re.compile(r"(import|set_option|open)\s")
_IN_TOKEN = re.compile(r"(?<![\w'.])in(?![\w'])")


def split_header(text: str) -> tuple[str, str, int]:
    """Split leading `import` / `set_option` / `open` lines (and blank lines) off `text`.

    A `set_option ... in` / `open ... in` modifies the next command, so it ends the header.
    Returns (header_text, rest_text, header_line_count), header_text + rest_text == text.
    """
    code = mask_all(text)
    lines = text.splitlines(keepends=True)
    masked_lines = code.splitlines(keepends=True)
    delim_lines = mask_comments_and_strings(text).splitlines(keepends=True)
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
    return text[:end], text[end:], count


def normalize_header(header: str) -> str:
    """Key that identifies a header for pooling: comment-free, non-blank, right-stripped lines."""
    lines = (ln.rstrip() for ln in strip_comments(header).splitlines())
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

_WS = re.compile(r"\s*")
_WORD = re.compile(r"[^\W\d][\w'!?₀-₉ₐ-ₜᵢ-ᵥⱼ]*")
_HASH_CMD = re.compile(r"#[^\W\d]\w*")
_NAME = re.compile(r"(?:«[^»\n]*»|[^\W\d][\w'!?₀-₉ₐ-ₜᵢ-ᵥⱼ]*)(?:\.(?:«[^»\n]*»|[\w'!?₀-₉]+))*")


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


def skip_brackets(code: str, i: int) -> int:
    """`code[i]` is `[`: offset just past the matching `]` (or len(code))."""
    depth = 0
    for j in range(i, len(code)):
        if code[j] == "[":
            depth += 1
        elif code[j] == "]":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(code)


def _parse_prefix(code: str, i: int) -> tuple[str, int, tuple[str, ...], tuple[str, ...]] | None:
    """Parse [doc comment] [@[...]]* [modifier]* keyword at `code[i:]` (comments masked).

    Returns (keyword, keyword_offset, modifiers, attributes) or None when no command starts.
    """
    n = len(code)
    attrs: list[str] = []
    mods: list[str] = []
    j = i
    if code.startswith("/--", j) or code.startswith("/-!", j):
        k = code.find("-/", j + 3)
        if k < 0:
            return None
        if code.startswith("/-!", j):
            return None  # a module doc comment is not attached to a command
        j = _WS.match(code, k + 2).end()  # type: ignore[union-attr]
    while j < n:
        if code.startswith("@[", j):
            k = skip_brackets(code, j + 1)
            attrs.append(code[j + 2 : k - 1])
            j = _WS.match(code, k).end()  # type: ignore[union-attr]
            continue
        m = _WORD.match(code, j)
        if m and m.group() in MODIFIERS:
            mods.append(m.group())
            j = _WS.match(code, m.end()).end()  # type: ignore[union-attr]
            continue
        break
    m = _WORD.match(code, j)
    if m and m.group() in COMMAND_KEYWORDS:
        return m.group(), j, tuple(mods), tuple(attrs)
    m = _HASH_CMD.match(code, j)
    if m and not attrs and not mods:
        return m.group(), j, (), ()
    if attrs:
        return "@[", i, tuple(mods), tuple(attrs)
    return None


def _in_modifier_end(code: str, kw: str, kw_end: int, limit: int) -> int:
    """For `set_option`/`open` at `kw_end`: offset just past its `in`, or -1 if not a modifier."""
    toks = [(m.group(), m.end()) for m in re.finditer(r"[^\s()]+|[()]", code[kw_end:limit])]
    if kw == "set_option":
        if len(toks) >= 3 and toks[2][0] == "in":
            return kw_end + toks[2][1]
        return -1
    for tok, end in toks:
        if tok == "in":
            return kw_end + end
        if tok in ("(", ")", "hiding", "renaming", "scoped", "→", "->") or _NAME.fullmatch(tok):
            continue
        return -1
    return -1


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(m.end() for m in re.finditer("\n", text))
    return starts


def _line_of(starts: list[int], offset: int) -> int:
    """1-based line number of `offset`."""
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo + 1


def top_level_commands(text: str) -> list[Command]:
    """Commands that start at column 0 (after masking comments and strings), in order.

    Leading `set_option ... in` / `open ... in` modifiers are merged into the command they
    modify (Lean parses them as one command); one followed by no command is not a command
    (it is a tactic-level modifier inside a proof).
    """
    code = mask_comments_and_strings(text)
    starts = _line_starts(text)
    found: list[tuple[int, str, int, tuple[str, ...], tuple[str, ...], int]] = []
    resume = 0  # line starts before this offset belong to an earlier command's prefix
    for ls in starts:
        if ls < resume or ls >= len(code):
            continue
        parsed = _parse_prefix(code, ls)
        if parsed is None:
            continue
        kw, kw_off, mods, attrs = parsed
        in_end = -1
        while kw in ("set_option", "open") and not mods and not attrs:
            next_ls = code.find("\n", kw_off)
            limit = len(code) if next_ls < 0 else next_ls
            e = _in_modifier_end(code, kw, kw_off + len(kw), limit)
            if e < 0:
                break
            inner = _parse_prefix(code, _WS.match(code, e).end())  # type: ignore[union-attr]
            if inner is None:
                kw = ""
                break
            in_end = e
            kw, kw_off, mods, attrs = inner
        if not kw:
            continue
        found.append((ls, kw, kw_off, mods, attrs, in_end))
        resume = kw_off + 1
    out: list[Command] = []
    for idx, (ls, kw, kw_off, mods, attrs, in_end) in enumerate(found):
        end = found[idx + 1][0] if idx + 1 < len(found) else len(text)
        name = None
        if kw in _NAMED:
            after = _WS.match(code, kw_off + len(kw)).end()  # type: ignore[union-attr]
            if kw == "instance" and code.startswith("(", after):  # (priority := ...)
                close = code.find(")", after)
                after = _WS.match(code, close + 1).end() if close >= 0 else after  # type: ignore
            m = _NAME.match(code, after)
            if m and m.group() not in COMMAND_KEYWORDS and m.group() not in ("where", "extends"):
                name = m.group()
        last = len(text[ls:end].rstrip()) + ls - 1
        out.append(
            Command(
                keyword=kw,
                name=name,
                start=ls,
                end=end,
                start_line=_line_of(starts, ls),
                end_line=_line_of(starts, max(last, ls)),
                keyword_offset=kw_off,
                modifiers=mods,
                attributes=attrs,
                in_prefix_end=in_end,
            )
        )
    return out


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
