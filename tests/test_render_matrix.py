"""Every variant of the template renders completely, with exactly its files and no Jinja left.

The matrix comes from copier.yml's own choices: a new choice is tested without editing this file.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import ROOT, Render, RenderedVariants, makefile_text, run

COPIER = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
# A Jinja opener (`{{`, `{%`, `{#`); GitHub Actions' `${{ ... }}` is not Jinja, nor are the Go
# templates of Prometheus alerts, which start with a variable (`{{ $labels.job }}`, `{{ $value }}`).
# Closers are left out: `%}` is legal Python (f"{share:.1%}").
JINJA_LEFTOVER = re.compile(r"(?<!\$)\{\{(?! ?\$)|\{%|\{#")
# Links in the project's Markdown: to its own files and headings, or to mlopsify's docs (the
# runtime's pages in docs/runtime/) at the tag of the runtime version the project pins.
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)
RUNTIME_DOCS = COPIER["runtime_docs"]["default"].replace(
    "{{ runtime_version }}", COPIER["runtime_version"]["default"]
)
MLOPSIFY_DOCS = RUNTIME_DOCS.removesuffix("runtime")
# Written by `make pipeline` and committed by the team: not in a project just rendered.
PIPELINE_OUTPUTS = {"docs/openapi.json"}
PIPELINE_MODULES = (
    # the team's own code; the machinery is the runtime's (runtime/, tests/runtime/)
    "__init__",
    "ingest",
    "features",
    "train",
    "hooks",
)
GENERATED_TESTS = (
    # tests of the team's data and model; the runtime's are mlopsify's (tests/runtime/)
    "conftest",
    "test_data",
    "test_features",
    "test_model_quality",
    "test_train",
)

# monitoring (use_monitoring): rules, dashboard, runbooks, and the kustomize component
MONITORING_FILES = {
    "docs/runbooks.md",
    "monitoring/grafana/dashboards/model-service.json",
    "monitoring/grafana/provisioning/dashboards/dashboards.yml",
    "monitoring/grafana/provisioning/datasources/prometheus.yml",
    "monitoring/prometheus/prometheus.yml",
    "monitoring/prometheus/rules_test.yml",
}
MONITORING_COMPONENT = ("kustomization.yaml", "prometheusrule.yaml", "servicemonitor.yaml")


K8S_BASE = (
    "kustomization",
    "serviceaccount",
    "deployment",
    "service",
    "hpa",
    "pdb",
    "networkpolicy",
    "retrain-cronjob",
    "batch-cronjob",
)
TRACKING_COMPONENT = (
    "kustomization",
    "serviceaccount",
    "auth",
    "postgres",
    "mlflow",
    "networkpolicy",
)
# Each overlay is its kustomization (its patches inline) and its namespace.
K8S_ENVIRONMENTS = ("dev", "staging", "prod")


def choices(question: str) -> list[str]:
    """The values a question accepts, as copier.yml lists them (a list, or a label -> value map)."""
    listed = COPIER[question]["choices"]
    return [str(value) for value in (listed.values() if isinstance(listed, dict) else listed)]


def expected_files(answers: Mapping[str, Any]) -> set[str]:
    """Every file (relative POSIX path, .git excluded) of a project rendered with ``answers``.

    The one place that knows the file set: when a template part adds files (CI for each
    ci_provider, the Dockerfile, deploy/k8s when use_kubernetes, monitoring/ when
    use_monitoring, ...), add them here from the answers that select them.
    """
    package = answers["package_name"]
    files = {
        ".copier-answers.yml",
        ".dvc/.gitignore",
        ".dvc/config",
        ".dvcignore",
        ".gitignore",
        ".pre-commit-config.yaml",
        ".secrets.baseline",
        ".yamllint.yaml",
        "CODEOWNERS",
        "README.md",
        "data/schema.yaml",
        "data/external/README.md",
        "docs/compliance.md",
        "docs/data-card.md",
        "docs/model-card.md",
        "docs/objectives.md",
        # the project's names, environments and secrets; the machinery's pages are the
        # runtime's (mlopsify's docs/runtime/), which it links at the runtime's version
        "docs/operations.md",
        "docs/security.md",
        "dvc.yaml",
        "inference/dvc.yaml",
        "params.yaml",
        "pyproject.toml",
    }
    files |= {f"src/{package}/{module}.py" for module in PIPELINE_MODULES}
    files |= {f"tests/{module}.py" for module in GENERATED_TESTS}
    files |= {"Dockerfile", ".dockerignore", "keys/README.md"}
    # the runtime's wheel that the template release carries (docs/architecture.md)
    files.add(f"vendor/mlopsify_runtime-{COPIER['runtime_version']['default']}-py3-none-any.whl")
    if answers["use_kubernetes"]:
        files |= {f"deploy/k8s/base/{name}.yaml" for name in K8S_BASE}
        files |= {
            f"deploy/k8s/overlays/{env}/{name}.yaml"
            for env in K8S_ENVIRONMENTS
            for name in ("kustomization", "namespace")
        }
        if answers["use_tracking_server"]:
            # the shared MLflow tracking server: its component, its kustomization, its image
            files |= {f"deploy/k8s/components/tracking/{n}.yaml" for n in TRACKING_COMPONENT}
            files |= {
                "deploy/k8s/tracking/kustomization.yaml",
                "deploy/k8s/tracking/namespace.yaml",
            }
            files.add("deploy/tracking/Dockerfile")
    if answers["use_monitoring"]:
        files |= MONITORING_FILES
        if answers["use_kubernetes"]:
            files |= {f"deploy/k8s/components/monitoring/{name}" for name in MONITORING_COMPONENT}
        else:  # with Kubernetes, make writes rules.yml from the PrometheusRule (git ignores it)
            files.add("monitoring/prometheus/rules.yml")
    files |= ci_files(answers)
    files |= orchestrator_files(answers)
    files |= makefile_files(answers)
    return files


def makefile_files(answers: Mapping[str, Any]) -> set[str]:
    """The Makefile and make/: one included file per concern, those of an answer only with it."""
    concerns = {"pipeline", "release", "supply-chain"}
    if answers["orchestrator"] != "dvc":
        concerns.add("orchestration")
    if answers["use_kubernetes"]:
        concerns.add("deploy")
    if answers["use_monitoring"]:
        concerns.add("monitoring")
    return {"Makefile"} | {f"make/{concern}.mk" for concern in concerns}


def orchestrator_files(answers: Mapping[str, Any]) -> set[str]:
    """Kubeflow and Airflow: the graph and task runner, orchestration.yaml, their module or DAG."""
    orchestrator = answers["orchestrator"]
    if orchestrator == "dvc":
        return set()
    # the graph, the task runner and the Kubeflow module are the runtime's
    files = {"orchestration.yaml", "docs/orchestration.md"}
    if orchestrator == "airflow":
        files.add("dags/pipeline.py")
    return files


def ci_files(answers: Mapping[str, Any]) -> set[str]:
    """The CI/CD files of ``answers["ci_provider"]`` (none: no CI file) and the pre-commit hooks'
    runner (the update check and job and the advisory probe are the runtime's)."""
    files = {"scripts/in-env"}
    provider = answers["ci_provider"]
    if provider == "gitlab":
        files |= {".gitlab-ci.yml", "renovate.json"}
    elif provider == "jenkins":
        files |= {"Jenkinsfile", "renovate.json"}
    elif provider == "github":
        files |= {
            ".github/workflows/ci.yml",
            ".github/workflows/template-update.yml",
            ".github/actions/setup/action.yml",
            ".github/zizmor.yml",
            ".github/dependabot.yml",
        }
        if answers["use_kubernetes"]:
            files |= {".github/workflows/deploy.yml", ".github/workflows/rollback.yml"}
    elif provider == "azure":
        files |= {"azure-pipelines.yml", ".azure-pipelines/template-update.yml", "renovate.json"}
        if answers["use_kubernetes"]:
            files.add(".azure-pipelines/rollback.yml")
    return files


def rendered_files(project: Path) -> set[str]:
    """The project's files: committed and still there, or new and not ignored (tools' caches are
    ignored); a file an update deleted without staging it is gone."""
    listed = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=project)
    return {name for name in listed.stdout.split("\0") if name and (project / name).exists()}


