"""Record the working tree's template as a release in the shipped git bundle.

    python scripts/release_template.py            # release as the package version
    python scripts/release_template.py --check    # fail when template/ differs from the newest release

The bundle holds a history of its own: one commit per release, tagged vX.Y.Z, with the
files Copier reads (copier.yml, template/, the migration steps in migrations/), the
CHANGELOG, and the runtime's wheel built from runtime/ (template/vendor/, which every project
made from the release carries). A release is **shipped** once the CHANGELOG recorded in it dates its heading
(``## [0.2.0] - 2026-12-01``): a shipped tag is never rewritten, because projects made from
it would never receive the change (`update` compares tags, not contents). A release whose heading says
``unreleased`` (``## [0.3.0] - unreleased``) is work in progress: re-running replaces it,
and the run that dates it ships it. Every release needs a CHANGELOG heading.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from runtime_wheel import VENDOR_DIR, build_runtime_wheel  # noqa: E402

from mlopsify._version import __version__  # noqa: E402
from mlopsify.template_source import BUNDLE_PATH, TemplateSource  # noqa: E402

RELEASED_FILES = ("copier.yml", "template", "migrations", "CHANGELOG.md")
IDENTITY = {
    "GIT_AUTHOR_NAME": "mlopsify release",
    "GIT_AUTHOR_EMAIL": "release@mlopsify.invalid",
    "GIT_COMMITTER_NAME": "mlopsify release",
    "GIT_COMMITTER_EMAIL": "release@mlopsify.invalid",
}
DATED = re.compile(r"\d{4}-\d{2}-\d{2}")


class ReleaseRefused(SystemExit):
    """The release would lose or misstate shipped work; the message says what to do."""


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **IDENTITY},
    ).stdout.strip()


def changelog_date(changelog: str, version: str) -> str | None:
    """What follows ``## [VERSION] -`` in a CHANGELOG (a date or ``unreleased``); None without a heading."""
    match = re.search(
        rf"^## \[{re.escape(version)}\](?:\s*-\s*(?P<when>.*?))?\s*$", changelog, re.MULTILINE
    )
    if match is None:
        return None
    return (match["when"] or "unreleased").strip()


def is_shipped(when: str | None) -> bool:
    return bool(when and DATED.fullmatch(when))


def checkout_history(work: Path, root: Path = ROOT, bundle: Path = BUNDLE_PATH) -> Path:
    """A clone of the bundle's history (or a new repository) with the working tree's files in it."""
    repo = work / "template-history"
    if bundle.exists():
        subprocess.run(["git", "clone", "--quiet", str(bundle), str(repo)], check=True)
    else:
        repo.mkdir(parents=True)
        git("init", "--quiet", "--initial-branch=main", cwd=repo)
    for entry in repo.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for name in RELEASED_FILES:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, repo / name)
    build_runtime_wheel(repo / "template" / VENDOR_DIR)
    git("add", "--all", cwd=repo)
    return repo


def differs_from_newest(repo: Path) -> bool:
    return bool(git("status", "--porcelain", cwd=repo))


def release(version: str, root: Path = ROOT, bundle: Path = BUNDLE_PATH) -> str:
    tag = f"v{version}"
    changelog = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    if changelog_date(changelog, version) is None:
        raise ReleaseRefused(
            f"CHANGELOG.md has no entry for {version}: add `## [{version}] - unreleased` with the"
            " changes (give it the date when the release ships)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        repo = checkout_history(Path(tmp), root, bundle)
        tags = TemplateSource(url=str(bundle), bundle=bundle).versions() if bundle.exists() else []
        if tag in tags and tags[-1] != tag:
            raise ReleaseRefused(
                f"{tag} is an older release and is never rewritten: bump the version"
            )
        if tag in tags and not differs_from_newest(repo):
            return f"{tag} is already the newest release and matches template/"
        if tag in tags:
            recorded = git("show", f"{tag}:CHANGELOG.md", cwd=repo)
            when = changelog_date(recorded, version)
            # A release recorded without a heading of its own predates this rule: shipped.
            if when is None or is_shipped(when):
                raise ReleaseRefused(
                    f"{tag} shipped on {when} and is never rewritten (projects made from it would"
                    " not receive the change): bump the version and add its CHANGELOG entry"
                )
            # Work in progress: the unreleased newest release is amended and its tag moved.
            git("commit", "--quiet", "--amend", "-m", f"Template release {tag}", cwd=repo)
        else:
            git("commit", "--quiet", "--allow-empty", "-m", f"Template release {tag}", cwd=repo)
        git("tag", "--force", tag, cwd=repo)
        bundle.parent.mkdir(parents=True, exist_ok=True)
        git("bundle", "create", "--quiet", str(bundle), "--all", cwd=repo)
    return f"released {tag} into {bundle}"


def check(root: Path = ROOT, bundle: Path = BUNDLE_PATH) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        repo = checkout_history(Path(tmp), root, bundle)
        if differs_from_newest(repo):
            changed = git("status", "--porcelain", cwd=repo)
            raise SystemExit(
                "template/ differs from the newest shipped release; run `make template-release`:\n"
                + changed
            )
    return "template/ matches the newest shipped release"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=__version__)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--bundle", type=Path, default=BUNDLE_PATH, help=argparse.SUPPRESS)
    args = parser.parse_args()
    print(check(bundle=args.bundle) if args.check else release(args.version, bundle=args.bundle))


if __name__ == "__main__":
    main()
