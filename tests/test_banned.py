"""Constructs refused before Lean: each banned one is found, harmless look-alikes are not."""

from __future__ import annotations

import random

import pytest

from prover.lean.banned import find_banned, scan

BANNED = [
    ("  exact?", "exact?"),
    ("  subst h\n  apply?", "apply?"),
    ("  hint", "hint"),
    ("  library_search", "library_search"),
    ("axiom cheat : False", "axiom"),
    ("private axiom cheat : False", "axiom"),
    ("theorem t : True := trivial axiom c : False", "axiom"),
    ("import Mathlib.Tactic", "import"),
    ("#exit", "#exit"),
    ("  simp\n  #exit", "#exit"),
    ("theorem t : True := trivial #exit", "#exit"),
    ("#eval 1 + 1", "#eval"),
    ("  #print axioms foo", "#print"),
    ("#check Nat", "#check"),
    ("#mywidget foo", "#mywidget"),
    ("set_option debug.skipKernelTC true", "debug.skipKernelTC"),
    ("set_option debug.skipKernelTC true in\ntheorem t : True := trivial", "debug.skipKernelTC"),
    ("  set_option debug.byAsSorry true in\n  simp", "debug.byAsSorry"),
    ("@[implemented_by g] def f := 1", "implemented_by"),
    ('@[extern "c_f"] opaque f : ℕ', "extern"),
    ("@[csimp] theorem c : @f = @g := rfl", "csimp"),
    ("attribute [csimp] c", "csimp"),
    ("@[simp, implemented_by g] def f := 1", "implemented_by"),
    ('macro "linarith" : tactic => `(tactic| sorry)', "macro"),
    ("macro_rules | `(tactic| trivial) => `(tactic| sorry)", "macro_rules"),
    ('syntax "cheat" : tactic', "syntax"),
    ('notation "π" => (3 : ℝ)', "notation"),
    ('local notation "π" => (3 : ℝ)', "notation"),
    ('infixl:65 " +\' " => HAdd.hAdd', "infixl"),
    ('infix:50 " ~ " => Eq', "infix"),
    ('prefix:max "√" => Real.sqrt', "prefix"),
    ('postfix:max "!" => Nat.factorial', "postfix"),
    ('elab "x" : tactic => pure ()', "elab"),
    ("elab_rules : tactic | `(tactic| x) => pure ()", "elab_rules"),
    ("run_cmd pure ()", "run_cmd"),
    ("  run_tac pure ()", "run_tac"),
    ("run_elab pure ()", "run_elab"),
    ("run_meta pure ()", "run_meta"),
    ("unsafe def f : ℕ := 1", "unsafe"),
    ("instance : OfNat ℕ 2 := ⟨3⟩", "instance"),
    ("local instance : OfNat ℕ 2 := ⟨3⟩", "instance"),
    ("scoped instance : OfNat ℕ 2 := ⟨3⟩", "instance"),
    ("attribute [instance] foo", "instance"),
    ("attribute [local instance] foo", "instance"),
    ("attribute [-instance] Real.instLE", "instance"),
    ("initialize pure ()", "initialize"),
    ("@[tactic Lean.Parser.Tactic.omega] def t : Tactic := fun _ => pure ()", "tactic"),
    ("@[aesop safe tactic] def t : TacticM Unit := pure ()", "tactic"),
    ("namespace Foo\ntheorem t : True := trivial", "namespace Foo"),
    ("section\nvariable (x : ℕ)\ntheorem t : x = x := rfl\nend", "variable"),
    ("  have hint : True := trivial", "hint"),
    ("  try hint", "hint"),
    (
        "namespace Cheat\ntheorem t : True := by\n  have «end» : True := trivial\n  trivial",
        "namespace",
    ),
    (
        'theorem «"» : True := trivial\ninstance i : OfNat ℝ 3 := ⟨0⟩\n'
        'theorem «x"» : True := trivial',
        "instance",
    ),
    ("theorem «/-» : True := trivial\naxiom c : False", "axiom"),
    (
        'theorem t : True := by\n  exact (s!"{(by run_tac pure ())}").length.le_refl ▸ trivial',
        "run_tac",
    ),
    ("set_option «debug».skipKernelTC true in\ntheorem t : True := trivial", "debug.skipKernelTC"),
    ("set_option «debug.skipKernelTC» true in\ntheorem t : True := trivial", "debug.skipKernelTC"),
    ("  #eval! 1", "#eval!"),
    ("  trivial#eval 1", "#eval"),
    ("dsimproc_decl d (_) := fun _ => pure .continue", "dsimproc_decl"),
    ("unif_hint (n : ℕ) where n =?= 1 ⊢ n =?= 2", "unif_hint"),
    ("@[term_parser] def p := 1", "term_parser"),
    ("mutual\ndef f : ℕ := 0", "mutual"),
    ("variable (h : False)", "variable"),
    ("variable [Fact False]\ntheorem t : True := trivial", "variable"),
    ("include h", "include"),
    ("  exact by_elab pure (mkConst ``True.intro)", "by_elab"),
]


