"""The benchmark command keeps working (smoke mode: one run of a subset), and start-up stays lean.

Speed targets themselves are not asserted here: they live in docs/benchmarks.md (`make bench`).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from helpers import ROOT, run

from mlopsify.template_source import BUNDLE_ENV, BUNDLE_PATH, CANONICAL_URL, TemplateSource

SCRIPT = ROOT / "benchmarks" / "generator.py"
PYTHON = ROOT / ".venv" / "bin" / "python"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_generator", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def table(text: str, heading: str) -> list[list[str]]:
    """The rows (cells) of the Markdown table under ``### heading``, header first."""
    section = text.split(f"### {heading}\n", 1)[1].lstrip("\n").split("\n\n", 1)[0]
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    output = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    run(PYTHON, SCRIPT, "--smoke", "--output", output, cwd=ROOT, timeout=300)
    return output.read_text(encoding="utf-8")


def test_smoke_run_writes_goals_figures_and_machine(smoke_report: str):
    assert smoke_report.startswith("# Benchmarks\n\n<!-- bench:begin -->\n")
    assert smoke_report.rstrip().endswith("<!-- bench:end -->")

    goals = table(smoke_report, "Goals")
    assert goals[0] == ["goal", "measured (wall-clock medians)", "CPU-time ratio", "met"]
    assert [row[0] for row in goals[1:]] == [
        "`mlopsify --help` within 1.5x of `import typer`",
        "`mlopsify --version` within 1.5x of `import typer`",
        "`mlopsify new --defaults` within 1.2x of a raw `copier copy`",
        "`mlopsify new --defaults` faster than `ccds`",
        "no-op `dvc repro` under 2 s",
        "time to first prediction (`mlopsify new` to the first answer) under 30 s",
        "the service ready under 2 s after `make serve` starts",
        "cold `dvc repro` within 1.3x of the same stages in one process",
        "`make setup` environment at most half of template 0.2.0's (749 MB, 175 packages)",
    ]
    for goal, measured, cpu, met in goals[1:5]:
        assert re.fullmatch(r"\d+\.\d\dx \(\d.* vs \d.*\)", measured), goal
        assert re.fullmatch(r"\d+\.\d\dx", cpu), goal
        assert met in {"yes", "no"}
    # The pipeline and time-to-first-prediction groups are not part of the smoke subset.
    for row in goals[5:]:
        assert row[1:] == ["not measured", "n/a", "n/a"], row[0]

    figures = table(smoke_report, "Figures")
    assert figures[0] == [
        "group",
        "command",
        "median",
        "min",
        "max",
        "CPU median",
        "runs",
        "ratio to baseline (wall, CPU)",
    ]
    rows = {row[1]: row for row in figures[1:]}
    assert all(len(row) == 8 for row in figures)
    measured = [
        '`python -c "import typer"` (baseline)',
        "`mlopsify --version`",
        "`mlopsify --help`",
        '`python -c "import copier"`',
        "`copier --version`",
        "`ccds --version`",
        "raw `copier copy --defaults` of the same release (baseline)",
        "raw `copier copy --defaults` of the same release as a plain directory (no git)",
        "`mlopsify new --defaults` (renders, then `git init` + first commit)",
        "`ccds --no-input` (a stand-in of its default project, local path)",
        "`ccds --no-input` (a stand-in of its default project, cloned at its release tag "
        "from a local git repository)",
    ]
    assert list(rows) == measured
    for label in measured:
        _, _, median, low, high, cpu, runs, ratio = rows[label]
        assert runs == "1", label
        for value in (median, low, high, cpu):
            assert re.fullmatch(r"\d+(\.\d\d)? m?s", value), (label, value)
        assert re.fullmatch(r"\d+\.\d\dx, \d+\.\d\dx", ratio), label
    assert rows[measured[0]][7] == rows[measured[6]][7] == "1.00x, 1.00x"

    machine = dict((row[0], row[1]) for row in table(smoke_report, "Machine")[1:])
    for fact in ("CPU", "cores", "Python", "copier", "typer", "dvc (generated project)"):
        assert machine[fact], fact
    assert re.fullmatch(r"\d+\.\d+\.\d+", machine["copier"])
    assert machine["cookiecutter-data-science"] == "2.3.0"


def test_report_replaces_only_the_generated_section(tmp_path: Path):
    generator = load_generator()
    page = tmp_path / "benchmarks.md"
    prose, findings = "# Benchmarks\n\nHow to run.\n\n", "\n## Findings\n"
    page.write_text(f"{prose}<!-- bench:begin -->\nold\n<!-- bench:end -->\n{findings}")
    generator.write_report(page, "<!-- bench:begin -->\nnew\n<!-- bench:end -->\n")
    assert page.read_text() == f"{prose}<!-- bench:begin -->\nnew\n<!-- bench:end -->\n{findings}"


def test_smoke_run_draws_a_chart_beside_its_figures(smoke_report: str):
    figures = smoke_report.split("### Figures\n", 1)[1]
    for group in ("start-up", "new-project"):
        assert f"](images/bench-{group}.svg)" in figures


def test_post_releases_follow_the_newest_tag():
    generator = load_generator()
    assert generator._post("v0.1.0", 1) == "v0.1.0.post1"
    assert generator._post("v0.1.0.post1", 1) == "v0.1.0.post2"
    assert generator.release_order(["v0.1.0", "v0.1.0.post2", "v0.1.0.post1"])[-1] == (
        "v0.1.0.post2"
    )


def test_cli_start_up_imports_neither_copier_nor_rich():
    """`mlopsify --help` stays fast: the library and Copier load only when a command runs."""
    probe = (
        "import sys, mlopsify.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'copier', 'jinja2', 'yaml', 'plumbum', 'pydantic', 'rich', 'questionary'}))"
    )
    loaded = subprocess.run([PYTHON, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
    help_text = run(ROOT / ".venv" / "bin" / "mlopsify", "--help", cwd=ROOT).stdout
    assert help_text.startswith("Usage: mlopsify [OPTIONS] COMMAND [ARGS]...")


def test_bundle_override_names_another_release_history(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    assert TemplateSource.shipped() == TemplateSource(CANONICAL_URL, BUNDLE_PATH)
    monkeypatch.setenv(BUNDLE_ENV, str(tmp_path / "mirror.bundle"))
    assert TemplateSource.shipped() == TemplateSource(CANONICAL_URL, tmp_path / "mirror.bundle")
