"""`mlopsify new`: the CLI's answers, its one-line errors, and that a failed run writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import ROOT
from typer.testing import CliRunner

from mlopsify import DestinationError, InvalidAnswerError, TemplateSource, new_project
from mlopsify._git import git
from mlopsify.cli import app

# The questions of the newest release (the shipped bundle is released from this copier.yml).
COPIER_QUESTIONS = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its content, to prove a failed run changed nothing."""
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def test_new_from_shipped_release_records_canonical_source(chdir_tmp: Path):
    result = invoke("new", "credit-risk", "--defaults")
    assert result.exit_code == 0, result.output
    project = chdir_tmp / "credit-risk"
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == "https://github.com/mlopsify/mlopsify.git"
    assert answers["_commit"] == TemplateSource.shipped().versions()[-1]
    assert answers["project_name"] == "credit-risk"  # derived from the directory
    assert answers["package_name"] == "credit_risk"
    assert git("status", "--porcelain", cwd=project) == ""
    assert git("log", "--format=%s", cwd=project) == (
        f"Create project from the mlopsify template {answers['_commit']}"
    )
    assert result.output.splitlines()[:4] == [
        f"Created {project}",
        "names: package credit_risk, Kubernetes and image name credit-risk",
        "Next steps:",
        f"  cd {project}",
    ]


def test_new_answers_from_data_and_file(chdir_tmp: Path):
    answers_file = chdir_tmp / "answers.yml"
    answers_file.write_text("task_type: regression\ncompliance: gdpr\nauthor_name: Data Team\n")
    result = invoke(
        "new",
        "proj",
        "--answers-file",
        str(answers_file),
        "-d",
        "compliance=hipaa",
        "-d",
        "use_kubernetes=false",
    )
    assert result.exit_code == 0, result.output
    answers = yaml.safe_load((chdir_tmp / "proj" / ".copier-answers.yml").read_text())
    assert answers["task_type"] == "regression"
    assert answers["author_name"] == "Data Team"
    assert answers["compliance"] == "hipaa"  # --data wins over the file
    assert answers["use_kubernetes"] is False
    assert "k8s_namespace" not in answers  # only asked when Kubernetes is used


