"""`mlopsify fleet status` and `fleet update` over a fleet of twelve repositories.

The fleet (tests/fleet_fixtures.py) is made from the first three shipped releases and the
newest, as bare git remotes on this machine: three edited so that their update conflicts, a
team's clone with uncommitted changes, and an address where nothing listens. The GitLab and
GitHub APIs are a small HTTP server on 127.0.0.1 standing in for the providers (no provider
can run here): it records each request and answers as the real APIs do (201 and the
request's web address). The status page is opened in headless Chromium.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet_fixtures import (
    DIRTY,
    FAILING_TEST,
    NEWEST,
    PASSING_TEST,
    RELEASES,
    REPOSITORIES,
    UNREACHABLE,
    FleetOnDisk,
    build_fleet,
)
from helpers import chromium_screenshot
from provider_api import StandIn, provider_api
from template_releases import MLOPSIFY

from mlopsify import assess_repository

pytestmark = pytest.mark.slow  # renders four releases and merges nine updates: minutes

TOKEN = "glpat-fleet-token-0123456789"
BRANCH = f"template-update/{NEWEST}"
BEHIND = [name for name, (release, _, _) in REPOSITORIES.items() if release != NEWEST]


class NumberedRequests(StandIn):
    """Each request its own page, as GitLab and GitHub number merge and pull requests."""

    def reply(self) -> dict[str, Any]:
        page = f"http://127.0.0.1{self.path}/{len(self.received)}"
        return {"web_url": page, "html_url": page}


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with provider_api(NumberedRequests) as served:
        yield served


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, provider: tuple[str, list[dict[str, Any]]]
) -> FleetOnDisk:
    return build_fleet(tmp_path_factory.mktemp("fleet"), api=provider[0])


def team_state(fleet: FleetOnDisk) -> dict[str, Any]:
    """Everything of the team's clone that a fleet command must leave as it was."""
    clone = fleet.team_clone
    git = fleet.workspace.run
    return {
        "status": git("git", "--no-optional-locks", "status", "--porcelain", cwd=clone).stdout,
        "refs": git("git", "for-each-ref", cwd=clone).stdout,
        "index": (clone / ".git" / "index").read_bytes(),
        "index mtime": (clone / ".git" / "index").stat().st_mtime_ns,
        "files": {path: (clone / path).read_text() for path in DIRTY},
    }


@pytest.fixture(scope="module")
def status_run(fleet: FleetOnDisk) -> tuple[dict[str, Any], Path, dict[str, Any]]:
    """`fleet status --json --html`, once; with the team's clone before it ran."""
    before = team_state(fleet)
    page = fleet.root / "fleet.html"
    shown = fleet.workspace.mlopsify(
        "fleet", "status", fleet.fleet_file, "--json", "--html", page, cwd=fleet.root
    )
    return json.loads(shown.stdout), page, before


def assessed(fleet: FleetOnDisk, name: str) -> dict[str, Any]:
    """What `assess` reports for the files the repository was made with."""
    release, provider, _ = REPOSITORIES[name]
    report = assess_repository(fleet.root / release / f"{provider}-service")
    levels = {area.key: area.level for area in report.areas}
    return {"score": report.score, "max_score": report.max_score, "levels": levels}


