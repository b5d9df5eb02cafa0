"""Lexical scanning of Lean 4 source: masking, header split, top-level commands, declarations."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from prover.lean.source import (
    declarations,
    is_ident_char,
    mask_all,
    mask_comments_and_strings,
    normalize_header,
    signature_end,
    skip_brackets,
    split_header,
    top_level_commands,
)

HEADER = (
    "import Mathlib\n\nset_option maxHeartbeats 0\n\nopen BigOperators Real Nat Topology Rat\n\n"
)


def _same_shape(a: str, b: str) -> None:
    assert len(a) == len(b)
    assert [i for i, c in enumerate(a) if c == "\n"] == [i for i, c in enumerate(b) if c == "\n"]


class TestMask:
    def test_line_comment(self) -> None:
        src = "simp -- apply? here\nlinarith"
        out = mask_comments_and_strings(src)
        _same_shape(src, out)
        assert "apply?" not in out
        assert out.startswith("simp --")
        assert out.endswith("\nlinarith")

    def test_nested_block_comment(self) -> None:
        src = "a /- x /- sorry -/ still -/ b"
        out = mask_comments_and_strings(src)
        _same_shape(src, out)
        assert "sorry" not in out and "still" not in out
        assert out.startswith("a /-") and out.endswith("-/ b")

    def test_multiline_block_keeps_newlines(self) -> None:
        src = "x\n/- one\ntwo\nthree -/\ny"
        out = mask_comments_and_strings(src)
        _same_shape(src, out)
        assert out.splitlines()[4] == "y"
        assert "two" not in out

    def test_doc_comment_marker_kept(self) -> None:
        out = mask_comments_and_strings("/-- doc text -/\ntheorem x : True := trivial")
        assert out.startswith("/--")
        assert "doc" not in out

    def test_string_with_escapes(self) -> None:
        src = 'f "a \\" -- not a comment" -- real'
        out = mask_comments_and_strings(src)
        _same_shape(src, out)
        assert "not a comment" not in out and "real" not in out
        assert out.count('"') == 2

    def test_multiline_string(self) -> None:
        src = 'f "line1\n#exit\nline3" g'
        out = mask_comments_and_strings(src)
        _same_shape(src, out)
        assert "#exit" not in out and out.endswith('" g')

    def test_char_literals(self) -> None:
        src = "f 'a' '\\n' '\"' x"
        out = mask_comments_and_strings(src)
        _same_shape(src, out)
        assert out == "f ' ' '  ' ' ' x"

    def test_prime_in_identifiers_is_not_char(self) -> None:
        src = "have h' : f'' x = g' y := by simp [h'']\n-- c"
        out = mask_comments_and_strings(src)
        assert out.splitlines()[0] == src.splitlines()[0]

    def test_comment_start_inside_string_ignored(self) -> None:
        src = 'x "/-" y -- z'
        assert mask_comments_and_strings(src) == 'x "  " y --  '

    def test_unterminated_comment_runs_to_end(self) -> None:
        src = "a /- open\nforever"
        out = mask_comments_and_strings(src)
        _same_shape(src, out)
        assert "forever" not in out


class TestHeader:
    def test_benchmark_header(self) -> None:
        text = HEADER + "theorem x : True := trivial\n"
        header, rest, n = split_header(text)
        assert header == HEADER
        assert rest == "theorem x : True := trivial\n"
        assert n == 6
        assert header + rest == text

    def test_open_continuation_lines(self) -> None:
        text = "import Mathlib\nopen Real\n  Nat Finset\ntheorem x : True := trivial"
        header, rest, n = split_header(text)
        assert header == "import Mathlib\nopen Real\n  Nat Finset\n"
        assert rest.startswith("theorem")
        assert n == 3

    def test_set_option_in_ends_header(self) -> None:
        text = "import Mathlib\nset_option maxHeartbeats 400000 in\ntheorem x : True := trivial"
        header, rest, n = split_header(text)
        assert header == "import Mathlib\n"
        assert rest.startswith("set_option maxHeartbeats 400000 in")
        assert n == 1

    def test_open_in_same_line_ends_header(self) -> None:
        text = "open Real\nopen Nat in theorem x : True := trivial"
        header, rest, _ = split_header(text)
        assert header == "open Real\n"
        assert rest.startswith("open Nat in")

    def test_comment_lines_are_header_but_doc_comment_is_not(self) -> None:
        text = "import Mathlib\n-- hello\n/-- doc -/\ntheorem x : True := trivial"
        header, rest, n = split_header(text)
        assert header == "import Mathlib\n-- hello\n"
        assert rest.startswith("/-- doc")
        assert n == 2

    def test_no_header(self) -> None:
        text = "  nlinarith [sq_nonneg (a - b)]\n"
        assert split_header(text) == ("", text, 0)

    def test_import_must_start_line(self) -> None:
        text = "  import Mathlib\n"
        assert split_header(text)[0] == ""

    def test_whole_text_is_header(self) -> None:
        text = "import Mathlib\nopen Real"
        assert split_header(text) == (text, "", 2)

    def test_normalize_header(self) -> None:
        a = "import Mathlib  \n\n-- comment\nopen Real /- c -/\n\n"
        b = "import Mathlib\nopen Real"
        assert normalize_header(a) == normalize_header(b) == "import Mathlib\nopen Real"
        assert normalize_header(HEADER) == (
            "import Mathlib\nset_option maxHeartbeats 0\nopen BigOperators Real Nat Topology Rat"
        )
        assert normalize_header("import Mathlib\nimport Aesop") != normalize_header(
            "import Mathlib"
        )


SRC = """-- leading comment
/-- doc -/
@[simp] private theorem foo : True := trivial

