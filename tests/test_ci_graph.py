"""One CI job graph, four providers (template/_ci/jobs.yml.jinja, never copied into a project).

The graph is read the way Copier reads it (the template's Jinja environment, with the project's
recorded answers) and each provider's rendered files are read with their own parsers
(tests/test_ci_providers.py): every job of the graph is there with its needs, its make targets,
its approval and the MLflow login of its role, and nothing else is. Azure Pipelines' files are
checked against Azure's published YAML schema (the service schema of microsoft/
azure-pipelines-vscode, which check-jsonschema ships as vendor.azure-pipelines).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import ROOT, RenderedVariants, require_tool, run
from jinja2 import FileSystemLoader
from jinja2.sandbox import SandboxedEnvironment
from template_releases import next_release, shipped_is_next_release  # noqa: F401 (fixtures)
from test_ci_providers import (
    Block,
    azure_jobs,
    azure_pipeline,
    azure_steps,
    ci_files_in,
    github_workflow,
    gitlab_jobs,
    jenkins_stages,
    make_targets,
    parse_groovy_blocks,
    string_literal,
    variant_matrix,
)

GRAPH = "template/_ci/jobs.yml.jinja"
# The schema's patterns are ECMAScript with escapes the default (unicode) engine refuses.
AZURE_SCHEMA = ("--builtin-schema", "vendor.azure-pipelines", "--regex-variant", "nonunicode")
ROLES = ("pipeline", "promotion")


def graph_of(project: Path) -> list[dict[str, Any]]:
    """The job graph as Copier renders it for ``project`` (its recorded answers)."""
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    environment = SandboxedEnvironment(
        loader=FileSystemLoader(str(ROOT)),
        extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"],
    )
    jobs: list[dict[str, Any]] = yaml.safe_load(environment.get_template(GRAPH).render(**answers))[
        "jobs"
    ]
    return jobs


def stage_of(graph: list[dict[str, Any]], name: str) -> str:
    return str(next(job["stage"] for job in graph if job["name"] == name))


def targets_of(job: dict[str, Any]) -> list[str]:
    return [*job["make"], *job.get("finally", [])]


@pytest.fixture(scope="module")
def projects(rendered: RenderedVariants) -> list[Path]:
    """The provider matrix of test_ci_providers.py (the session renders each variant once),
    and one variant of each orchestrator, whose jobs the graph adds."""
    matrix = [rendered(answers) for answers in variant_matrix() if answers["ci_provider"] != "none"]
    orchestrated = [
        rendered({"ci_provider": provider, "orchestrator": orchestrator})
        for provider, orchestrator in (
            ("gitlab", "kubeflow"),
            ("azure", "airflow"),
            ("github", "kubeflow"),
            ("jenkins", "airflow"),
        )
    ]
    return matrix + orchestrated


def provider(project: Path) -> str:
    return str(yaml.safe_load((project / ".copier-answers.yml").read_text())["ci_provider"])


def of(projects: list[Path], name: str) -> list[Path]:
    return [p for p in projects if provider(p) == name]


# ---------------------------------------------------------------- the graph itself


def test_the_graph_is_a_graph_of_make_targets(projects: list[Path]) -> None:
    for project in projects:
        graph = graph_of(project)
        names = [job["name"] for job in graph]
        assert len(names) == len(set(names)), project
        for position, job in enumerate(graph):
            # a job needs only jobs declared before it: the order of the file is a run order
            assert set(job.get("needs", [])) <= set(names[:position]), job["name"]
            assert job["make"] and job["runs"] in {
                "every",
                "default",
                "approval",
                "manual",
                "schedule",
            }
            assert job.get("role") in (None, *ROLES), job["name"]
            # The promotion login only where an environment's approvals and protection apply.
            assert (job.get("role") == "promotion") == bool(job.get("environment")), job["name"]
        roles = {job["name"]: job.get("role") for job in graph}
        assert roles["train"] == roles["gate"] == "pipeline"
        assert {n for n, r in roles.items() if r == "pipeline"} == {"train", "gate"}


def test_the_graph_file_stays_out_of_the_project(projects: list[Path]) -> None:
    for project in projects:
        assert not (project / "_ci").exists()
        assert not [p for p in project.rglob("*.jinja") if ".git" not in p.parts]


# ---------------------------------------------------------------- each provider from the graph


def test_gitlab_jobs_are_the_graphs(projects: list[Path]) -> None:
    for project in of(projects, "gitlab"):
        graph = graph_of(project)
        stages, jobs = gitlab_jobs(project)
        assert list(jobs) == [job["name"] for job in graph], project
        assert stages == list(dict.fromkeys(job["stage"] for job in graph))
        for job in graph:
            rendered = jobs[job["name"]]
            assert rendered["stage"] == job["stage"]
            assert rendered.get("needs") == job.get("needs"), job["name"]
            commands = rendered.get("before_script", []) + rendered["script"]
            assert [t for t in make_targets(commands) if t != "setup"] == targets_of(job)
            manual = rendered.get("rules", [{}])[-1].get("when") == "manual"
            assert manual == (job["runs"] in {"approval", "manual"}), job["name"]
            if job["runs"] == "approval":
                assert rendered["allow_failure"] is False  # the pipeline waits for the person
            assert rendered.get("environment", {}).get("name") == job.get("environment")
            paths = rendered.get("artifacts", {}).get("paths")
            if "artifact" in job:
                assert paths == job["artifact"]["paths"], job["name"]


def test_azure_stages_and_jobs_are_the_graphs(projects: list[Path]) -> None:
    for project in of(projects, "azure"):
        graph = graph_of(project)
        files = {
            "azure-pipelines.yml": {"every", "default", "approval"},
            ".azure-pipelines/template-update.yml": {"schedule"},
            ".azure-pipelines/rollback.yml": {"manual"},
        }
        for name, runs in files.items():
            expected = [job for job in graph if job["runs"] in runs]
            if not (project / name).exists():
                assert not expected, (project, name)
                continue
            found = azure_jobs(azure_pipeline(project, name))
            ids = [job.get("job") or job.get("deployment") for _, _, job in found]
            assert ids == [job["name"].replace("-", "_") for job in expected], (project, name)
            for job, (stage_name, stage, rendered) in zip(expected, found, strict=True):
                scripts = [s["script"] for s in azure_steps(rendered) if "script" in s]
                assert [t for t in make_targets(scripts) if t != "setup"] == targets_of(job)
                assert rendered.get("environment") == job.get("environment"), job["name"]
                if "stages" not in azure_pipeline(project, name):
                    continue
                assert stage_name == job["stage"]
                # the stage waits for the stage of every job its jobs need (dependsOn)
                depends = stage.get("dependsOn")
                needed = {stage_of(graph, n).replace("-", "_") for n in job.get("needs", [])} - {
                    stage["stage"]
                }
                assert needed <= set(depends or []), job["name"]
                branch = "refs/heads/main"
                assert (branch in stage.get("condition", "")) == (job["runs"] != "every")


def test_jenkins_stages_are_the_graphs(projects: list[Path]) -> None:
    for project in of(projects, "jenkins"):
        graph = graph_of(project)
        order = [j for j in graph if j["runs"] == "schedule"] + [
            j for j in graph if j["runs"] == "manual"
        ]
        order += [j for j in graph if j["runs"] in {"every", "default", "approval"}]
        expected: dict[str, list[str]] = {}
        for job in order:
            expected.setdefault(job["stage"], []).extend(targets_of(job))
        found = {}
        for name, stage in jenkins_stages(project):
            posts = [s for post in stage.blocks("post") for s in post.statements()]
            commands = [
                c
                for s in stage.block("steps").statements() + posts
                if (c := string_literal(s, "sh"))
            ]
            found[name] = [t for t in make_targets(commands) if t != "setup"]
        assert found == expected, project
        assert list(found) == list(expected)


def test_github_jobs_are_the_graphs(projects: list[Path]) -> None:
    for project in of(projects, "github"):
        graph = graph_of(project)
        ci = github_workflow(project, "ci.yml")["jobs"]
        jobs = {k: v for k, v in ci.items() if "uses" not in v}
        if (project / ".github/workflows/deploy.yml").exists():
            jobs |= github_workflow(project, "deploy.yml")["jobs"]
        expected: dict[str, list[str]] = {}
        needs: dict[str, set[str]] = {}
        for job in graph:
            if job["runs"] in {"manual", "schedule"}:
                continue
            expected.setdefault(job["stage"], []).extend(targets_of(job))
            needs.setdefault(job["stage"], set()).update(
                stage_of(graph, n) for n in job.get("needs", [])
            )
        deploy_ids = set(jobs) - set(ci)
        for stage, targets in expected.items():
            steps = jobs[stage]["steps"]
            commands = [s["run"] for s in steps if "run" in s]
            assert [t for t in make_targets(commands) if t != "setup"] == targets, stage
            declared = jobs[stage].get("needs", [])
            declared = {declared} if isinstance(declared, str) else set(declared)
            wanted = needs[stage] - {stage}
            if stage in deploy_ids:
                # deploy.yml starts when ci.yml calls it, after the jobs the call needs
                assert wanted - deploy_ids <= upstream(ci, "deploy"), stage
                wanted &= deploy_ids
            assert declared == wanted, stage
        assert set(jobs) == set(expected), project


def upstream(jobs: dict[str, Any], name: str) -> set[str]:
    """The jobs a GitHub job waits for, directly or through others."""
    needs = jobs[name].get("needs", [])
    direct = {needs} if isinstance(needs, str) else set(needs)
    return direct.union(*(upstream(jobs, n) for n in direct))


# ---------------------------------------------------------------- the MLflow login of each role


def groovy_text(block: Block) -> str:
    """A block's heads and statements, depth first (a credential binding is a block's head)."""
    return "\n".join(
        [block.head, *(groovy_text(i) if isinstance(i, Block) else i for i in block.body)]
    )


def logins(text: str) -> set[str]:
    """The roles whose MLflow login a piece of CI text names."""
    return set(re.findall(r"MLFLOW_(PIPELINE|PROMOTION)_(?:USERNAME|PASSWORD)", text)) | {
        m.upper() for m in re.findall(r"'mlflow-(pipeline|promotion)'", text)
    }


def test_each_job_receives_exactly_the_login_of_its_role(projects: list[Path]) -> None:
    """GitLab and Azure map the login per job; a GitHub job and a Jenkins stage hold the
    graph's jobs of one stage, so they get the login of the role of those jobs."""
    for project in projects:
        graph = graph_of(project)
        kind = provider(project)
        unit = "name" if kind in {"gitlab", "azure"} else "stage"
        expected: dict[str, set[str]] = {}
        for job in graph:
            roles = {job["role"].upper()} if job.get("role") else set()
            expected[job[unit]] = expected.get(job[unit], set()) | roles
        received = received_logins(project, kind)
        assert received == expected, (project, received)


