"""`mlopsify add kubeflow|airflow|dvc` switches a real project's orchestrator at its release.

The working tree's template is committed and tagged in a scratch repository (the
``tagged_template`` fixture), so `add` updates the project the way it would from a shipped release.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from template_repos import git
from test_render_matrix import check_project

from mlopsify import TemplateSource, new_project
from mlopsify.services import add_service


@pytest.mark.slow
def test_switching_the_orchestrator_adds_and_removes_its_files(
    tagged_template: Path, tmp_path: Path
) -> None:
    template = TemplateSource.at(tagged_template)
    project = new_project(
        tmp_path / "switch-me", defaults=True, template=template, vcs_ref="v9.0.0"
    )
    assert not (project / "orchestration.yaml").exists()
    for orchestrator in ("kubeflow", "airflow", "dvc"):
        added = add_service(project, orchestrator, template=template)
        assert added.update is not None
        answers = check_project(project)  # exactly the files of the new answer, no Jinja left
        assert answers["orchestrator"] == orchestrator
        assert answers["_commit"] == "v9.0.0"
        extras = "dev" if orchestrator == "dvc" else f"dev,{orchestrator}"
        assert f"EXTRAS ?= {extras}\n" in (project / "Makefile").read_text(encoding="utf-8")
        git("add", "--all", cwd=project)
        git("commit", "--quiet", "-m", f"orchestrator {orchestrator}", cwd=project)
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["orchestrator"] == "dvc"