def recorded_answers(project: Path) -> dict[str, Any]:
    """The answers as the project recorded them (defaults included)."""
    answers: dict[str, Any] = yaml.safe_load(
        (project / ".copier-answers.yml").read_text(encoding="utf-8")
    )
    return answers


def gate_in_objectives(project: Path) -> dict[str, dict[str, float]]:
    """The minimum model quality table of docs/objectives.md, as params.yaml's `gate:`."""
    text = (project / "docs" / "objectives.md").read_text(encoding="utf-8")
    gate: dict[str, dict[str, float]] = {"min": {}, "max": {}}
    for metric, bound, value in re.findall(
        r"^\| `(\w+)` \| at (least|most) ([0-9.]+) \|$", text, re.M
    ):
        gate["min" if bound == "least" else "max"][metric] = float(value)
    return gate


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings, as GitHub, GitLab and mkdocs make them."""
    headings = HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8")))
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def broken_links(project: Path, files: set[str]) -> list[str]:
    """Every link of the project's Markdown whose file or heading does not exist."""
    broken = []
    for name in sorted(f for f in files if f.endswith(".md")):
        page = project / name
        for target in LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
            path, _, anchor = target.partition("#")
            if path.startswith(MLOPSIFY_DOCS):
                found = ROOT / "docs" / path.removeprefix(MLOPSIFY_DOCS)
            elif "://" in path:
                continue
            else:
                found = (page.parent / path).resolve() if path else page
                relative = found.relative_to(project.resolve()).as_posix()
                if relative in PIPELINE_OUTPUTS:
                    continue
            if not found.is_file() or (anchor and anchor not in anchors(found)):
                broken.append(f"{name} -> {target}")
    return broken


