"""One object knows the template: its releases (one ordering), questions, choices, services."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import yaml
from helpers import ROOT, run

from mlopsify import TemplateSource, new_project
from mlopsify.template import Release, template_for
from mlopsify.template_source import BUNDLE_PATH, release_order

CONFIG = yaml.safe_load((ROOT / "copier.yml").read_text())


def test_release_order_is_pep_440_and_drops_other_tags():
    tags = ["v0.10.0", "v0.2.0", "v0.1.0.post1", "latest", "v0.1.0", "v0.2.0rc1", "v0.1.0"]
    assert release_order(tags) == ["v0.1.0", "v0.1.0.post1", "v0.2.0rc1", "v0.2.0", "v0.10.0"]


def test_a_release_reads_questions_choices_and_pythons_from_copier_yml():
    release = Release("working tree", CONFIG)
    assert list(release.questions) == [k for k in CONFIG if not k.startswith("_")]
    assert release.python_versions == tuple(CONFIG["python_version"]["choices"])
    labelled = Release("x", {"kind": {"type": "str", "choices": {"Label A": "a", "B": "b"}}})
    assert labelled.choices("kind") == ["a", "b"]
    assert [s.name for s in labelled.services] == []


def test_the_shipped_template_is_read_once_per_process():
    shipped = template_for(TemplateSource.shipped())
    assert template_for(TemplateSource.shipped()) is shipped
    newest = shipped.release()
    assert newest.version == shipped.versions[-1]
    assert shipped.release(newest.version) is newest


def test_add_pretend_clones_the_template_once(tmp_path: Path):
    """Count the git commands of a real `mlopsify add --pretend` through a logging git."""
    project = new_project(tmp_path / "shop", data={"ci_provider": "gitlab"}, defaults=True)
    log, shim = tmp_path / "git.log", tmp_path / "bin" / "git"
    shim.parent.mkdir()
    real_git = run("sh", "-c", "command -v git", cwd=tmp_path).stdout.strip()
    shim.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real_git} "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    result = run(
        Path(sys.executable).parent / "mlopsify",
        "add",
        "github",
        str(project),
        "--pretend",
        cwd=tmp_path,
        env={"PATH": f"{shim.parent}:{os.environ['PATH']}"},
    )
    assert result.stdout.startswith('Would add github: ci_provider "gitlab" -> "github"')
    commands = log.read_text().splitlines()
    ours = [c for c in commands if c.startswith("clone") and str(BUNDLE_PATH) in c]
    copiers = [c for c in commands if c.startswith("clone --mirror")]
    assert len(ours) == 1, ours  # copier.yml of the project's release, read from one clone
    assert len(copiers) <= 1, copiers  # Copier's own mirror of the canonical URL