def received_logins(project: Path, kind: str) -> dict[str, set[str]]:
    """The MLflow logins each job (GitLab, Azure) or stage (GitHub, Jenkins) is handed."""
    received: dict[str, set[str]] = {}
    if kind == "gitlab":
        config = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
        assert not logins(yaml.safe_dump(config.get("variables", {})))  # never pipeline-wide
        _, jobs = gitlab_jobs(project)
        for name, job in jobs.items():
            variables = job.get("variables", {})
            received[name] = logins(yaml.safe_dump(variables))
            for role in received[name]:
                assert variables["MLFLOW_TRACKING_USERNAME"] == f"$MLFLOW_{role}_USERNAME"
                assert variables["MLFLOW_TRACKING_PASSWORD"] == f"$MLFLOW_{role}_PASSWORD"
    elif kind == "azure":
        for name in (f for f in ci_files_in(project) if "azure-pipelines" in f):
            for _, _, job in azure_jobs(azure_pipeline(project, name)):
                job_name = (job.get("job") or job["deployment"]).replace("_", "-")
                envs = [s.get("env", {}) for s in azure_steps(job)]
                received[job_name] = logins(yaml.safe_dump(envs))
                for env in envs:
                    for role in logins(yaml.safe_dump(env)):
                        assert env["MLFLOW_TRACKING_USERNAME"] == f"$(MLFLOW_{role}_USERNAME)"
    elif kind == "github":
        for name in (f for f in ci_files_in(project) if "/workflows/" in f):
            workflow = github_workflow(project, name.rsplit("/", 1)[1])
            assert not logins(yaml.safe_dump(workflow.get("env", {})))  # never workflow-wide
            for job_id, job in workflow["jobs"].items():
                if "uses" not in job:
                    stage = {"template-update": "template-update"}.get(job_id, job_id)
                    received[stage] = logins(yaml.safe_dump(job.get("env", {})))
    else:
        assert "mlflow-credentials" not in (project / "Jenkinsfile").read_text()
        for name, stage in jenkins_stages(project):
            received[name] = logins(groovy_text(stage.block("steps")))
    return received


