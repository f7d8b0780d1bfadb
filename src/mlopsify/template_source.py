"""Where the template comes from: the release history shipped inside the package.

The wheel carries ``template.bundle``, a git bundle with every template release tag. The
answers file of a project records :data:`CANONICAL_URL`, so that a user without mlopsify
can still run ``copier update``; while mlopsify runs, git rewrites that URL to the bundle
(``url.<bundle>.insteadOf``), so ``new`` and ``update`` work offline and an update can
three-way merge from the exact release a project was made with.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CANONICAL_URL = "https://github.com/mlopsify/mlopsify.git"
BUNDLE_PATH = Path(__file__).parent / "_template" / "template.bundle"
# Another release history to use instead of the shipped one (a mirror, or the benchmarks'
# bundle with an extra release); the answers file still records CANONICAL_URL.
BUNDLE_ENV = "MLOPSIFY_TEMPLATE_BUNDLE"


@dataclass(frozen=True)
class TemplateSource:
    """A template location (URL or path) and, when it is not a real place, the git bundle behind it."""

    url: str
    bundle: Path | None = None

    @classmethod
    def shipped(cls) -> TemplateSource:
        """The release history shipped with this mlopsify, or the bundle named by ``BUNDLE_ENV``."""
        override = os.environ.get(BUNDLE_ENV)
        return cls(url=CANONICAL_URL, bundle=Path(override).absolute() if override else BUNDLE_PATH)

    @classmethod
    def at(cls, location: str | Path) -> TemplateSource:
        """A template at a path or URL of the user's choice (a git repository for updates)."""
        return cls(url=str(location))

    def git_env(self) -> dict[str, str]:
        """Git configuration, as environment variables, that resolves ``url`` to the bundle."""
        if self.bundle is None:
            return {}
        start = int(os.environ.get("GIT_CONFIG_COUNT", "0"))
        return {
            "GIT_CONFIG_COUNT": str(start + 1),
            f"GIT_CONFIG_KEY_{start}": f"url.{self.bundle}.insteadOf",
            f"GIT_CONFIG_VALUE_{start}": self.url,
        }

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
        listing = subprocess.run(
            ["git", "ls-remote", "--tags", str(self.bundle or self.url)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
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
