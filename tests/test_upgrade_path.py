"""The path a user takes: a project made from a shipped release, updated to the newest.

The history is the real shipped bundle plus this checkout's template as the next release
(tests/template_releases.py). Projects are made at every older shipped release over the
option matrix of that release's copier.yml: options that do not interact are cycled (each
value appears once), those that interact (Kubernetes and monitoring share the Makefile,
README and serving code) are crossed. Every variant updates with zero conflicts and lints
clean; two representative ones, updated, equal byte for byte a new project of the newest
release with the same answers, and those updated from the oldest release run `make pipeline
test` (slow). An edited project keeps every edit and lists each conflict once, with exit
code 7, in both conflict modes.
"""

from __future__ import annotations

import itertools
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import require_tool
from packaging.version import Version
from template_releases import Workspace, make_in_shared_env, next_release_bundle, release_versions

CYCLED = ("python_version", "task_type", "ci_provider", "dvc_remote_kind", "compliance")
CROSSED = ("use_kubernetes", "use_monitoring")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("upgrade-path")
    return Workspace(root, next_release_bundle(root / "release"))


def shipped_bases() -> list[str]:
    """Every release older than the newest, read from the history the tests update through."""
    with tempfile.TemporaryDirectory(prefix="upgrade-bases-") as scratch:
        return release_versions(next_release_bundle(Path(scratch)))[:-1]


BASES = shipped_bases()


