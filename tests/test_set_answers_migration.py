"""migrations/set_answers.py: a question a release adds keeps what older projects had."""

from __future__ import annotations

import subprocess
import sys

import yaml
from helpers import ROOT

STEP = ROOT / "migrations" / "set_answers.py"


def run_step(project, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(STEP), *arguments], cwd=project, capture_output=True, text=True
    )


def test_sets_an_unanswered_question_where_the_condition_holds(tmp_path):
    answers = tmp_path / ".copier-answers.yml"
    answers.write_text(
        "# Changes here will be overwritten by Copier\n_commit: v0.3.0\nuse_kubernetes: true\n"
    )
    assert (
        run_step(tmp_path, "use_tracking_server=true", "--when", "use_kubernetes=true").returncode
        == 0
    )
    assert answers.read_text().startswith("# Changes here will be overwritten by Copier\n")
    assert yaml.safe_load(answers.read_text()) == {
        "_commit": "v0.3.0",
        "use_kubernetes": True,
        "use_tracking_server": True,
    }


def test_leaves_an_answer_and_a_project_the_condition_excludes(tmp_path):
    answers = tmp_path / ".copier-answers.yml"
    answers.write_text("use_kubernetes: false\n")
    run_step(tmp_path, "use_tracking_server=true", "--when", "use_kubernetes=true")
    assert yaml.safe_load(answers.read_text()) == {"use_kubernetes": False}
    answers.write_text("use_kubernetes: true\nuse_tracking_server: false\n")
    run_step(tmp_path, "use_tracking_server=true", "--when", "use_kubernetes=true")
    assert yaml.safe_load(answers.read_text()) == {
        "use_kubernetes": True,
        "use_tracking_server": False,
    }


def test_a_malformed_pair_is_one_line(tmp_path):
    (tmp_path / ".copier-answers.yml").write_text("{}\n")
    failed = run_step(tmp_path, "use_tracking_server")
    assert failed.returncode == 1
    assert failed.stderr == "set_answers: 'use_tracking_server' is not KEY=VALUE\n"
