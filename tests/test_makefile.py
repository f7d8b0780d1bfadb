"""The generated Makefile a newcomer reads: the daily targets in Makefile, each other concern
in its own file of make/, and `make help` listing them in that order.

Splitting the Makefile moved targets and kept them: the expected targets of each variant and
the `make -n` recipes below were taken from the one-file Makefile before the split (template
0.3.0 with the runtime, commit f605b45), and CI files and other tests call these targets.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import RenderedVariants, makefile_paths, run

# Command-line values that make the dry runs the same on every machine: the uv and Python that
# `command -v` would find, and the commit that git or the CI system would give.
FIXED = ("UV=uv", "PYTHON=python3", "GIT_COMMIT=abc1234")

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "no-kubernetes": {"use_kubernetes": False},
    "no-monitoring": {"use_monitoring": False},
    "kubeflow": {"orchestrator": "kubeflow"},
    "airflow": {"orchestrator": "airflow"},
    "jenkins": {"ci_provider": "jenkins"},
    "github": {"ci_provider": "github"},
}

# The targets of the one-file Makefile (`make -pRrq`), by the answer that brings them.
EVERY_PROJECT = {
    "audit", "audit-deps", "batch", "data-import", "experiments", "format", "gate", "gate-report",
    "help", "hooks", "image", "keys", "lint", "lock", "metrics", "openapi", "pipeline", "plots",
    "promote", "push", "rollback", "sbom", "schema", "serve", "setup", "template-check",
    "template-update", "test", "train", "tune", "ui", "validate",
}  # fmt: skip
# tracking-image only with use_tracking_server (off in these variants)
KUBERNETES = {"FORCE", "deploy", "manifests", "preflight", "retrain"}
MONITORING = {"monitor", "rules"}
KUBEFLOW = {"orchestrate", "pipeline-compile", "pipeline-upload"}
AIRFLOW = {"orchestrate", "dag-bundle", "dag-check", "dag-ship"}
EXPECTED_TARGETS = {
    "default": EVERY_PROJECT | KUBERNETES | MONITORING,
    "no-kubernetes": EVERY_PROJECT | MONITORING,
    "no-monitoring": EVERY_PROJECT | KUBERNETES,
    "kubeflow": EVERY_PROJECT | KUBERNETES | MONITORING | KUBEFLOW,
    "airflow": EVERY_PROJECT | KUBERNETES | MONITORING | AIRFLOW,
    "jenkins": EVERY_PROJECT | KUBERNETES | MONITORING,
    "github": EVERY_PROJECT | KUBERNETES | MONITORING,
}

DAILY = [
    "Daily",
    "  setup            create the environment (VENV, default .venv; uv when available, else pip) with the project and its dev tools",
    "  lint             formatting, lint, types, YAML and secret checks (changes nothing)",
    "  format           fix formatting and the lint findings ruff can fix",
    "  test             unit, data and model-quality tests (they make their own data)",
    "  pipeline         the whole pipeline (dvc repro): only what changed runs again; then the OpenAPI snapshot",
    "  serve            run the service on $(HOST):$(PORT) with models/ (MODEL_URI=models:/demo-project@champion: the registry)",
    "  help             list the targets: the daily ones, then one group per file of make/",
]
# The headings after Daily, one per file of make/ that the answers render, in the include order.
COMMON_GROUPS = (
    "Data, pipeline stages and experiments",
    "Release: images, promotion, audit and rollback",
)
DEPLOYMENT, MONITORING_GROUP = "Deployment: Kubernetes", "Monitoring: Prometheus"
SUPPLY_CHAIN = "Supply chain and template updates"
EXPECTED_GROUPS = {
    "default": [*COMMON_GROUPS, DEPLOYMENT, MONITORING_GROUP, SUPPLY_CHAIN],
    "no-kubernetes": [*COMMON_GROUPS, MONITORING_GROUP, SUPPLY_CHAIN],
    "no-monitoring": [*COMMON_GROUPS, DEPLOYMENT, SUPPLY_CHAIN],
    "kubeflow": [
        COMMON_GROUPS[0],
        "Orchestration: Kubeflow Pipelines",
        COMMON_GROUPS[1],
        DEPLOYMENT,
        MONITORING_GROUP,
        SUPPLY_CHAIN,
    ],
    "airflow": [
        COMMON_GROUPS[0],
        "Orchestration: Airflow",
        COMMON_GROUPS[1],
        DEPLOYMENT,
        MONITORING_GROUP,
        SUPPLY_CHAIN,
    ],
    "jenkins": [*COMMON_GROUPS, DEPLOYMENT, MONITORING_GROUP, SUPPLY_CHAIN],
    "github": [*COMMON_GROUPS, DEPLOYMENT, MONITORING_GROUP, SUPPLY_CHAIN],
}

# `make -n TARGET` of the one-file Makefile, per variant (with FIXED and the arguments below).
ARGUMENTS = ("ENV=staging", "REASON=why")
CHECK_ENV = (
    'test -n "staging" -a -d "deploy/k8s/overlays/staging" || { echo "ENV must be one of: dev'
    ' staging prod (e.g. make deploy ENV=staging)" >&2; exit 2; }\n'
)
CHECK_CLUSTER = (
    '{ test -n "$KUBECONFIG" || test -s "$HOME/.kube/config"; } || { echo "preflight: KUBECONFIG'
    " is not set: set it to the path of the cluster's kubeconfig (in CI: the KUBECONFIG"
    ' secret)" >&2; exit 2; }; test -z "$KUBECONFIG" || test -s "${KUBECONFIG%%:*}" || { echo'
    ' "preflight: KUBECONFIG names $KUBECONFIG, which is missing or empty: set it to the path'
    " of the cluster's kubeconfig (in CI: the KUBECONFIG secret)\" >&2; exit 2; }\n"
)
DRY_RUNS = {
    ("default", "pipeline"): (
        ".venv/bin/dvc repro\n.venv/bin/python -m mlopsify_runtime.serving.openapi_snapshot\n"
    ),
    ("default", "serve"): (
        "HOST=127.0.0.1 PORT=8000 GIT_COMMIT=abc1234 .venv/bin/python -m mlopsify_runtime.serving\n"
    ),
    ("default", "lock"): (
        "uv venv --quiet --seed --python python3 .venv\n"
        'test -n "uv" || { echo "lock: uv is not installed: pip install uv (the lock file is'
        " uv's)\" >&2; exit 127; }\n"
        "uv lock --quiet --offline  2>/dev/null || uv lock --quiet \n"
        "uv export --quiet --frozen --no-emit-project --extra dev --output-file"
        " requirements-dev.lock.txt\n"
        "mkdir -p build/lock\n"
        "uv export --quiet --frozen --no-emit-project --no-hashes --all-extras"
        " | grep -v '^\\./vendor/' > build/lock/pins.txt\n"
        "for extra in serve serve-sklearn; do \\\n"
        "\t.venv/bin/python -c \"import sys, tomllib; print(*tomllib.load(open('pyproject.toml',"
        " 'rb'))['project']['optional-dependencies'][sys.argv[1]], sep='\\n')\" $extra"
        " > build/lock/$extra.in || exit 1; \\\n"
        "\tuv pip compile --quiet --universal --generate-hashes --python-version {python}"
        ' --custom-compile-command "make lock" \\\n'
        "\t\t--find-links vendor --constraints build/lock/pins.txt build/lock/$extra.in"
        " --output-file requirements-$extra.lock.txt || exit 1; \\\n"
        "done\n"
        'echo "lock: uv.lock, requirements-dev.lock.txt, requirements-serve.lock.txt and'
        ' requirements-serve-sklearn.lock.txt are up to date: commit them"\n'
    ),
    ("default", "gate"): ".venv/bin/dvc repro evaluate reference\n",
    ("no-monitoring", "gate"): ".venv/bin/dvc repro evaluate\n",
    # release.mk's rollback with deploy.mk's checks and the Makefile's KUBECTL and NAMESPACE
    ("default", "rollback"): (
        'test -n "why" || { echo "rollback: REASON is not set: say why, e.g. make rollback'
        " ENV=prod REASON='error rate doubled after the last deploy'\" >&2; exit 2; }\n"
        + CHECK_ENV
        + CHECK_CLUSTER
        + '.venv/bin/python -m mlopsify_runtime.rollback --check --environment staging --reason "why"\n'
        "kubectl -n demo-project-staging rollout undo deployment/demo-project\n"
        "kubectl -n demo-project-staging rollout status deployment/demo-project --timeout=10m\n"
        '.venv/bin/python -m mlopsify_runtime.rollback --environment staging --reason "why"\n'
    ),
    ("no-kubernetes", "promote"): (
        'case "staging" in staging|production) ;; *) echo "promote: ENV must be staging or'
        ' production (e.g. make promote ENV=production)" >&2; exit 2;; esac\n'
        "mkdir -p build/promote\n"
        '.venv/bin/python -m mlopsify_runtime.promotion image-tag staging --image-tag "abc1234"'
        " > build/promote/staging.tag\n"
        ".venv/bin/python -m mlopsify_runtime.promotion move staging --image-tag"
        ' "$(cat build/promote/staging.tag)" --reason "why"\n'
    ),
    ("airflow", "dag-bundle"): (
        "rm -rf build/airflow && mkdir -p build/airflow/inference\n"
        "cp -r dags src dvc.yaml orchestration.yaml params.yaml build/airflow/\n"
        "cp inference/dvc.yaml build/airflow/inference/\n"
    ),
    ("kubeflow", "pipeline-compile"): (
        ".venv/bin/python -m mlopsify_runtime.orchestration.kubeflow compile\n"
    ),
}


@pytest.fixture(scope="module")
def projects(rendered: RenderedVariants) -> dict[str, Path]:
    return {name: rendered(answers) for name, answers in VARIANTS.items()}


def make(project: Path, *args: str) -> str:
    return run("make", *args, *FIXED, cwd=project).stdout


def database_targets(project: Path) -> set[str]:
    """The named targets of make's database (`make -pRrq`), without files make only looked at."""
    database = run("make", "-pRrq", *FIXED, cwd=project, check=False).stdout
    targets: set[str] = set()
    not_a_target = False
    for line in database.splitlines():
        if line.startswith("# Not a target"):
            not_a_target = True
        elif found := re.match(r"([A-Za-z][A-Za-z-]*):(?!=)", line):
            if not not_a_target:
                targets.add(found[1])
            not_a_target = False
        elif line and not line.startswith("#"):
            not_a_target = False
    return targets


