"""Every path the Dockerfile copies reaches the image job of every CI provider.

Read from the files, never from a hand-kept list: the Dockerfile's COPY sources; the Makefile
recipe of each target a job runs (its `dvc repro` stages); dvc.yaml (the outputs of those
stages and of the stages upstream of them); and each provider's CI file (which job depends on
which, and the artifacts each hands on). A path is in the image job's workspace when it is in
git (the checkout) or a job the image job depends on produced it and handed it on.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import RenderedVariants, makefile_text
from test_ci_graph import graph_of
from test_ci_providers import (
    azure_jobs,
    azure_pipeline,
    azure_steps,
    github_workflow,
    gitlab_jobs,
    jenkins_stages,
    make_targets,
    string_literal,
)

VARIANTS = {
    "gitlab": {"ci_provider": "gitlab"},
    "github": {"ci_provider": "github"},
    "jenkins": {"ci_provider": "jenkins"},
    "azure": {"ci_provider": "azure"},
    "azure-no-k8s-kubeflow": {
        "ci_provider": "azure",
        "use_kubernetes": False,
        "orchestrator": "kubeflow",
    },
    "gitlab-no-monitoring": {"ci_provider": "gitlab", "use_monitoring": False},
    "github-no-k8s": {"ci_provider": "github", "use_kubernetes": False},
}


@pytest.fixture(scope="module")
def projects(rendered: RenderedVariants) -> dict[str, Path]:
    return {name: rendered(answers) for name, answers in VARIANTS.items()}


# ---------------------------------------------------------------- reading the files


def copy_sources(project: Path) -> list[str]:
    """The paths COPY takes from the build context (not from another stage)."""
    sources: list[str] = []
    for line in (project / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += [w.rstrip("/") for w in words[1:-1] if not w.startswith("--")]
    return sources


def checkout(project: Path) -> set[str]:
    """The files in git: what every job's checkout holds.

    That is the rendered files plus the lock files the first `make setup` writes (`make lock`,
    read from its recipe), which the team commits: the project's docs and `make image` say so.
    """
    rendered = {
        p.relative_to(project).as_posix()
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }
    lock = recipe(project, "lock")
    written = [
        path
        for line in lock
        for path in re.findall(r"--output-file (\S+)", line)
        if not path.startswith("build/")
    ]
    # a shell loop writes one lock per serving extra: `for extra in serve serve-sklearn; do`
    loop = next((m for line in lock if (m := re.match(r"@?for (\w+) in ([^;]+); do", line))), None)
    if loop:
        variable, values = f"$${loop[1]}", loop[2].split()
        written = [path.replace(variable, value) for path in written for value in values]
    return rendered | {"uv.lock", *written}


def recipe(project: Path, target: str) -> list[str]:
    lines = makefile_text(project).splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"{re.escape(target)}:", line))
    body = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        body.append(line.strip())
    return body


def dvc_outputs(project: Path, stages: Iterable[str]) -> set[str]:
    """What `dvc repro STAGES` writes: the stages' outputs and those of every stage upstream."""
    dvc = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]

    def outs(stage: str) -> set[str]:
        entries = dvc[stage].get("outs", []) + dvc[stage].get("metrics", [])
        return {e if isinstance(e, str) else next(iter(e)) for e in entries}

    todo, seen = list(stages), set()
    while todo:
        stage = todo.pop()
        if stage in seen:
            continue
        seen.add(stage)
        todo += [
            other
            for other in dvc
            if any(covered(dep, outs(other)) for dep in dvc[stage].get("deps", []))
        ]
    return set().union(*(outs(stage) for stage in seen))


def produced(project: Path, commands: Iterable[str]) -> set[str]:
    """The files ``make`` commands write, from the `dvc repro` lines of their recipes."""
    paths: set[str] = set()
    for target in make_targets(list(commands)):
        for line in recipe(project, target.split()[0]):
            repro = re.search(r"dvc repro\b(.*)", line)
            if repro:
                paths |= dvc_outputs(project, repro[1].split())
    return paths