def test_status_reports_each_repository_exactly(
    fleet: FleetOnDisk, status_run: tuple[dict[str, Any], Path, dict[str, Any]]
) -> None:
    report, _, before = status_run
    by_release: dict[tuple[str, str], dict[str, Any]] = {}
    expected = []
    for name, (release, provider, _) in REPOSITORIES.items():
        if (release, provider) not in by_release:
            by_release[release, provider] = assessed(fleet, name)
        behind = len(RELEASES) - 1 - RELEASES.index(release)
        conflicts = [fleet.conflicts[name]] if name in fleet.conflicts else []
        expected.append(
            {
                "name": name,
                "url": fleet.url(name),
                "branch": "main",
                "release": release,
                "newest": NEWEST,
                "behind": behind,
                "conflicts": conflicts if behind else None,
                "assess": by_release[release, provider],
                "ci_provider": provider,
                "options": fleet.answers[name],
                "uncommitted": sorted(DIRTY) if name == "foxtrot" else None,
                "error": None,
            }
        )
    unreachable = report["repositories"][-1]
    url = fleet.url(UNREACHABLE)
    assert re.fullmatch(
        rf"cannot clone {re.escape(url)} at branch main: unable to access '{re.escape(url)}/': "
        r"Failed to connect to 127\.0\.0\.1 port \d+ after \d+ ms: Couldn't connect to server",
        unreachable["error"],
    ), unreachable["error"]
    expected.append(
        {
            **{key: None for key in expected[0]},
            "name": UNREACHABLE,
            "url": url,
            "branch": "main",
            "error": unreachable["error"],
        }
    )
    assert report == {"schema_version": 1, "releases": RELEASES, "repositories": expected}
    # Three edited repositories conflict, in the file each edited; the newest are up to date.
    assert sorted(fleet.conflicts) == ["charlie", "echo", "hotel"]
    assert team_state(fleet) == before  # the team's clone was only read


def test_status_again_reads_the_cache_and_reports_the_same(
    fleet: FleetOnDisk, status_run: tuple[dict[str, Any], Path, dict[str, Any]]
) -> None:
    report, _, _ = status_run
    again = fleet.workspace.mlopsify("fleet", "status", fleet.fleet_file, "--json", cwd=fleet.root)
    second = json.loads(again.stdout)
    # The unreachable address's message carries git's connection time.
    assert second["repositories"][:-1] == report["repositories"][:-1]
    table = fleet.workspace.mlopsify("fleet", "status", fleet.fleet_file, cwd=fleet.root)
    lines = table.stdout.splitlines()
    assert lines[0] == "repository release   behind ci       assess  update"
    score = "{score}/{max_score}".format(**report["repositories"][2]["assess"])
    assert lines[3] == (
        f"charlie    {RELEASES[0]:<9} {len(RELEASES) - 1:<6} gitlab   {score:<7} "
        f"conflicts in {fleet.conflicts['charlie']}"
    )
    assert lines[6].endswith(f"merges cleanly to {NEWEST} (2 uncommitted files not read)")
    assert lines[10].endswith("up to date")
    assert lines[12].startswith(f"lima       unreadable: cannot clone {fleet.url(UNREACHABLE)}")


@pytest.mark.checkers  # a browser
def test_status_page_shows_the_releases_of_the_fleet(
    fleet: FleetOnDisk,
    status_run: tuple[dict[str, Any], Path, dict[str, Any]],
    tmp_path: Path,
) -> None:
    from PIL import Image

    from mlopsify.fleet_page import STATES

    _, page, _ = status_run
    shot = chromium_screenshot(page.as_uri(), tmp_path / "fleet.png", 1280, 1000)
    image = Image.open(shot).convert("RGB")
    data = image.tobytes()
    pixels = [tuple(data[i : i + 3]) for i in range(0, len(data), 3)]
    counts = {
        state: sum(near(pixel, tuple(bytes.fromhex(colour[1:]))) for pixel in pixels)
        for state, (_, colour) in STATES.items()
    }
    print(f"screenshot: {shot}; pixels per state: {counts}")
    # The tallest bar (three repositories) is 240 px: each repository is 90 x 80 px of its
    # state's colour, plus its square in the table, the legend's square and the tile's border.
    shown = {"current": 2, "clean": 6, "conflicts": 3, "unreadable": 1}
    for state, repositories in shown.items():
        assert 0 < counts[state] - repositories * 90 * 80 < 1500, (state, counts)


def near(pixel: tuple[int, ...], colour: tuple[int, ...]) -> bool:
    """Within a few levels of ``colour`` (colour management rounds)."""
    return sum(abs(a - b) for a, b in zip(pixel, colour, strict=True)) <= 6