def asks(base: str, question: str) -> bool:
    """Whether release ``base``'s copier.yml asks ``question`` (read from the shipped history)."""
    with tempfile.TemporaryDirectory(prefix="upgrade-questions-") as scratch:
        clone = Path(scratch) / "history"
        git = ["git", "-c", "advice.detachedHead=false"]
        bundle = str(next_release_bundle(Path(scratch)))
        subprocess.run([*git, "clone", "--quiet", "--no-checkout", bundle, str(clone)], check=True)
        config = subprocess.run(
            [*git, "-C", str(clone), "show", f"{base}:copier.yml"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return question in yaml.safe_load(config)


# The releases that did not ask which orchestrator: their update takes the new answer.
BASES_WITHOUT_ORCHESTRATOR = [base for base in BASES if not asks(base, "orchestrator")]


def release_config(workspace: Workspace, tag: str) -> dict[str, Any]:
    clone = workspace.root / f"config-{tag}"
    if not clone.exists():
        workspace.run(
            "git", "clone", "--quiet", "--branch", tag, workspace.bundle, clone, cwd=workspace.root
        )
    config: dict[str, Any] = yaml.safe_load((clone / "copier.yml").read_text())
    return config


def choices(spec: dict[str, Any]) -> list[Any]:
    if spec.get("type") == "bool":
        return [True, False]
    values = spec["choices"]
    return list(values.values() if isinstance(values, dict) else values)


def option_matrix(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Cycle the independent options, cross the interacting ones; every value appears."""
    cycled = {name: choices(config[name]) for name in CYCLED if name in config}
    crossed = list(itertools.product(*(choices(config[name]) for name in CROSSED)))
    size = max([len(crossed), *map(len, cycled.values())])
    return [
        {
            **{name: values[i % len(values)] for name, values in cycled.items()},
            **dict(zip(CROSSED, crossed[i % len(crossed)], strict=True)),
        }
        for i in range(size)
    ]


def update_lines(output: str) -> list[tuple[str, str]]:
    """The ``  status  path`` lines of an update's report."""
    return [
        (parts[0], parts[1])
        for line in output.splitlines()
        if line.startswith("  ") and len(parts := line.split()) == 2
    ]


def assert_clean_update(workspace: Workspace, project: Path, base: str) -> None:
    newest = release_versions(workspace.bundle)[-1]
    updated = workspace.mlopsify("update", cwd=project)
    assert updated.stdout.startswith(f"Updated {project} from {base} to {newest}"), updated.stdout
    assert not [path for status, path in update_lines(updated.stdout) if status == "conflict"]
    assert workspace.run("git", "diff", "--name-only", "--diff-filter=U", cwd=project).stdout == ""
    assert not list(project.rglob("*.rej"))
    assert f"_commit: {newest}" in (project / ".copier-answers.yml").read_text()
    # 0.4.0 made the tracking server opt-in: a Kubernetes project of an older release keeps its
    # own (migrations/set_answers.py), one without Kubernetes never gets one; a project made by
    # 0.4.0 or later keeps its answer (the default: none)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    kubernetes = bool(answers["use_kubernetes"])
    tracking = kubernetes and Version(base) < Version("0.4.0")
    assert answers.get("use_tracking_server", False) is tracking
    assert (project / "deploy" / "k8s" / "tracking" / "kustomization.yaml").is_file() is tracking
    # 0.5.0: with Kubernetes, make writes rules.yml from the PrometheusRule; the update deletes the
    # tracked copy (the team commits that) and git ignores the file from then on
    if kubernetes and answers.get("use_monitoring"):
        rules = "monitoring/prometheus/rules.yml"
        assert not (project / rules).exists()
        ignored = workspace.run("git", "check-ignore", "--no-index", rules, cwd=project).stdout
        assert ignored == f"{rules}\n"


def lint(workspace: Workspace, project: Path) -> None:
    """The generated `make lint` checkers that need no project environment: ruff and yamllint."""
    for command in (
        ("ruff", "format", "--check", "."),
        ("ruff", "check", "."),
        ("yamllint", "--strict", "."),
    ):
        require_tool(command[0])
        workspace.run(*command, cwd=project)


@pytest.mark.slow  # renders and updates five projects: about 2 minutes
@pytest.mark.parametrize("base", BASES)
def test_every_variant_updates_without_conflicts_and_lints(workspace: Workspace, base: str):
    matrix = option_matrix(release_config(workspace, base))
    assert len(matrix) >= 4
    for number, answers in enumerate(matrix):
        project = workspace.new_project_at(base, f"variant-{number}", answers)
        assert_clean_update(workspace, project, base)
        lint(workspace, project)


@pytest.mark.slow  # updates two projects: under a minute
@pytest.mark.parametrize("base", BASES_WITHOUT_ORCHESTRATOR)
@pytest.mark.parametrize("orchestrator", ["kubeflow", "airflow"])
def test_an_update_can_choose_an_orchestrator_the_base_release_did_not_ask(
    workspace: Workspace, base: str, orchestrator: str
):
    """A release that adds a question (orchestrator) takes its answer on the way up."""
    project = workspace.new_project_at(base, f"orchestrated-{orchestrator}", {})
    package = yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]
    newest = release_versions(workspace.bundle)[-1]
    updated = workspace.mlopsify("update", "--data", f"orchestrator={orchestrator}", cwd=project)
    assert updated.stdout.startswith(f"Updated {project} from {base} to {newest}"), updated.stdout
    assert not [path for status, path in update_lines(updated.stdout) if status == "conflict"]
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert (answers["orchestrator"], answers["_commit"]) == (orchestrator, newest)
    assert (project / "orchestration.yaml").is_file()
    # the graph and the Kubeflow module are the runtime's; Airflow reads the project's DAG file
    assert (project / "dags" / "pipeline.py").is_file() == (orchestrator == "airflow")
    assert not (project / "src" / package / "orchestration").exists()
    assert f"EXTRAS ?= dev,{orchestrator}\n" in (project / "Makefile").read_text()
    lint(workspace, project)


REPRESENTATIVE = [
    {
        "task_type": "classification",
        "use_kubernetes": True,
        "use_monitoring": True,
        "ci_provider": "gitlab",
    },
    {
        "task_type": "regression",
        "use_kubernetes": False,
        "use_monitoring": False,
        "ci_provider": "github",
    },
]


def fresh_answers(base: str, answers: dict[str, Any]) -> dict[str, Any]:
    """What a project made today needs to be answered to equal ``answers`` made at ``base``, updated.

    Two answers an update keeps differ from today's defaults, on purpose: a Kubernetes project
    older than 0.4.0 keeps its tracking server (migrations/set_answers.py), and a monitored
    project older than 0.4.0 keeps its runbook_base_url, the directory of one page per alert
    then (the template derives the same page, docs/runbooks.md, from either answer).
    """
    older = Version(base) < Version("0.4.0")
    kept: dict[str, Any] = {"use_tracking_server": bool(answers["use_kubernetes"]) and older}
    if answers["use_monitoring"] and older:
        kept["runbook_base_url"] = "docs/runbooks"
    return {**answers, **kept}


def tree(project: Path) -> dict[str, tuple[str, bytes]]:
    """Every path below ``project`` but .git: its kind (with the executable bit) and its bytes."""
    found: dict[str, tuple[str, bytes]] = {}
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if relative.parts[0] == ".git":
            continue
        if path.is_symlink():
            found[str(relative)] = ("symlink", str(path.readlink()).encode())
        elif path.is_file():
            executable = "executable" if path.stat().st_mode & 0o111 else "file"
            found[str(relative)] = (executable, path.read_bytes())
        else:
            found[str(relative)] = ("directory", b"")
    return found


@pytest.mark.slow  # renders five releases twice and updates them: about a minute
@pytest.mark.parametrize("base", BASES)
def test_representative_variants_after_update_equal_a_new_project_of_the_newest_release(
    workspace: Workspace, base: str
):
    """An updated project is, file for file and byte for byte, what `new` makes today.

    A new project of the newest release runs its pipeline and tests end to end elsewhere
    (tests/test_generated_project.py and the modules of each service); the next test runs
    them once more in projects updated from the oldest release, across every migration.
    """
    newest = release_versions(workspace.bundle)[-1]
    for number, answers in enumerate(REPRESENTATIVE):
        name = f"representative-{number}"
        project = workspace.new_project_at(base, name, answers)
        assert_clean_update(workspace, project, base)
        fresh = workspace.new_project_at(
            newest, f"new-from-{base}/{name}", fresh_answers(base, answers)
        )
        updated, made = tree(project), tree(fresh)
        missing, extra = sorted(made.keys() - updated), sorted(updated.keys() - made)
        assert not missing and not extra, f"{name} from {base}: lacks {missing}, has {extra}"
        differing = [path for path in updated if updated[path] != made[path]]
        assert not differing, f"{name} from {base} differs from a new project in {differing}"


@pytest.mark.slow
def test_representative_variants_updated_from_the_oldest_release_run_pipeline_and_tests(
    workspace: Workspace,
):
    """The oldest release crosses every migration; its updated projects run as a user runs them."""
    require_tool("make")
    base = BASES[0]
    venv = workspace.root / "env-oldest"
    for number, answers in enumerate(REPRESENTATIVE):
        project = workspace.new_project_at(base, f"run/representative-{number}", answers)
        assert_clean_update(workspace, project, base)
        workspace.commit(project, "template update")
        if number == 0:
            make_in_shared_env(workspace, project, venv, "setup")
        make_in_shared_env(workspace, project, venv, "pipeline", "test")


# ---------------------------------------------------------------- an edited project

EDITS = {
    "Makefile": (
        "append",
        "\n.PHONY: team-report\nteam-report:  ## the team's own target\n\t@echo report\n",
    ),
    "README.md": ("append", "\n## Team notes\n\nOn call: the ML platform team.\n"),
    ".gitlab-ci.yml": ("append", "\nteam-audit:\n  stage: lint\n  script:\n    - echo audit\n"),
}


def team_edits(project: Path, package: str) -> dict[str, str]:
    """Edit the files a team edits; returns each file and a line of the edit that must survive."""
    for path, (_, text) in EDITS.items():
        with (project / path).open("a") as file:
            file.write(text)
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("max_iter: 1000", "max_iter: 2500"))
    kept = {
        "Makefile": "team-report:  ## the team's own target",
        "README.md": "On call: the ML platform team.",
        ".gitlab-ci.yml": "team-audit:",
        "params.yaml": "max_iter: 2500",
    }
    # Before 0.4.0 the serving app was a copy in the project, which teams edited.
    app = project / "src" / package / "serving" / "app.py"
    if app.is_file():
        app.write_text(
            app.read_text() + "\n\n# Team: requests above 10 MB are rejected at the ingress.\n"
        )
        kept[f"src/{package}/serving/app.py"] = (
            "# Team: requests above 10 MB are rejected at the ingress."
        )
    return kept


@pytest.mark.slow  # renders and updates three projects: about a minute
@pytest.mark.parametrize("conflict", ["inline", "rej"])
@pytest.mark.parametrize("base", BASES)
def test_an_edited_project_keeps_every_edit_and_lists_each_conflict_once(
    workspace: Workspace, base: str, conflict: str
):
    # One name in both modes (the same project): the newest release's copy, which
    # changed_template_line makes by cloning and updating the project, serves both.
    project = workspace.new_project_at(base, f"{conflict}/edited", {"ci_provider": "gitlab"})
    package = yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]
    clashing_file, clashing_line = workspace.changed_template_line(project, base)
    kept = team_edits(project, package)
    target = project / clashing_file
    ours = clashing_line + "  # team"
    target.write_text(target.read_text().replace(clashing_line, ours, 1))
    workspace.commit(project, "team edits")

    updated = workspace.mlopsify("update", "--conflict", conflict, cwd=project, check=False)
    assert updated.returncode == 7, updated.stdout + updated.stderr
    listed = update_lines(updated.stdout)
    # One line per file: in rej mode the file is the conflict, not also its .rej beside it.
    paths = [path.removesuffix(".rej") for _, path in listed]
    assert len(paths) == len(set(paths)), f"a file is listed twice:\n{updated.stdout}"
    conflicts = [path for status, path in listed if status == "conflict"]
    # Where the release changed the same lines as a team's edit (both appended to the end of
    # .gitlab-ci.yml from 0.1.0 to 0.3.0), the merge conflicts inline or, in rej mode, the
    # hunk goes to FILE.rej. Only files the team edited may conflict.
    assert clashing_file in conflicts, updated.stdout
    assert set(conflicts) <= {*kept, clashing_file}, updated.stdout
    assert updated.stderr.startswith(
        f"error: update to {release_versions(workspace.bundle)[-1]} left conflicts in {len(conflicts)} file"
    )

    for path, line in kept.items():
        if path == clashing_file:
            continue
        edited = project / path
        rejected = edited.with_name(edited.name + ".rej")
        text = edited.read_text() + (rejected.read_text() if rejected.exists() else "")
        assert line in text, f"the edit of {path} was lost"
    # The serving app became the runtime's: the team's edited copy is kept as a conflict, and
    # the update says, under its line, what replaces it.
    app = f"src/{package}/serving/app.py"
    if app not in kept:
        return
    assert ("conflict", app) in listed, updated.stdout
    assert (
        f"  conflict  {app}\n            {app} is now mlopsify_runtime.serving: change requests "
        f"and answers in preprocess()/postprocess() of src/{package}/hooks.py"
    ) in updated.stdout
    # The clashing edit is in the file between markers, or in the .rej patch beside it.
    where = target if conflict == "inline" else target.with_name(target.name + ".rej")
    assert ours in where.read_text()
    if conflict == "inline":
        assert "<<<<<<< before updating" in target.read_text()
