"""The reference pages are generated from the source and cannot drift from it.

scripts/reference_docs.py generates them at docs-build time (a mkdocs hook); the package
does not ship the generator.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import typer.main
import yaml
from helpers import ROOT, require_tool, run

from mlopsify.cli import app
from mlopsify.errors import EXIT_CODES

sys.path.insert(0, str(ROOT / "scripts"))
from reference_docs import (
    cli_reference,
    exit_codes_reference,
    questions_reference,
    write_reference,
)

REFERENCE = ROOT / "docs" / "reference"
REGENERATE = "run `python scripts/reference_docs.py docs/reference`"
# "exit 5", "exit code 7", "exits with 3", and the codes listed after "Exit codes:".
EXIT_MENTION = re.compile(r"\bexit(?:s with| code)? (\d+)\b")
EXIT_LIST = re.compile(r"Exit codes: ((?:\d+ \([^)]*\)(?:, )?)+)")


def test_cli_reference_is_current():
    assert (REFERENCE / "cli.md").read_text() == cli_reference(), REGENERATE


def test_questions_reference_is_current():
    assert (REFERENCE / "questions.md").read_text() == questions_reference(ROOT / "copier.yml"), (
        REGENERATE
    )


def test_exit_code_reference_is_the_one_table():
    page = (REFERENCE / "exit-codes.md").read_text()
    assert page == exit_codes_reference(), REGENERATE
    for code, (error, _) in EXIT_CODES.items():
        assert f"| {code} | `{error}` |" in page if error else f"| {code} |  |" in page


def test_every_exit_code_in_the_docs_comes_from_the_one_table():
    """mlopsify's docs name exit codes in prose; each must be one of EXIT_CODES, and only the
    generated page holds a table of them. (generated-project.md and ci-providers.md describe
    the generated project's own scripts, whose codes are theirs.)"""
    others = {"generated-project.md", "ci-providers.md", "generated-architecture.md"}
    pages = [
        page
        for page in sorted((ROOT / "docs").rglob("*.md"))
        if page.name not in others and page != REFERENCE / "exit-codes.md"
    ]
    mentioned: dict[int, list[str]] = {}
    for page in [*pages, ROOT / "README.md"]:
        text = page.read_text(encoding="utf-8")
        assert "| code |" not in text, f"{page}: link to reference/exit-codes.md instead"
        codes = [int(c) for c in EXIT_MENTION.findall(text)]
        for listed in EXIT_LIST.findall(text):
            codes += [int(c) for c in re.findall(r"(\d+) \(", listed)]
        for code in codes:
            mentioned.setdefault(code, []).append(page.name)
    assert {5, 6, 7, 8} <= set(mentioned)  # the finder finds what the docs say
    assert {c: p for c, p in mentioned.items() if c not in EXIT_CODES} == {}


def test_every_error_class_has_its_row():
    import mlopsify.errors as errors

    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.MlopsifyError)
    ]
    assert {cls.exit_code: cls.__name__ for cls in classes} == {
        code: error for code, (error, _) in EXIT_CODES.items() if error
    }


def test_the_generator_is_not_in_the_package():
    assert importlib.util.find_spec("mlopsify.reference") is None
    assert write_reference(REFERENCE) == []  # the committed pages are current


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