def covered(path: str, by: Iterable[str]) -> bool:
    """``path`` is one of ``by``, or inside one of them (a directory)."""
    return any(path == p.rstrip("/") or path.startswith(p.rstrip("/") + "/") for p in by)


def in_workspace(path: str, files: set[str]) -> bool:
    if any(sign in path for sign in "*?["):  # a pattern: COPY takes the files it matches
        return any(fnmatch.fnmatch(f, path) for f in files)
    return covered(path, files) or any(f.startswith(path + "/") for f in files)


# ---------------------------------------------------------------- each provider's jobs


def gitlab_image_workspace(project: Path) -> set[str]:
    stages, jobs = gitlab_jobs(project)

    def commands(job: dict[str, Any]) -> list[str]:
        return [*job.get("before_script", []), *job["script"]]

    def needs(name: str) -> list[str]:
        job = jobs[name]
        if "needs" not in job:  # no needs: the artifacts of every job of earlier stages
            return [
                n for n, j in jobs.items() if stages.index(j["stage"]) < stages.index(job["stage"])
            ]
        return [
            need if isinstance(need, str) else need["job"]
            for need in job["needs"]
            if isinstance(need, str) or need.get("artifacts", True)
        ]

    def available(name: str) -> set[str]:
        files = checkout(project) | produced(project, commands(jobs[name]))
        for need in needs(name):
            handed = jobs[need].get("artifacts", {}).get("paths", [])
            files |= {f for f in available(need) if covered(f, handed)}
        return files

    image = next(n for n, j in jobs.items() if "image" in make_targets(commands(j)))
    return available(image)


def github_image_workspace(project: Path) -> set[str]:
    jobs = github_workflow(project, "ci.yml")["jobs"]

    def steps(name: str) -> list[dict[str, Any]]:
        return list(jobs[name].get("steps", []))

    def upstream(name: str) -> set[str]:
        needs = jobs[name].get("needs", [])
        direct = {needs} if isinstance(needs, str) else set(needs)
        return direct.union(*(upstream(n) for n in direct)) if direct else set()

    def available(name: str) -> set[str]:
        files = checkout(project) | produced(project, [s["run"] for s in steps(name) if "run" in s])
        for step in steps(name):
            if step.get("uses", "").startswith("actions/download-artifact"):
                artifact = step["with"]["name"]
                uploader = next(
                    n
                    for n in upstream(name)
                    for s in steps(n)
                    if s.get("uses", "").startswith("actions/upload-artifact")
                    and s["with"]["name"] == artifact
                )
                handed = next(
                    s["with"]["path"].split()
                    for s in steps(uploader)
                    if s.get("uses", "").startswith("actions/upload-artifact")
                )
                files |= {f for f in available(uploader) if covered(f, handed)}
        return files

    image = next(
        n for n in jobs if "image" in make_targets([s["run"] for s in steps(n) if "run" in s])
    )
    return available(image)


def jenkins_image_workspace(project: Path) -> set[str]:
    """One workspace: every stage before the image stage leaves its files for it."""
    files = checkout(project)
    for _, stage in jenkins_stages(project):
        commands = [c for s in stage.block("steps").statements() if (c := string_literal(s, "sh"))]
        files |= produced(project, commands)
        if "image" in make_targets(commands):
            return files
    raise AssertionError("no stage runs make image")


