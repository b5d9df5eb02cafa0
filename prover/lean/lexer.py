"""A tokenizer that reads Lean 4 text as Lean's own lexer does, in linear time.

Followed (Lean 4 `src/Lean/Parser/Basic.lean`, tags v4.9.0, v4.24.0, v4.27.0; where versions
differ the reading that finds more is taken, e.g. the union of identifier characters):
- `whitespace` and `finishCommentBlock`: comments (`--` to the end of the line; `/-` nests, and the
  character right after `/-` is consumed unexamined unless it is `-` or `!`);
- `tokenFnAux`: the order in which a token start is tried (`"`, `'` unless `''`, digit,
  `` ` `` + identifier, `r#*"`, then identifier / token table);
- `strLitFnAux` + `quotedStringFn` (escapes, `\\` newline gaps), `rawStrLitFnAux`,
  `charLitFnAux` + `quotedCharFn`, `numberFnAux` / `decimalNumberFn` / `binNumberFn` /
  `octalNumberFn` / `hexNumberFn` / `takeDigitsFn` (`_` separators), `identFnAux` / `isIdCont`
  (dotted parts, `«»` escaped parts), `nameLitAux`;
- `src/Lean/Parser/StrInterpolation.lean` `interpolatedStrFn` (`{` opens a code hole, `\\{` is an
  escape) for the interpolated reading;
- `isIdFirst` / `isIdRest` / `isLetterLike` / `isSubScriptAlnum` (`src/Init/Meta.lean`, later
  `src/Init/Meta/Defs.lean`; Latin-1 and Latin Extended-A letters and `ⱼ` added in newer
  versions, lean4#9035 / #6679). Lean's `Char.isAlpha` / `isDigit` are ASCII only.

Where Lean would report a lexical error (an invalid escape, `0x` with no digit, `1e` with no
exponent, an unterminated `«`), the reading here continues with the smallest token, so that
what follows is still seen as code: Lean fails to parse such text anyway.

Fixed tokens come from Lean's token table, which imports extend. Symbols are one character
except the multi-character tokens callers rely on (`@[`, `:=`, `..`, `#word`) and the known
tokens whose later characters would otherwise start a comment or a literal (`<-` before `-`,
`//` and `\\/` before `-`, core's `×'`, `Σ'` and Mathlib's `''`, `⁻¹'`, `∑'`, `∏'` before a
quote).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

TokenKind = Literal[
    "ident", "number", "string", "char", "name_lit", "symbol", "comment", "doc_comment"
]


@dataclass(frozen=True, slots=True)
class Token:
    """One token. `text == source[start:end]` (str offsets into the original text).

    `ident`: an identifier as `identFn` reads it (dotted and «escaped» parts included); whether
    it is a keyword is decided by the token table: compare `text`. `symbol`: punctuation; a
    `#word` symbol is the whole `#` + identifier characters (Lean's table may read a known
    command as a prefix of it: `#evalx` is `#eval` `x` to Lean, so test prefixes).
    `string`: a whole plain string, or in the interpolated reading one piece of it (`"...{`,
    `}...{`, `}..."`), the code of each hole being tokens of its own in between.
    """

    kind: TokenKind
    start: int
    end: int
    text: str


_new = object.__new__
_set_kind = Token.__dict__["kind"].__set__
_set_start = Token.__dict__["start"].__set__
_set_end = Token.__dict__["end"].__set__
_set_text = Token.__dict__["text"].__set__


def _token(kind: TokenKind, start: int, end: int, text: str) -> Token:
    """`Token(kind, start, end, text)` without the frozen dataclass's slow `__init__` (the
    slot descriptors set the fields; the object is as frozen as any other)."""
    tok = _new(Token)
    _set_kind(tok, kind)
    _set_start(tok, start)
    _set_end(tok, end)
    _set_text(tok, text)
    return tok


# --- character classes (Init/Meta: isLetterLike, isSubScriptAlnum, isIdFirst, isIdRest) ------

_LETTER_LIKE = (
    "\u03b1-\u03ba\u03bc-\u03c9"  # lower Greek but λ
    "\u0391-\u039f\u03a1\u03a2\u03a4-\u03a9"  # upper Greek but Π and Σ
    "\u03ca-\u03fb"  # Coptic
    "\u1f00-\u1ffe"  # polytonic Greek
    "\u2100-\u214f"  # letter-like symbols (ℕ, ℝ, ℘, ...)
    "\U0001d49c-\U0001d59f"  # script, double-struck, Fraktur Latin letters
    "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff"  # Latin-1 letters but × and ÷ (newer versions)
    "\u0100-\u017f"  # Latin Extended-A (newer versions)
)
_SUBSCRIPT_ALNUM = "\u2080-\u2089\u2090-\u209c\u1d62-\u1d6a\u2c7c"
_ID_FIRST = "A-Za-z_" + _LETTER_LIKE
_ID_REST = "A-Za-z0-9_'!?" + _LETTER_LIKE + _SUBSCRIPT_ALNUM

_ID_FIRST_RE = re.compile(f"[{_ID_FIRST}]")
_ID_REST_RE = re.compile(f"[{_ID_REST}]")


def is_id_first(c: str) -> bool:
    """Lean's `isIdFirst` (union over the supported versions)."""
    return len(c) == 1 and _ID_FIRST_RE.match(c) is not None


