"""One lock for a generated project: `make setup` writes uv.lock when there is none and installs
exactly it; a dependency change without `make lock` stops `make setup` with one clear line;
`make lock` refreshes uv.lock and the hashed requirements files that pip and the image use.

One environment for the module (uv from the shared cache, about 10 s); the image side, the
same versions inside the built serving image, is checked in tests/test_image_build.py.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import tomllib
from helpers import isolated_home, require_tool, run

from mlopsify import TemplateSource, new_project

pytestmark = pytest.mark.slow

# Seeded into the venv by `uv venv --seed`, never in a lock; the project itself is editable.
NOT_LOCKED = {"pip", "setuptools", "wheel"}


def locked_versions(project: Path) -> dict[str, str]:
    lock = tomllib.loads((project / "uv.lock").read_text())
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        versions.setdefault(package["name"], set()).add(package["version"])
    return {name: ",".join(sorted(found)) for name, found in versions.items()}


def pinned(requirements: Path) -> dict[str, str]:
    """name -> versions (comma-joined) of the pins in a hashed requirements file."""
    found: dict[str, set[str]] = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", line)
        if match:
            found.setdefault(match.group(1).lower(), set()).add(match.group(2))
    return {name: ",".join(sorted(versions)) for name, versions in found.items()}


def installed(venv: Path) -> dict[str, str]:
    listed = run(
        require_tool("uv"),
        "pip",
        "list",
        "--format",
        "json",
        "--python",
        venv / "bin" / "python",
        cwd=venv,
    )
    return {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(listed.stdout)}


@pytest.fixture(scope="module")
def project(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("locked")
    with isolated_home(base):
        made = new_project(
            base / "churn-model",
            data={"python_version": "3.11"},
            defaults=True,
            template=TemplateSource.at(template_dir),
        )
        assert not (made / "uv.lock").exists()  # written by the first make setup, then committed
        done = run("make", "setup", cwd=made)
    assert "lock: uv.lock, requirements-dev.lock.txt and requirements-serve.lock.txt" in done.stdout
    return made


def test_make_setup_installs_exactly_the_lock(project: Path) -> None:
    locked = locked_versions(project)
    env = installed(project / ".venv")
    name = tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"]

    extra = {pkg: v for pkg, v in env.items() if pkg not in locked and pkg not in NOT_LOCKED}
    assert extra == {}
    assert {
        pkg: v for pkg, v in env.items() if pkg in locked and v not in locked[pkg].split(",")
    } == {}
    assert env[name] == locked[name] == "0.1.0"
    # The exported file for pip names the same versions as uv.lock, each with its hashes.
    for pkg, version in pinned(project / "requirements-dev.lock.txt").items():
        assert set(version.split(",")) <= set(locked[pkg].split(",")), pkg
    assert "--hash=sha256:" in (project / "requirements-dev.lock.txt").read_text()


def test_the_serving_requirements_are_the_serve_extra_at_the_locked_versions(project: Path) -> None:
    locked = locked_versions(project)
    serve = pinned(project / "requirements-serve.lock.txt")

    assert {"scikit-learn", "skops", "fastapi", "uvicorn", "prometheus-client"} <= set(serve)
    # Never the pipeline's heavy packages: the image stays small.
    assert not {"mlflow", "dvc", "pandas", "pandera"} & set(serve)
    for pkg, versions in serve.items():
        assert set(versions.split(",")) <= set(locked[pkg].split(",")), pkg
    text = (project / "requirements-serve.lock.txt").read_text()
    assert all("--hash=sha256:" in block for block in text.split("==")[1:])


def test_a_dependency_change_without_make_lock_stops_setup(project: Path, tmp_path: Path) -> None:
    copy = tmp_path / "project"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".venv"))
    pyproject = copy / "pyproject.toml"
    # requests is already in the lock's closure (MLflow needs it): the refresh works offline.
    pyproject.write_text(
        pyproject.read_text().replace(
            '  "pyyaml>=6,<7",\n', '  "pyyaml>=6,<7",\n  "requests>=2",\n', 1
        )
    )

    stale = run("make", "setup", cwd=copy, check=False)
    assert stale.returncode == 2
    assert (
        "setup: uv.lock does not match pyproject.toml: run make lock, then commit uv.lock and "
        "requirements-*.lock.txt"
    ) in stale.stderr

    run("make", "lock", cwd=copy)
    run(require_tool("uv"), "lock", "--check", "--offline", cwd=copy)
    assert "requests==" in (copy / "requirements-dev.lock.txt").read_text()
