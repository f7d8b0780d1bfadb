"""Every module that 0.3.0 copied into a project and 0.4.0 removed has a note that names what
replaces it, and the runtime module the note names exists (src/mlopsify/machinery.py)."""

from __future__ import annotations

import importlib
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from template_releases import SHIPPED_BUNDLE

from mlopsify.machinery import replacement

PACKAGE = "credit_risk"


def release_files(tag: str) -> set[str]:
    """The paths a release renders under src/<package>/ and scripts/ (names as a project has them)."""
    with tempfile.TemporaryDirectory(prefix="machinery-") as scratch:
        clone = Path(scratch) / "history"
        subprocess.run(
            ["git", "clone", "--quiet", "--bare", str(SHIPPED_BUNDLE), str(clone)], check=True
        )
        listed = subprocess.run(
            ["git", "-C", str(clone), "ls-tree", "-r", "--name-only", tag, "template/"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    paths = set()
    for path in listed:
        path = path.removeprefix("template/").removesuffix(".jinja")
        path = path.replace("{{ package_name }}", PACKAGE)
        # Conditional names render as their plain name when the condition holds.
        path = re.sub(r"\{% if [^%]+ %\}([^{]+)\{% endif %\}", r"\1", path)
        if path.startswith((f"src/{PACKAGE}/", "scripts/")) and path.endswith(".py"):
            paths.add(path)
    return paths


REMOVED = sorted(release_files("v0.3.0") - release_files("v0.4.0"))


def test_the_runtime_took_over_the_copied_machinery():
    assert f"src/{PACKAGE}/serving/app.py" in REMOVED
    assert f"src/{PACKAGE}/evaluate.py" in REMOVED
    assert "scripts/template_update_branch.py" in REMOVED
    assert len(REMOVED) >= 35


@pytest.mark.parametrize("path", REMOVED)
def test_each_removed_module_has_a_note_naming_an_existing_runtime_module(path: str):
    note = replacement(path, PACKAGE)
    assert note is not None and note.startswith(f"{path} is now ")
    named = re.search(r"mlopsify_runtime(?:\.\w+)*", note)
    if named:
        importlib.import_module(named[0].rstrip("."))
    else:  # the team's own module that 0.4.0 shortened
        assert f"src/{PACKAGE}/" in note


def test_notes_name_the_hook_that_replaces_an_edit():
    assert replacement(f"src/{PACKAGE}/evaluate.py", PACKAGE) == (
        f"src/{PACKAGE}/evaluate.py is now mlopsify_runtime.evaluate: add your metric in "
        f"gate_metrics() of src/{PACKAGE}/hooks.py; thresholds stay in params.yaml gate"
    )
    assert "drift_statistic() of" in str(replacement(f"src/{PACKAGE}/serving/drift.py", PACKAGE))
    assert "promotion_rule() of" in str(replacement(f"src/{PACKAGE}/promotion.py", PACKAGE))
    assert replacement("README.md", PACKAGE) is None


def test_pages_about_the_machinery_point_to_the_page_that_links_the_runtime_docs():
    """0.4.0 moved the pages that explained the machinery to mlopsify's docs/runtime/; an edited
    copy conflicts in an update, and its note names the project's page that links them."""
    linked = "the runtime's documentation, linked from docs/operations.md at the runtime's version"
    assert replacement("docs/serving.md", PACKAGE) == f"docs/serving.md is now {linked}"
    assert replacement("docs/monitoring.md", PACKAGE) == (
        f"docs/monitoring.md is now {linked}; the dashboard and the alerts are docs/runbooks.md"
    )
    assert replacement("docs/runbooks/ModelStale.md", PACKAGE) == (
        "docs/runbooks/ModelStale.md is now a section of docs/runbooks.md, one per alert"
    )
    # the team's own pages, and the orchestrator's page that Kubeflow and Airflow projects keep
    assert replacement("docs/security.md", PACKAGE) is None
    assert replacement("docs/orchestration.md", PACKAGE) is None
