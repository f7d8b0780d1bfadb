"""Tiny git templates with real release tags, built in temporary directories.

Like Copier's own test_updatediff.py, each release is a commit tagged in a git repository,
so an update three-way merges between real template versions. The builder writes files,
removes files, commits and tags; the identity is passed explicitly, so module-scoped
fixtures do not depend on the per-test git isolation.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "Template Maintainer",
    "GIT_AUTHOR_EMAIL": "maintainer@example.com",
    "GIT_COMMITTER_NAME": "Template Maintainer",
    "GIT_COMMITTER_EMAIL": "maintainer@example.com",
}


def git(*args: str | Path, cwd: Path) -> str:
    completed = subprocess.run(
        ["git", *map(str, args)],
        cwd=cwd,
        env={**os.environ, **IDENTITY},
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()


class TemplateRepo:
    """A template's git history: ``release(tag, files, removed)`` commits and tags one version."""

    def __init__(self, path: Path, *, clone_of: Path | None = None) -> None:
        """A new history at ``path``, or a clone of the one at ``clone_of`` (a mirror)."""
        self.path = path
        if clone_of is not None:
            git("clone", "--quiet", clone_of, path, cwd=clone_of.parent)
            return
        path.mkdir(parents=True)
        git("init", "--quiet", "--initial-branch=main", cwd=path)

    def release(self, tag: str, files: dict[str, str], removed: tuple[str, ...] = ()) -> None:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(text))
        for name in removed:
            (self.path / name).unlink()
        git("add", "--all", cwd=self.path)
        git("commit", "--quiet", "--allow-empty", "-m", f"release {tag}", cwd=self.path)
        git("tag", tag, cwd=self.path)

    def bundle(self, target: Path) -> Path:
        """The history as a git bundle, as the wheel ships it."""
        git("bundle", "create", "--quiet", target, "--all", cwd=self.path)
        return target


COPIER_YML = """\
_subdirectory: template
_answers_file: .copier-answers.yml
_templates_suffix: .jinja
project_name:
  type: str
  help: Project name
  default: demo
ci:
  type: str
  help: CI provider
  choices: [gitlab, github, none]
  default: gitlab
use_monitoring:
  type: bool
  help: Monitor the service
  default: false
"""

SETTINGS_V1 = "".join(f"key{n:02d} = {n}\n" for n in range(1, 21))

# Release 1 of the tiny template: one file per update scenario.
V1 = {
    "copier.yml": COPIER_YML,
    "template/{{_copier_conf.answers_file}}.jinja": "{{ _copier_answers|to_nice_yaml -}}\n",
    "template/README.md.jinja": "# {{ project_name }}\n\nAbout this project.\n",
    "template/docs/guide.md": "# Guide\n\nStep one.\nStep two.\n",
    "template/Makefile": "setup:\n\techo setup\n",
    "template/settings.cfg": SETTINGS_V1,
    "template/mode.cfg": "mode = fast\n",
    "template/notes.txt": "a note\n",
    "template/legacy.cfg": "legacy = yes\n",
    "template/{% if ci == 'gitlab' %}.gitlab-ci.yml{% endif %}": "test:\n  script: make test\n",
    "template/{% if ci == 'github' %}.github{% endif %}/workflows/ci.yml": "on: push\n",
    "template/{% if use_monitoring %}monitoring{% endif %}/rules.yml": "groups: []\n",
}

# Release 2: the template changes Makefile, the top of settings.cfg, the line of mode.cfg,
# notes.txt, adds CONTRIBUTING.md and removes legacy.cfg; README and docs/guide.md do not change.
V2 = {
    "template/Makefile": "setup:\n\techo setup\n\nlint:\n\techo lint\n",
    "template/settings.cfg": SETTINGS_V1.replace("key02 = 2\n", "key02 = two\n"),
    "template/mode.cfg": "mode = safe\n",
    "template/notes.txt": "a note, revised\n",
    "template/CONTRIBUTING.md": "# Contributing\n",
}
V2_REMOVED = ("template/legacy.cfg",)


# A small MLOps template over the real questions (copier.yml of the working tree): one file
# or two per maturity area, so that adopting it raises the levels `assess` reports.
def mlops_files(copier_yml: str) -> dict[str, str]:
    return {
        "copier.yml": copier_yml,
        "template/{{_copier_conf.answers_file}}.jinja": "{{ _copier_answers|to_nice_yaml -}}\n",
        "template/README.md.jinja": "# {{ project_name }}\n\n{{ description }}\n",
        "template/.gitignore": "/.venv/\n/mlflow.db\n",
        "template/.pre-commit-config.yaml": "repos: []\n",
        "template/{% if ci_provider == 'gitlab' %}.gitlab-ci.yml{% endif %}": (
            "test:\n  script: make test\npipeline:\n  script: make pipeline\n"
        ),
        "template/{% if ci_provider == 'jenkins' %}Jenkinsfile{% endif %}": (
            "pipeline { stages { stage('gate') { steps { sh 'make test pipeline' } } } }\n"
        ),
        "template/Dockerfile": "FROM python:3.11-slim\nUSER app\n",
        "template/{% if use_kubernetes %}deploy{% endif %}/k8s/base/deployment.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\n"
        ),
        "template/{% if use_kubernetes %}deploy{% endif %}/k8s/overlays/prod/kustomization.yaml": (
            "resources: [../../base]\n"
        ),
        "template/dvc.yaml": (
            "stages:\n  validate:\n    cmd: make validate\n  evaluate:\n    cmd: make gate\n"
            "    metrics:\n      - metrics/metrics.json\n"
        ),
        "template/.dvc/config.jinja": "['remote \"storage\"']\n    url = {{ dvc_remote_url }}\n",
        "template/params.yaml": "gate:\n  min_accuracy: 0.9\n",
        "template/src/{{package_name}}/validate.py": "def validate() -> None:\n    pass\n",
        "template/src/{{package_name}}/train.py": (
            "import mlflow\n\n\ndef train() -> None:\n    mlflow.log_metrics({'accuracy': 1.0})\n"
            "    mlflow.register_model('runs:/1/model', 'demo')\n"
        ),
        "template/src/{{package_name}}/evaluate.py": (
            "from mlflow import MlflowClient\n\n\ndef promote() -> None:\n"
            "    MlflowClient().set_registered_model_alias('demo', 'champion', '1')\n"
        ),
        "template/tests/test_train.py": "def test_train() -> None:\n    assert True\n",
        "template/{% if use_monitoring %}monitoring{% endif %}/alerts.yml": (
            "groups:\n  - name: model\n    rules:\n      - alert: ModelErrors\n        expr: up == 0\n"
        ),
        "template/{% if use_monitoring %}monitoring{% endif %}/prometheus.yml": (
            "scrape_configs:\n  - job_name: model\n"
        ),
        "template/SECURITY.md": "# Security\n",
        "template/{% if compliance != 'none' %}docs{% endif %}/compliance.md": "# Compliance\n",
        "template/CODEOWNERS.jinja": "* {{ author_email }}\n",
        "template/docs/model_card.md": "# Model card\n",
    }
