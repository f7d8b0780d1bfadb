"""Fail when a newer release of the project template exists (run weekly by CI).

    python3 -m mlopsify_runtime.template_update_check [--answers .copier-answers.yml] [--source URL]

Reads the template URL (``_src_path``) and the release the project was made from or last
updated to (``_commit``) from Copier's answers file, lists the template's release tags with
``git ls-remote`` and compares versions the way Copier orders them (pre-releases ignored).
Needs only Python and git: neither mlopsify nor Copier has to be installed.

Exit codes: 0 up to date, 1 a newer release exists, 2 the check could not be made.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ANSWERS_FILE = ".copier-answers.yml"
# A release tag: v1.2.3 or 1.2.3, optionally a pre-release (1.3.0rc1, 1.3.0-beta.2, ...).
_VERSION = re.compile(
    r"^v?(?P<release>\d+(?:\.\d+)*)(?:[-_.]?(?P<pre>a|alpha|b|beta|c|rc|pre|preview)[-_.]?(?P<n>\d*))?$",
    re.IGNORECASE,
)
# `git describe` output that Copier records for a commit after a tag: v1.2.3-4-gabc1234.
_DESCRIBE = re.compile(r"^(?P<tag>.+)-(?P<ahead>\d+)-g[0-9a-f]+$")


class CheckError(Exception):
    """The check could not be made (exit code 2)."""


def parse_version(tag: str) -> tuple[tuple[int, ...], bool] | None:
    """``(release numbers, is_prerelease)`` of a tag, or None when it is not a version."""
    match = _VERSION.match(tag.strip())
    if not match:
        return None
    numbers = tuple(int(part) for part in match["release"].split("."))
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers = numbers[:-1]
    return numbers, match["pre"] is not None


def read_answers(path: Path) -> dict[str, str]:
    """The top-level scalar answers of Copier's answers file (plain YAML ``key: value`` lines)."""
    if not path.is_file():
        raise CheckError(f"{path} not found: is this a project made from the template?")
    answers: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(?P<key>[A-Za-z_]\w*):\s*(?P<value>.*?)\s*$", line)
        if match:
            answers[match["key"]] = match["value"].strip("'\"")
    return answers


def release_tags(source: str) -> list[str]:
    """Tag names of the template repository at ``source``."""
    try:
        listing = subprocess.run(
            ["git", "ls-remote", "--tags", "--refs", source],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        raise CheckError(f"cannot list the releases of {source}: {detail.strip()}") from None
    return [line.split("refs/tags/", 1)[1] for line in listing.splitlines() if "refs/tags/" in line]


def current_release(commit: str) -> tuple[tuple[int, ...], int]:
    """Version the project is on and how many template commits past that tag (0 for a tag)."""
    ahead = 0
    described = _DESCRIBE.match(commit)
    if described and parse_version(described["tag"]):
        commit, ahead = described["tag"], int(described["ahead"])
    parsed = parse_version(commit)
    if parsed is None:
        raise CheckError(
            f"_commit '{commit}' is not a release tag: the project was made from an unreleased "
            "template; update it to a release first"
        )
    return parsed[0], ahead


def final_releases(source: str) -> dict[tuple[int, ...], str]:
    """The release tags of ``source`` (pre-releases left out), by version."""
    releases = {}
    for tag in release_tags(source):
        parsed = parse_version(tag)
        if parsed and not parsed[1]:
            releases[parsed[0]] = tag
    if not releases:
        raise CheckError(f"{source} has no release tags")
    return releases


def newest_version(answers_path: Path, source: str | None) -> str:
    """The newest release's version without its ``v`` (`--newest`): the scheduled update job
    installs exactly the mlopsify that ships it (mlopsify and the template share one version)."""
    source = source or read_answers(answers_path).get("_src_path")
    if not source:
        raise CheckError(f"{answers_path} has no _src_path: the template is unknown")
    releases = final_releases(source)
    return releases[max(releases)].removeprefix("v")


def check(answers_path: Path, source: str | None) -> tuple[int, str]:
    """Exit code and message of the check."""
    answers = read_answers(answers_path)
    commit = answers.get("_commit")
    source = source or answers.get("_src_path")
    if not commit or not source:
        raise CheckError(f"{answers_path} has no _commit or _src_path: the template version is unknown")
    current, ahead = current_release(commit)
    releases = final_releases(source)
    newest = max(releases)
    if newest > current:
        return 1, (
            f"template update available: this project is on {commit}, the newest release is "
            f"{releases[newest]}. Run `mlopsify update` (or `copier update --trust`) and open a "
            "merge request."
        )
    state = f"{ahead} commit(s) past {releases.get(current, commit)}" if ahead else commit
    return 0, f"template is up to date: this project is on {state}, the newest release is {releases[newest]}."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=Path, default=Path(ANSWERS_FILE), help="Copier's answers file")
    parser.add_argument(
        "--source",
        default=os.environ.get("TEMPLATE_SOURCE") or None,
        help="template repository to compare with (default: the answers file's _src_path; env TEMPLATE_SOURCE)",
    )
    parser.add_argument(
        "--newest", action="store_true", help="print the newest release's version (without v) and exit 0"
    )
    args = parser.parse_args(argv)
    try:
        if args.newest:
            print(newest_version(args.answers, args.source))
            return 0
        code, message = check(args.answers, args.source)
    except CheckError as error:
        print(f"template-check: {error}", file=sys.stderr)
        return 2
    print(message, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
