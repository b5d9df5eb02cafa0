"""Time the Lean lexer, the masks and the whole pre-Lean scan against one regex pass.

Usage: python scripts/bench_scan.py [--sizes 1K,1M,8M]

The regex pass is `re.compile(r"\\w+|\\S").findall(text)`: one C-speed pass that touches every
word and symbol, the cheapest scan any tokenizer could be compared with. `scan` is
`banned.scan` (model-code rules), every reading it needs: strings plain and interpolated, and,
in the `glued` shape (a symbol right before a quote), symbols with and without `'-/` glued on.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable

from prover.lean import source
from prover.lean.banned import scan
from prover.lean.lexer import tokenize

PROOF = """theorem mathd_algebra_10 (x : ℝ) (h₀ : 0 < x) (h₁ : x ^ 2 = 4) : x = 2 := by
  -- the positive root
  have h₂ : (x - 2) * (x + 2) = 0 := by nlinarith [sq_nonneg (x - 2)]
  /- two cases, one impossible -/
  rcases mul_eq_zero.mp h₂ with h | h
  · linarith
  · exfalso; nlinarith [h₀, show (2 : ℝ) ≠ 0 from by norm_num, "a {string}", 'c']
"""
SIMP = "@[simp]\n"
_REGEX = re.compile(r"\w+|\S")
_UNITS = {"K": 1 << 10, "M": 1 << 20}


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _fresh_mask_all(text: str) -> str:
    """`mask_all` with its per-text token caches emptied first (it caches by value)."""
    source._tokens.cache_clear()
    source._interpolated_tokens.cache_clear()
    return source.mask_all(text)


def _size(word: str) -> int:
    return int(word[:-1]) * _UNITS[word[-1].upper()] if word[-1].upper() in _UNITS else int(word)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1K,1M,8M")
    args = parser.parse_args(argv)
    try:
        sizes = [(w, _size(w)) for w in args.sizes.split(",")]
    except ValueError:
        print(f"bench_scan: bad --sizes {args.sizes!r} (e.g. 1K,1M,8M)", file=sys.stderr)
        return 2
    print(
        f"{'input':<14}{'regex s':>9}{'plain s':>9}{'interp s':>9}{'mask_all s':>11}"
        f"{'scan s':>9}{'plain/rx':>9}{'interp/rx':>10}{'mask/rx':>9}{'scan/rx':>9}"
    )
    for label, size in sizes:
        shapes = (
            ("proof", PROOF),
            ("glued", PROOF.replace("'c'", "('c')")),
            ("@[simp]", "theorem t : True := by omega\n" + SIMP),
        )
        for shape, unit in shapes:
            text = (
                (unit * (size // len(unit) + 1))[:size]
                if shape != "@[simp]"
                else (unit + SIMP * max(0, (size - len(unit)) // len(SIMP)))
            )
            repeat = 5 if size < (1 << 20) else 1
            rx = _best(lambda t=text: _REGEX.findall(t), repeat)
            plain = _best(lambda t=text: tokenize(t), repeat)
            interp = _best(lambda t=text: tokenize(t, interpolated=True), repeat)
            mask = _best(lambda t=text: _fresh_mask_all(t), repeat)
            banned = _best(lambda t=text: scan(t), repeat)
            print(
                f"{label + ' ' + shape:<14}{rx:>9.4f}{plain:>9.4f}{interp:>9.4f}{mask:>11.4f}"
                f"{banned:>9.4f}{plain / rx:>9.1f}{interp / rx:>10.1f}{mask / rx:>9.1f}"
                f"{banned / rx:>9.1f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
