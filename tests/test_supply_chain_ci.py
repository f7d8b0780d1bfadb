"""Hardened GitHub workflows of generated projects: zizmor (a GitHub Actions security audit)
reports nothing on any GitHub variant; every action is pinned by commit with its version in a
comment; the token has no default permissions, each job asks for its own; no checkout keeps
the token in .git/config."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import RenderedVariants, require_tool, run
from test_ci_providers import variant_matrix

# The GitHub rows of the CI matrix (every remote kind, Kubernetes on and off), plus each
# orchestrator, whose jobs differ.
GITHUB_VARIANTS = [v for v in variant_matrix() if v["ci_provider"] == "github"] + [
    {"ci_provider": "github", "orchestrator": "kubeflow", "use_kubernetes": True},
    {"ci_provider": "github", "orchestrator": "airflow", "use_kubernetes": False},
]
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}  # v\d+\.\d+\.\d+$")
# Jobs that need more than reading the repository, and what for.
WRITERS = {"template-update": {"contents": "write", "pull-requests": "write"}}


@pytest.fixture(scope="module")
def github_projects(rendered: RenderedVariants) -> list[Path]:
    return [rendered(answers) for answers in GITHUB_VARIANTS]


def _yaml_files(project: Path) -> list[Path]:
    return sorted((project / ".github").rglob("*.yml"))


def _zizmor(project: Path) -> tuple[int, str]:
    zizmor = require_tool("zizmor")
    # --offline: the audits that ask GitHub's API (known-vulnerable actions, impostor
    # commits) cannot reach it from here; every other audit runs.
    # --color never: with CI set, zizmor colours its report even into a pipe.
    done = run(
        zizmor, "--offline", "--no-progress", "--color", "never", ".", cwd=project, check=False
    )
    return done.returncode, done.stdout + done.stderr


def test_zizmor_reports_nothing_on_every_github_variant(github_projects: list[Path]) -> None:
    for project in github_projects:
        code, output = _zizmor(project)
        assert code == 0, output
        assert "No findings to report." in output


def test_zizmor_fails_an_unpinned_action_with_persisted_credentials(
    github_projects: list[Path], tmp_path: Path
) -> None:
    """The audit above can fail: the workflows as they were before hardening fail it."""
    project = tmp_path / "project"
    shutil.copytree(github_projects[0] / ".github", project / ".github")
    workflow = project / ".github" / "workflows" / "ci.yml"
    text = re.sub(
        r"actions/checkout@[0-9a-f]{40}  # v[\d.]+", "actions/checkout@v4", workflow.read_text()
    )
    workflow.write_text(text.replace("persist-credentials: false", "fetch-depth: 1"))

    code, output = _zizmor(project)

    assert code != 0
    assert "error[unpinned-uses]: unpinned action reference" in output
    assert "warning[artipacked]: credential persistence through GitHub Actions artifacts" in output


def test_actions_are_pinned_by_commit_with_the_version_in_a_comment(
    github_projects: list[Path],
) -> None:
    commits: dict[str, set[str]] = {}
    for project in github_projects:
        for path in _yaml_files(project):
            for line in path.read_text().splitlines():
                match = re.match(r"^\s*(- )?uses: (.+)$", line)
                if not match or match.group(2).startswith("./"):
                    continue
                assert PINNED.match(match.group(2)), f"{path.name}: {line.strip()}"
                action, pin = match.group(2).split("@")
                commits.setdefault(action, set()).add(pin)
    assert {"actions/checkout", "actions/setup-python", "astral-sh/setup-uv"} <= set(commits)
    # One version of each action across every file and variant.
    assert {action: pins for action, pins in commits.items() if len(pins) > 1} == {}


def test_token_permissions_are_per_job_and_no_checkout_keeps_credentials(
    github_projects: list[Path],
) -> None:
    for project in github_projects:
        for path in sorted((project / ".github" / "workflows").glob("*.yml")):
            workflow = yaml.safe_load(path.read_text())
            assert workflow["permissions"] == {}, path.name
            for name, job in workflow["jobs"].items():
                assert job["permissions"] == WRITERS.get(name, {"contents": "read"}), (
                    f"{path.name}: {name}"
                )
                for step in job.get("steps", []):
                    if step.get("uses", "").startswith("actions/checkout@"):
                        assert step["with"]["persist-credentials"] is False, f"{path.name}: {name}"
                assert "secrets" not in job, f"{path.name}: {name} passes secrets on"


@pytest.fixture(scope="module")
def renovate_projects(rendered: RenderedVariants) -> list[Path]:
    return [
        rendered(a) for a in variant_matrix() if a["ci_provider"] in {"gitlab", "jenkins", "azure"}
    ]


def _validate(schema: str, document: Path) -> tuple[int, str]:
    checker = require_tool("check-jsonschema")
    done = run(checker, "--builtin-schema", schema, document, cwd=document.parent, check=False)
    return done.returncode, done.stdout + done.stderr


def test_dependabot_and_renovate_configs_pass_their_schemas(
    github_projects: list[Path], renovate_projects: list[Path], tmp_path: Path
) -> None:
    for project in github_projects:
        assert _validate("vendor.dependabot", project / ".github" / "dependabot.yml") == (
            0,
            "ok -- validation done\n",
        )
        ecosystems = [
            u["package-ecosystem"]
            for u in yaml.safe_load((project / ".github" / "dependabot.yml").read_text())["updates"]
        ]
        assert ecosystems == ["uv", "github-actions"]
    for project in renovate_projects:
        assert not (project / ".github").exists()
        assert _validate("vendor.renovate", project / "renovate.json") == (
            0,
            "ok -- validation done\n",
        )
    # The schemas can fail: a misspelt key is refused.
    broken = tmp_path / "dependabot.yml"
    broken.write_text(
        (github_projects[0] / ".github" / "dependabot.yml")
        .read_text()
        .replace("interval:", "intervall:")
    )
    code, output = _validate("vendor.dependabot", broken)
    assert code == 1 and "Schema validation errors were encountered." in output
    broken = tmp_path / "renovate.json"
    broken.write_text((renovate_projects[0] / "renovate.json").read_text().replace('"7 days"', "7"))
    code, output = _validate("vendor.renovate", broken)
    assert code == 1 and "Schema validation errors were encountered." in output


def test_the_security_page_says_what_is_locked_signed_scanned_and_how_to_rotate(
    rendered: RenderedVariants,
) -> None:
    secrets = {
        "github": "Secrets are Actions secrets",
        "gitlab": "each **masked** (never printed in a job\nlog) and **protected**",
        "jenkins": "bound only inside the steps that\nneed them with `withCredentials`",
        "azure": "gives a secret to no step that does not map it in\nits `env`",
        "none": "masked, protected\nvariables",
    }
    for provider, words in secrets.items():
        project = rendered({"ci_provider": provider})
        page = (project / "docs" / "security.md").read_text()
        headings = [line for line in page.splitlines() if line.startswith("#")]
        assert headings == [
            "# Security of the supply chain",
            "## Locked: one set of versions from training to serving",
            "## Listed: the SBOM of the serving image",
            "## Audited: known vulnerabilities in the lock",
            "## Signed: the model that was trained is the model that is served",
            "### Rotating the signing key",
            "## Scanned: what the checks refuse",
            "## Secrets in CI",
        ]
        assert words in page, provider
        assert "[docs/security.md](docs/security.md)" in (project / "README.md").read_text()
        assert ("zizmor" in page) == (provider == "github")
        assert "`make sbom` writes `build/sbom/serve.cdx.json`, a CycloneDX 1.6 JSON SBOM" in page
        assert "`make audit-deps` runs [pip-audit]" in page
        assert ("CI runs it on every pipeline" in page) == (provider != "none")
        assert "{{" not in page and "{%" not in page