def check_project(project: Path) -> dict[str, Any]:
    """What every variant must satisfy; returns the recorded answers for variant checks."""
    answers = recorded_answers(project)
    files = rendered_files(project)
    assert files == expected_files(answers), (
        f"missing: {sorted(expected_files(answers) - files)}, unexpected: {sorted(files - expected_files(answers))}"
    )
    for name in files:
        if name.endswith(".whl"):  # the runtime's wheel: a zip, checked by its own build
            continue
        text = (project / name).read_text(encoding="utf-8")
        leftover = JINJA_LEFTOVER.search(text)
        assert leftover is None, (
            f"{name}: Jinja left at {text[max(leftover.start() - 40, 0) : leftover.end() + 40]!r}"
        )
        if name.endswith((".yaml", ".yml")) or name in {".secrets.baseline", "dvc.yaml"}:
            list(yaml.safe_load_all(text))
        if name.endswith(".py"):
            compile(text, name, "exec")
    assert broken_links(project, files) == []
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    assert params["task_type"] == answers["task_type"]
    assert params["mlflow"]["model_name"] == answers["project_name"]
    gate = {
        bound: {k: float(v) for k, v in (params["gate"][bound] or {}).items()}
        for bound in ("min", "max")
    }
    assert gate == gate_in_objectives(project), "docs/objectives.md and params.yaml gate differ"
    assert gate["min"], "the gate needs at least one minimum"
    owners = (project / "CODEOWNERS").read_text(encoding="utf-8")
    for role in ("data-science", "ml-engineering", "operations"):
        assert f"@{answers['project_name']}/{role}" in owners
    return answers


