"""scripts/release_template.py: a shipped release (dated in the CHANGELOG) is never rewritten.

Each test works on a copy of the repository's released files and of the shipped bundle, so
the real bundle is never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT
from template_releases import SHIPPED_BUNDLE, release_versions

sys.path.insert(0, str(ROOT / "scripts"))
import release_template  # scripts/ is not a package: found through sys.path


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the released files (the repository root for the script) and of the shipped bundle."""
    root = tmp_path / "root"
    root.mkdir()
    for name in release_template.RELEASED_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        elif source.exists():
            shutil.copy2(source, root / name)
    bundle = tmp_path / "template.bundle"
    shutil.copy2(SHIPPED_BUNDLE, bundle)
    return root, bundle


def change_template(root: Path, line: str) -> None:
    with (root / "template" / "README.md.jinja").open("a") as readme:
        readme.write(f"\n{line}\n")


def add_changelog_heading(root: Path, heading: str) -> None:
    changelog = root / "CHANGELOG.md"
    text = changelog.read_text()
    first = text.index("\n## [")
    changelog.write_text(f"{text[:first]}\n{heading}\n\n- A change.\n{text[first:]}")


def released_file(bundle: Path, tag: str, path: str) -> str:
    """A file as a release of the bundle recorded it (a bundle is read through a clone)."""
    clone = bundle.with_name(f"{bundle.name}-{tag}")
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(
        ["git", "clone", "--quiet", "--branch", tag, str(bundle), str(clone)],
        check=True,
        capture_output=True,
    )
    return (clone / path).read_text()


def test_every_shipped_release_is_dated_in_the_changelog():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    for tag in release_versions(SHIPPED_BUNDLE):
        when = release_template.changelog_date(changelog, tag[1:])
        assert release_template.is_shipped(when), f"{tag}: {when}"


def test_a_shipped_release_is_never_rewritten(checkout: tuple[Path, Path]):
    root, bundle = checkout
    newest = release_versions(bundle)[-1]
    before = bundle.read_bytes()
    change_template(root, "A change after the release shipped.")
    with pytest.raises(SystemExit) as refused:
        release_template.release(newest[1:], root, bundle)
    assert str(refused.value).startswith(f"{newest} shipped on 20")
    assert "is never rewritten" in str(refused.value)
    assert bundle.read_bytes() == before


def test_a_release_needs_a_changelog_entry(checkout: tuple[Path, Path]):
    root, bundle = checkout
    change_template(root, "A change.")
    with pytest.raises(SystemExit) as refused:
        release_template.release("9.8.0", root, bundle)
    assert str(refused.value) == (
        "CHANGELOG.md has no entry for 9.8.0: add `## [9.8.0] - unreleased` with the changes"
        " (give it the date when the release ships)"
    )


def test_an_unreleased_version_is_replaced_until_it_is_dated(checkout: tuple[Path, Path]):
    root, bundle = checkout
    shipped = release_versions(bundle)
    add_changelog_heading(root, "## [9.8.0] - unreleased")
    change_template(root, "First draft.")
    assert release_template.release("9.8.0", root, bundle).startswith("released v9.8.0")
    change_template(root, "Second draft.")
    release_template.release("9.8.0", root, bundle)
    assert release_versions(bundle) == [*shipped, "v9.8.0"]
    readme = released_file(bundle, "v9.8.0", "template/README.md.jinja")
    assert "First draft." in readme and "Second draft." in readme
    # The shipped releases are untouched by the replacement.
    assert "First draft." not in released_file(bundle, shipped[-1], "template/README.md.jinja")

    changelog = root / "CHANGELOG.md"
    changelog.write_text(
        changelog.read_text().replace("[9.8.0] - unreleased", "[9.8.0] - 2026-12-24")
    )
    release_template.release("9.8.0", root, bundle)  # dating it is the last replacement
    change_template(root, "After shipping.")
    with pytest.raises(SystemExit, match=r"^v9\.8\.0 shipped on 2026-12-24 and is never rewritten"):
        release_template.release("9.8.0", root, bundle)


def test_the_command_refuses_with_exit_code_1(tmp_path: Path):
    bundle = tmp_path / "template.bundle"
    shutil.copy2(SHIPPED_BUNDLE, bundle)
    oldest = release_versions(bundle)[0]
    completed = subprocess.run(
        [
            sys.executable,
            ROOT / "scripts" / "release_template.py",
            "--version",
            oldest[1:],
            "--bundle",
            bundle,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode == 0:
        # Only possible when this checkout's template is exactly the oldest (and only) release.
        assert (
            completed.stdout.strip()
            == f"{oldest} is already the newest release and matches template/"
        )
    else:
        assert completed.returncode == 1
        assert "is never rewritten" in completed.stderr
    assert bundle.read_bytes() == SHIPPED_BUNDLE.read_bytes()
