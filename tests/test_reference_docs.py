"""The reference pages are generated from the source and cannot drift from it."""

from __future__ import annotations

from pathlib import Path

import typer.main
import yaml
from helpers import ROOT, require_tool, run

from mlopsify.cli import app
from mlopsify.reference import cli_reference, questions_reference

REFERENCE = ROOT / "docs" / "reference"
REGENERATE = "run `python -m mlopsify.reference docs/reference`"


def test_cli_reference_is_current():
    assert (REFERENCE / "cli.md").read_text() == cli_reference(), REGENERATE


def test_questions_reference_is_current():
    assert (REFERENCE / "questions.md").read_text() == questions_reference(ROOT / "copier.yml"), (
        REGENERATE
    )


def test_every_command_and_question_is_documented():
    cli_page = (REFERENCE / "cli.md").read_text()
    for name in typer.main.get_command(app).commands:
        assert f"## `mlopsify {name}`" in cli_page
    questions_page = (REFERENCE / "questions.md").read_text()
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    for name, spec in config.items():
        if not name.startswith("_"):
            assert f"| `{name}` | {spec['help']} |" in questions_page


def test_every_question_has_help():
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    missing = [n for n, s in config.items() if not n.startswith("_") and not s.get("help")]
    assert missing == []


def test_docs_site_builds_strict(tmp_path: Path):
    mkdocs = require_tool("mkdocs")
    run(
        mkdocs,
        "build",
        "--strict",
        "--site-dir",
        tmp_path / "site",
        cwd=ROOT,
        env={"NO_MKDOCS_2_WARNING": "1"},
    )
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()
