"""``assess``: a maturity report for any repository, from what its commit holds and what runs.

Each area has a few evidence rules: file patterns, optionally a regular expression the file
must contain, and the check that must pass for the evidence to count (assessment_checks.py:
the provider's CI checker, `dvc dag`, promtool, kubectl kustomize, the image's USER, pytest
with ``--run``, the MLflow registry). Files are read from the commit at HEAD: staged or
uncommitted files count for nothing. An area's level is the highest level reached with earned
evidence for it and for every level below: 0 none, 1 partial, 2 managed. Rules are data
(``AREAS``); the report's JSON form is documented in docs/assess.md and versioned by
:data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answers import ANSWERS_FILE
from .assessment_checks import Context, committed_tree, verdict
from .assessment_images import CI_FILES
from .errors import MlopsifyError, RepositoryStateError
from .template import Release, template_for
from .template_source import TemplateSource

SCHEMA_VERSION = 2
LEVEL_NAMES = ("none", "partial", "managed")
MAX_LEVEL = len(LEVEL_NAMES) - 1
# Directories that hold no evidence of practice, only tools, caches and data.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".tox",
        "site-packages",
        "build",
        "dist",
        ".cache",
    }
)
MAX_SCANNED_BYTES = 512 * 1024

PYTHON = ("*.py",)
YAML = ("*.yml", "*.yaml")
DOCKERFILES = ("Dockerfile", "*/Dockerfile", "Containerfile", "*.Dockerfile", "*.dockerfile")
TEST_FILES = ("test_*.py", "*_test.py")


@dataclass(frozen=True)
class Rule:
    """Evidence for ``level``: a file matching one of ``patterns`` (containing ``contains``) on
    which ``check`` passes (assessment_checks.CHECKS; ``committed``: being in HEAD is the
    evidence, as for a README)."""

    level: int
    finding: str
    patterns: tuple[str, ...]
    contains: str | None = None
    service: str | None = None  # the `mlopsify add` service this evidence points to
    check: str = "committed"
    # What a run leaves in the work tree and git ignores (mlflow.db): read there, not from HEAD.
    runtime: bool = False


@dataclass(frozen=True)
class Area:
    key: str
    title: str
    goal: str  # what level 2 (managed) means, said as the next step
    rules: tuple[Rule, ...]
    service: str | None = None  # the `mlopsify add` service that closes the gap, if any
    # A project whose answer to the service's question is `none` declined it (compliance:
    # data under no regulation), so no command is suggested for the area.
    declinable: bool = False
    # Levels earned only when every finding of the level has earned evidence (tests: CI runs
    # them and they pass), not any one of them.
    all_of: frozenset[int] = frozenset()


AREAS: tuple[Area, ...] = (
    Area(
        "version_control",
        "Version control",
        "enforce checks before each commit (pre-commit hooks)",
        (
            Rule(1, "a git repository", (".git",), check="git-history"),
            Rule(2, "pre-commit hooks", (".pre-commit-config.yaml",), check="pre-commit"),
        ),
    ),
    Area(
        "ci_cd",
        "CI/CD",
        "make CI run the ML pipeline and its quality gate",
        (
            Rule(1, "GitLab CI pipeline", (".gitlab-ci.yml",), service="gitlab", check="ci"),
            Rule(1, "Jenkins pipeline", ("Jenkinsfile",), service="jenkins", check="ci"),
            Rule(
                1,
                "GitHub Actions workflow",
                (".github/workflows/*.y*ml",),
                service="github",
                check="ci",
            ),
            Rule(1, "Azure Pipelines", ("azure-pipelines.yml",), service="azure", check="ci"),
            Rule(
                1,
                "CI pipeline",
                (".circleci/config.yml", "bitbucket-pipelines.yml"),
                check="ci",
            ),
            Rule(
                2,
                "CI runs the ML pipeline",
                CI_FILES,
                r"dvc repro|make (pipeline|gate|train)\b",
                check="ci",
            ),
        ),
        service="gitlab",
    ),
    Area(
        "tests",
        "Tests",
        "run the tests in CI, and make them pass",
        (
            Rule(1, "tests", TEST_FILES, check="test-functions"),
            Rule(2, "CI runs the tests", CI_FILES, r"pytest|make test\b|\btox\b", check="ci"),
            Rule(2, "the tests pass", ("tests", "test"), check="tests-pass"),
        ),
        all_of=frozenset({2}),
    ),
    Area(
        "containers",
        "Containers",
        "build a hardened image that runs as a non-root user",
        (
            Rule(1, "container build", DOCKERFILES, check="service-image"),
            Rule(1, "container build", ("docker-compose.y*ml", "compose.y*ml"), check="compose"),
            Rule(2, "image runs as a non-root user", DOCKERFILES, check="service-image-user"),
        ),
    ),
    Area(
        "deployment",
        "Deployment",
        "deploy per environment with kustomize overlays or Helm",
        (
            Rule(
                1,
                "Kubernetes manifests",
                YAML,
                r"(?m)^kind:\s*(Deployment|StatefulSet|Service)\b",
                check="manifest",
            ),
            Rule(
                2,
                "environments as kustomize overlays",
                ("*/overlays/*/kustomization.y*ml", "overlays/*/kustomization.y*ml"),
                check="kustomize",
            ),
            Rule(2, "a Helm chart", ("Chart.yaml", "*/Chart.yaml"), check="helm"),
        ),
        service="kubernetes",
    ),
    Area(
        "data_versioning",
        "Data versioning",
        "version data with a DVC pipeline and a remote",
        (
            Rule(1, "data tracked by DVC", ("?*.dvc",), check="dvc-file"),
            Rule(1, "a DVC repository", (".dvc",), check="dvc-config"),
            Rule(1, "a DVC pipeline", ("dvc.yaml",), check="pipeline"),
            Rule(1, "data tracked by Git LFS", (".gitattributes",), r"filter=lfs"),
            Rule(
                2, "DVC remote configured", (".dvc/config",), r"\[\s*'?remote", check="dvc-config"
            ),
        ),
    ),
    Area(
        "data_validation",
        "Data validation",
        "validate data as a pipeline stage before training",
        (
            Rule(
                1,
                "data validation code",
                PYTHON,
                r"(?m)^\s*(import|from)\s+(pandera|great_expectations|deepchecks|pydantic)\b",
                check="python",
            ),
            Rule(1, "data validation code", ("*validat*.py",), check="python"),
            # a project made from mlopsify 0.4 on validates with its runtime, from dvc.yaml
            Rule(
                1,
                "the runtime validates the data (mlopsify_runtime.validate)",
                ("dvc.yaml",),
                r"python -m mlopsify_runtime\.validate\b",
            ),
            Rule(2, "validation stage in the DVC pipeline", ("dvc.yaml",), check="validate-stage"),
        ),
    ),
    Area(
        "experiment_tracking",
        "Experiment tracking",
        "log parameters and metrics of every training run",
        (
            Rule(
                1,
                "experiment tracking library",
                PYTHON,
                r"(?m)^\s*(import|from)\s+(mlflow|wandb|neptune|comet_ml)\b",
                check="python",
            ),
            Rule(
                1,
                "code logs parameters and metrics",
                PYTHON,
                r"\bmlflow\.(log_params?|log_metrics?|autolog|start_run)\b|\bwandb\.log\b",
                check="python",
            ),
            Rule(
                2,
                "runs logged parameters and metrics",
                ("mlflow.db",),
                check="logged-runs",
                runtime=True,
            ),
        ),
    ),
    Area(
        "model_registry",
        "Model registry",
        "promote registered models by alias",
        (
            Rule(
                1,
                "code registers models",
                PYTHON,
                r"\bregister_model\(|registered_model_name\s*=",
                check="python",
            ),
            Rule(
                1,
                "the runtime registers the model (mlopsify_runtime.training)",
                PYTHON,
                r"(?m)^\s*from\s+mlopsify_runtime\.training\s+import\b",
                check="python",
            ),
            Rule(
                1, "models in the registry", ("mlflow.db",), check="registered-models", runtime=True
            ),
            Rule(
                2,
                "a model holds the champion alias",
                ("mlflow.db",),
                check="champion-alias",
                runtime=True,
            ),
        ),
    ),
    Area(
        "model_validation",
        "Model validation",
        "fail the pipeline when the model misses its quality gate",
        (
            Rule(1, "model evaluation code", ("*evaluat*.py",), check="python"),
            Rule(
                1, "metrics tracked by DVC", ("dvc.yaml",), r"(?m)^\s+metrics\s*:", check="pipeline"
            ),
            Rule(
                2,
                "quality gate thresholds",
                ("params.y*ml",),
                r"(?m)^(gate|quality_gate|thresholds?)\s*:",
                check="gate",
            ),
        ),
    ),
    Area(
        "monitoring",
        "Monitoring and alerting",
        "alert on model and service health (Prometheus rules)",
        (
            Rule(
                1,
                "service metrics",
                PYTHON,
                r"(?m)^\s*(import|from)\s+(prometheus_client|prometheus_fastapi_instrumentator)\b",
                check="python",
            ),
            Rule(
                1,
                "monitoring configuration",
                ("prometheus*.y*ml", "*/prometheus*.y*ml"),
                check="yaml",
            ),
            Rule(1, "monitoring configuration", ("*grafana*/*.json",)),
            Rule(2, "alerting rules", YAML, r"(?m)^\s*-?\s*alert\s*:", check="alert-rules"),
        ),
        service="monitoring",
    ),
    Area(
        "security_compliance",
        "Security and compliance",
        "document the controls of the regulation that applies",
        (
            Rule(
                1,
                "security policy or scanning",
                (
                    "SECURITY.md",
                    ".github/SECURITY.md",
                    ".github/dependabot.y*ml",
                    "renovate.json",
                    ".checkov.y*ml",
                    ".trivyignore",
                    ".hadolint.y*ml",
                ),
            ),
            Rule(
                1,
                "secret or vulnerability scanning hooks",
                (".pre-commit-config.yaml",),
                r"detect-secrets|gitleaks|bandit|trivy|checkov",
            ),
            Rule(1, "compliance documentation", ("*compliance*.md", "*privacy*.md")),
            Rule(2, "regulation-specific controls", ("*gdpr*.md", "*hipaa*.md", "*dpia*.md")),
            Rule(
                2,
                "regulation chosen for the project",
                (ANSWERS_FILE,),
                r"(?m)^compliance:\s*(gdpr|hipaa)\b",
            ),
        ),
        service="gdpr",
        declinable=True,
    ),
    Area(
        "docs_ownership",
        "Docs and ownership",
        "name owners and document the model (CODEOWNERS, model card)",
        (
            Rule(1, "documentation", ("README*", "docs/*.md")),
            Rule(
                2,
                "owners or a model card",
                ("CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS", "*model*card*.md"),
            ),
        ),
    ),
)


@dataclass(frozen=True)
class Evidence:
    path: str
    finding: str
    level: int
    check: str  # what the check found: "passed: ...", "failed: ...", "not checked: ..."
    earned: bool  # whether the evidence counts toward the level


@dataclass(frozen=True)
class AreaReport:
    key: str
    title: str
    level: int
    evidence: list[Evidence]
    next_step: str | None
    commands: list[str]

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]


@dataclass(frozen=True)
class Assessment:
    path: Path
    template_version: str | None  # None when the repository was not made or adopted with mlopsify
    areas: list[AreaReport]
    committed_only: bool  # a git repository: only what HEAD holds was assessed
    tests_run: bool  # --run: the tests were collected and run

    @property
    def score(self) -> int:
        return sum(area.level for area in self.areas)

    @property
    def max_score(self) -> int:
        return MAX_LEVEL * len(self.areas)

    def to_json(self) -> dict[str, Any]:
        """The documented, stable JSON form (docs/assess.md)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "path": str(self.path),
            "mlopsify_project": self.template_version is not None,
            "template_version": self.template_version,
            "committed_only": self.committed_only,
            "tests_run": self.tests_run,
            "score": self.score,
            "max_score": self.max_score,
            "areas": [
                {
                    "id": area.key,
                    "title": area.title,
                    "level": area.level,
                    "level_name": area.level_name,
                    "evidence": [
                        {
                            "path": e.path,
                            "finding": e.finding,
                            "level": e.level,
                            "check": e.check,
                            "earned": e.earned,
                        }
                        for e in area.evidence
                    ],
                    "next_step": area.next_step,
                    "commands": area.commands,
                }
                for area in self.areas
            ],
        }