# ---------------------------------------------------------------- Azure Pipelines


def test_azure_files_match_azure_pipelines_schema_and_a_broken_one_does_not(
    projects: list[Path], tmp_path: Path
) -> None:
    checker = require_tool("check-jsonschema")
    files = [p / f for p in of(projects, "azure") for f in sorted(ci_files_in(p)) if "azure" in f]
    assert len(files) >= 10
    run(checker, *AZURE_SCHEMA, *files, cwd=ROOT)
    # The artifact task's inputs misnamed (`artifact:` is the shortcut step's word, not the task's).
    broken = tmp_path / "azure-pipelines.yml"
    good = next(f for f in files if f.name == "azure-pipelines.yml").read_text()
    assert "artifactName:" in good
    broken.write_text(good.replace("artifactName:", "artifact:", 1))
    failed = run(checker, *AZURE_SCHEMA, broken, cwd=ROOT, check=False)
    assert failed.returncode == 1, failed.stdout
    assert "Schema validation errors were encountered" in failed.stdout + failed.stderr


def test_azure_pipeline_caches_approves_and_keeps_secrets_in_a_variable_group(
    projects: list[Path],
) -> None:
    for project in of(projects, "azure"):
        pipeline = azure_pipeline(project)
        answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
        assert pipeline["trigger"] == {"branches": {"include": ["main"]}}
        groups = [v["group"] for v in pipeline["variables"] if "group" in v]
        assert groups == [f"{answers['project_name']}-ci"]
        # every secret the group may hold is declared empty before it, so that an unset one
        # expands to nothing rather than to its own `$(NAME)`
        declared = [v.get("name") for v in pipeline["variables"]]
        assert declared.index("MLFLOW_TRACKING_URI") < declared.index(None)
        for _, _, job in azure_jobs(pipeline):
            steps = azure_steps(job)
            caches = [s["inputs"]["key"] for s in steps if s.get("task") == "Cache@2"]
            scripts = " ".join(s.get("script", "") for s in steps)
            if "make setup" in scripts:
                assert any(key.startswith("uv |") for key in caches), job
            dvc = any(key.startswith("dvc |") for key in caches)
            assert dvc == bool(re.search(r"make (train|gate)\b", scripts)), job
        production = [j for _, _, j in azure_jobs(pipeline) if j.get("environment") == "production"]
        if answers["use_kubernetes"]:
            [deploy] = production
            assert deploy["deployment"] == "deploy_production"  # approvals of the environment
            [update] = azure_jobs(azure_pipeline(project, ".azure-pipelines/template-update.yml"))
            rollback = azure_pipeline(project, ".azure-pipelines/rollback.yml")
            assert rollback["trigger"] == "none" and rollback["pr"] == "none"
            assert [p["name"] for p in rollback["parameters"]] == ["reason"]
            [(_, _, job)] = azure_jobs(rollback)
            assert job["environment"] == "production"
            env = next(s["env"] for s in azure_steps(job) if "rollback" in s.get("script", ""))
            assert env["ROLLBACK_REASON"] == "${{ parameters.reason }}"
        else:
            assert not production
            assert not (project / ".azure-pipelines/rollback.yml").exists()
        update_pipeline = azure_pipeline(project, ".azure-pipelines/template-update.yml")
        assert update_pipeline["trigger"] == "none"
        assert update_pipeline["schedules"][0]["cron"] == "17 6 * * 1"
        [(_, _, update)] = azure_jobs(update_pipeline)
        env = next(s["env"] for s in update["steps"] if s.get("script") == "make template-update")
        assert env["TEMPLATE_UPDATE_PROVIDER"] == "azure"
        assert env["TEMPLATE_UPDATE_TOKEN"] == "$(System.AccessToken)"
        # the push goes to the checkout's remote with the token the checkout kept for the run
        assert env["TEMPLATE_UPDATE_PUSH"] == "origin"
        assert update["steps"][0] == {"checkout": "self", "persistCredentials": "true"}


