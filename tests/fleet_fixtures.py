"""A fleet of twelve repositories on this machine, as a platform team would have it.

Each release is rendered once (the first three shipped releases and the newest, read from
the shipped bundle); every repository is a bare git remote cloned from one of them. Three
carry an edit of a line the newest release changes, so that their update conflicts; one is
a team's work tree with uncommitted changes (the fleet file names the clone, not the
remote); one is an address on 127.0.0.1 where nothing listens. Also run by
benchmarks/fleet.py, which times `fleet status` and `fleet update` on it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from template_releases import SHIPPED_BUNDLE, Workspace, release_versions

RELEASES = release_versions(SHIPPED_BUNDLE)
OLD, MIDDLE, RECENT, NEWEST = RELEASES[0], RELEASES[1], RELEASES[2], RELEASES[-1]
# name -> (release, ci_provider, how it differs from the rendered project)
REPOSITORIES = {
    "alpha": (OLD, "gitlab", ""),
    "bravo": (OLD, "gitlab", ""),
    "charlie": (OLD, "gitlab", "conflict"),
    "delta": (MIDDLE, "gitlab", ""),
    "echo": (MIDDLE, "gitlab", "conflict"),
    "foxtrot": (MIDDLE, "gitlab", "team clone"),
    "golf": (RECENT, "github", ""),
    "hotel": (RECENT, "github", "conflict"),
    "india": (RECENT, "github", ""),
    "juliet": (NEWEST, "gitlab", ""),
    "kilo": (NEWEST, "github", ""),
}
UNREACHABLE = "lima"
PASSING_TEST = "test -f .copier-answers.yml"
FAILING_TEST = "exit 3"  # echo's tests fail: its request says so
DIRTY = {"README.md": "a line the team is still writing\n", "scratch-notes.txt": "todo\n"}


@dataclass
class FleetOnDisk:
    root: Path
    workspace: Workspace
    fleet_file: Path
    remotes: dict[str, Path] = field(default_factory=dict)
    team_clone: Path = Path()
    unreachable_url: str = ""
    conflicts: dict[str, str] = field(default_factory=dict)  # name -> the file that conflicts
    answers: dict[str, dict[str, object]] = field(default_factory=dict)

    def url(self, name: str) -> str:
        if name == UNREACHABLE:
            return self.unreachable_url
        return str(self.team_clone if name == "foxtrot" else self.remotes[name])


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def build_fleet(
    root: Path, *, api: str = "http://127.0.0.1:9", own_names: bool = False
) -> FleetOnDisk:
    """The fleet in ``root``; with ``own_names`` every repository is rendered on its own, with
    its name as the project name (as in a real fleet), else repositories of one release and
    CI provider are clones of one render."""
    workspace = Workspace(root, SHIPPED_BUNDLE)
    fleet = FleetOnDisk(root, workspace, root / "fleet.yml")
    rendered: dict[tuple[str, str, str], Path] = {}
    for name, (release, provider, _) in REPOSITORIES.items():
        key = (release, provider, name if own_names else "")
        if key not in rendered:
            rendered[key] = workspace.new_project_at(
                release, name if own_names else f"{provider}-service", {"ci_provider": provider}
            )
    remotes = root / "remotes"
    for name, (release, provider, edit) in REPOSITORIES.items():
        project = rendered[release, provider, name if own_names else ""]
        remote = remotes / f"{name}.git"
        workspace.run("git", "clone", "--quiet", "--bare", project, remote, cwd=root)
        fleet.remotes[name] = remote
        answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
        fleet.answers[name] = {k: v for k, v in answers.items() if not k.startswith("_")}
        if edit == "conflict":
            fleet.conflicts[name] = conflicting_edit(workspace, project, release, remote, name)
    fleet.team_clone = root / "team" / "foxtrot"
    workspace.run("git", "clone", "--quiet", fleet.remotes["foxtrot"], fleet.team_clone, cwd=root)
    for path, text in DIRTY.items():
        with (fleet.team_clone / path).open("a") as file:
            file.write(text)
    fleet.unreachable_url = f"http://127.0.0.1:{closed_port()}/ml/{UNREACHABLE}.git"
    entries: list[dict[str, str]] = []
    for name in [*REPOSITORIES, UNREACHABLE]:
        entry = {"url": fleet.url(name)}
        if name == "foxtrot":
            entry["name"] = name
        if name == "echo":
            entry["test"] = FAILING_TEST
        if name in REPOSITORIES and REPOSITORIES[name][1] == "github":
            entry["project"] = f"ml/{name}"
        entries.append(entry)
    document = {"test": PASSING_TEST, "api": api, "repositories": entries}
    fleet.fleet_file.write_text(yaml.safe_dump(document, sort_keys=False))
    return fleet


def conflicting_edit(
    workspace: Workspace, project: Path, release: str, remote: Path, name: str
) -> str:
    """Change, on the remote, a line of ``project`` that the newest release also changes."""
    path, line = workspace.changed_template_line(project, release)
    work = workspace.root / "edits" / name
    workspace.run("git", "clone", "--quiet", remote, work, cwd=workspace.root)
    text = (work / path).read_text()
    (work / path).write_text(text.replace(line, f"{line}  # {name}'s own change", 1))
    workspace.commit(work, f"{name}: our own change to {path}")
    workspace.run("git", "push", "--quiet", "origin", "main", cwd=work)
    return path