def repository_paths(root: Path) -> list[str]:
    """Every file and directory under ``root`` as POSIX relative paths, skipping tool caches."""
    found: list[str] = []
    for directory, dirnames, filenames in os.walk(root):
        base = Path(directory).relative_to(root)
        kept = sorted(
            d for d in dirnames if d not in SKIPPED_DIRS or (d == ".git" and base == Path())
        )
        found.extend((base / d).as_posix() for d in kept)
        dirnames[:] = [d for d in kept if d != ".git"]
        # Template versions that adopt wrote beside a file are proposals, not practice.
        found.extend(
            (base / f).as_posix() for f in sorted(filenames) if not f.endswith(".mlopsify")
        )
    return sorted(found)


def _matches(path: str, patterns: tuple[str, ...]) -> bool:
    """A pattern without a slash matches a file name anywhere; with one, the whole relative path."""
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(path if "/" in p else name, p) for p in patterns)


class _Contents:
    """Each scanned file read once per assessment (text files up to MAX_SCANNED_BYTES)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[str, str] = {}

    def contains(self, path: str, expression: str) -> bool:
        if path not in self.cache:
            file = self.root / path
            try:
                small = file.is_file() and file.stat().st_size <= MAX_SCANNED_BYTES
                self.cache[path] = (
                    file.read_text(encoding="utf-8", errors="replace") if small else ""
                )
            except OSError:
                self.cache[path] = ""
        return re.search(expression, self.cache[path]) is not None


def _project_answers(root: Path) -> dict[str, Any] | None:
    """The answers of a project made or adopted with mlopsify; None for any other repository."""
    import yaml

    try:
        answers = yaml.safe_load((root / ANSWERS_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return answers if isinstance(answers, dict) and answers.get("_commit") else None


def _adoptable(root: Path) -> bool:
    """Whether `mlopsify adopt` takes this directory: the top of a git repository."""
    from . import _git

    return _git.repository_top(root) == root.resolve()


def assess_repository(path: Path, *, run_tests: bool = False) -> Assessment:
    """Assess every area of the repository at ``path`` from its commit at HEAD and what runs.

    ``run_tests`` collects and runs the repository's tests with pytest (in a copy of HEAD, with
    the repository's .venv when it has one): only then can the tests area be managed.
    """
    root = path.expanduser().absolute()
    if not root.is_dir():
        raise RepositoryStateError(f"{root} is not a directory: give the path of a repository")
    advice = _Advice(_project_answers(root), adoptable=_adoptable(root))
    with committed_tree(root) as (tree, in_git):
        paths = repository_paths(tree)
        if (root / ".git").exists():
            paths = sorted([*paths, ".git"])
        runtime = [name for name in ("mlflow.db",) if (root / name).is_file()]
        context = Context(tree=tree, root=root, paths=paths, run_tests=run_tests)
        contents = _Contents(tree)
        reports = [_assess_area(area, context, contents, runtime, advice) for area in AREAS]
    version = advice.answers["_commit"] if advice.answers else None
    return Assessment(
        root,
        None if version is None else str(version),
        reports,
        committed_only=in_git,
        tests_run=run_tests,
    )


def _assess_area(
    area: Area, context: Context, contents: _Contents, runtime: list[str], advice: _Advice
) -> AreaReport:
    evidence: list[Evidence] = []
    service = area.service
    for rule in area.rules:
        for candidate in runtime if rule.runtime else context.paths:
            if not _matches(candidate, rule.patterns):
                continue
            if rule.contains is not None and not contents.contains(candidate, rule.contains):
                continue
            found = verdict(context, rule.check, candidate)
            evidence.append(Evidence(candidate, rule.finding, rule.level, found.note, found.earned))
            # The provider a repository uses, even when its file fails the checker.
            if rule.service and service == area.service:
                service = rule.service
    evidence = sorted(set(evidence), key=lambda e: (-e.level, not e.earned, e.path, e.finding))
    # Each level builds on the one below: CI that runs pytest is no "managed" tests area when
    # the repository has no tests.
    earned = {n for n in range(1, MAX_LEVEL + 1) if _earned(area, n, evidence)}
    level = next(n for n in range(MAX_LEVEL + 1) if n + 1 not in earned)
    return AreaReport(
        key=area.key,
        title=area.title,
        level=level,
        evidence=evidence,
        next_step=None if level == MAX_LEVEL else area.goal,
        commands=[] if level == MAX_LEVEL else advice.commands(service, area.declinable),
    )


def _earned(area: Area, level: int, evidence: list[Evidence]) -> bool:
    earned = {e.finding for e in evidence if e.level == level and e.earned}
    if level in area.all_of:
        return bool(earned) and earned == {r.finding for r in area.rules if r.level == level}
    return bool(earned)


class _Advice:
    """The command that closes a gap: ``adopt`` (with the service's answer) outside a project,
    ``add SERVICE`` in one; nothing when the template already provides the area."""

    def __init__(self, answers: dict[str, Any] | None, *, adoptable: bool) -> None:
        self.answers = answers
        self.adoptable = adoptable
        self._services: dict[str, tuple[str, Any, Any]] | None = None

    @property
    def services(self) -> dict[str, tuple[str, Any, Any]]:
        """Service name -> (question, value, the question's default), from the shipped template."""
        if self._services is None:
            try:
                release = template_for(TemplateSource.shipped()).release()
            except (subprocess.CalledProcessError, MlopsifyError, OSError):
                release = Release("", {})
            self._services = {
                s.name: (s.question, s.value, release.questions[s.question].get("default"))
                for s in release.services
            }
        return self._services

    def commands(self, service: str | None, declinable: bool = False) -> list[str]:
        known = self.services.get(service) if service else None
        if self.answers is None and not self.adoptable:
            return []  # adopt would refuse this directory: suggesting it would mislead
        if self.answers is None:
            if known is None or known[1] == known[2]:
                return ["mlopsify adopt"]
            question, value, _ = known
            shown = str(value).lower() if isinstance(value, bool) else value
            return [f"mlopsify adopt --data {question}={shown}"]
        # Nothing to add when the service's question is already answered with a service
        # (another CI provider counts: the gap is elsewhere, the next step says what).
        if known is None or self.answers.get(known[0]) not in (None, False, "none"):
            return []
        if declinable and self.answers.get(known[0]) == "none":
            return []
        return [f"mlopsify add {service}"]
