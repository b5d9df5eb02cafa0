"""Comparing a suite's Lean version with a checker's (`prover.lean.lean_version`), and the docs'
table of suites, Lean versions and build commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harness.suites import known_suites
from prover.errors import UsageError
from prover.lean.lean_version import (
    LeanVersion,
    LeanVersionMismatch,
    build_command,
    check_suite_version,
    parse_lean_version,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("4.24.0", LeanVersion(4, 24, 0)),  # what `Lean.versionString` answers
        ("v4.24.0", LeanVersion(4, 24, 0)),  # what suites and tags say
        ("V4.24.0", LeanVersion(4, 24, 0)),
        ("v4.9", LeanVersion(4, 9, 0)),  # a missing patch is 0
        ("4.9", LeanVersion(4, 9, 0)),
        (" 4.9.1\n", LeanVersion(4, 9, 1)),
        ('"4.24.0"', LeanVersion(4, 24, 0)),  # the REPL's info message quotes it
        ("leanprover/lean4:v4.27.0", LeanVersion(4, 27, 0)),  # a lean-toolchain line
        ("v4.24.0-rc1", LeanVersion(4, 24, 0, "rc1")),
        ("4.25.0-nightly-2025-10-01", LeanVersion(4, 25, 0, "nightly-2025-10-01")),
        ("4.25.0, commit 0123abc", LeanVersion(4, 25, 0, "commit 0123abc")),  # not a release
    ],
)
def test_versions_parse(text: str, parsed: LeanVersion) -> None:
    assert parse_lean_version(text) == parsed


@pytest.mark.parametrize(
    "text",
    [None, "", "   ", "banana", "v4", "4", "4.x.0", "4.24.0-", "4.24.0 beta", "v.4.24", "4..0"],
)
def test_garbage_is_unknown_not_a_crash(text: str | None) -> None:
    assert parse_lean_version(text) is None


def test_the_tag_form() -> None:
    assert str(parse_lean_version("4.9")) == "v4.9.0"
    assert str(parse_lean_version("4.24.0-rc1")) == "v4.24.0-rc1"
    assert build_command(LeanVersion(4, 9, 0)) == (
        "docker build -t prover:v4.9.0 --build-arg LEAN_VERSION=v4.9.0 ."
    )


@pytest.mark.parametrize(
    ("suite", "checker"),
    [("v4.24.0", "4.24.0"), ("v4.24.0", "v4.24"), ("4.9", "4.9.0"), ("v4.24.0-rc1", "4.24.0-rc1")],
)
def test_the_same_version_says_nothing(suite: str, checker: str) -> None:
    assert check_suite_version("s", suite, checker) is None


@pytest.mark.parametrize(
    ("suite", "checker"),
    [
        ("v4.24.0", "4.9.0"),
        ("v4.24.0", "4.24.1"),  # a patch release is another Mathlib tag
        ("v4.24.0", "4.24.0-rc1"),  # a release candidate is not the release
        ("v4.24.0-rc1", "4.24.0"),
        ("v4.24.0", "leanprover/lean4:v4.24.1"),
    ],
)
def test_another_version_is_refused_in_one_line_with_the_build_command(
    suite: str, checker: str
) -> None:
    with pytest.raises(LeanVersionMismatch) as refused:
        check_suite_version("minif2f-test", suite, checker)
    message = str(refused.value)
    assert isinstance(refused.value, UsageError)  # exit 2, one line, at the command line
    assert "\n" not in message
    want = parse_lean_version(suite)
    assert want is not None and f"`{build_command(want)}`" in message
    assert f"the checker runs Lean {parse_lean_version(checker)}" in message
    assert message.endswith("or pass --allow-version-mismatch to run it anyway")


def test_an_allowed_mismatch_is_a_warning_naming_both() -> None:
    warning = check_suite_version("s", "v4.24.0", "4.9.0", allow_mismatch=True)
    assert warning is not None and warning.startswith("warning: ") and "\n" not in warning
    assert "Lean v4.24.0" in warning and "Lean v4.9.0" in warning


def test_the_override_names_what_allows_it() -> None:
    with pytest.raises(LeanVersionMismatch, match="or set a.b: true to run it anyway"):
        check_suite_version("s", "v4.24.0", "4.9.0", override="set a.b: true")


@pytest.mark.parametrize(
    ("suite", "checker", "says"),
    [
        (None, "4.24.0", "suite s states no Lean version: not compared with the checker's Lean "
                         "v4.24.0"),
        ("v4.24.0", None, "the checker reports no Lean version: not compared with suite s's "
                          "Lean v4.24.0"),
        ("v4.24.0", "", "the checker reports no Lean version"),
        ("v4.24.0", "garbage", "the checker reports Lean version 'garbage', which is not a "
                               "version"),
        ("four", "4.24.0", "suite s states Lean version 'four', which is not a version"),
        (None, None, "Lean versions not compared: suite s states no Lean version; the checker "
                     "reports no Lean version"),
    ],
)  # fmt: skip
def test_an_unknown_side_is_not_compared_and_the_warning_says_which(
    suite: str | None, checker: str | None, says: str
) -> None:
    for allowed in (False, True):  # never refused: nothing to compare
        warning = check_suite_version("s", suite, checker, allow_mismatch=allowed)
        assert warning is not None and warning.startswith(f"warning: {says}"), warning
        assert "\n" not in warning


def test_long_or_multiline_garbage_stays_one_short_line() -> None:
    warning = check_suite_version("s", "v4.24.0", "x\n" * 500)
    assert warning is not None and "\n" not in warning and len(warning) < 300


# --- the docs' table: suite -> Lean version -> build command ----------------------------------


def docker_doc_table(page: str = "docs/docker.md") -> dict[str, tuple[str, str]]:
    """Suite -> (Lean version cell, build command cell) of the table under the page's
    "One image per Lean version" heading."""
    text = (ROOT / page).read_text(encoding="utf-8")
    section = text.split("## One image per Lean version", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        for suite in re.findall(r"`([^`]+)`", cells[0]):
            rows[suite] = (cells[1], cells[2].strip("`"))
    return rows


@pytest.mark.parametrize("page", ["docs/docker.md", "README.md"])
def test_the_docs_table_gives_every_suite_its_version_and_build_command(page: str) -> None:
    table = docker_doc_table(page)
    assert set(table) == set(known_suites()), f"{page}: the table lists other suites"
    for name, path in known_suites().items():
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        version_cell, command = table[name]
        if spec.get("task", "lean") != "lean":
            assert parse_lean_version(version_cell) is None, name
            continue
        version = parse_lean_version(str(spec["lean_version"]))
        assert version is not None, f"{path}: lean_version is not a version"
        assert parse_lean_version(version_cell) == version, name
        assert command == build_command(version), name
