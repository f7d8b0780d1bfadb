"""The documentation site: every page reachable from the home page, links that resolve, and
no command, option or make target that does not exist.

`mkdocs build --strict` (tests/test_reference_docs.py) already fails on a link to a missing
page; these tests also say which page is orphaned or which command a page invents.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml
from helpers import ROOT, require_tool, run

from mlopsify.cli import app

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
SPAN = re.compile(r"`([^`\n]+)`")
QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
COMMENT = re.compile(r"(^|\s)#.*$")
SEPARATOR = re.compile(r"&&|\|\||;|\||\(|\)|>")
ASSIGNMENT = re.compile(r"^(?:\$ )?(?:[A-Z_]+=\S* +)*")


def page_links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())
    return [target for target in LINK.findall(text) if not urlsplit(target).scheme]


def resolve(page: Path, target: str) -> Path:
    path = urlsplit(target).path
    return (page.parent / path).resolve() if path else page


def test_every_internal_link_resolves():
    broken = [
        f"{page.relative_to(ROOT)} -> {target}"
        for page in [*PAGES, README]
        for target in page_links(page)
        if not resolve(page, target).exists()
    ]
    assert broken == []


def test_every_page_is_reachable_from_the_home_page():
    seen = {(DOCS / "index.md").resolve()}
    queue = list(seen)
    while queue:
        page = queue.pop()
        for target in page_links(page):
            found = resolve(page, target)
            if found.suffix == ".md" and found not in seen and found.exists():
                seen.add(found)
                queue.append(found)
    orphans = [str(p.relative_to(DOCS)) for p in PAGES if p.resolve() not in seen]
    assert orphans == [], "link these pages from docs/index.md or a page it links"


def code_of(text: str) -> list[str]:
    """Fenced blocks line by line, and inline code spans outside them."""
    lines = [line for block in FENCE.findall(text) for line in block.splitlines()]
    return lines + SPAN.findall(FENCE.sub("", text))


def commands() -> dict[str, set[str]]:
    group: Any = typer.main.get_command(app)
    known: dict[str, set[str]] = {}
    for name, command in group.commands.items():
        # A command group (`fleet`): the options of any of its commands.
        params = [p for c in getattr(command, "commands", {}).values() for p in c.params]
        params += command.params
        known[name] = {opt for param in params for opt in param.opts + param.secondary_opts}
        known[name].add("--help")
    return known


def make_targets() -> set[str]:
    targets: set[str] = set()
    template_make = sorted((ROOT / "template" / "make").iterdir())  # one file per concern
    for makefile in (ROOT / "Makefile", ROOT / "template" / "Makefile.jinja", *template_make):
        targets |= set(re.findall(r"^([a-z][a-z-]*):", makefile.read_text(), re.MULTILINE))
    return targets


def invocations(code: str) -> list[list[str]]:
    """The commands of one line of shell: quotes, comments and prompts removed, split at ; && |."""
    code = COMMENT.sub("", QUOTED.sub("''", code))
    words = [ASSIGNMENT.sub("", part.strip()).split() for part in SEPARATOR.split(code)]
    return [w for w in words if w]


@pytest.mark.parametrize("page", [*PAGES, README], ids=lambda p: str(p.relative_to(ROOT)))
def test_commands_and_options_in_the_page_exist(page: Path):
    known = commands()
    targets = make_targets()
    questions = {q for q in yaml.safe_load((ROOT / "copier.yml").read_text()) if q[0] != "_"}
    wrong = []
    for code in code_of(page.read_text()):
        for command, *args in invocations(code):
            if command == "mlopsify" and args and not args[0].startswith("-"):
                name, options = args[0], [a.split("=")[0] for a in args[1:] if a.startswith("-")]
                if name not in known:
                    wrong.append(f"mlopsify {name}")
                else:
                    wrong += [f"mlopsify {name} {o}" for o in options if o not in known[name]]
                answers = [v for k, v in itertools.pairwise(args) if k in {"-d", "--data"}]
                wrong += [f"question {a}" for a in answers if a.split("=")[0] not in questions]
            elif command == "make":
                names = [a for a in args if re.fullmatch(r"[a-z][a-z-]*", a)]
                wrong += [f"make {n}" for n in names if n not in targets]
    assert wrong == [], f"{page.relative_to(ROOT)} mentions what does not exist: {wrong}"


def test_site_has_a_page_for_every_markdown_file(tmp_path: Path):
    mkdocs = require_tool("mkdocs")
    site = tmp_path / "site"
    run(mkdocs, "build", "--strict", "--site-dir", site, cwd=ROOT, env={"NO_MKDOCS_2_WARNING": "1"})
    for page in PAGES:
        relative = page.relative_to(DOCS).with_suffix("")
        html = site / "index.html" if relative.name == "index" else site / relative / "index.html"
        assert html.is_file(), f"{page.relative_to(ROOT)} is not in the site"
