"""prover.lean.lexer reads Lean text as Lean's lexer does (Lean 4 src/Lean/Parser/Basic.lean)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from prover.lean.lexer import Token, is_id_first, is_id_rest, line_col, tokenize


def kinds(text: str, interpolated: bool = False) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in tokenize(text, interpolated=interpolated)]


# --- the scan-bypass classes ------------------------------------------------------------------


class TestIssueClasses:
    def test_1_block_comment_consumes_the_char_after_opener(self) -> None:
        # whitespace: after `/-` the next character is consumed unexamined, so `/-/- -/` is
        # one comment with nesting 1, and `run_cmd` is code
        assert kinds("/-/- -/ run_cmd x -- -/") == [
            ("comment", "/-/- -/"),
            ("ident", "run_cmd"),
            ("ident", "x"),
            ("comment", "-- -/"),
        ]

    def test_1_real_nesting_counts(self) -> None:
        assert kinds("/- a /- b -/ run_cmd -/ c") == [
            ("comment", "/- a /- b -/ run_cmd -/"),
            ("ident", "c"),
        ]

    def test_2_doc_comment_opened_by_slash_dash_dash_slash(self) -> None:
        assert kinds("/--/ run_cmd -/ theorem") == [
            ("doc_comment", "/--/ run_cmd -/"),
            ("ident", "theorem"),
        ]
        assert kinds("/-!/ x -/ y") == [("doc_comment", "/-!/ x -/"), ("ident", "y")]

    def test_2_doc_comment_nests(self) -> None:
        # docComment = "/--" >> commentBody, commentBody = finishCommentBlock 1
        assert kinds("/-- a /- b -/ c -/ d") == [
            ("doc_comment", "/-- a /- b -/ c -/"),
            ("ident", "d"),
        ]

    def test_3_plain_string_has_no_holes(self) -> None:
        assert kinds('"{" run_cmd "}"') == [
            ("string", '"{"'),
            ("ident", "run_cmd"),
            ("string", '"}"'),
        ]

    def test_3_interpolated_reading_sees_the_holes(self) -> None:
        assert kinds('s!"a{run_cmd}b"', interpolated=True) == [
            ("ident", "s!"),
            ("string", '"a{'),
            ("ident", "run_cmd"),
            ("string", '}b"'),
        ]
        # the plain reading hides it: callers scan both
        assert ("ident", "run_cmd") not in kinds('s!"a{run_cmd}b"')

    def test_4_numeral_glued_to_keyword(self) -> None:
        assert kinds("1set_option x 2run_cmd") == [
            ("number", "1"),
            ("ident", "set_option"),
            ("ident", "x"),
            ("number", "2"),
            ("ident", "run_cmd"),
        ]

    def test_4_char_literal_glued_to_keyword(self) -> None:
        assert kinds("'b'run_cmd") == [("char", "'b'"), ("ident", "run_cmd")]

    def test_5_letter_like_identifier(self) -> None:
        # ℘ (U+2118) is in isLetterLike's letter-like block: `℘'` is a name, then a string
        assert kinds("℘'\"'x\"") == [("ident", "℘'"), ("string", '"\'x"')]

    def test_5_identifier_characters(self) -> None:
        assert kinds("h₀ x'' α_1 ℝ ᾰ 𝓝 café ŝ aⱼ") == [
            ("ident", t) for t in "h₀ x'' α_1 ℝ ᾰ 𝓝 café ŝ aⱼ".split()
        ]
        # λ, Π, Σ are tokens, not letters; × is not a letter either
        assert kinds("λx") == [("symbol", "λ"), ("ident", "x")]
        assert kinds("a×b") == [("ident", "a"), ("symbol", "×"), ("ident", "b")]
        # Unicode letters outside isLetterLike are not identifier characters to Lean
        assert kinds("дrun_cmd") == [("symbol", "д"), ("ident", "run_cmd")]


# --- other rules ------------------------------------------------------------------------------


class TestRules:
    def test_dotted_and_escaped_identifiers(self) -> None:
        assert kinds("x.run_cmd Nat.«foo bar».baz «end» a.1") == [
            ("ident", "x.run_cmd"),
            ("ident", "Nat.«foo bar».baz"),
            ("ident", "«end»"),
            ("ident", "a"),
            ("symbol", "."),
            ("number", "1"),
        ]

    def test_question_and_bang_are_identifier_characters(self) -> None:
        assert kinds("apply? exact? simp! #eval! #print") == [
            ("ident", "apply?"),
            ("ident", "exact?"),
            ("ident", "simp!"),
            ("symbol", "#eval!"),
            ("symbol", "#print"),
        ]

    def test_hash_symbols(self) -> None:
        assert kinds("#[1]") == [("symbol", "#"), ("symbol", "["), ("number", "1"), ("symbol", "]")]
        assert kinds("trivial#exit") == [("ident", "trivial"), ("symbol", "#exit")]

    def test_numbers(self) -> None:
        src = "0x1F 0X1f 0b101 0B1 0o17 0O7 1_000 1.5 2e10 1.5e-3 3E+2 7. 0"
        assert kinds(src) == [("number", t) for t in src.split()]
        assert kinds("2.run_cmd") == [("number", "2."), ("ident", "run_cmd")]
        # Lean errors on these; what follows still reads as a token of its own
        assert kinds("0xrun_cmd") == [("number", "0x"), ("ident", "run_cmd")]
        assert kinds("1_run_cmd") == [("number", "1_"), ("ident", "run_cmd")]

    def test_strings_and_escapes(self) -> None:
        src = r'"a\"b" "\\" "\x41\u03b1\n\t" "gap \
   x" "-- /-"'
        assert [k for k, _ in kinds(src)] == ["string"] * 5

    def test_unterminated_string_and_comment_run_to_end(self) -> None:
        assert kinds('x "abc\nrun_cmd') == [("ident", "x"), ("string", '"abc\nrun_cmd')]
        assert kinds("x /- a\nrun_cmd") == [("ident", "x"), ("comment", "/- a\nrun_cmd")]
        assert kinds('"\\') == [("string", '"\\')]
        assert kinds("/-") == [("comment", "/-")]

    def test_raw_strings(self) -> None:
        assert kinds('r"a\\" run_cmd') == [("string", 'r"a\\"'), ("ident", "run_cmd")]
        assert kinds('r#"a"b"#c') == [("string", 'r#"a"b"#'), ("ident", "c")]
        assert kinds('r##"x"#"##y') == [("string", 'r##"x"#"##'), ("ident", "y")]
        assert kinds('fooer"x"') == [("ident", "fooer"), ("string", '"x"')]

    def test_char_literals(self) -> None:
        assert kinds("'a' '\\n' '\\x41' '\\u03b1' '\"' '\\''") == [
            ("char", c) for c in ["'a'", "'\\n'", "'\\x41'", "'\\u03b1'", "'\"'", "'\\''"]
        ]
        # not char literals: `''` is a token; a lone quote is an error to Lean
        assert kinds("f '' s") == [("ident", "f"), ("symbol", "''"), ("ident", "s")]
        assert kinds("'ab") == [("symbol", "'"), ("ident", "ab")]

    def test_name_literals(self) -> None:
        assert kinds("`foo.bar ``baz `«x y» `(x)") == [
            ("name_lit", "`foo.bar"),
            ("symbol", "`"),
            ("name_lit", "`baz"),
            ("name_lit", "`«x y»"),
            ("symbol", "`"),
            ("symbol", "("),
            ("ident", "x"),
            ("symbol", ")"),
        ]

    def test_multi_char_symbols(self) -> None:
        assert kinds("@[simp] x := y..z") == [
            ("symbol", "@["),
            ("ident", "simp"),
            ("symbol", "]"),
            ("ident", "x"),
            ("symbol", ":="),
            ("ident", "y"),
            ("symbol", ".."),
            ("ident", "z"),
        ]

    def test_tokens_that_end_before_a_comment_opener(self) -> None:
        # `<-` is a token: `<--1` is `<-` `-` `1`, not a comment (do `let x <- -1`)
        assert kinds("let x <--1; pure t) run_cmd") == [
            ("ident", "let"),
            ("ident", "x"),
            ("symbol", "<-"),
            ("symbol", "-"),
            ("number", "1"),
            ("symbol", ";"),
            ("ident", "pure"),
            ("ident", "t"),
            ("symbol", ")"),
            ("ident", "run_cmd"),
        ]
        assert kinds("{x //- a -/ p}")[2] == ("symbol", "//")

    def test_mathlib_quote_tokens(self) -> None:
        # `⁻¹'` (preimage) is one token: the quote does not open a char literal
        assert kinds("f ⁻¹'\"' x \" run_cmd") == [
            ("ident", "f"),
            ("symbol", "⁻¹'"),
            ("string", '"\' x "'),
            ("ident", "run_cmd"),
        ]

    def test_interpolated_nesting(self) -> None:
        src = 'm!"a{f "q{y}" {z}}b" w'
        assert kinds(src, interpolated=True) == [
            ("ident", "m!"),
            ("string", '"a{'),
            ("ident", "f"),
            ("string", '"q{'),
            ("ident", "y"),
            ("string", '}"'),
            ("symbol", "{"),
            ("ident", "z"),
            ("symbol", "}"),
            ("string", '}b"'),
            ("ident", "w"),
        ]
        # `\{` is an escape in an interpolated string, not a hole
        assert kinds('"a\\{run_cmd}"', interpolated=True) == [("string", '"a\\{run_cmd}"')]

    def test_bom_and_bad_characters(self) -> None:
        assert kinds("\ufeffimport A") == [("ident", "import"), ("ident", "A")]
        src = "a\x00b\ud800c\x07\u00a0d"
        toks = tokenize(src)
        assert [t.text for t in toks] == ["a", "\x00", "b", "\ud800", "c", "\x07", "\u00a0", "d"]
        assert kinds("«unterminated x") == [
            ("symbol", "«"),
            ("ident", "unterminated"),
            ("ident", "x"),
        ]

    def test_offsets_and_text(self) -> None:
        src = "theorem x :\n  1 = 1 := rfl -- c"
        for t in tokenize(src):
            assert src[t.start : t.end] == t.text
        at = line_col(src)
        assert at(0) == (1, 0)
        assert at(src.index("1")) == (2, 2)
        assert at(len(src)) == (2, len(src) - src.index("\n") - 1)

    def test_char_predicates(self) -> None:
        assert is_id_first("℘") and is_id_first("é") and not is_id_first("λ")
        assert is_id_rest("₀") and is_id_rest("?") and not is_id_first("₀")
        assert not is_id_rest("д") and not is_id_rest("")


# --- property test: generated token streams -------------------------------------------------

_FIRST = list("abcxyzXY_αβΓΔℕℝ℘ᾰéŝ") + ["𝓝", "𝔽"]
_REST = _FIRST + list("0129'!?₀₁ₐᵢⱼ")
_KEYWORDS = ["run_cmd", "set_option", "theorem", "axiom", "elab", "macro"]
_HASH = ["#eval", "#print", "#exit", "#check"]


def _part(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return "«" + rng.choice(["x y", "end", "a.b", "--", '"', "run_cmd"]) + "»"
    return rng.choice(_FIRST) + "".join(rng.choice(_REST) for _ in range(rng.randrange(4)))


def _ident(rng: random.Random) -> str:
    return ".".join(_part(rng) for _ in range(1 + (rng.random() < 0.3)))


def _number(rng: random.Random) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(1 + rng.randrange(3)))
    return rng.choice(
        [
            "1" + digits,
            "1_" + digits,
            "0x" + rng.choice(["1F", "ab_cd", "0"]),
            "0B" + rng.choice(["1", "10_1"]),
            "0o" + rng.choice(["7", "17"]),
            "3." + digits,
            "2e" + digits,
            "1.5E-" + digits,
            "4.",
            "0",
        ]
    )


_STR_PIECES = ["a", " ", "'", "-", "/", "--", "/-", "-/", "run_cmd", "\n", "℘", "#eval"]
_STR_ESCAPES = ["\\\\", '\\"', "\\n", "\\t", "\\'", "\\x41", "\\u03b1", "\\\n   "]


def _string(rng: random.Random) -> str:
    body = "".join(rng.choice(_STR_PIECES + _STR_ESCAPES) for _ in range(rng.randrange(6)))
    return '"' + body + '"'


def _raw_string(rng: random.Random) -> str:
    hashes = "#" * rng.randrange(3)
    pieces = ["a", " ", "\\", "{", "run_cmd", "-/"] + (
        ['"', '"' + "#" * (len(hashes) - 1)] if hashes else []
    )
    body = "".join(rng.choice(pieces) for _ in range(rng.randrange(5)))
    return "r" + hashes + '"' + body + '"' + hashes


def _char(rng: random.Random) -> str:
    return (
        "'" + rng.choice(["a", '"', "{", "℘", " ", "\\n", "\\\\", "\\'", "\\x7e", "\\u2200"]) + "'"
    )


_COMMENT_PIECES = ["a", " ", '"', "'", "run_cmd", "\n", "{", "-", "/", "--", "`", "«"]


def _comment_body(rng: random.Random, depth: int = 0) -> str:
    out = []
    for _ in range(rng.randrange(5)):
        if depth < 2 and rng.random() < 0.2:
            out.append(" /- " + _comment_body(rng, depth + 1) + " -/ ")
        else:
            out.append(rng.choice(_COMMENT_PIECES))
    body = " " + "".join(out) + " "
    # pieces glued together must not form an opener or closer by accident
    while "-/" in body.replace(" -/ ", "") or "/-" in body.replace(" /- ", ""):
        body = body.replace("-/", "- /").replace("/-", "/ -")
    return body


def _block_comment(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["plain", "plain", "unexamined", "doc", "module", "doc_slash"])
    body = _comment_body(rng)
    if kind == "plain":
        return "comment", "/-" + body + "-/"
    if kind == "unexamined":  # `/-/ ... -/`, `/-x ... -/`: the third char is skipped
        return "comment", "/-" + rng.choice(["/", "x", '"', "{"]) + body + "-/"
    if kind == "doc":
        return "doc_comment", "/--" + body + "-/"
    if kind == "module":
        return "doc_comment", "/-!" + body + "-/"
    return "doc_comment", "/--/" + body + "-/"


def _line_comment(rng: random.Random) -> str:
    return "--" + "".join(
        rng.choice(_COMMENT_PIECES[:-4] + ["/-", "-/"]) for _ in range(4)
    ).replace("\n", " ")


_SYMBOLS = ["(", ")", "[", "]", ",", ":=", "@[", "+", "*", "⟨", "⟩", ";", "|", "$", "∀"]


def _token(rng: random.Random) -> tuple[str, str]:
    r = rng.randrange(12)
    if r == 0:
        return "ident", _ident(rng)
    if r == 1:
        return "ident", rng.choice(_KEYWORDS)
    if r == 2:
        return "number", _number(rng)
    if r == 3:
        return "string", _string(rng)
    if r == 4:
        return "string", _raw_string(rng)
    if r == 5:
        return "char", _char(rng)
    if r == 6:
        return "name_lit", "`" + _ident(rng)
    if r == 7:
        return "symbol", rng.choice(_SYMBOLS)
    if r == 8:
        return "symbol", rng.choice(_HASH)
    if r == 9:
        return "comment", _line_comment(rng)
    return _block_comment(rng)


def _needs_space(prev: tuple[str, str], nxt: tuple[str, str]) -> bool:
    """Whether gluing `nxt` right after `prev` could change either token (by Lean's rules)."""
    pk, pt = prev
    nk, nt = nxt
    first = nt[0]
    if pk == "comment" and pt.startswith("--"):
        return True  # a line comment runs to the end of the line
    if pk in ("ident", "name_lit") or (pk == "symbol" and pt.startswith("#")):
        return is_id_rest(first) or first in ".«"
    if pk == "number":
        # decimalNumberFn goes on into `.`, `e`, `E`, digits and `_`; `0x..` into hex letters
        return is_id_rest(first) and (nk != "ident" or first in "eEbBoOxXabcdefABCDEF_")
    if pk == "symbol":
        return first in "-/:=[" or pt + first in ("@[", ":=")
    return False


def _generate(rng: random.Random, count: int) -> tuple[str, list[tuple[str, int, int]]]:
    text = ""
    expected: list[tuple[str, int, int]] = []
    prev: tuple[str, str] | None = None
    for _ in range(count):
        tok = _token(rng)
        if prev is not None:
            sep = rng.choice(["", "", " ", "\n", "  ", "\n\n  ", "\t", "\r\n"])
            if not sep and _needs_space(prev, tok):
                sep = " "
            if prev[0] == "comment" and prev[1].startswith("--"):
                sep = "\n" + sep
            text += sep
        expected.append((tok[0], len(text), len(text) + len(tok[1])))
        text += tok[1]
        prev = tok
    return text, expected


@pytest.mark.parametrize("seed", range(40))
def test_generated_streams_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    text, expected = _generate(rng, 60)
    for interpolated in (False, True):  # no `{` in the generated strings: both readings agree
        got = [(t.kind, t.start, t.end) for t in tokenize(text, interpolated=interpolated)]
        assert got == expected, text


_GLUE_BEFORE = [
    ("number", "1"),
    ("number", "0x2"),
    ("number", "1.5e3"),
    ("char", "'b'"),
    ("char", "'\\n'"),
    ("string", '"x"'),
    ("string", 'r#"y"#'),
    ("comment", "/-/- -/"),
    ("doc_comment", "/--/ -/"),
    ("symbol", ")"),
]


@pytest.mark.parametrize("seed", range(20))
def test_command_keywords_found_at_known_offsets(seed: int) -> None:
    rng = random.Random(1000 + seed)
    text = ""
    starts: list[tuple[int, str]] = []
    for _ in range(30):
        text += rng.choice([" ", "\n", "  "])
        kind, before = rng.choice(_GLUE_BEFORE)
        text += before
        kw = rng.choice(_KEYWORDS + _HASH)
        if before.startswith("0x") and kw[0] in "abcdef":
            kw = "run_cmd"  # hexNumberFn would go on into `a`..`f`: `0x2elab` is `0x2e` `lab`
        if kind == "number" and kw[0] == "e":
            kw = "set_option"  # `1elab`: decimalNumberFn reads an exponent (and fails)
        starts.append((len(text), kw))  # glued: no space between
        text += kw
        text += rng.choice([" x", "\n", " (", ' "s"'])
    toks = {t.start: t for t in tokenize(text)}
    for offset, kw in starts:
        assert offset in toks and toks[offset].text == kw, (offset, kw, text)


# --- linear time -------------------------------------------------------------------------------
# Bounds are loose (a loaded 2-core machine); a quadratic path takes minutes at 1 MB, and the
# growth check (4x the text: 4x the time if linear, 16x if quadratic; at most 10x passes, best of
# three interleaved runs) catches one whatever the machine's speed and load.

MB = 1 << 20


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _assert_linear(
    make: Callable[[int], str], interpolated: bool = False, size: int = MB // 2
) -> None:
    small, big = make(size // 4), make(size)
    # interleaved, best of three: a burst of load from other work on the machine hits both
    # sizes alike instead of inflating one of them (a loaded CI run once read 12x this way)
    smalls, bigs = [], []
    for _ in range(3):
        smalls.append(_timed(lambda: tokenize(small, interpolated=interpolated)))
        bigs.append(_timed(lambda: tokenize(big, interpolated=interpolated)))
    t_small, t_big = min(smalls), min(bigs)
    assert t_big < 6.0
    assert t_big < 10 * t_small + 0.2, (t_small, t_big)


@pytest.mark.slow
class TestLinearTime:
    def test_simp_attributes(self) -> None:
        _assert_linear(lambda n: "theorem t : True := by omega\n" + "@[simp]\n" * (n // 8))

    def test_nested_comments(self) -> None:
        _assert_linear(lambda n: "/-" * (n // 4) + "-/" * (n // 4))
        _assert_linear(lambda n: "/-" + "a" * n)  # unterminated

    def test_strings(self) -> None:
        _assert_linear(lambda n: '"a{b}\\"c" ' * (n // 10), size=MB // 2)
        _assert_linear(lambda n: '"a{b}\\"c" ' * (n // 10), interpolated=True, size=MB // 2)
        _assert_linear(lambda n: '"{' * (n // 2), interpolated=True, size=MB // 4)  # never closed
        _assert_linear(lambda n: 'r#"' + '"' * n)


def test_token_is_a_frozen_value() -> None:
    tok = tokenize("x")[0]
    assert tok == Token("ident", 0, 1, "x")
    with pytest.raises(AttributeError):
        tok.text = "y"  # type: ignore[misc]