def test_jenkins_reads_the_login_of_a_role_from_its_own_credential(projects: list[Path]) -> None:
    for project in of(projects, "jenkins"):
        function = parse_groovy_blocks((project / "Jenkinsfile").read_text()).block(
            r"List mlCredentials\(String mlflowLogin\)"
        )
        assert "credentialsId: mlflowLogin" in " ".join(function.statements())


# ---------------------------------------------------------------- the same graph as 0.3.0


def provider_graph(project: Path, kind: str) -> dict[str, tuple[Any, ...]]:
    """Each job (GitLab, GitHub) or stage (Jenkins) as (what it needs, the make targets it runs)."""
    graph: dict[str, tuple[Any, ...]] = {}
    if kind == "gitlab":
        _, jobs = gitlab_jobs(project)
        for name, job in jobs.items():
            commands = job.get("before_script", []) + job["script"]
            needs = job.get("needs")
            graph[name] = (None if needs is None else tuple(needs), tuple(make_targets(commands)))
    elif kind == "jenkins":
        before: list[str] = []
        for name, stage in jenkins_stages(project):
            posts = [s for post in stage.blocks("post") for s in post.statements()]
            statements = stage.block("steps").statements() + posts
            commands = [c for s in statements if (c := string_literal(s, "sh"))]
            # stages run one after the other: each needs the ones before it (the top-level
            # template-update and rollback stages are alternatives of the delivery stages)
            graph[name] = (tuple(before), tuple(make_targets(commands)))
            if name not in {"template-update", "rollback"}:
                before.append(name)
    else:
        for path in sorted((project / ".github" / "workflows").glob("*.yml")):
            for name, job in github_workflow(project, path.name)["jobs"].items():
                needs = job.get("needs", [])
                needs = (needs,) if isinstance(needs, str) else tuple(needs)
                commands = [s["run"] for s in job.get("steps", []) if "run" in s]
                called = job.get("uses", "")
                graph[f"{path.stem}/{name}"] = (needs, tuple(make_targets(commands)), called)
    return graph


