"""Where the template comes from: the release history shipped inside the package, or another.

The wheel carries ``template.bundle``, a git bundle with every template release tag. The
answers file of a project records :data:`CANONICAL_URL`, so that a user without mlopsify
can still run ``copier update``; while mlopsify runs, git rewrites that URL to the bundle
(``url.<bundle>.insteadOf``), so ``new`` and ``update`` work offline and an update can
three-way merge from the exact release a project was made with.

A template of the user's choice (``--template``: a mirror, a fork) is recorded as given; an
update from it stands in for the source the project recorded before, by the same rewrite.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import TemplateVersionError

CANONICAL_URL = "https://github.com/mlopsify/mlopsify.git"
BUNDLE_PATH = Path(__file__).parent / "_template" / "template.bundle"
# Another release history to use instead of the shipped one (a mirror, or the benchmarks'
# bundle with an extra release); the answers file still records CANONICAL_URL.
BUNDLE_ENV = "MLOPSIFY_TEMPLATE_BUNDLE"
# What git takes as a remote URL (scheme://, user@host:path, Copier's gh: and gl:) rather than a path.
_URL = re.compile(r"^([a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:|gh:|gl:)", re.IGNORECASE)


def is_url(location: str) -> bool:
    """Whether ``location`` is a git URL rather than a local path."""
    return _URL.match(location) is not None


@dataclass(frozen=True)
class TemplateSource:
    """A template location (URL or path) and, when it is not a real place, the git bundle behind it.

    ``stands_in_for`` lists other locations git resolves to this one while it is active: the
    template a project recorded before an update from this one.
    """

    url: str
    bundle: Path | None = None
    stands_in_for: tuple[str, ...] = ()

    @classmethod
    def shipped(cls) -> TemplateSource:
        """The release history shipped with this mlopsify, or the bundle named by ``BUNDLE_ENV``."""
        override = os.environ.get(BUNDLE_ENV)
        return cls(url=CANONICAL_URL, bundle=Path(override).absolute() if override else BUNDLE_PATH)

    @classmethod
    def at(cls, location: str | Path) -> TemplateSource:
        """A template at a path or URL of the user's choice (a git repository for updates).

        A local path is made absolute, so that the answers file records a place that does not
        depend on the directory the command ran in.
        """
        text = str(location)
        if is_url(text):
            return cls(url=text)
        return cls(url=str(Path(text).expanduser().absolute()))

    @classmethod
    def given(cls, location: str) -> TemplateSource:
        """The template of a ``--template`` option: a git URL, a directory or a git bundle
        (``*.bundle``, as mlopsify ships its history) that exists; the canonical URL is the
        shipped history."""
        if location == CANONICAL_URL:
            return cls.shipped()
        source = cls.at(location)
        path = Path(source.url)
        if not (is_url(location) or path.is_dir() or (path.is_file() and path.suffix == ".bundle")):
            raise TemplateVersionError(
                f"template {location} is neither a directory nor a git URL: give the path or URL"
                " of a Copier template repository"
            )
        return source

    @property
    def location(self) -> str:
        """Where git reads the template: the bundle, else ``url`` itself."""
        return str(self.bundle or self.url)

    def standing_in_for(self, recorded: str) -> TemplateSource:
        """This template, also answering for ``recorded`` (the source a project names)."""
        return TemplateSource(self.url, self.bundle, (*self.stands_in_for, recorded))

    def git_env(self) -> dict[str, str]:
        """Git configuration, as environment variables, that resolves ``url`` (when a bundle
        stands behind it) and ``stands_in_for`` to :attr:`location`."""
        aliases = [self.url] if self.bundle is not None else []
        aliases += [alias for alias in self.stands_in_for if alias != self.location]
        if not aliases:
            return {}
        start = int(os.environ.get("GIT_CONFIG_COUNT", "0"))
        env = {"GIT_CONFIG_COUNT": str(start + len(aliases))}
        for index, alias in enumerate(aliases, start):
            env[f"GIT_CONFIG_KEY_{index}"] = f"url.{self.location}.insteadOf"
            env[f"GIT_CONFIG_VALUE_{index}"] = alias
        return env

    @classmethod
    def recorded(cls, src_path: str) -> TemplateSource:
        """The template a project's answers file names: the shipped bundle for the canonical URL."""
        return cls.shipped() if src_path == CANONICAL_URL else cls.at(src_path)

    @contextmanager
    def activated(self) -> Iterator[None]:
        """Make git (and so Copier, which runs git through plumbum) resolve ``url`` offline.

        Copier snapshots ``os.environ`` into plumbum's environment at import, so the mapping
        goes there; the process environment is left alone.
        """
        from plumbum import local

        with local.env(**self.git_env()):
            yield

    def versions(self) -> list[str]:
        """Release tags, oldest first (:func:`release_order`)."""
        listed = subprocess.run(
            ["git", "ls-remote", "--tags", self.location], capture_output=True, text=True
        )
        if listed.returncode != 0:
            reason = next(
                (line.removeprefix("fatal: ") for line in listed.stderr.splitlines() if line),
                f"git ls-remote exited with {listed.returncode}",
            )
            raise TemplateVersionError(
                f"cannot read the template at {self.url} ({reason}): check the path or URL and"
                " that git can reach it"
            )
        listing = listed.stdout
        return release_order(
            line.rsplit("refs/tags/", 1)[1].removesuffix("^{}") for line in listing.splitlines()
        )


def release_order(tags: Iterable[str]) -> list[str]:
    """The tags that are versions, oldest first, in PEP 440 order as Copier sorts them.

    The one ordering of template releases: updates, ``add``, the release script and the
    benchmarks all use it.
    """
    from packaging.version import InvalidVersion, Version

    parsed: dict[str, Version] = {}
    for tag in set(tags):
        try:
            parsed[tag] = Version(tag)
        except InvalidVersion:
            continue
    return sorted(parsed, key=parsed.__getitem__)


def newest_release(tags: list[str], *, prereleases: bool = False) -> str | None:
    """The newest of ``tags`` (in :func:`release_order`): a final release unless
    ``prereleases`` or there is none, as Copier chooses when given no version."""
    from packaging.version import Version

    final = [tag for tag in tags if not Version(tag).is_prerelease]
    chosen = tags if prereleases or not final else final
    return chosen[-1] if chosen else None


def same_release(tags: list[str], requested: str) -> str | None:
    """The tag of ``tags`` that names release ``requested``: the same text, or the same PEP 440
    version (``0.4.0rc1``, ``v0.4.0-rc1`` and ``0.4.0-rc1`` are one release)."""
    from packaging.version import InvalidVersion, Version

    if requested in tags:
        return requested
    try:
        wanted = Version(requested)
    except InvalidVersion:
        return None
    return next((tag for tag in tags if Version(tag) == wanted), None)