def expected_body(fleet: FleetOnDisk, name: str) -> str:
    """The request's text, from the branch as git shows it on the remote."""
    release = REPOSITORIES[name][0]
    listed = fleet.workspace.run(
        "git",
        "--git-dir",
        fleet.remotes[name],
        "diff",
        "--name-status",
        "--no-renames",
        "main",
        BRANCH,
        cwd=fleet.root,
    ).stdout
    kinds = {"A": "added", "M": "modified", "D": "deleted"}
    changes = [
        ("conflict" if path == fleet.conflicts.get(name) else kinds[code], path)
        for code, path in (line.split("\t") for line in listed.splitlines())
    ]
    order = ["conflict", "modified", "added", "deleted"]
    changes.sort(key=lambda change: (order.index(change[0]), change[1]))
    conflicts = [path for status, path in changes if status == "conflict"]
    test = FAILING_TEST if name == "echo" else PASSING_TEST
    return "\n".join(
        [
            f"# Template update {release} -> {NEWEST}",
            "",
            f"- branch: `{BRANCH}`",
            f"- `{test}`: {'FAILED' if name == 'echo' else 'passed'}",
            f"- conflicts: {len(conflicts)}",
            *(f"  - `{path}`: resolve the <<<<<<< markers" for path in conflicts),
            f"- changed files: {len(changes)}",
            *(f"  - {status} `{path}`" for status, path in changes if status != "conflict"),
            "",
            "Review with `git diff` against the target branch; every edit of the team is kept"
            " (docs: mlopsify update).",
            "",
        ]
    )


def test_update_opens_one_request_per_repository_behind_and_a_second_run_none(
    fleet: FleetOnDisk,
    provider: tuple[str, list[dict[str, Any]]],
    status_run: tuple[dict[str, Any], Path, dict[str, Any]],
) -> None:
    _, received = provider
    before = team_state(fleet)
    env = {"MLOPSIFY_FLEET_TOKEN": TOKEN}
    first = fleet.workspace.run(
        MLOPSIFY, "fleet", "update", fleet.fleet_file, cwd=fleet.root, check=False, env=env
    )
    assert first.returncode == 1, first.stderr  # the unreachable repository failed
    lines = first.stdout.splitlines()
    assert lines[-1] == f"{len(BEHIND)} opened, 2 current, 1 failed", first.stdout
    assert len(received) == len(BEHIND)
    by_branch_repository = {}
    for request in received:
        match = re.fullmatch(
            r"/projects/(\w+)/merge_requests|/repos/ml/(\w+)/pulls", request["path"]
        )
        assert match, request["path"]
        by_branch_repository[match[1] or match[2]] = request
    assert sorted(by_branch_repository) == BEHIND
    for name in BEHIND:
        request = by_branch_repository[name]
        title = f"Template update {REPOSITORIES[name][0]} -> {NEWEST}"
        body = expected_body(fleet, name)
        if REPOSITORIES[name][1] == "gitlab":
            assert request["headers"]["private-token"] == TOKEN
            fields = {"source_branch": BRANCH, "target_branch": "main", "description": body}
        else:
            assert request["headers"]["authorization"] == f"Bearer {TOKEN}"
            fields = {"head": BRANCH, "base": "main", "body": body}
        assert request["body"] == {**fields, "title": title}, name
        assert (
            f"{name:<10} opened   {REPOSITORIES[name][0]} -> {NEWEST} on {BRANCH}" in first.stdout
        )
    # The conflicts are committed with their markers, for review; the team's clone is untouched.
    for name, path in fleet.conflicts.items():
        shown = fleet.workspace.run(
            "git", "--git-dir", fleet.remotes[name], "show", f"{BRANCH}:{path}", cwd=fleet.root
        ).stdout
        assert "<<<<<<<" in shown, name
    assert team_state(fleet) == before

    second = fleet.workspace.run(
        MLOPSIFY, "fleet", "update", fleet.fleet_file, cwd=fleet.root, check=False, env=env
    )
    assert second.returncode == 1, second.stderr
    assert second.stdout.splitlines()[-1] == f"{len(BEHIND)} skipped, 2 current, 1 failed"
    assert (
        f"alpha      skipped  {RELEASES[0]} -> {NEWEST} on {BRANCH}, {BRANCH} is already on the remote"
        in second.stdout
    )
    assert len(received) == len(BEHIND)  # nothing new opened