@pytest.mark.parametrize(("code", "needle"), BANNED)
def test_banned(code: str, needle: str) -> None:
    got = find_banned(code)
    assert got is not None, code
    assert needle in got


ALLOWED = [
    "  nlinarith [sq_nonneg (a - b)]",
    "  -- exact? would find it\n  simp",
    "  /- #exit\n  axiom -/\n  simp",
    '  have : "sorry #exit import".length = 23 := by decide',
    "  simp?",
    "  rw? at h",
    "  aesop?",
    "  sorry",
    "  native_decide",
    "  decide +native",
    "section\ntheorem t : True := trivial",
    "noncomputable section\n\ntheorem t : True := trivial",
    "theorem «end» : True := trivial",
    'theorem t : True := by\n  have h := s!"{1} end axiom"\n  trivial',
    "  exact h.prefix",
    "  exact List.isPrefix_iff",
    "  exact infer_instance",
    "  exact inferInstance",
    "  have : #s = 3 := h",
    "  exact #[1, 2].size",
    "  set_option maxHeartbeats 400000 in\n  simp",
    "set_option maxRecDepth 10000 in\ntheorem t : True := trivial",
    "set_option linter.unusedVariables false",
    "set_option pp.all true in\n  simp",
    "set_option trace.Meta.synthInstance true in\n  simp",
    "@[simp] theorem t : 1 = 1 := rfl",
    "attribute [simp] foo",
    "namespace Foo\ntheorem t : True := trivial\nend Foo",
    "open Real in\n  simp",
    "open Finset",
    "theorem h' : True := trivial\nlemma f'' : True := h'",
    "  exact 'a'.isAlpha",
    "  apply ?_",
    "  refine ⟨?_, ?_⟩",
]


@pytest.mark.parametrize("code", ALLOWED)
def test_allowed(code: str) -> None:
    assert find_banned(code) is None


def test_first_construct_reported() -> None:
    got = find_banned("run_cmd pure ()\naxiom a : False\n  exact?")
    assert got is not None and "run_cmd" in got
    got = find_banned("  exact?\nnamespace N")
    assert got is not None and "exact?" in got


def test_unbalanced_scope_reported_last() -> None:
    got = find_banned("namespace N\n  apply?")
    assert got is not None and "apply?" in got


def test_descriptions_are_short_lines() -> None:
    for code, _ in BANNED:
        got = find_banned(code)
        assert got is not None and "\n" not in got and len(got) < 120


def test_debug_description() -> None:
    assert find_banned("set_option debug.skipKernelTC true") == (
        "`set_option debug.skipKernelTC` weakens checking"
    )


# -- the allowlist of model code ------------------------------------------------------------