def help_groups(text: str) -> dict[str, list[str]]:
    """`make help` as heading -> its lines, in order; a blank line ends a group."""
    groups: dict[str, list[str]] = {}
    for block in text.rstrip("\n").split("\n\n"):
        heading, *lines = block.split("\n")
        assert heading not in groups, f"{heading!r} twice:\n{text}"
        groups[heading] = lines
    return groups


@pytest.mark.parametrize("variant", VARIANTS)
def test_help_lists_the_daily_targets_first(projects: dict[str, Path], variant: str) -> None:
    lines = make(projects[variant], "help").splitlines()
    assert lines[: len(DAILY) + 1] == [*DAILY, ""]


@pytest.mark.parametrize("variant", VARIANTS)
def test_help_has_one_group_per_included_file_with_every_target_once(
    projects: dict[str, Path], variant: str
) -> None:
    groups = help_groups(make(projects[variant], "help"))
    assert list(groups) == ["Daily", *EXPECTED_GROUPS[variant]]
    listed = [line.split()[0] for lines in groups.values() for line in lines]
    assert sorted(listed) == sorted(EXPECTED_TARGETS[variant] - {"FORCE"})
    for lines in groups.values():
        for line in lines:
            name, description = line.split(maxsplit=1)
            assert line == f"  {name:<16} {description}", "the descriptions are aligned"


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_file_of_make_is_included_and_starts_one_group(
    projects: dict[str, Path], variant: str
) -> None:
    project = projects[variant]
    makefile, *concerns = makefile_paths(project)
    included = re.findall(r"^include (.+)$", makefile.read_text(encoding="utf-8"), re.M)
    assert len(included) == 1
    assert sorted(included[0].split()) == [f"make/{path.name}" for path in concerns]
    for path in (makefile, *concerns):
        headings = re.findall(r"^##@ (.+)$", path.read_text(encoding="utf-8"), re.M)
        assert len(headings) == 1, f"{path.name}: {headings}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_target_of_the_one_file_makefile_is_kept(
    projects: dict[str, Path], variant: str
) -> None:
    project = projects[variant]
    targets = database_targets(project)
    assert targets == EXPECTED_TARGETS[variant], (
        f"missing: {sorted(EXPECTED_TARGETS[variant] - targets)},"
        f" new: {sorted(targets - EXPECTED_TARGETS[variant])}"
    )
    # each one resolves with its prerequisites (make -n stops at a target it has no rule for)
    make(project, "-n", *sorted(targets - {"FORCE"}), *ARGUMENTS, "FILE=table.csv")


@pytest.mark.parametrize(("variant", "target"), DRY_RUNS)
def test_dry_run_prints_the_recipe_of_the_one_file_makefile(
    projects: dict[str, Path], variant: str, target: str
) -> None:
    project = projects[variant]
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    expected = DRY_RUNS[variant, target].replace("{python}", answers["python_version"])
    assert make(project, "-n", target, *ARGUMENTS) == expected