def is_id_rest(c: str) -> bool:
    """Lean's `isIdRest` (union over the supported versions)."""
    return len(c) == 1 and _ID_REST_RE.match(c) is not None


# --- the token-start regex (tokenFnAux order, after `whitespace`) ------------------------------

_PART = f"(?:[{_ID_FIRST}][{_ID_REST}]*|«[^»]*»)"
_IDENT = f"{_PART}(?:\\.{_PART})*"  # isIdCont: `.` then an identifier start or `«`
_HEX = "[0-9a-fA-F]"
# Multi-character fixed tokens that matter here (see the module docstring); longest first.
# `×'` (src/Init/Core.lean: `infixr:35 " ×' " => PProd`) and `Σ'` (src/Init/NotationExtra.lean:
# `macro "Σ'" ...`) are core tokens: their `'` never starts a char literal.
_MULTI_SYMBOLS = ("⁻¹'", "@[", ":=", "..", "<-", "//", "\\/", "''", "∑'", "∏'", "×'", "Σ'")

_TOKEN_RE = re.compile(
    # whitespace (spaces, newlines; tabs and lone CRs are errors to Lean) then one token
    r"[ \t\r\n]*(?:"
    + "|".join(
        [
            r"(?P<line>--[^\n]*)",
            r"(?P<block>/-)",
            r'(?P<str>")',
            # charLitFnAux: one char (or a quotedCharFn escape), then `'`; `''` is not a char
            rf"""(?P<char>'(?:[^'\\]|\\(?:[\\"'rnt]|x{_HEX}{{2}}|u{_HEX}{{4}}))')""",
            r'(?P<raw>r#*")',
            # numberFnAux; takeDigitsFn accepts `_` separators (a trailing `_` is an error to
            # Lean: it is kept in the numeral so that what follows reads as a new token)
            r"(?P<num>0[bB][01_]*|0[oO][0-7_]*|0[xX][0-9a-fA-F_]*"
            r"|[0-9][0-9_]*(?:\.(?:[0-9][0-9_]*)?)?(?:[eE][+-]?[0-9_]*)?)",
            rf"(?P<name>`{_IDENT})",
            rf"(?P<ident>{_IDENT})",
            rf"(?P<hash>#[{_ID_FIRST}][{_ID_REST}]*)",
            "(?P<sym>" + "|".join(re.escape(s) for s in _MULTI_SYMBOLS) + r"|(?s:.))",
        ]
    )
    + ")?"
)
_COMMENT_DELIM_RE = re.compile(r"-/|/-")  # finishCommentBlock: `-/` closes, `/-` nests
_PLAIN_BODY_RE = re.compile(r'[^"\\]*(?:\\(?s:.)[^"\\]*)*')  # strLitFnAux up to `"`
_INTERP_BODY_RE = re.compile(r'[^"\\{]*(?:\\(?s:.)[^"\\{]*)*')  # interpolatedStrFn up to `"`/`{`


def _comment_end(text: str, i: int) -> int:
    """finishCommentBlock at nesting 1 from `i`: offset just past the closing `-/` (or len)."""
    depth = 1
    search = _COMMENT_DELIM_RE.search
    while True:
        m = search(text, i)
        if m is None:
            return len(text)
        i = m.end()
        if m.group() == "-/":
            depth -= 1
            if depth == 0:
                return i
        else:
            depth += 1


# In the glued reading, these characters right after a symbol belong to it (see `tokenize`).
_GLUE = "'-/"
# Where the glued reading can differ from the other: a symbol character right before a `'`,
# `--` or `/-` (a char literal or comment start that a longer fixed token could swallow).
GLUE_SENSITIVE = re.compile(r"[^\w\s\"«»](?:'|--|/-)")


