"""A long project name still gives a lint-clean project: no generated line outgrows the
project's own limits (yamllint's 120 columns, ruff's line length) because of the name."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import RenderedVariants, run

LONG_NAME = "customer-lifetime-value-forecast"  # 32 characters, a valid Kubernetes label too
TOOLS = Path(sys.executable).parent


@pytest.mark.parametrize("ci_provider", ["gitlab", "github", "jenkins"])
def test_a_long_project_name_passes_yamllint_and_ruff(
    rendered: RenderedVariants, ci_provider: str
) -> None:
    project = rendered(
        {"project_name": LONG_NAME, "ci_provider": ci_provider, "use_monitoring": True}
    )
    assert (project / "deploy" / "k8s" / "base" / "deployment.yaml").is_file()
    run(TOOLS / "yamllint", "--strict", ".", cwd=project)
    run(TOOLS / "ruff", "format", "--check", ".", cwd=project)
    run(TOOLS / "ruff", "check", ".", cwd=project)
