"""Canaries: proofs whose verdict is known in advance, for `prover selftest`.

Each canary is checked the way `prover check` checks a proof (model code through the
verifier's `check`, or a whole file as in FILE mode) and carries two expectations: the reason
with the text scan on (the default verifier), and the reason with the scan off
(`--lean-only`), where the Lean-side rungs alone (error, sorry, axioms, kernel replay) must
reject every true cheat. What only the scan refuses and Lean would not call unsound
(`exact?`, ...) has no `--lean-only` expectation: `lean_only` is None and `not_lean_only`
says why.

The cheats follow the known classes of scan bypass: text that an earlier hand-written lexer read
differently from Lean, hiding a payload that Lean runs. The payload sets
`debug.skipKernelTC`, adds `theorem cheat : False := True.intro` through `Lean.addDecl`
(accepted unchecked: Lean reports no error and `#print axioms` no axiom) and proves the
target with `cheat.elim`; only a kernel replay in a fresh environment rejects it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from prover.lean.verdict import CheckItem

SUPPORTED_VERSIONS: tuple[str, ...] = ("4.9", "4.24", "4.27")
DEFAULT_VERSION = "4.24"  # the default image's Lean

# Benchmark headers of each version's shipped suites (miniF2F at v4.9 and v4.24; PutnamBench at
# v4.27 imports Mathlib alone), with a heartbeat cap so a canary never runs unbounded.
HEADERS: dict[str, str] = {
    "4.9": "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n\n",
    "4.24": "import Mathlib\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n\n",
    "4.27": "import Mathlib\n\nset_option maxHeartbeats 400000\n\nopen Real Nat\n\n",
}

# `Lean.addDecl` without the kernel: `debug.skipKernelTC` makes Lean's `Environment.addDecl`
# call `addDeclWithoutChecking` (lean4 src/Lean/AddDecl.lean); `liftCoreM` runs the CoreM
# action in `run_cmd`'s CommandElabM at every supported version.
SKIP_KERNEL = "set_option debug.skipKernelTC true"
ADD_CHEAT = (
    "run_cmd Lean.Elab.Command.liftCoreM (Lean.addDecl (.thmDecl { name := `cheat, "
    "levelParams := [], type := .const ``False [], value := .const ``True.intro [] }))"
)
PAYLOAD = f"{SKIP_KERNEL}\n{ADD_CHEAT}"
USE_CHEAT = "  exact cheat.elim\n"
WARM_UP = "theorem selftest_warm_up : True := trivial\n\n"

NOT_UNSOUND = (
    "a scan-only refusal: `{what}` either closes the goal with a checked proof or fails, "
    "so Lean's rungs have nothing unsound to reject"
)
NO_LEAN_ANSWER = "refused by the scan before Lean: the corpus records no Lean answer for it"


@dataclass(frozen=True)
class Canary:
    """One proof with its expected verdicts. Exactly one of `item` (model code, checked as
    `prover check --jsonl` does) and `file` (a whole .lean file, as `prover check FILE`;
    `theorem` names the theorem whose verdict counts) is set."""

    id: str
    cls: str  # "honest", "cheat 1: block comment", ..., "classic", "red-team"
    expected: str  # verdict reason with the text scan on
    lean_only: str | None  # verdict reason with the scan off; None: not applicable
    why: str
    item: CheckItem | None = None
    file: str | None = None
    theorem: str = ""
    not_lean_only: str = ""  # why there is no `--lean-only` expectation

    @property
    def honest(self) -> bool:
        return self.cls == "honest" or (self.cls == "red-team" and self.expected == "ok")


def normalize_version(version: str) -> str:
    """`v4.24.0`, `4.24.0-rc1`, `4.24` -> `4.24`."""
    parts = version.strip().removeprefix("v").split(".")
    return ".".join(p.split("-")[0] for p in parts[:2])


def _item(version: str, name: str, statement: str, proof: str) -> CheckItem:
    return CheckItem(name, HEADERS[version], statement, proof)


def _cheat(version: str, cls: str, key: str, lead: str, why: str) -> Canary:
    """A payload canary: model code `lead` (hiding the payload), then the target theorem."""
    name = "selftest_" + key.replace("-", "_")
    statement = f"theorem {name} : (1 : ℕ) = 2 := by\n"
    # a helper first: leading command lines would be the model's own header, never sent
    proof = f"{WARM_UP}{lead}\n{statement}{USE_CHEAT}"
    return Canary(
        f"cheat-{key}", cls, "banned", "replay", why, _item(version, name, statement, proof)
    )


def builtin(version: str) -> list[Canary]:
    """The built-in canaries (honest proofs, cheat classes 1-6, classic cheats)."""
    v = version
    out: list[Canary] = [
        # -- honest proofs: accepted with the scan on and off -------------------------------
        Canary(
            "honest-norm-num", "honest", "ok", "ok", "`norm_num` on real arithmetic",
            _item(v, "selftest_norm_num", "theorem selftest_norm_num : (2 : ℝ) + 2 = 4 := by\n",
                  "  norm_num\n"),
        ),
        Canary(
            "honest-omega", "honest", "ok", "ok", "`omega` on natural numbers",
            _item(v, "selftest_omega",
                  "theorem selftest_omega (n : ℕ) (h₀ : n % 4 = 3) : n % 2 = 1 := by\n",
                  "  omega\n"),
        ),
        Canary(
            "honest-linarith", "honest", "ok", "ok", "`linarith` on two linear hypotheses",
            _item(v, "selftest_linarith",
                  "theorem selftest_linarith (x y : ℝ) (h₀ : x + y = 10) (h₁ : x - y = 2) :"
                  " x = 6 := by\n",
                  "  linarith\n"),
        ),
        Canary(
            "honest-term", "honest", "ok", "ok", "a term proof",
            _item(v, "selftest_term", "theorem selftest_term (a b : ℕ) : a + b = b + a := by\n",
                  "theorem selftest_term (a b : ℕ) : a + b = b + a :=\n  Nat.add_comm a b\n"),
        ),
        Canary(
            "honest-helper", "honest", "ok", "ok", "a helper lemma before the theorem",
            _item(v, "selftest_helper",
                  "theorem selftest_helper (x : ℝ) : 2 * x ≤ x ^ 2 + 1 := by\n",
                  "lemma selftest_helper_sq (x : ℝ) : 0 ≤ (x - 1) ^ 2 := sq_nonneg (x - 1)\n\n"
                  "theorem selftest_helper (x : ℝ) : 2 * x ≤ x ^ 2 + 1 := by\n"
                  "  nlinarith [selftest_helper_sq x]\n"),
        ),
        Canary(
            "honest-renamed-hypothesis", "honest", "ok", "ok",
            "the statement says `h0` for the benchmark's `h₀`: equal up to binder names",
            _item(v, "selftest_rename",
                  "theorem selftest_rename (a b : ℝ) (h₀ : 3 * a + 2 * b = 12) (h₁ : a = 4) :"
                  " b = 0 := by\n",
                  "theorem selftest_rename (a b : ℝ) (h0 : 3 * a + 2 * b = 12) (h1 : a = 4) :"
                  " b = 0 := by\n  rw [h1] at h0\n  linarith\n"),
        ),
        Canary(
            "honest-classical", "honest", "ok", "ok", "uses `Classical.em` (standard axioms)",
            _item(v, "selftest_classical",
                  "theorem selftest_classical (p : Prop) : p ∨ ¬p := by\n",
                  "  exact Classical.em p\n"),
        ),
        # -- the scan-bypass classes: the payload hidden from an earlier lexer ---------------
        _cheat(v, "cheat 1: block comment", "block-comment", f"/-/- -/\n{PAYLOAD}\n-- -/",
               "`/-/- -/` is one whole comment to Lean; the old scan counted two openers"),
        _cheat(v, "cheat 2: doc comment", "doc-comment",
               f'/--/ " -/\ndef selftest_doc : ℕ := 0\n{PAYLOAD}\n-- "',
               "`/--/` opens a doc comment running to the next `-/`; the old scan closed it"),
        _cheat(v, "cheat 3: plain string", "plain-string",
               f'def selftest_open : String := "{{"\n{PAYLOAD}\n'
               'def selftest_close : String := "}"',
               'a plain string has no `{...}` holes: `"{"` ... `"}"` hid the payload'),
        _cheat(v, "cheat 4: glued numeral", "glued-numeral",
               f"def selftest_one : ℕ := 1{SKIP_KERNEL}\ndef selftest_two : ℕ := 2{ADD_CHEAT}",
               "`1set_option`, `2run_cmd`: the numeral ends and a command starts"),
        _cheat(v, "cheat 4: glued char literal", "glued-char",
               f"def selftest_one : ℕ := 1{SKIP_KERNEL}\n"
               f"def selftest_char : Char := 'b'{ADD_CHEAT}",
               "`'b'run_cmd`: the char literal ends and a command starts"),
        _cheat(v, "cheat 5: identifier characters", "letterlike-ident",
               "def selftest_wp (℘' : String → String) : String := ℘'\"'x\"\n"
               f"{PAYLOAD}\n-- \"",
               "`℘'` is a name to Lean (℘ is letter-like), then a string; the old scan read a "
               "char literal and an open string"),
        Canary(
            "cheat-file-header", "cheat 6: FILE-mode header", "banned", "replay",
            "a file's leading `set_option debug.skipKernelTC true` is a header line: it must "
            "be scanned like the rest",
            file=f"import Mathlib\n{SKIP_KERNEL}\n\n{ADD_CHEAT}\n\n"
            f"theorem selftest_file_header : (1 : ℕ) = 2 := by\n{USE_CHEAT}",
            theorem="selftest_file_header",
        ),
        # -- classic cheats -------------------------------------------------------------------
        Canary(
            "classic-sorry", "classic", "sorry", "sorry", "`sorry`",
            _item(v, "selftest_sorry", "theorem selftest_sorry : (1 : ℕ) = 2 := by\n",
                  "  sorry\n"),
        ),
        Canary(
            "classic-admit", "classic", "sorry", "sorry", "`admit` is `sorry`",
            _item(v, "selftest_admit", "theorem selftest_admit : (1 : ℕ) = 2 := by\n",
                  "  admit\n"),
        ),
        Canary(
            "classic-axiom", "classic", "banned", "axiom", "a custom `axiom` proves anything",
            _item(v, "selftest_axiom", "theorem selftest_axiom : (1 : ℕ) = 2 := by\n",
                  "axiom selftest_magic : (1 : ℕ) = 2\n\n"
                  "theorem selftest_axiom : (1 : ℕ) = 2 := by\n  exact selftest_magic\n"),
        ),
        Canary(
            "classic-native-decide", "classic", "native", "native",
            "`native_decide` trusts the compiler (rejected unless --allow-native)",
            _item(v, "selftest_native", "theorem selftest_native : (2 : ℕ) ^ 10 = 1024 := by\n",
                  "  native_decide\n"),
        ),
        Canary(
            "classic-instance", "classic", "banned", "error",
            "a helper `instance` makes `2 + 2 = 5` true as written: not the benchmark's "
            "statement",
            _item(v, "selftest_instance", "theorem selftest_instance : (2 : ℕ) + 2 = 5 := by\n",
                  "instance (priority := high) selftest_bad_add : Add ℕ := ⟨fun _ _ => 5⟩\n\n"
                  "theorem selftest_instance : (2 : ℕ) + 2 = 5 := by\n  rfl\n"),
        ),
        Canary(
            "classic-other-statement", "classic", "error", "error",
            "the model proves a theorem of another statement under the benchmark's name",
            _item(v, "selftest_other",
                  "theorem selftest_other (n : ℕ) (h₀ : n % 2 = 1) : n % 4 = 1 := by\n",
                  "theorem selftest_other (n : ℕ) (h₀ : n % 2 = 1) : n % 2 = 1 := by\n"
                  "  exact h₀\n"),
        ),
        Canary(
            "classic-exact-question", "classic", "banned", None,
            "`exact?` is a search tactic, refused before Lean",
            _item(v, "selftest_exact_q", "theorem selftest_exact_q (n : ℕ) : n + 0 = n := by\n",
                  "  exact?\n"),
            not_lean_only=NOT_UNSOUND.format(what="exact?"),
        ),
        Canary(
            "classic-apply-question", "classic", "banned", None,
            "`apply?` is a search tactic, refused before Lean",
            _item(v, "selftest_apply_q", "theorem selftest_apply_q (n : ℕ) : n + 0 = n := by\n",
                  "  apply?\n"),
            not_lean_only=NOT_UNSOUND.format(what="apply?")
            + " (a goal it admits shows up as `sorry`)",
        ),
    ]  # fmt: skip
    return out


@cache
def redteam_entries() -> tuple[dict[str, Any], ...]:
    """The project's red-team corpus (shipped in the package): cheats and honest proofs, each
    with `expected_reason` and what real Lean answers (`lean`)."""
    text = resources.files(__package__).joinpath("redteam.jsonl").read_text(encoding="utf-8")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


def redteam() -> list[Canary]:
    out = []
    for entry in redteam_entries():
        expected = entry["expected_reason"]
        scan_only = expected == "banned"
        out.append(
            Canary(
                f"redteam-{entry['id']}",
                "red-team",
                expected,
                None if scan_only else expected,
                entry.get("why", ""),
                CheckItem(
                    entry["name"], entry["header"], entry["formal_statement"], entry["proof"]
                ),
                not_lean_only=NO_LEAN_ANSWER if scan_only else "",
            )
        )
    return out


def canaries(version: str) -> list[Canary]:
    """Every canary for Lean `version` (one of SUPPORTED_VERSIONS): built-in, then red-team."""
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"no canaries for Lean {version}; supported: {', '.join(SUPPORTED_VERSIONS)}"
        )
    return builtin(version) + redteam()


def probe_item(version: str) -> CheckItem:
    """An honest proof checked before the canaries: if it is not accepted, the machinery
    (REPL, header, server) is broken, which is no verdict about any canary."""
    return _item(
        version,
        "selftest_probe",
        "theorem selftest_probe : (1 : ℕ) + 1 = 2 := by\n",
        "  norm_num\n",
    )
