"""Bad or unusual input to `mlopsify new`: one line that says what to do, the right exit code,
nothing lost (issue: values taken as yes, `new .` replacing the shell's directory, tracebacks,
names replaced silently, private file modes)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
import yaml
from helpers import ROOT
from template_releases import next_release, shipped_is_next_release  # noqa: F401 (fixtures)
from typer.testing import CliRunner

from mlopsify.cli import app

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("shipped_is_next_release")


@pytest.mark.parametrize("value", ["maybe", "flase", "2"])
def test_a_yes_no_answer_must_be_yes_or_no(chdir_tmp: Path, value: str):
    result = runner.invoke(app, ["new", "shop", "--defaults", "--data", f"use_kubernetes={value}"])
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: use_kubernetes takes true or false (also yes/no, 1/0), not '{value}':"
        " give one, as --data use_kubernetes=VALUE\n"
    )
    assert list(chdir_tmp.iterdir()) == []


@pytest.mark.parametrize(
    ("value", "expected"), [("false", False), ("No", False), ("yes", True), ("1", True)]
)
def test_yes_no_answers_that_are_accepted(chdir_tmp: Path, value: str, expected: bool):
    result = runner.invoke(app, ["new", "shop", "--defaults", "--data", f"use_monitoring={value}"])
    assert result.exit_code == 0, result.output
    answers = yaml.safe_load((chdir_tmp / "shop" / ".copier-answers.yml").read_text())
    assert answers["use_monitoring"] is expected


def test_new_dot_fills_the_current_directory_and_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    here = tmp_path / "credit-risk"
    here.mkdir()
    monkeypatch.chdir(here)
    inode = here.stat().st_ino
    result = runner.invoke(app, ["new", ".", "--defaults"])
    assert result.exit_code == 0, result.output
    # The shell's working directory is the same directory, now holding the project.
    assert here.stat().st_ino == inode
    assert Path.cwd().samefile(here)
    answers = yaml.safe_load((here / ".copier-answers.yml").read_text())
    assert answers["project_name"] == "credit-risk"
    assert (here / ".git").is_dir()
    assert not [p.name for p in tmp_path.iterdir() if p.name != "credit-risk"]


def test_a_destination_under_a_file_is_one_line(chdir_tmp: Path):
    (chdir_tmp / "notes.txt").write_text("mine\n")
    result = runner.invoke(app, ["new", "notes.txt/shop", "--defaults"])
    assert result.exit_code == 4
    assert result.stderr == (
        f"error: {chdir_tmp / 'notes.txt'} is a file, so {chdir_tmp / 'notes.txt' / 'shop'} cannot be"
        " created: give a directory path for the project\n"
    )
    assert (chdir_tmp / "notes.txt").read_text() == "mine\n"


@pytest.mark.parametrize("name", ["model+v2", "model v2", "modèle"])
def test_a_directory_name_that_cannot_be_a_project_name_is_said(chdir_tmp: Path, name: str):
    result = runner.invoke(app, ["new", name, "--defaults"])
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: the directory name '{name}' cannot be the project name (ASCII letters, digits,"
        " '-', '_' and '.', starting with a letter or digit): give one with"
        " --data project_name=NAME\n"
    )
    assert not (chdir_tmp / name).exists()
    named = runner.invoke(app, ["new", name, "--defaults", "--data", "project_name=three-d"])
    assert named.exit_code == 0, named.output
    assert (
        yaml.safe_load((chdir_tmp / name / ".copier-answers.yml").read_text())["project_name"]
        == "three-d"
    )


def test_new_projects_get_the_users_umask_modes(chdir_tmp: Path):
    previous = os.umask(0o022)
    try:
        result = runner.invoke(app, ["new", "shop", "--defaults"])
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    project = chdir_tmp / "shop"
    assert stat.S_IMODE(project.stat().st_mode) == 0o755
    assert stat.S_IMODE((project / "README.md").stat().st_mode) == 0o644
    assert stat.S_IMODE((project / "src").stat().st_mode) == 0o755


def test_the_readme_tour_commits_the_pipeline_run_before_add():
    readme = (ROOT / "README.md").read_text()
    tour = re.search(r"## A one-minute tour\n\n```sh\n(.*?)```", readme, re.DOTALL)
    assert tour is not None
    commands = [line.split("#")[0].strip() for line in tour[1].splitlines()]
    pipeline = next(i for i, c in enumerate(commands) if "make setup pipeline" in c)
    add = next(i for i, c in enumerate(commands) if c.startswith("mlopsify add"))
    assert any(c.startswith("git add") and "git commit" in c for c in commands[pipeline:add]), (
        commands
    )