NOT_ON_THE_ALLOWLIST = [
    ("universe u", "universe"),
    ("structure S where\n  x : ℕ", "structure"),
    ("inductive T | a", "inductive"),
    ("class C (α : Type) where", "class"),
    ("opaque o : ℕ", "opaque"),
    ("export Nat (succ)", "export"),
    ("alias foo := Nat.succ", "alias"),
    ("irreducible_def k : ℕ := 1", "irreducible_def"),
    ("proof_wanted p : False", "proof_wanted"),
    ("recall Nat.add_comm (n m : ℕ) : n + m = m + n", "recall"),
    ("seal Nat.add", "seal"),
    ("partial def f (n : ℕ) : ℕ := f n", "partial"),
    ("deriving instance Repr for Nat", "deriving"),
    ("assert_not_exists Foo", "assert_not_exists"),
    ('library_note "x" /-- y -/', "library_note"),
    ("declare_aesop_rule_sets [R]", "declare_aesop_rule_sets"),
    ("initialize_simps_projections Equiv (toFun → apply)", "initialize_simps_projections"),
    ("add_decl_doc Nat.succ", "add_decl_doc"),
    ('scoped[Nat] notation "x" => 1', "scoped"),
    ("theorem t : True := trivial omit h in", "omit"),
    (
        "set_option autoImplicit true in theorem t : True := trivial\n"
        "set_option tactic.hygienic false",
        "tactic.hygienic",
    ),
    ("@[instance] def i : Inhabited ℕ := ⟨0⟩", "instance"),
    ("@[positivity Nat.succ _] def ext := 1", "positivity"),
    ("@[simp, my_attr] theorem t : True := trivial", "my_attr"),
    ("attribute [local instance] Classical.propDecidable", "instance"),
    ("@[aesop safe tactic (rule_sets := [x])] def t := 1", "tactic"),
    ("theorem t : True := trivial #help tactic", "#help"),
    ("  exact (#evalx 1)", "#evalx"),
]


@pytest.mark.parametrize(("code", "needle"), NOT_ON_THE_ALLOWLIST)
def test_not_on_the_allowlist(code: str, needle: str) -> None:
    got = find_banned(code)
    assert got is not None and needle in got, (code, got)


ON_THE_ALLOWLIST = [
    "/-- doc -/\n@[simp] private theorem t : 1 = 1 := rfl",
    "@[simp ←, reducible] protected def f : ℕ := 1",
    "@[local simp] lemma l : True := trivial",
    "attribute [-simp] Nat.add_comm",
    "attribute [local simp] Nat.add_comm in\ntheorem t : True := trivial",
    "@[aesop safe apply (rule_sets := [x])] theorem a : True := trivial",
    "noncomputable def f : ℝ := Real.pi",
    "abbrev N := ℕ\nexample : N := 0",
    "open scoped BigOperators\nopen Real in\ntheorem t : True := trivial",
    "namespace A\nsection B\ntheorem t : True := trivial\nend B\nend A",
    "set_option maxRecDepth 1000 in\nset_option synthInstance.maxHeartbeats 0 in\n"
    "example : True := trivial",
    "  set_option pp.proofs true in\n  set_option linter.unusedTactic false in\n  simp",
    "/-! module doc -/\ntheorem t : True := trivial",
    "theorem t (hint₁ : True) : True := hint₁",
    "theorem t : True := by\n  exact (fun (x : ℕ) => trivial) 1",
    "  have h : (0x1F : ℕ) = 31 := by norm_num\n  have : (1e3 : ℝ) = 1000 := by norm_num\n  simp",
]


@pytest.mark.parametrize("code", ON_THE_ALLOWLIST)
def test_on_the_allowlist(code: str) -> None:
    assert find_banned(code) is None


