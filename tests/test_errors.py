"""Copier's errors become mlopsify's by type, and the CLI maps each to its exit code once."""

from __future__ import annotations

from pathlib import Path

import pytest
from template_repos import COPIER_YML, V1, TemplateRepo, git
from typer.testing import CliRunner

from mlopsify import (
    InvalidAnswerError,
    MlopsifyError,
    TemplateSource,
    UntrustedTemplateError,
    new_project,
)
from mlopsify.cli import app
from mlopsify.errors import EXIT_CODES

runner = CliRunner()


def test_an_untrusted_templates_tasks_exit_8_and_write_nothing(tmp_path: Path):
    repo = TemplateRepo(tmp_path / "with-tasks")
    repo.release("v1", V1)
    project = new_project(
        tmp_path / "p", defaults=True, template=TemplateSource.at(repo.path), vcs_ref="v1"
    )
    repo.release("v2", {"copier.yml": COPIER_YML + "_tasks:\n  - touch task-ran\n"})

    result = runner.invoke(app, ["update", str(project)])
    assert result.exit_code == UntrustedTemplateError.exit_code == 8
    assert result.stderr == (
        f"error: the template at {repo.path} runs migrations or tasks: "
        "run again with --trust if you trust it\n"
    )
    assert git("status", "--porcelain", cwd=project) == ""
    assert "UntrustedTemplateError" in EXIT_CODES[8][0]

    trusted = runner.invoke(app, ["update", str(project), "--trust"])
    assert trusted.exit_code == 0, trusted.output
    assert (project / "task-ran").is_file()


def test_a_broken_template_is_a_bug_not_an_invalid_answer(tmp_path: Path):
    """Copier raises a plain ValueError for a secret question without a default: the
    template's fault, so it keeps its traceback instead of blaming the user's answers."""
    template = tmp_path / "broken"
    (template / "template").mkdir(parents=True)
    (template / "copier.yml").write_text(
        "_subdirectory: template\ntoken:\n  type: str\n  help: A token\n  secret: true\n"
    )
    with pytest.raises(ValueError, match="Secret question requires a default value") as raised:
        new_project(tmp_path / "p", defaults=True, template=TemplateSource.at(template))
    assert not isinstance(raised.value, MlopsifyError)
    assert not (tmp_path / "p").exists()


def test_a_required_question_without_an_answer_says_how_to_answer_it(tmp_path: Path):
    template = tmp_path / "required"
    (template / "template").mkdir(parents=True)
    (template / "copier.yml").write_text(
        "_subdirectory: template\nowner:\n  type: str\n  help: Who owns it\n"
    )
    with pytest.raises(InvalidAnswerError) as raised:
        new_project(tmp_path / "p", defaults=True, template=TemplateSource.at(template))
    assert str(raised.value) == "question owner has no default: answer it with --data owner=VALUE"


@pytest.mark.parametrize(
    ("kind", "default", "given", "expected"),
    [
        ("int", "1", "many", "replicas takes an integer, not 'many'"),
        ("yaml", "[a]", "[unclosed", "replicas takes YAML, not '[unclosed'"),
    ],
)
def test_a_wrongly_typed_answer_is_an_invalid_answer(
    tmp_path: Path, kind: str, default: str, given: str, expected: str
):
    template = tmp_path / "typed"
    (template / "template").mkdir(parents=True)
    (template / "copier.yml").write_text(
        f"_subdirectory: template\nreplicas:\n  type: {kind}\n  help: Replicas\n  default: {default}\n"
    )
    with pytest.raises(InvalidAnswerError) as raised:
        new_project(
            tmp_path / "p",
            data={"replicas": given},
            defaults=True,
            template=TemplateSource.at(template),
        )
    assert str(raised.value) == f"{expected}: give one, as --data replicas=VALUE"
    assert not (tmp_path / "p").exists()


def test_the_cli_maps_errors_to_exit_codes_in_one_place():
    import ast

    from helpers import ROOT

    tree = ast.parse((ROOT / "src" / "mlopsify" / "cli.py").read_text())
    handlers = [
        ast.unparse(node.type)
        for node in ast.walk(tree)
        if isinstance(node, ast.ExceptHandler) and node.type is not None
    ]
    # Both in _Commands.invoke: a user's error, and Ctrl-C (which Typer would end silently).
    assert handlers == ["MlopsifyError", "KeyboardInterrupt"]