namespace A.B
lemma bar : True := by
  trivial
set_option maxHeartbeats 1000 in
theorem baz : True := trivial
end A.B
open Real in theorem q : True := trivial
#eval 1
example : True := by
  exact trivial
theorem _root_.top : True := trivial
noncomputable def d : ℕ := 1
instance : Inhabited ℕ := ⟨0⟩
"""


class TestCommands:
    def test_keywords_and_lines(self) -> None:
        cmds = top_level_commands(SRC)
        got = [(c.keyword, c.name, c.start_line, c.end_line) for c in cmds]
        assert got == [
            ("theorem", "foo", 2, 3),
            ("namespace", "A.B", 5, 5),
            ("lemma", "bar", 6, 7),
            ("theorem", "baz", 8, 9),
            ("end", "A.B", 10, 10),
            ("theorem", "q", 11, 11),
            ("#eval", None, 12, 12),
            ("example", None, 13, 14),
            ("theorem", "_root_.top", 15, 15),
            ("def", "d", 16, 16),
            ("instance", None, 17, 17),
        ]

    def test_offsets_partition(self) -> None:
        cmds = top_level_commands(SRC)
        for a, b in zip(cmds, cmds[1:], strict=False):
            assert a.end == b.start
        assert cmds[-1].end == len(SRC)
        assert SRC[cmds[0].start :].startswith("/-- doc")
        assert SRC[cmds[0].keyword_offset :].startswith("theorem foo")

    def test_modifiers_attributes_in_prefix(self) -> None:
        cmds = {c.name: c for c in top_level_commands(SRC)}
        assert cmds["foo"].modifiers == ("private",)
        assert cmds["foo"].attributes == ("simp",)
        assert SRC[cmds["baz"].start : cmds["baz"].in_prefix_end].strip() == (
            "set_option maxHeartbeats 1000 in"
        )
        assert cmds["bar"].in_prefix_end == -1

    def test_indented_and_commented_keywords_are_not_commands(self) -> None:
        text = "  theorem x : True := trivial\n-- theorem y\n/- theorem z -/\nx theorem"
        assert top_level_commands(text) == []

    def test_hash_word_only(self) -> None:
        cmds = top_level_commands("#[1, 2].size\n#print axioms foo\n#check (1 : ℕ)\n")
        assert [c.keyword for c in cmds] == ["#print", "#check"]

    def test_open_in_before_tactic_is_not_command(self) -> None:
        assert top_level_commands("open Real in\nnorm_num\n") == []
        assert top_level_commands("set_option maxRecDepth 100 in\nsimp\n") == []

    def test_attribute_line_before_keyword_is_one_command(self) -> None:
        cmds = top_level_commands("@[simp]\ntheorem t : True := trivial\n")
        assert len(cmds) == 1 and cmds[0].keyword == "theorem" and cmds[0].start == 0

    def test_bare_attribute(self) -> None:
        cmds = top_level_commands("@[simp] foo\n")
        assert [c.keyword for c in cmds] == ["@["]

    def test_word_prefix_is_not_keyword(self) -> None:
        assert top_level_commands("theorems are nice\ndefinitely\nend_x\n") == []


class TestDeclarations:
    def test_qualified_names(self) -> None:
        names = [(d.keyword, d.name) for d in declarations(SRC)]
        assert names == [
            ("theorem", "foo"),
            ("lemma", "A.B.bar"),
            ("theorem", "A.B.baz"),
            ("theorem", "q"),
            ("example", None),
            ("theorem", "top"),
            ("def", "d"),
            ("instance", None),
        ]

    def test_sections_and_mutual(self) -> None:
        text = (
            "namespace N\nsection S\ntheorem a : True := trivial\nend S\n"
            "mutual\ndef f : ℕ := 0\nend\ntheorem b : True := trivial\nend N\n"
            "theorem c : True := trivial\n"
        )
        assert [d.name for d in declarations(text)] == ["N.a", "N.f", "N.b", "c"]

    def test_offsets_and_lines(self) -> None:
        text = "theorem a : True := by\n  trivial\n\ntheorem b : True := trivial\n"
        a, b = declarations(text)
        assert (a.start_line, a.end_line, b.start_line, b.end_line) == (1, 2, 4, 4)
        assert text[a.start : a.end].rstrip() == "theorem a : True := by\n  trivial"
        assert a.local_name == "a"

    def test_guillemets(self) -> None:
        assert declarations("theorem «my thm» : True := trivial")[0].name == "my thm"


class TestSignatureEnd:
    def test_depth_zero(self) -> None:
        code = "theorem x (h : (a := 1) = b) {y : T := d} : P := by simp"
        pos = signature_end(code, 0, len(code))
        assert code[pos:] == ":= by simp"

    def test_missing(self) -> None:
        assert signature_end("theorem x : P", 0, 13) == -1


class TestLeanReading:
    """The masks and the command scan read text as Lean's lexer does."""

    def test_slash_dash_slash_comment_does_not_hide_code(self) -> None:
        src = "theorem t : True := trivial /-/- -/\nrun_cmd foo\n-- -/\n"
        assert "run_cmd" in mask_all(src)
        assert [c.keyword for c in top_level_commands(src)] == ["theorem", "run_cmd"]

    def test_doc_comment_opened_by_four_chars(self) -> None:
        src = "/--/ hidden -/\ntheorem t : True := trivial"
        assert "hidden" not in mask_all(src)
        assert top_level_commands(src)[0].start == 0

    def test_plain_string_brace_does_not_hide_code(self) -> None:
        src = 'def s := "{"\nrun_cmd foo\ndef u := "}"\n'
        assert "run_cmd" in mask_all(src)
        assert "run_cmd" in [c.keyword for c in top_level_commands(src)]

    def test_interpolated_hole_stays_visible(self) -> None:
        assert "run_tac" in mask_all('exact s!"{(by run_tac x)}"')
        assert "run_tac" in mask_comments_and_strings('exact s!"{(by run_tac x)}"')

    def test_glued_numeral_and_char(self) -> None:
        src = "theorem t : True := trivial\nexample := 1\n'b'run_cmd x\n"
        assert "run_cmd" in mask_all(src)

    def test_is_ident_char_is_lean_id_rest(self) -> None:
        assert is_ident_char("℘") and is_ident_char("₀") and is_ident_char("é")
        assert not is_ident_char("λ") and not is_ident_char("д") and not is_ident_char(".")

    def test_bom_goes_with_the_header(self) -> None:
        text = "\ufeffimport Mathlib\ntheorem x : True := trivial\n"
        header, rest, n = split_header(text)
        assert header == "\ufeffimport Mathlib\n" and rest.startswith("theorem") and n == 1
        header, rest, n = split_header("\ufefftheorem x : True := trivial\n")
        assert header == "\ufeff" and rest.startswith("theorem") and n == 0
        assert normalize_header("\ufeffimport Mathlib\n") == "import Mathlib"
        assert mask_all(text).startswith(" import")
        assert [c.keyword for c in top_level_commands(text)] == ["theorem"]

    def test_attribute_run_without_keyword_is_one_command(self) -> None:
        cmds = top_level_commands("@[simp]\n@[simp]\nfoo\n")
        assert [(c.keyword, c.attributes) for c in cmds] == [("@[", ("simp", "simp"))]

    def test_skip_brackets_matches(self) -> None:
        code = "@[a [b] c] [d"
        assert skip_brackets(code, 1) == code.index("]", 7) + 1
        assert skip_brackets(code, 4) == 7
        assert skip_brackets(code, code.rindex("[")) == len(code)


@pytest.mark.slow
class TestLinear:
    """A proof then N lines of `@[simp]` once took 41 s at 32 KB: these stay linear."""

    @pytest.mark.parametrize("fn", [top_level_commands, mask_all, declarations, split_header])
    def test_simp_lines_160kb(self, fn: Callable[[str], object]) -> None:
        text = "theorem t : True := by omega\n" + "@[simp]\n" * (160 * 1024 // 8)
        t0 = time.perf_counter()
        fn(text)
        assert time.perf_counter() - t0 < 3.0

    def test_other_shapes_160kb(self) -> None:
        shapes = [
            "private\n" * 20000,
            "@[" * 80000,
            "open A in\n" * 16000,
            "set_option a 1 in " * 8000,
            "namespace A\n" * 13000,
        ]
        for text in shapes:
            t0 = time.perf_counter()
            top_level_commands(text)
            mask_all(text)
            code = mask_all(text)
            for i in range(0, len(code), 2):
                if code[i] == "[":
                    skip_brackets(code, i)
            assert time.perf_counter() - t0 < 3.0, text[:20]
