"""The docs a user reads: every relative link leads to a file (and heading) of the repository,
and no page points outside it or at the project's internal tracker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The project's own pages: the README, docs/, and the Markdown written beside suites and runs.
DOCS = sorted(
    {ROOT / "README.md"}
    | set(ROOT.glob("docs/*.md"))
    | set(ROOT.glob("benchmarks/*.md"))
    | set(ROOT.glob("experiments/*/results/*.md"))
)

_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_INLINE_CODE = re.compile(r"(`+).+?\1")
# [text](target) and ![alt](target); a target may carry a "title" after a space
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text: str) -> list[str]:
    """The lines Markdown renders as text: fenced and indented code blocks blanked, inline code
    spans too (a `[x](y)` there is code, not a link)."""
    lines: list[str] = []
    fenced = False
    in_code = False  # an indented code block: 4 spaces after a blank line, until text returns
    previous_blank = True
    for line in text.splitlines():
        blank = not line.strip()
        if _FENCE.match(line):
            fenced = not fenced
            line = ""
        elif fenced:
            line = ""
        else:
            indented = line.startswith(("    ", "\t"))
            in_code = indented and (previous_blank or in_code) or (blank and in_code)
            line = "" if in_code else _INLINE_CODE.sub("code", line)
        previous_blank = blank
        lines.append(line)
    return lines


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if not match:
            continue
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        result.add(anchor if count == 0 else f"{anchor}-{count}")
    return result


def relative_links(page: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in enumerate(prose_lines(page.read_text(encoding="utf-8")), start=1):
        for match in _LINK.finditer(line):
            target = match.group(1)
            if not _SCHEME.match(target):
                found.append((number, target))
    return found


def broken_link(page: Path, target: str) -> str | None:
    """Why `target`, linked from `page`, leads nowhere; None when it leads somewhere."""
    path_part, _, anchor = target.partition("#")
    destination = (page.parent / path_part).resolve() if path_part else page
    if not destination.is_relative_to(ROOT):
        return "points outside the repository"
    if not destination.exists():
        return "no such file"
    if anchor and destination.suffix == ".md" and anchor not in anchors(destination):
        return f"no heading #{anchor} in {destination.relative_to(ROOT)}"
    return None


def test_the_docs_are_found() -> None:
    names = {str(page.relative_to(ROOT)) for page in DOCS}
    assert {"README.md", "docs/check.md", "docs/alpha-dpg.md", "docs/docker.md"} <= names


@pytest.mark.parametrize("page", DOCS, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file(page: Path) -> None:
    broken = [
        f"{page.relative_to(ROOT)}:{number}: ({target}) {why}"
        for number, target in relative_links(page)
        if (why := broken_link(page, target))
    ]
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("page", DOCS, ids=lambda page: str(page.relative_to(ROOT)))
def test_no_page_points_outside_the_repository_or_at_issue_numbers(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "../shared" not in text
    assert "/work/" not in text
    issue_number = re.compile(r"\bissues?\s*#?\d+|(?<![\w&/.(])#\d+\b", re.IGNORECASE)
    assert not issue_number.findall(text)


def test_the_link_checker_sees_what_it_must() -> None:
    """The checker itself: links in code are not links, a missing file or heading is found."""
    text = (
        "# A `code` title\n\nSee [a](check.md#the-scan-before-lean), ![b](../missing.png) and\n"
        "`[c](nowhere.md)`.\n\n```\n[d](nowhere.md)\n```\n\n    [e](nowhere.md)\n"
    )
    page = ROOT / "docs" / "_example.md"
    lines = prose_lines(text)
    targets = [m.group(1) for line in lines for m in _LINK.finditer(line)]
    assert targets == ["check.md#the-scan-before-lean", "../missing.png"]
    assert broken_link(page, "check.md#the-scan-before-lean") is None
    assert broken_link(page, "../missing.png") == "no such file"
    assert broken_link(page, "check.md#no-such-heading") is not None
    assert broken_link(page, "../../outside.md") == "points outside the repository"
    assert github_anchor("`prover serve` and `--verifier URL`") == "prover-serve-and---verifier-url"


def tracked_text_files() -> list[Path]:
    """Every file git tracks that reads as text (data files included: a path in them would
    reach users too)."""
    import subprocess

    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    files = []
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file() and path.name != Path(__file__).name:
            try:
                path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            files.append(path)
    return files


def test_nothing_in_the_repository_points_at_the_developers_shared_folder() -> None:
    """A user's clone has nothing beside it: no code, comment, config or doc may lean on it."""
    files = tracked_text_files()
    assert len(files) > 100
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "../shared" in line or "/work/shared" in line or "shared/benchmarks" in line
    ]
    assert not found, found
