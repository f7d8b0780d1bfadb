"""A fleet: the repositories a platform team runs, listed in one small YAML file.

    # fleet.yml
    test: make lint test            # the command `fleet update` runs; this is the default
    repositories:
      - url: git@gitlab.example.com:ml/shop-model.git
        branch: main                # the default branch (default: main)
        provider: gitlab            # where the merge request opens (default: its ci_provider)
        api: https://gitlab.example.com/api/v4
        project: ml/shop-model      # GitLab id or path, GitHub owner/name (default: the name)
      - url: ../churn               # a local clone: read, never written
        test: make test

Every key but ``repositories`` can be given once at the top, for all, and per repository.
:mod:`.fleet_status` reads each repository in a scratch clone, :mod:`.fleet_update` opens the
updates; nothing here touches a repository.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidAnswerError
from .template_source import is_url

DEFAULT_TEST = "make lint test"
TOKEN_ENV = "MLOPSIFY_FLEET_TOKEN"
_SHARED_KEYS = ("branch", "test", "provider", "api")
_REPOSITORY_KEYS = {"url", "name", "project", *_SHARED_KEYS}
_PROVIDERS = ("gitlab", "github")


@dataclass(frozen=True)
class FleetRepository:
    """One repository of the fleet, with every setting resolved."""

    name: str
    url: str  # a git URL, or an absolute path
    branch: str = "main"
    test: str = DEFAULT_TEST
    provider: str | None = None  # gitlab or github; None: the project's ci_provider
    api: str | None = None  # None: the provider's public API
    project: str | None = None  # None: the name

    @property
    def is_local(self) -> bool:
        return not is_url(self.url)


@dataclass(frozen=True)
class Fleet:
    path: Path
    repositories: list[FleetRepository]


def read_fleet(path: Path) -> Fleet:
    """Read and check a fleet file; relative paths in it are relative to the file."""
    from .answers import load_yaml_file

    loaded = load_yaml_file(path, "fleet file", "fix it")
    listed = loaded.get("repositories") if isinstance(loaded, dict) else None
    if not isinstance(listed, list) or not listed:
        raise InvalidAnswerError(
            f"fleet file {path} lists no repositories: add `repositories:` with one `- url: ...` each"
        )
    unknown = sorted(set(loaded) - {"repositories", *_SHARED_KEYS})
    if unknown:
        raise InvalidAnswerError(
            f"fleet file {path}: unknown key {', '.join(unknown)} at the top; use {', '.join(_SHARED_KEYS)}"
        )
    shared = {key: loaded[key] for key in _SHARED_KEYS if key in loaded}
    repositories = [
        _repository(path, index, entry, shared) for index, entry in enumerate(listed, 1)
    ]
    names = [repository.name for repository in repositories]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InvalidAnswerError(
            f"fleet file {path}: the name {', '.join(twice)} is given twice; give each repository"
            " its own `name:`"
        )
    return Fleet(path, repositories)


def _repository(path: Path, index: int, entry: Any, shared: dict[str, Any]) -> FleetRepository:
    where = f"fleet file {path}, repository {index}"
    if isinstance(entry, str):
        entry = {"url": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
        raise InvalidAnswerError(f"{where}: give its `url:` (a git URL or a path)")
    unknown = sorted(set(entry) - _REPOSITORY_KEYS)
    if unknown:
        raise InvalidAnswerError(
            f"{where}: unknown key {', '.join(unknown)}; use {', '.join(sorted(_REPOSITORY_KEYS))}"
        )
    settings = {**shared, **entry}
    for key, value in settings.items():
        if not isinstance(value, str) or not value.strip():
            raise InvalidAnswerError(f"{where}: {key} must be a non-empty text, not {value!r}")
    if settings.get("provider") not in (None, *_PROVIDERS):
        raise InvalidAnswerError(
            f"{where}: provider must be gitlab or github, not {settings['provider']!r}"
            " (a Jenkins project opens its requests on its git host)"
        )
    url = settings.pop("url")
    if not is_url(url):
        url = os.path.normpath((path.parent / Path(url).expanduser()).absolute())
    name = settings.pop("name", None) or _name_of(url)
    return FleetRepository(name=name, url=url, **settings)


def _name_of(url: str) -> str:
    """The repository's name from its URL or path: ``ml/shop-model.git`` -> ``shop-model``."""
    last = re.split(r"[/:]", url.rstrip("/"))[-1]
    return last.removesuffix(".git") or url
