"""Lean's command keywords, and which of them model code may use.

A command keyword is a token that begins a `command` syntax. Lean's command parser starts a new
command wherever the previous one ends, which can be mid-line (`theorem t : True := trivial
run_cmd ...`, `1set_option ...`), so every such token is a command start wherever it appears
(the scan lists the few non-command uses it knows).

Sources (read with the `search` tool, cited per group below):
- Lean 4 `src/Lean/Parser/Command.lean` (every `@[builtin_command_parser]`, `declModifiers`,
  `sectionHeader`, and the term/tactic `open ... in` / `set_option ... in` forms at its end);
  `src/Lean/Parser/Syntax.lean` and `src/Init` for `syntax`/`macro`/`elab`/notation commands,
  `simproc`s, `run_cmd`/`run_elab`/`run_meta` (`Lean.runCmd`, ...), `#guard_msgs`, `#time`.
- Seasawher/mathlib4-help `src/commands.md`: every command of a Mathlib build (Lean core,
  Batteries, Aesop, ProofWidgets, LeanSearchClient, Plausible/SlimCheck and Mathlib), by name
  and defining declaration.
"""

from __future__ import annotations

# Lean core: src/Lean/Parser/Command.lean (declarations, scopes, `#` commands, options, ...).
_CORE = """
abbrev def theorem opaque instance axiom example inductive coinductive structure class
deriving section namespace end with_weak_namespace end_local_scope variable universe
init_quot docs_to_verso set_option attribute export import open mutual initialize
builtin_initialize add_decl_doc register_tactic_tag tactic_extension recommended_spelling
gen_injective_theorems register_error_explanation include omit module prelude
private public protected meta noncomputable unsafe partial nonrec local scoped
assert_not_exists assert_not_imported
"""
# Lean core outside Command.lean: syntax extension (src/Lean/Parser/Syntax.lean), simprocs
# (src/Init/Simproc.lean), `run_*` (src/Lean/Elab/...: Lean.runCmd, runElab, runMeta),
# options (Lean.Option.registerBuiltinOption / registerOption), grind, unification hints.
_CORE_EXTENSIONS = """
syntax macro macro_rules elab elab_rules notation infix infixl infixr prefix postfix
declare_syntax_cat binder_predicate run_cmd run_elab run_meta simproc dsimproc
simproc_decl dsimproc_decl builtin_simproc builtin_dsimproc builtin_simproc_decl
builtin_dsimproc_decl simproc_pattern builtin_simproc_pattern register_simp_attr
declare_simp_like_tactic declare_config_elab declare_command_config_elab
register_builtin_option register_option register_label_attr unif_hint seal unseal
grind_pattern init_grind_norm reset_grind_attrs elab_stx_quot test_extern unset_option
declare_uint_theorems declare_bitwise_uint_theorems declare_uint_simprocs
show_panel_widgets
"""
# Batteries, Aesop and Mathlib (mathlib4-help src/commands.md), with `lemma` (Mathlib
# `Mathlib/Tactic/Lemma.lean`) and `variable?` (Mathlib `Mathlib/Tactic/Variable.lean`).
_LIBRARIES = """
lemma alias library_note proof_wanted add_aesop_rules erase_aesop_rules
declare_aesop_rule_sets irreducible_def initialize_simps_projections
initialize_simps_projections? lrat_proof mk_iff_of_inductive_prop notation3 recall
register_hint suppress_compilation unsuppress_compilation sudo deprecate extend_docs
compile_def compile_inductive count_heartbeats count_heartbeats! norm_cast_add_elim
assert_exists assert_no_sorry variable? whatsnew def_wanted theorem_wanted instance_wanted
"""

COMMAND_KEYWORDS: frozenset[str] = frozenset((_CORE + _CORE_EXTENSIONS + _LIBRARIES).split())

# Every `#` command of the same sources. Lean reads the longest token its table holds, so
# `#evalx` is `#eval` then `x`: a `#word` token is a command when one of these is a prefix of
# it. Any other `#word` is a command at column 0; elsewhere it reads as Mathlib's `#s`
# (`Finset.card`) applied to a name.
HASH_COMMANDS: frozenset[str] = frozenset(
    """
#adaptation_note #aesop_rules #aesop_stats #allow_unused_tactic #check #check_assertions
#check_failure #check_simp #check_tactic #check_tactic_failure #conv #discr_tree_key
#discr_tree_simp_key #eval #exit #explode #find #find_home #guard #guard_expr #guard_msgs
#help #html #import_path #instances #kerodon_tags #leansearch #lint #list_linters
#long_instances #long_names #loogle #min_imports #minimize_imports #moogle #norm_num #print
#push_neg #reduce #redundant_imports #reset_min_imports #sample #show_unused #simp
#stacks_tags #string_diagram #synth #test #time #unfold? #where #whnf #whnfR #widget
#version #with_exporting #dump_async_env_state #count_heartbeats #kernel_reduce #statesearch
#trans_imports #parse #defeq_abuse #guard_target #show_term #find_syntax #grind_lint
""".split()
)

# What a proof needs: declarations, scopes, `open`, a few options, doc comments, tagging
# attributes. Any other command keyword in model code is banned however it is spelled.
ALLOWED_COMMANDS: frozenset[str] = frozenset(
    """
theorem lemma def abbrev example noncomputable private protected open namespace section end
set_option attribute
""".split()
)

# Options a proof may set. Limits (heartbeats, recursion depth, instance search) and output
# only (`pp.*`; `linter.*` warnings; `trace.*` info messages: noisy, but bounded by the
# check's timeout and never changing what is proved). Elaboration switches (`autoImplicit`,
# `relaxedAutoImplicit`, `exponentiation.threshold`, `push_neg.use_distrib`) can only change
# which statement the text means, and Lean's statement check judges that. Never `debug.*`
# (`debug.skipKernelTC` skips the kernel).
ALLOWED_OPTIONS: frozenset[str] = frozenset(
    """
maxHeartbeats maxRecDepth synthInstance.maxHeartbeats synthInstance.maxSize
maxSynthPendingDepth exponentiation.threshold autoImplicit relaxedAutoImplicit
push_neg.use_distrib
""".split()
)
ALLOWED_OPTION_PREFIXES: tuple[str, ...] = ("pp.", "linter.", "trace.")

# Attributes that only tag: they add the (kernel-checked) declaration to a table that a tactic
# reads (`simp`, `ext`, `norm_cast`, `push_cast`, `field_simps`, `gcongr`, `aesop` rules but
# not `aesop ... tactic`, `refl`/`symm`/`trans`, `simps`, `to_additive`), set its
# transparency (`reducible`, `irreducible`, `semireducible`) or a compiler hint that never runs
# at check time (`inline`, `noinline`, `specialize`), or document (`nolint`, `deprecated`).
# `instance`, `implemented_by`, `extern`, `csimp` and every meta registration are not here.
ALLOWED_ATTRIBUTES: frozenset[str] = frozenset(
    """
simp ext norm_cast push_cast field_simps gcongr aesop refl symm trans simps to_additive
reducible irreducible semireducible inline noinline specialize nolint deprecated
elab_as_elim
""".split()
)
