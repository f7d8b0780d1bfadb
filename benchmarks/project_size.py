"""How much a team is handed: files and lines of a default project, per release and against a peer.

    .venv/bin/python benchmarks/project_size.py     # rewrites the size table of docs/benchmarks.md

Sizes are counts, not timings: every shipped release's default project (`mlopsify new
--defaults`, from the release history in the wheel) and cookiecutter-data-science's default
project are rendered in one run and counted the same way: the files git tracks after the first
commit, their text lines (a binary file counts as a file, with no lines), and the lines of Python.
tests/test_project_size.py holds the newest release to the budget of issue 23.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlopsify import TemplateSource, new_project
from mlopsify.template_source import BUNDLE_PATH, CANONICAL_URL

ROOT = Path(__file__).resolve().parent.parent
CCDS = ROOT / ".cache" / "ccds" / "bin" / "ccds"
CCDS_STANDIN = Path(__file__).resolve().parent / "ccds_standin"
PAGE = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- size:begin -->", "<!-- size:end -->"
# Issue 23's budget for the default project: what a DevOps team can own on day one.
BUDGET = {"files": 70, "lines": 4500, "python": 1200}


@dataclass(frozen=True)
class Size:
    files: int
    lines: int
    python: int

    def within_budget(self) -> bool:
        return (
            self.files <= BUDGET["files"]
            and self.lines <= BUDGET["lines"]
            and self.python <= BUDGET["python"]
        )


def measure(project: Path, listed: list[str] | None = None) -> Size:
    """The size of ``project``: the files git tracks (or ``listed``), their lines, Python's lines."""
    if listed is None:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=project, capture_output=True, text=True, check=True
        ).stdout.split("\0")
    files = lines = python = 0
    for name in filter(None, listed):
        data = (project / name).read_bytes()
        files += 1
        if b"\0" in data:
            continue  # binary: a file, no lines
        count = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
        lines += count
        python += count if name.endswith(".py") else 0
    return Size(files, lines, python)


def release_sizes(work: Path, bundle: Path = BUNDLE_PATH) -> dict[str, Size]:
    """Each release's default project, oldest first."""
    template = TemplateSource(url=CANONICAL_URL, bundle=bundle)
    sizes = {}
    for tag in template.versions():
        project = new_project(
            work / tag / "bench-project", defaults=True, template=template, vcs_ref=tag
        )
        sizes[tag] = measure(project)
    return sizes


def ccds_size(work: Path) -> Size | None:
    """cookiecutter-data-science's default project (its stand-in tree offline), or None."""
    if not CCDS.exists():
        return None
    out = work / "ccds"
    subprocess.run([str(CCDS), "--no-input", str(CCDS_STANDIN), "-o", str(out)], check=True)
    project = next(path for path in out.iterdir() if path.is_dir())
    listed = [str(path.relative_to(project)) for path in project.rglob("*") if path.is_file()]
    return measure(project, listed)


def table(sizes: dict[str, Size], ccds: Size | None) -> str:
    rows = [
        "| default project | files | lines | of which Python |",
        "|---|---:|---:|---:|",
        *[
            f"| mlopsify {tag} | {s.files} | {s.lines:,} | {s.python:,} |"
            for tag, s in sizes.items()
        ],
    ]
    if ccds is not None:
        rows.append(
            f"| cookiecutter-data-science 2.3 (benchmarks/ccds_standin: its default tree, offline) | {ccds.files} | {ccds.lines:,} | {ccds.python:,} |"
        )
    budget = (
        f"| budget (issue 23) | {BUDGET['files']} | {BUDGET['lines']:,} | {BUDGET['python']:,} |"
    )
    return "\n".join([*rows, budget])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mlopsify-size-") as scratch:
        sizes = release_sizes(Path(scratch))
        ccds = ccds_size(Path(scratch))
    text = table(sizes, ccds)
    print(text)
    page = PAGE.read_text(encoding="utf-8")
    if BEGIN in page:
        page = re.sub(
            rf"{re.escape(BEGIN)}.*?{re.escape(END)}", f"{BEGIN}\n{text}\n{END}", page, flags=re.S
        )
        PAGE.write_text(page, encoding="utf-8")
    else:
        print(f"{PAGE} has no {BEGIN} marker: the table was not written", file=sys.stderr)


if __name__ == "__main__":
    main()
