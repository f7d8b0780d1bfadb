"""The shipped template history: semantic versions, a CHANGELOG entry each, every one mergeable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import ROOT

from mlopsify import TemplateSource, __version__, new_project
from mlopsify.updating import update_project

SHIPPED = TemplateSource.shipped()
VERSIONS = SHIPPED.versions()


def test_releases_are_semantic_versions_with_the_package_version_newest():
    assert VERSIONS, "the wheel ships no template release"
    assert all(re.fullmatch(r"v\d+\.\d+\.\d+", tag) for tag in VERSIONS)
    assert VERSIONS[-1] == f"v{__version__}"


def test_every_release_has_a_changelog_entry():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    for tag in VERSIONS:
        assert re.search(rf"^## \[{re.escape(tag[1:])}\]", changelog, re.MULTILINE), tag


# Every older release; while there is one release, the newest (its update is a no-op).
@pytest.mark.parametrize("base", VERSIONS[:-1] or VERSIONS[-1:])
def test_every_older_release_updates_to_the_newest_without_conflicts(base: str, tmp_path: Path):
    project = new_project(tmp_path / "old-project", defaults=True, template=SHIPPED, vcs_ref=base)
    result = update_project(project)
    assert (result.from_version, result.to_version) == (base, VERSIONS[-1])
    assert result.conflicts == []