# What 0.4.0 changed in the graph, against 0.3.0 (GitLab and GitHub): the dependency audit
# became a job nothing waits for, so `test` needs only `lint`, and GitLab's ML jobs name the
# job they need instead of waiting for the whole stage before. 0.5.0 changes nothing more.
CHANGED_IN_040 = {
    "gitlab": {
        "test": (None, ("setup", "test")),
        "validate": (None, ("setup", "validate")),
        "train": (None, ("setup", "train", "metrics")),
    },
    "github": {"ci/test": (("lint", "audit-deps"), ("test",), "")},
    "jenkins": {},
}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The shipped releases 0.3.0 and 0.4.0 as plain template directories (git archive)."""
    from template_releases import SHIPPED_BUNDLE

    root = tmp_path_factory.mktemp("shipped")
    clone = root / "history"
    run("git", "clone", "--quiet", "--no-checkout", SHIPPED_BUNDLE, clone, cwd=root)
    found = {}
    for version in ("v0.3.0", "v0.4.0"):
        target = root / version
        target.mkdir()
        archive = root / f"{version}.tar"
        run("git", "archive", "--output", archive, version, cwd=clone)
        run("tar", "-xf", archive, "-C", target, cwd=root)
        found[version] = target
    return found


@pytest.mark.parametrize("kind", ["gitlab", "jenkins", "github"])
def test_the_three_providers_render_the_graph_of_the_releases_before(
    kind: str, shipped: dict[str, Path], rendered: RenderedVariants, tmp_path: Path
) -> None:
    """Jobs, needs and scripts as 0.3.0 rendered them (but for 0.4.0's changes) and as 0.4.0
    did; what the one graph changed in the files is in the tests above (the MLflow login of
    each role) and in docs/ci-providers.md."""
    from copier import Settings, run_copy

    answers = {"ci_provider": kind, "use_kubernetes": True}
    new = provider_graph(rendered(answers), kind)
    for version, template in shipped.items():
        project = tmp_path / version
        run_copy(
            str(template), project, data=answers, defaults=True, settings=Settings(), quiet=True
        )
        old = provider_graph(project, kind)
        if version == "v0.3.0":
            assert {k: v for k, v in old.items() if new.get(k) != v} == CHANGED_IN_040[kind]
        else:
            assert old == new, version


# ---------------------------------------------------------------- mlopsify add azure


@pytest.mark.slow
def test_add_azure_switches_the_ci_and_the_dvc_remote_keeps_its_own_name(
    tagged_template: Path, tmp_path: Path
) -> None:
    from template_repos import git
    from test_render_matrix import check_project

    from mlopsify import TemplateSource, new_project
    from mlopsify.services import add_service

    template = TemplateSource.at(tagged_template)
    project = new_project(tmp_path / "to-azure", defaults=True, template=template, vcs_ref="v9.0.0")
    added = add_service(project, "azure", template=template)
    assert (added.service.question, added.previous) == ("ci_provider", "gitlab")
    answers = check_project(project)  # exactly the files of the new answers, no Jinja left
    assert answers["ci_provider"] == "azure" and answers["dvc_remote_kind"] == "local"
    assert {".azure-pipelines/template-update.yml", "azure-pipelines.yml"} <= ci_files_in(project)
    assert not (project / ".gitlab-ci.yml").exists()
    git("add", "--all", cwd=project)
    git("commit", "--quiet", "-m", "azure pipelines", cwd=project)
    # The Azure Blob remote, whose value `azure` the CI provider took, by question and value.
    remote = add_service(project, "dvc_remote_kind=azure", template=template)
    assert remote.service.name == "dvc_remote_kind=azure"
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert (recorded["ci_provider"], recorded["dvc_remote_kind"]) == ("azure", "azure")
    assert recorded["dvc_remote_url"].startswith("azure://")


# ---------------------------------------------------------------- mlopsify assess


@pytest.mark.usefixtures("shipped_is_next_release")
def test_assess_recognises_azure_pipelines_and_checks_it_against_the_schema(
    projects: list[Path], tmp_path: Path
) -> None:
    import json

    from template_repos import git
    from typer.testing import CliRunner

    from mlopsify.cli import app

    require_tool("check-jsonschema")
    good = (of(projects, "azure")[0] / "azure-pipelines.yml").read_text()
    verdicts = {}
    for name, text in (("good", good), ("broken", good.replace("artifactName:", "artifact:"))):
        repository = tmp_path / name
        repository.mkdir()
        (repository / "azure-pipelines.yml").write_text(text)
        git("init", "--quiet", "--initial-branch=main", cwd=repository)
        git("add", "--all", cwd=repository)
        git("commit", "--quiet", "-m", "pipeline", cwd=repository)
        result = CliRunner().invoke(app, ["assess", str(repository), "--json"])
        assert result.exit_code == 0, result.output
        [ci] = [a for a in json.loads(result.stdout)["areas"] if a["id"] == "ci_cd"]
        verdicts[name] = ci
    [found] = [e for e in verdicts["good"]["evidence"] if e["finding"] == "Azure Pipelines"]
    assert (found["path"], found["level"]) == ("azure-pipelines.yml", 1)
    assert found["check"] == "passed: check-jsonschema vendor.azure-pipelines"
    assert found["earned"] and verdicts["good"]["level"] >= 1
    # The step it points to is the template's Azure Pipelines, not the Azure Blob DVC remote.
    from mlopsify.assessment import _Advice

    advice = _Advice(None, adoptable=True)
    assert advice.commands("azure") == ["mlopsify adopt --data ci_provider=azure"]
    [broken] = [e for e in verdicts["broken"]["evidence"] if e["finding"] == "Azure Pipelines"]
    assert broken["check"].startswith("failed: check-jsonschema vendor.azure-pipelines: ")
    assert not broken["earned"] and verdicts["broken"]["level"] == 0


# ---------------------------------------------------------------- the picture in the docs


def test_the_docs_picture_is_the_default_graph(rendered: RenderedVariants) -> None:
    """docs/ci-providers.md draws the graph of a default project: the same jobs and needs."""
    page = (ROOT / "docs" / "ci-providers.md").read_text()
    chart = page.split("```mermaid\n", 1)[1].split("```", 1)[0]
    edges: set[tuple[str, str]] = set()
    nodes: set[str] = set()
    for line in chart.splitlines()[1:]:
        if line.strip().startswith("classDef"):
            continue
        chain = [n.split(":::")[0].strip() for n in re.split(r"-->(?:\|[^|]*\|)?", line)]
        nodes.update(chain)
        edges.update(itertools.pairwise(chain))
    graph = graph_of(rendered({}))
    assert nodes == {job["name"] for job in graph}
    assert edges == {(need, job["name"]) for job in graph for need in job.get("needs", [])}
    table = re.findall(r"^\| ([a-z-]+) \| `", page, re.M)
    assert table[: len(graph)] == [job["name"] for job in graph]