def tokenize(text: str, *, interpolated: bool = False, glued: bool = False) -> list[Token]:
    """Tokens of `text` (whitespace dropped), in order.

    `interpolated=False`: every `"..."` is a plain string. `interpolated=True`: every string is
    read as an interpolated string, its `{...}` holes as code. Which strings take holes
    depends on the grammar (`s!`, `m!`, `throwError`, ...): scan both readings.
    `glued=True`: `'`, `-` and `/` right after a symbol are part of it, so no char literal or
    comment starts there. Lean's token table, which every import extends, decides this
    (`tokenFnAux` takes the longest fixed token: `×'` then `'"'` is a token and a char, not
    `×` and a char `' '`); no fixed list here can know every imported notation, so the scan
    reads both ways (`GLUE_SENSITIVE` tells where they can differ).
    Unterminated comments and strings run to the end of the text. Never raises.
    """
    n = len(text)
    out: list[Token] = []
    append = out.append
    match = _TOKEN_RE.match
    holes: list[int] = []  # for each open interpolation hole: its `{`/`}` depth
    pos = 1 if text.startswith("\ufeff") else 0  # a leading BOM is whitespace
    while pos < n:
        m = match(text, pos)
        assert m is not None  # every part of the pattern is optional
        kind = m.lastgroup
        if kind is None:  # whitespace up to the end
            break
        pos = m.start(kind)
        end = m.end()
        if kind == "ident":
            append(_token("ident", pos, end, text[pos:end]))
        elif kind == "sym":
            sym = text[pos:end]
            if holes and (sym == "{" or sym == "}"):
                if sym == "{":
                    holes[-1] += 1
                elif holes[-1] > 0:
                    holes[-1] -= 1
                else:  # the hole closes: the string goes on after `}`
                    holes.pop()
                    end = _string_piece(text, pos, True, holes, append)
                    pos = end
                    continue
            if glued:
                while end < n and text[end] in _GLUE:
                    end += 1
            append(_token("symbol", pos, end, text[pos:end]))
        elif kind == "num" or kind == "char":
            append(_token("number" if kind == "num" else "char", pos, end, text[pos:end]))
        elif kind == "line":
            append(_token("comment", pos, end, text[pos:end]))
        elif kind == "block":
            third = text[pos + 2 : pos + 3]
            if third == "-" or third == "!":  # `/--` / `/-!`: doc comment tokens
                end = _comment_end(text, pos + 3)
                append(_token("doc_comment", pos, end, text[pos:end]))
            else:  # the character after `/-` is consumed unexamined
                end = _comment_end(text, min(pos + 3, n))
                append(_token("comment", pos, end, text[pos:end]))
        elif kind == "str":
            end = _string_piece(text, pos, interpolated, holes, append)
        elif kind == "raw":
            close = '"' + "#" * (end - pos - 2)  # rawStrLitFnAux: `"` then as many `#`
            k = text.find(close, end)
            end = n if k < 0 else k + len(close)
            append(_token("string", pos, end, text[pos:end]))
        elif kind == "name":
            append(_token("name_lit", pos, end, text[pos:end]))
        else:  # hash
            append(_token("symbol", pos, end, text[pos:end]))
        pos = end
    return out


def _string_piece(
    text: str, i: int, interpolated: bool, holes: list[int], append: Callable[[Token], None]
) -> int:
    """Read string text after the delimiter at `i` (`"`, or a hole's closing `}`) up to the
    closing `"` or (interpolated) a `{` that opens a hole; emit it; return the offset after."""
    body = (_INTERP_BODY_RE if interpolated else _PLAIN_BODY_RE).match(text, i + 1)
    assert body is not None  # both patterns match the empty string
    j = body.end()
    n = len(text)
    if j < n and text[j] == "{":
        holes.append(0)
    if j < n and text[j] == "\\":  # a `\` at the very end
        j = n
    end = min(j + 1, n)
    append(_token("string", i, end, text[i:end]))
    return end


def line_col(text: str) -> Callable[[int], tuple[int, int]]:
    """offset -> (1-based line, 0-based column), O(log n) per call."""
    starts = [0]
    starts.extend(m.end() for m in re.finditer("\n", text))

    def at(offset: int) -> tuple[int, int]:
        k = bisect.bisect_right(starts, offset) - 1
        return k + 1, offset - starts[k]

    return at
