"""Record the working tree's template as a release in the shipped git bundle.

    python scripts/release_template.py            # release as the package version
    python scripts/release_template.py --check    # fail when template/ differs from the newest release

The bundle holds a history of its own: one commit per release, tagged vX.Y.Z, with the
files Copier reads (copier.yml, template/, the migration steps in migrations/) and the
CHANGELOG. Re-running for the newest version replaces that release, so work in progress can
be re-released until the version moves on; an older release is never rewritten.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mlopsify._version import __version__  # noqa: E402
from mlopsify.template_source import BUNDLE_PATH, TemplateSource  # noqa: E402

RELEASED_FILES = ("copier.yml", "template", "migrations", "CHANGELOG.md")
IDENTITY = {
    "GIT_AUTHOR_NAME": "mlopsify release",
    "GIT_AUTHOR_EMAIL": "release@mlopsify.invalid",
    "GIT_COMMITTER_NAME": "mlopsify release",
    "GIT_COMMITTER_EMAIL": "release@mlopsify.invalid",
}


def git(*args: str, cwd: Path) -> str:
    import os

    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **IDENTITY},
    ).stdout.strip()


def checkout_history(work: Path) -> Path:
    """A clone of the bundle's history (or a new repository) with the working tree's files in it."""
    repo = work / "template-history"
    if BUNDLE_PATH.exists():
        subprocess.run(["git", "clone", "--quiet", str(BUNDLE_PATH), str(repo)], check=True)
    else:
        repo.mkdir()
        git("init", "--quiet", "--initial-branch=main", cwd=repo)
    for entry in repo.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for name in RELEASED_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, repo / name)
    git("add", "--all", cwd=repo)
    return repo


def differs_from_newest(repo: Path) -> bool:
    return bool(git("status", "--porcelain", cwd=repo))


def release(version: str) -> str:
    tag = f"v{version}"
    with tempfile.TemporaryDirectory() as tmp:
        repo = checkout_history(Path(tmp))
        tags = TemplateSource.shipped().versions() if BUNDLE_PATH.exists() else []
        if tag in tags and tags[-1] != tag:
            raise SystemExit(f"{tag} is an older release and is never rewritten: bump the version")
        if tag in tags and not differs_from_newest(repo):
            return f"{tag} is already the newest release and matches template/"
        if tag in tags:
            # Replace the newest release: its commit is amended and the tag moved.
            git("commit", "--quiet", "--amend", "-m", f"Template release {tag}", cwd=repo)
        else:
            git("commit", "--quiet", "--allow-empty", "-m", f"Template release {tag}", cwd=repo)
        git("tag", "--force", tag, cwd=repo)
        BUNDLE_PATH.parent.mkdir(parents=True, exist_ok=True)
        git("bundle", "create", "--quiet", str(BUNDLE_PATH), "--all", cwd=repo)
    return f"released {tag} into {BUNDLE_PATH.relative_to(ROOT)}"


def check() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        repo = checkout_history(Path(tmp))
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
    args = parser.parse_args()
    print(check() if args.check else release(args.version))


if __name__ == "__main__":
    main()
