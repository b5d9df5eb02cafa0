"""Which Lean a suite was written for and which one a checker runs: one comparison for every
command that runs a suite on a checker (`prover eval`, `prover suite check`, `prover train`).

Versions compare as major.minor.patch: a leading `v` (and a `leanprover/lean4:` toolchain
prefix) is ignored and a missing patch counts as 0 (`v4.9` is `4.9.0`), while any pre-release
suffix makes a different version (`4.24.0-rc1` is not `4.24.0`: Mathlib and the REPL tag release
candidates apart). Text that is no version at all (or no text) is "unknown": never compared,
never a crash, and a warning says which side is unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prover.errors import UsageError

FLAG = "--allow-version-mismatch"

# What Lean's `Lean.versionString` answers: `4.24.0`, `4.24.0-rc1`, `4.25.0-nightly-2025-10-01`,
# or `4.25.0, commit HASH` for a build that is not a release (src/Init/Meta.lean in
# leanprover/lean4); suites and lean-toolchain files write `v4.24.0` or `leanprover/lean4:v4.24.0`.
_VERSION = re.compile(
    r"(?:leanprover/lean4:)?v?(\d+)\.(\d+)(?:\.(\d+))?"
    r"(?:-([0-9A-Za-z]+(?:[.-][0-9A-Za-z]+)*)|, (commit \w+))?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class LeanVersion:
    major: int
    minor: int
    patch: int
    pre: str = ""  # a pre-release (`rc1`, `nightly-...`) or a development build; "" for a release

    def __str__(self) -> str:
        """The tag form Mathlib, the REPL and elan use: `v4.24.0`, `v4.24.0-rc1`."""
        core = f"v{self.major}.{self.minor}.{self.patch}"
        if self.pre.startswith("commit "):  # a development build: no tag names it
            return f"{core}, {self.pre}"
        return f"{core}-{self.pre}" if self.pre else core


def parse_lean_version(text: str | None) -> LeanVersion | None:
    """The version `text` names, or None when it names none (absent, blank or garbage)."""
    if not isinstance(text, str):
        return None
    match = _VERSION.fullmatch(text.strip().strip('"'))
    if match is None:
        return None
    major, minor, patch, pre, commit = match.groups()
    return LeanVersion(int(major), int(minor), int(patch or 0), pre or commit or "")


def build_command(version: LeanVersion) -> str:
    """The command that builds the project's image for `version` (see the Dockerfile)."""
    return f"docker build -t prover:{version} --build-arg LEAN_VERSION={version} ."


class LeanVersionMismatch(UsageError):
    """The suite's Lean version and the checker's are both known and differ (exit 2)."""


def _side(text: str | None, parsed: LeanVersion | None) -> str:
    if parsed is not None:
        return f"Lean {parsed}"
    if text is None or not str(text).strip():
        return "no Lean version"
    return f"Lean version {' '.join(str(text).split())[:80]!r}, which is not a version"


def check_suite_version(
    suite: str,
    suite_version: str | None,
    checker_version: str | None,
    *,
    allow_mismatch: bool = False,
    override: str = f"pass {FLAG}",
) -> str | None:
    """None when suite `suite` and the checker run the same Lean. A one-line warning when a side
    is unknown (nothing is compared) or when the versions differ and `allow_mismatch` is set;
    otherwise LeanVersionMismatch, whose message has the command that builds a matching image
    and says how to allow the mismatch (`override`: pass the flag, or set a config key)."""
    want, have = parse_lean_version(suite_version), parse_lean_version(checker_version)
    if want is not None and have is not None:
        if want == have:
            return None
        mismatch = f"suite {suite} is written for Lean {want} but the checker runs Lean {have}"
        if allow_mismatch:
            return (
                f"warning: {mismatch} (a mismatch allowed): some statements may not elaborate "
                f"(`prover suite check {suite}` lists them)"
            )
        raise LeanVersionMismatch(
            f"{mismatch}: run it on a checker built for {want} (`{build_command(want)}`), "
            f"or {override} to run it anyway"
        )
    if want is None and have is None:
        return (
            f"warning: Lean versions not compared: suite {suite} states "
            f"{_side(suite_version, want)}; the checker reports {_side(checker_version, have)}"
        )
    if want is None:
        return (
            f"warning: suite {suite} states {_side(suite_version, want)}: not compared with the "
            f"checker's Lean {have}"
        )
    return (
        f"warning: the checker reports {_side(checker_version, have)}: not compared with "
        f"suite {suite}'s Lean {want}"
    )