BAD_ANSWERS = [
    (
        ["-d", "project_name=my app"],
        "error: project_name 'my app' is invalid: use ASCII letters, digits, '-', '_' "
        "and '.', starting with a letter or digit (e.g. credit-risk)",
    ),
    (
        ["-d", "project_name=-lives"],
        "error: project_name '-lives' is invalid: use ASCII letters, digits, '-', '_' "
        "and '.', starting with a letter or digit (e.g. credit-risk)",
    ),
    (
        ["-d", "project_name=café"],
        "error: project_name 'café' is invalid: use ASCII letters, digits, '-', '_' "
        "and '.', starting with a letter or digit (e.g. credit-risk)",
    ),
    (
        ["-d", "package_name=class"],
        "error: package_name 'class' is a Python keyword: choose another name (e.g. class_model)",
    ),
    (
        ["-d", "package_name=my pkg"],
        "error: package_name 'my pkg' is invalid: use lowercase ASCII letters, digits and "
        "underscores, starting with a letter (e.g. credit_risk)",
    ),
    (
        ["-d", "package_name=1pkg"],
        "error: package_name '1pkg' is invalid: use lowercase ASCII letters, digits and "
        "underscores, starting with a letter (e.g. credit_risk)",
    ),
    (
        ["-d", "author_email=not-an-email"],
        "error: author_email 'not-an-email' is not an email address: use the form name@example.com",
    ),
    (
        ["-d", "task_type=clustering"],
        "error: invalid choice for task_type: 'clustering' is not in "
        "['classification', 'regression']; use one of them",
    ),
    (
        ["-d", "ci_provider=travis"],
        "error: invalid choice for ci_provider: 'travis' is not in "
        "['gitlab', 'jenkins', 'github', 'azure', 'none']; use one of them",
    ),
    (
        ["-d", "dvc_remote_kind=s3", "-d", "dvc_remote_url=gs://bucket/x"],
        "error: dvc_remote_url 'gs://bucket/x' does not fit dvc_remote_kind s3: it must start with s3://",
    ),
    (
        ["-d", "k8s_namespace=Prod_NS"],
        "error: k8s_namespace 'Prod_NS' is invalid: use at most 53 lowercase letters, digits and "
        "hyphens, starting with a letter",
    ),
    (
        ["-d", "colour=blue"],
        "error: unknown question colour: use one of "
        + ", ".join(sorted(q for q in COPIER_QUESTIONS if not q.startswith("_"))),
    ),
    (
        ["-d", "quality_gate=1"],
        "error: quality_gate must be a mapping of min and max thresholds, "
        "e.g. {min: {roc_auc: 0.95}, max: {}}",
    ),
    (
        ["-d", "just-a-word"],
        "error: --data 'just-a-word' is not KEY=VALUE: write it as, for example, "
        "--data task_type=regression",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_ANSWERS, ids=[a[-1] for a, _ in BAD_ANSWERS])
def test_bad_answer_is_one_line_exit_3_and_writes_nothing(chdir_tmp: Path, args, message):
    before = snapshot(chdir_tmp)
    result = invoke("new", "proj", "--defaults", *args)
    assert result.exit_code == InvalidAnswerError.exit_code == 3
    assert result.output.strip() == message
    assert "Traceback" not in result.output
    assert snapshot(chdir_tmp) == before
    assert sorted(p.name for p in chdir_tmp.iterdir()) == []


def test_non_empty_destination_is_left_exactly_as_it_was(chdir_tmp: Path):
    dest = chdir_tmp / "existing"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me\n")
    before = snapshot(chdir_tmp)
    result = invoke("new", "existing", "--defaults")
    assert result.exit_code == DestinationError.exit_code == 4
    assert result.output.strip() == (
        f"error: {dest} is not empty: give a new directory, or use `mlopsify adopt` "
        "for an existing repository"
    )
    assert snapshot(chdir_tmp) == before


def test_destination_that_is_a_file(chdir_tmp: Path):
    (chdir_tmp / "afile").write_text("x")
    result = invoke("new", "afile", "--defaults")
    assert result.exit_code == 4
    assert result.output.strip() == (
        f"error: {chdir_tmp / 'afile'} is a file: give a new directory path for the project"
    )
    assert (chdir_tmp / "afile").read_text() == "x"


def test_empty_directory_is_accepted(chdir_tmp: Path):
    (chdir_tmp / "empty").mkdir()
    assert invoke("new", "empty", "--defaults").exit_code == 0
    assert (chdir_tmp / "empty" / ".copier-answers.yml").is_file()


def test_missing_parents_are_created_and_removed_on_failure(chdir_tmp: Path):
    result = invoke("new", "a/b/proj", "--defaults", "-d", "task_type=nope")
    assert result.exit_code == 3
    assert not (chdir_tmp / "a").exists()


def test_answers_file_errors(chdir_tmp: Path):
    result = invoke("new", "proj", "--answers-file", "missing.yml")
    assert result.exit_code == 3
    assert result.output.strip() == (
        "error: answers file missing.yml does not exist: give the path of a YAML file"
    )
    (chdir_tmp / "broken.yml").write_text("task_type: [unclosed\n")
    result = invoke("new", "proj", "--answers-file", "broken.yml")
    assert result.exit_code == 3
    assert result.output.strip() == (
        "error: answers file broken.yml is not valid YAML at line 2: fix it or answer with "
        "--data KEY=VALUE"
    )
    assert sorted(p.name for p in chdir_tmp.iterdir()) == ["broken.yml"]


def test_without_a_terminal_and_without_answers_it_asks_for_defaults(chdir_tmp: Path):
    result = invoke("new", "proj")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: no terminal to ask the questions on: add --defaults (with --data or --answers-file)"
    )
    assert not (chdir_tmp / "proj").exists()


def test_interrupt_leaves_nothing(tmp_path: Path, template_dir: Path, monkeypatch):
    """Ctrl-C in the middle of rendering (Copier raises KeyboardInterrupt subclasses)."""
    import mlopsify.creation as creation

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(creation._git, "init_repository", interrupted)
    with pytest.raises(KeyboardInterrupt):
        new_project(tmp_path / "proj", defaults=True, template=TemplateSource.at(template_dir))
    assert list(tmp_path.iterdir()) == []


def test_version_and_help_are_instant_and_exact():
    from mlopsify import __version__

    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output == f"mlopsify {__version__}\n"
    result = invoke("--help")
    assert result.exit_code == 0
    assert "new" in result.output


def test_help_does_not_import_copier():
    import subprocess
    import sys

    code = "import sys, mlopsify.cli; print('copier' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