MATRIX = [
    {"ci_provider": ci, "task_type": task, "compliance": regime}
    for ci, task, regime in itertools.product(
        choices("ci_provider"), choices("task_type"), choices("compliance")
    )
]
COMPLIANCE_SECTIONS = {
    "none": ["No regulation was selected", "Reconsider before anything else"],
    "gdpr": ["## Lawful basis", "## Data subject rights", "## Retention"],
    "hipaa": ["## PHI handling", "## Access audit", "## Encryption at rest and in transit"],
}


@pytest.mark.parametrize("answers", MATRIX, ids=lambda a: "-".join(a.values()))
def test_variant_renders_completely(rendered: RenderedVariants, answers: dict[str, str]) -> None:
    project = rendered(answers)
    recorded = check_project(project)
    assert {key: recorded[key] for key in answers} == answers
    compliance = (project / "docs" / "compliance.md").read_text(encoding="utf-8")
    for section in COMPLIANCE_SECTIONS[answers["compliance"]]:
        assert section in compliance
    schema = yaml.safe_load((project / "data" / "schema.yaml").read_text(encoding="utf-8"))
    assert ("isin" in schema["columns"]["target"]) == (answers["task_type"] == "classification")


def test_every_compliance_choice_has_its_sections() -> None:
    assert set(COMPLIANCE_SECTIONS) == set(choices("compliance"))


@pytest.mark.parametrize("kind", choices("dvc_remote_kind"))
def test_dvc_remote_kind_renders(rendered: RenderedVariants, kind: str) -> None:
    project = rendered({"dvc_remote_kind": kind})
    answers = check_project(project)
    config = (project / ".dvc" / "config").read_text(encoding="utf-8")
    assert "[core]\n    remote = storage\n" in config
    url = re.search(r"^\s*url = (.+)$", config, re.M)
    assert url, config
    if kind == "local":
        # DVC resolves a relative url from .dvc/: it must land where the answer points from the root.
        assert (project / ".dvc" / url[1]).resolve() == (
            project / answers["dvc_remote_url"]
        ).resolve()
        # DVC itself comes with the runtime's pipeline extra; a local remote needs no DVC extra
        pyproject = (project / "pyproject.toml").read_text(encoding="utf-8")
        assert '"mlopsify-runtime[pipeline]==' in pyproject and '"dvc[' not in pyproject
        assert '"dvc>=' in (ROOT / "runtime" / "pyproject.toml").read_text(encoding="utf-8")
    else:
        assert url[1] == answers["dvc_remote_url"]
        extra = {"gcs": "gs"}.get(kind, kind)
        assert f'"dvc[{extra}]>=' in (project / "pyproject.toml").read_text(encoding="utf-8")


def test_absolute_local_remote_is_kept(render: Render, tmp_path: Path) -> None:
    storage = tmp_path / "shared-storage"
    project = render("absolute", dvc_remote_url=str(storage))
    assert f"    url = {storage}\n" in (project / ".dvc" / "config").read_text(encoding="utf-8")


@pytest.mark.parametrize("use_kubernetes", [True, False])
def test_kubernetes_choice_renders(rendered: RenderedVariants, use_kubernetes: bool) -> None:
    project = rendered({"use_kubernetes": use_kubernetes})
    answers = check_project(project)
    assert answers["use_kubernetes"] is use_kubernetes
    makefile = makefile_text(project)
    assert ("\ndeploy: " in makefile) is use_kubernetes
    assert "\nserve: " in makefile and "\nimage: " in makefile and "\npush: " in makefile


@pytest.mark.parametrize("orchestrator", choices("orchestrator"))
def test_orchestrator_choice_renders(render: Render, orchestrator: str) -> None:
    project = render("orchestrated", orchestrator=orchestrator)
    answers = check_project(project)
    assert answers["orchestrator"] == orchestrator
    makefile = makefile_text(project)
    extras = "dev" if orchestrator == "dvc" else f"dev,{orchestrator}"
    assert f"EXTRAS ?= {extras}\n" in makefile
    assert ("\norchestrate: " in makefile) is (orchestrator != "dvc")
    assert "\nbatch: " in makefile