FILE_MODE_ALLOWED = [
    "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\nopen Real\n",
    'instance : Inhabited ℕ := ⟨0⟩\nnotation "ℕ\'" => ℕ\nmacro "t" : tactic => `(tactic| rfl)',
    "structure S where\n  x : ℕ\nuniverse u\nset_option autoImplicit true",
    "theorem t (hint : True) : True := by\n  obtain ⟨hint⟩ := (⟨hint⟩ : Nonempty True)\n  trivial",
    "#check Nat\n#print axioms Nat.succ",
]


@pytest.mark.parametrize("code", FILE_MODE_ALLOWED)
def test_file_mode_wider_rules(code: str) -> None:
    assert find_banned(code, file_mode=True) is None


FILE_MODE_BANNED = [
    ("import Mathlib\nset_option debug.skipKernelTC true\n", "debug.skipKernelTC"),
    ("\ufeffimport Mathlib\nset_option «debug».byAsSorry true\n", "debug.byAsSorry"),
    ("import Mathlib\ntheorem t : True := trivial\nimport Cheat", "import"),
    ("theorem t : True := by\n  hint", "hint"),
    ("#eval 1", "#eval"),
    ("run_cmd pure ()", "run_cmd"),
    ("axiom a : False", "axiom"),
    ("@[csimp] theorem c : @id = @id := rfl", "csimp"),
]


@pytest.mark.parametrize(("code", "needle"), FILE_MODE_BANNED)
def test_file_mode_still_bans(code: str, needle: str) -> None:
    got = find_banned(code, file_mode=True)
    assert got is not None and needle in got, (code, got)


# -- generated token streams: every command start is found, whatever surrounds it -----------

# Fragments after which Lean's command parser can start a new command, spelled as Lean reads
# them (src/Lean/Parser/Basic.lean: numbers, char and string literals, comments, names).
_BEFORE = [
    "trivial", "1", "0x1F", "2.5e3", "'b'", "'\\n'", '"s"', '"{"', '"}"', 'r#"x"#', "`name",
    "/- c -/", "/-/- -/", "/--/ -/", "-- c\n", "℘'", "h₁", "«x y»", "(by simp)", "⟨1, 2⟩",
]  # fmt: skip
_GLUE = ["", " ", "\n", "\n\n  ", "\t"]
_BANNED_STARTS = [
    "run_cmd", "run_tac", "#eval", "#exit", "#print", "import", "axiom", "instance", "macro",
    "elab", "syntax", "notation", "universe", "variable", "sudo", "irreducible_def", "mutual",
    "initialize", "unsafe", "by_elab", "exact?", "#evalx", "set_option debug.skipKernelTC",
    "set_option «debug.skipKernelTC»", "@[implemented_by", "@[instance", "attribute [instance",
]  # fmt: skip


def _glue_ok(before: str, glue: str, word: str) -> bool:
    """Whether `before` + `glue` + `word` keeps `word` a token of its own: an identifier
    character after a name or numeral would continue it, a line comment needs its newline."""
    if before.startswith("--"):
        return True  # ends in a newline
    last, first = before[-1], word[0]
    if glue:
        return True
    if last.isalnum() or last in "_'!?₁»":
        return not (first.isalnum() or first in "_«")
    return True


def test_generated_streams_find_every_command_start() -> None:
    rng = random.Random(10)
    for _ in range(400):
        text = ""
        starts: list[int] = []
        for _ in range(rng.randint(1, 6)):
            before, glue = rng.choice(_BEFORE), rng.choice(_GLUE)
            text += "theorem t : True := " + before
            word = rng.choice(_BANNED_STARTS)
            if not _glue_ok(before, glue, word):
                glue = " "
            text += glue
            starts.append((len(text), len(text) + len(word)))
            text += word + " x\n"
        found = sorted(hit.offset for hit in scan(text))
        # the hit is the keyword's (or, in `attribute [instance`, the attribute name's)
        missing = [text[s:e] for s, e in starts if not any(s <= f < e for f in found)]
        assert missing == [], text
