"""Constructs refused before Lean: each banned one is found, harmless look-alikes are not."""

from __future__ import annotations

import pytest

from prover.lean.banned import find_banned

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