def azure_image_workspace(project: Path) -> set[str]:
    """Each job downloads the artifacts it names; the uploading job is in an earlier stage."""
    jobs = {
        job.get("job") or job.get("deployment"): (stage, job)
        for _, stage, job in azure_jobs(azure_pipeline(project))
    }

    def scripts(name: str) -> list[str]:
        return [s["script"] for s in azure_steps(jobs[name][1]) if "script" in s]

    def uploader(artifact: str) -> tuple[str, list[str]]:
        """The job that publishes ``artifact`` and the paths it copies into it."""
        for name, (_, job) in jobs.items():
            steps = azure_steps(job)
            if any(s.get("artifact") == artifact and "publish" in s for s in steps):
                copy = next(s for s in steps if s.get("task") == "CopyFiles@2")
                return name, [p.removesuffix("**") for p in copy["inputs"]["Contents"].split()]
        raise AssertionError(f"no job publishes {artifact}")

    def available(name: str) -> set[str]:
        files = checkout(project) | produced(project, scripts(name))
        stage = jobs[name][0]
        for step in azure_steps(jobs[name][1]):
            if step.get("task") == "DownloadPipelineArtifact@2":
                source, handed = uploader(step["inputs"]["artifactName"])
                # the publishing job's stage runs first: this stage depends on it
                assert jobs[source][0]["stage"] in stage.get("dependsOn", []), (name, source)
                files |= {f for f in available(source) if covered(f, handed)}
        return files

    image = next(n for n in jobs if "image" in make_targets(scripts(n)))
    return available(image)


def graph_image_workspace(project: Path) -> set[str]:
    """The job graph itself (template/_ci/jobs.yml.jinja): needs and artifacts, as declared."""
    graph = {job["name"]: job for job in graph_of(project)}

    def available(name: str) -> set[str]:
        files = checkout(project) | produced(project, [f"make {t}" for t in graph[name]["make"]])
        for need in graph[name].get("needs", []):
            handed = graph[need].get("artifact", {}).get("paths", [])
            files |= {f for f in available(need) if covered(f, handed)}
        return files

    image = next(n for n, job in graph.items() if "image" in job["make"])
    return available(image)


WORKSPACE: dict[str, Callable[[Path], set[str]]] = {
    "gitlab": gitlab_image_workspace,
    "github": github_image_workspace,
    "jenkins": jenkins_image_workspace,
    "azure": azure_image_workspace,
}


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_path_the_dockerfile_copies_reaches_the_image_job(
    projects: dict[str, Path], variant: str
) -> None:
    project = projects[variant]
    provider = VARIANTS[variant]["ci_provider"]
    workspace = WORKSPACE[provider](project)
    # the graph every provider renders from hands the image job the same paths
    assert not [
        s for s in copy_sources(project) if not in_workspace(s, graph_image_workspace(project))
    ]
    sources = copy_sources(project)
    assert {"models/model", "models/features.json", "src", "params.yaml"} <= set(sources)
    assert ("models/monitoring.json" in sources) is VARIANTS[variant].get("use_monitoring", True)
    missing = [s for s in sources if not in_workspace(s, workspace)]
    assert not missing, f"{provider}: the image job lacks {missing}"
    # and the CI-made ones are not in git: they come from the jobs, not from the checkout
    made = [s for s in sources if not in_workspace(s, checkout(project))]
    assert made and all(s.startswith("models/") for s in made), made


def test_the_check_fails_when_a_job_drops_what_the_image_needs(
    projects: dict[str, Path], tmp_path: Path
) -> None:
    """The gate without the monitoring reference (0.1.0), or an artifact list without models/."""
    project = projects["gitlab"]
    assert in_workspace("models/monitoring.json", gitlab_image_workspace(project))
    makefile = project / "make" / "pipeline.mk"  # the gate's recipe
    original = makefile.read_text()
    try:
        makefile.write_text(original.replace("dvc repro evaluate reference", "dvc repro evaluate"))
        assert not in_workspace("models/monitoring.json", gitlab_image_workspace(project))
    finally:
        makefile.write_text(original)
    ci = project / ".gitlab-ci.yml"
    text = ci.read_text()
    try:
        gate = text.index("\ngate:")
        ci.write_text(text[:gate] + text[gate:].replace("      - models/\n", "", 1))
        workspace = gitlab_image_workspace(project)
        assert not in_workspace("models/model", workspace)
        assert in_workspace("src", workspace)
    finally:
        ci.write_text(text)
