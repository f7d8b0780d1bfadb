"""The site's navigation: in the order a reader learns, every page once, titles as users spell them."""

from __future__ import annotations

from typing import Any

import yaml
from helpers import ROOT

DOCS = ROOT / "docs"
SECTIONS = ["Home", "Tutorial", "How-to guides", "Reference", "Explanation"]
# Words users write in capitals or with their own spelling, never as a file name reads.
SPELLED = {"cli": "CLI", "ci/cd": "CI/CD", "dvc": "DVC", "mlopsify": "mlopsify"}


class _Loader(yaml.SafeLoader):
    """mkdocs.yml names Python objects (!!python/name:...); the navigation does not need them."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *_: None)


def nav() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_Loader)[
        "nav"
    ]
    return loaded


def entries(items: list[Any], trail: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """(section titles..., page title) -> page, depth first, in the order of the navigation."""
    found = []
    for item in items:
        ((title, target),) = item.items()
        if isinstance(target, list):
            found += entries(target, (*trail, title))
        else:
            found.append(((*trail, title), target))
    return found


def test_sections_come_in_the_order_a_reader_learns():
    assert [next(iter(item)) for item in nav()] == SECTIONS


def test_every_page_is_in_the_navigation_once():
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    listed = [target for _, target in entries(nav())]
    assert sorted(listed) == pages
    assert len(set(listed)) == len(listed)


def test_titles_are_spelled_as_users_spell_them():
    for titles, target in entries(nav()):
        title = titles[-1]
        assert title[0].isupper() or title.startswith("mlopsify"), title
        for word in title.replace(",", " ").split():
            expected = SPELLED.get(word.lower())
            assert expected is None or word == expected, f"{target}: {title!r} spells {word!r}"
    titles = {target: path[-1] for path, target in entries(nav())}
    assert titles["reference/cli.md"] == "CLI"
    assert titles["getting-started.md"] == "Getting started"


def test_the_home_page_follows_the_navigation():
    headings = [
        line.removeprefix("## ")
        for line in (DOCS / "index.md").read_text().splitlines()
        if line.startswith("## ")
    ]
    assert headings == SECTIONS[1:]
    home = (DOCS / "index.md").read_text()
    linked = [target for _, target in entries(nav()) if target != "index.md"]
    positions = [home.index(f"]({target})") for target in linked]
    sections = [home.index(f"## {title}") for title in SECTIONS[1:]]
    bounds = [*sections, len(home)]
    for (titles, target), position in zip(entries(nav())[1:], positions, strict=True):
        index = SECTIONS.index(titles[0]) - 1
        assert bounds[index] < position < bounds[index + 1], (
            f"the home page links {target} outside its section {titles[0]}"
        )
