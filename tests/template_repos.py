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

    def __init__(self, path: Path) -> None:
        self.path = path
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
    "template/{% if ci == 'gitlab' %}.gitlab-ci.yml{% endif %}": "test:\n  script: make test\n",
    "template/{% if ci == 'github' %}.github{% endif %}/workflows/ci.yml": "on: push\n",
    "template/{% if use_monitoring %}monitoring{% endif %}/rules.yml": "groups: []\n",
}

# Release 2: the template changes Makefile, the top of settings.cfg, the line of mode.cfg,
# notes.txt, and adds CONTRIBUTING.md; README and docs/guide.md do not change.
V2 = {
    "template/Makefile": "setup:\n\techo setup\n\nlint:\n\techo lint\n",
    "template/settings.cfg": SETTINGS_V1.replace("key02 = 2\n", "key02 = two\n"),
    "template/mode.cfg": "mode = safe\n",
    "template/notes.txt": "a note, revised\n",
    "template/CONTRIBUTING.md": "# Contributing\n",
}
