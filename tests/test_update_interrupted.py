"""`mlopsify update` killed or interrupted at many points: a project is never half updated.

A real ``mlopsify update`` process runs on a project that ``mlopsify new`` made from release
v1 of a tiny template (tests/template_repos.py, shipped as a bundle as the wheel ships the
real one) and that its team then changed and committed; the newer mlopsify ships v2. The
test stops the process with SIGKILL, or with SIGINT sent to its process group as Ctrl-C in
a terminal does, at delays spread over one measured uninterrupted run and at the moments
its scratch clone, its journal and the finished journal appear on disk. After each stop it
waits for the lock that the command (and the helper that writes the update) holds, then
asserts that the project is exactly as committed (template v1) or exactly what the
uninterrupted update makes (template v2 with the team's edits merged), that a Ctrl-C said
which in one line (exit 130), and that a second ``mlopsify update`` completes or prints the
line that says what to do. The last test does the same, at two points, on the real shipped
template.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from template_releases import SHIPPED_BUNDLE, Workspace, release_versions
from template_repos import V1, V2, V2_REMOVED, TemplateRepo, git
from typer.testing import CliRunner

from mlopsify import RepositoryStateError, TemplateSource, new_project
from mlopsify.applying import scratch_clone, write_journal
from mlopsify.cli import app
from mlopsify.rendering import update_template
from mlopsify.template_source import CANONICAL_URL
from mlopsify.updating import update_project

runner = CliRunner()

MLOPSIFY = Path(sys.executable).parent / "mlopsify"
TEAM_LINE = "# Team: run `make setup` once after cloning.\n"
TEAM_TARGET = "\n# Team: our own target.\nreport:\n\techo report\n"


@dataclass(frozen=True)
class State:
    """What a project holds: every file outside .git, `git status`, and the index's stages."""

    files: dict[str, bytes]
    status: str
    stages: str

    @property
    def release(self) -> str:
        return str(yaml.safe_load(self.files[".copier-answers.yml"])["_commit"])


def state(project: Path) -> State:
    files = {
        path.relative_to(project).as_posix(): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }
    status = git("status", "--porcelain", "--untracked-files=all", cwd=project)
    return State(files, status, git("ls-files", "--stage", cwd=project))


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


@dataclass
class Setting:
    """Where a module's runs happen: their environment and the team's committed project."""

    root: Path
    env: dict[str, str]
    base: Path
    has_team_edits: Callable[[dict[str, bytes]], bool]

    def copy(self, name: str) -> Path:
        target = self.root / "points" / name
        shutil.copytree(self.base, target, symlinks=True)
        return target

    def run(self, project: Path) -> Outcome:
        done = subprocess.run(
            [MLOPSIFY, "update", str(project)],
            env={**self.env, "COPIER_CACHE_DIR": own_copier_cache(project)},
            cwd=project,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)

    def stopped_run(
        self, project: Path, sig: signal.Signals, when: Callable[[float], bool], *, tmpdir: Path
    ) -> Outcome:
        """Start ``mlopsify update`` and send ``sig`` to its process group once ``when(seconds
        since it took its lock)`` holds; the run ends by itself if it finishes first."""
        lock = project / ".git" / "mlopsify.lock"
        process = subprocess.Popen(
            [MLOPSIFY, "update", str(project)],
            env={**self.env, "TMPDIR": str(tmpdir), "COPIER_CACHE_DIR": own_copier_cache(project)},
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own group, as a terminal's foreground job
        )
        locked_at: float | None = None
        while process.poll() is None:
            if locked_at is None and lock.exists():
                locked_at = time.monotonic()
            if locked_at is not None and when(time.monotonic() - locked_at):
                with contextlib.suppress(ProcessLookupError):  # it finished in between
                    os.killpg(process.pid, sig)
                break
            time.sleep(0.0005)
        stdout, stderr = process.communicate(timeout=300)
        wait_for_writer(project)
        return Outcome(process.returncode, stdout, stderr)


def own_copier_cache(project: Path) -> str:
    """A Copier cache for one run: a kill mid-clone breaks Copier's shared cache for every
    later run (the last test shows the line that says so), which is Copier's, not the update's."""
    return tempfile.mkdtemp(prefix="copier-cache-", dir=project.parent)


def wait_for_writer(project: Path) -> None:
    """Wait until no process holds the project's update lock (the helper may still be writing)."""
    lock = project / ".git" / "mlopsify.lock"
    if not lock.exists():
        return
    with lock.open() as held:
        deadline = time.monotonic() + 30
        while True:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the update's helper never finished"
                time.sleep(0.01)
        fcntl.flock(held, fcntl.LOCK_UN)


def settle_env(root: Path, bundle: Path) -> dict[str, str]:
    home = root / "home"
    home.mkdir(parents=True)
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n"
    )
    return {
        **os.environ,
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "MLOPSIFY_TEMPLATE_BUNDLE": str(bundle),
        "COPIER_CACHE_DIR": str(root / "copier-cache"),
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Setting:
    """A team project made by `mlopsify new` from v1, edited and committed; v2 is shipped."""
    root = tmp_path_factory.mktemp("interrupted")
    repo = TemplateRepo(root / "template")
    repo.release("v1", V1)
    old_bundle = repo.bundle(root / "v1.bundle")
    repo.release("v2", V2, removed=V2_REMOVED)
    env = settle_env(root, repo.bundle(root / "v2.bundle"))
    base = root / "team-project"
    made = subprocess.run(
        [MLOPSIFY, "new", str(base), "--defaults"],
        env={**env, "MLOPSIFY_TEMPLATE_BUNDLE": str(old_bundle)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    edit_as_the_team(base)
    return Setting(root, env, base, has_team_edits)


def edit_as_the_team(project: Path) -> None:
    """Edits that merge with v2: the Makefile's top (v2 adds a target at its end), a key of
    settings.cfg far from the one v2 changes, a doc v2 leaves alone, and a new module."""
    makefile = project / "Makefile"
    makefile.write_text(TEAM_LINE + makefile.read_text())
    settings = project / "settings.cfg"
    settings.write_text(settings.read_text().replace("key19 = 19\n", "key19 = ours\n"))
    (project / "docs" / "guide.md").write_text("# Guide\n\nStep one.\nStep two, our way.\n")
    (project / "src").mkdir()
    (project / "src" / "model.py").write_text("WEIGHTS = [1, 2, 3]\n")
    git("add", "--all", cwd=project)
    git("commit", "--quiet", "-m", "Our changes", cwd=project)


def has_team_edits(files: dict[str, bytes]) -> bool:
    return (
        files["Makefile"].decode().startswith(TEAM_LINE)
        and b"key19 = ours\n" in files["settings.cfg"]
        and files["docs/guide.md"] == b"# Guide\n\nStep one.\nStep two, our way.\n"
        and files["src/model.py"] == b"WEIGHTS = [1, 2, 3]\n"
    )


def not_committed_line(project: Path, release: str) -> str:
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    changed = [line[3:] for line in status.splitlines()]
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return (
        f"error: {project} holds an update to template {release} that is not committed yet ({shown}): "
        "review it with `git diff` and commit it, or drop it with "
        "`git reset --hard && git clean -fd`; nothing was written\n"
    )


@dataclass
class Reference:
    old: State
    new: State
    stdout: str
    seconds: float

    def printed(self, project: Path) -> str:
        return self.stdout.replace("{project}", str(project))


def measure(setting: Setting) -> Reference:
    """One uninterrupted update: the state it makes, what it prints, and how long it takes."""
    project = setting.copy("reference")
    old = state(project)
    started = time.monotonic()
    outcome = setting.run(project)
    seconds = time.monotonic() - started
    assert outcome.code == 0, outcome.stderr
    new = state(project)
    assert setting.has_team_edits(old.files) and setting.has_team_edits(new.files)
    assert old.status == "" and new.status != ""
    # The command names the project: keep a placeholder for each copy's path.
    return Reference(old, new, outcome.stdout.replace(str(project), "{project}"), seconds)


@pytest.fixture(scope="module")
def reference(tiny: Setting) -> Reference:
    measured = measure(tiny)
    assert (measured.old.release, measured.new.release) == ("v1", "v2")
    assert measured.new.files["Makefile"].decode() == TEAM_LINE + V2["template/Makefile"]
    return measured


def check_point(
    tiny: Setting, reference: Reference, project: Path, sig: signal.Signals, outcome: Outcome
) -> str:
    """Assert the invariant after one stop and that a second update finishes; return which state."""
    after = state(project)
    assert tiny.has_team_edits(after.files), f"the team's edits are gone: {outcome}"
    journal = project / ".git" / "mlopsify-update"
    if after == reference.old:
        assert after.release == reference.old.release
        if sig == signal.SIGINT:
            assert (outcome.code, outcome.stdout) == (130, ""), outcome
            assert outcome.stderr == (
                f"error: interrupted: {project} was left as it was (nothing was written)\n"
            )
        # Killed after the journal was complete, before its helper ran (or with the helper
        # between its fork and its own session): the next run rolls the journal back.
        leftover = journal.exists()
        again = tiny.run(project)
        assert (again.code, again.stdout) == (0, reference.printed(project)), again
        if leftover:
            old, new = reference.old.files, reference.new.files
            touched = {path for path in old.keys() | new.keys() if old.get(path) != new.get(path)}
            head = git("rev-parse", "HEAD", cwd=project)[:7]
            assert again.stderr == (
                f"note: an earlier update of {project} to {reference.new.release} was interrupted "
                f"while writing its files: mlopsify put back the {len(touched)} files it touched, "
                f"as they were at template {reference.old.release} (commit {head})\n"
            )
        else:
            assert again.stderr == ""
        assert state(project) == reference.new
        which = "old"
    else:
        assert after == reference.new, f"neither the old nor the new project: {outcome}"
        assert after.release == reference.new.release
        if sig == signal.SIGINT and outcome.code == 130:
            assert outcome.stderr == (
                f"error: interrupted after the update was written into {project}: "
                "review it with `git diff`, then commit\n"
            )
        elif sig == signal.SIGINT:
            assert (outcome.code, outcome.stdout) == (0, reference.printed(project)), outcome
        again = tiny.run(project)
        assert (again.code, again.stdout) == (5, ""), again
        assert again.stderr == not_committed_line(project, reference.new.release)
        assert state(project) == reference.new
        which = "new"
    assert not journal.exists() and not (project / ".git" / "mlopsify-update.new").exists()
    return which


def appeared(path: Path, pattern: str) -> Callable[[float], bool]:
    """A stop condition: a file matching ``pattern`` exists under ``path``."""
    return lambda _seconds: any(path.glob(pattern))


def after(seconds: float) -> Callable[[float], bool]:
    return lambda elapsed: elapsed >= seconds


def stop_and_check(
    tiny: Setting, reference: Reference, sig: signal.Signals, number: int, point: str
) -> str:
    project = tiny.copy(f"{sig.name}-{number}")
    scratch = project.parent / f"{project.name}-tmp"
    scratch.mkdir()
    conditions = {
        # The merge's scratch clone exists; its journal is being written; it is complete.
        "scratch clone made": appeared(scratch, "mlopsify-update-*/*/.git/HEAD"),
        "journal being written": appeared(project / ".git", "mlopsify-update.new"),
        "journal complete": appeared(project / ".git", "mlopsify-update"),
    }
    if point in conditions:
        condition = conditions[point]
    else:
        condition = after(float(point) * reference.seconds)
    outcome = tiny.stopped_run(project, sig, condition, tmpdir=scratch)
    return check_point(tiny, reference, project, sig, outcome)


# Fractions of one measured uninterrupted run (counted from when it takes its lock), and the
# moments around the one step that writes the update.
# Past the measured run too (1.5, 3): two runs at a time are slower than the one measured, and
# the late points still reach the step that writes the update, or find the run complete.
POINTS = [
    *("0", "0.15", "0.3", "0.45", "0.6", "0.75", "0.9", "1.5", "3"),
    *("scratch clone made", "journal being written", "journal complete"),
]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_an_update_stopped_at_any_point_leaves_the_old_or_the_whole_new_project(
    tiny: Setting, reference: Reference, sig: signal.Signals
):
    # Two at a time: each run waits on git and Copier as much as it computes.
    with ThreadPoolExecutor(max_workers=2) as pool:
        seen = list(
            pool.map(lambda item: stop_and_check(tiny, reference, sig, *item), enumerate(POINTS))
        )
    # The points reach both sides of the one step that writes the update.
    assert {"old", "new"} <= set(seen), dict(zip(POINTS, seen, strict=True))


def test_an_update_of_the_shipped_template_stopped_at_two_points(tmp_path: Path):
    """The real template: the previous shipped release, a parameter changed by its team (one
    the newest release does not touch, so the merge is clean: 0.4.0 rewrote the Makefile's end)."""
    previous = release_versions(SHIPPED_BUNDLE)[-2]
    workspace = Workspace(tmp_path, SHIPPED_BUNDLE)
    base = workspace.new_project_at(previous, "credit-risk", {})
    params = base / "params.yaml"
    assert "max_iter: 1000" in params.read_text()
    params.write_text(params.read_text().replace("max_iter: 1000", "max_iter: 2500"))
    workspace.commit(base, "Our iteration budget")

    def has_target(files: dict[str, bytes]) -> bool:
        return "max_iter: 2500" in files["params.yaml"].decode()

    env = {**os.environ, **workspace.env, "COPIER_CACHE_DIR": str(tmp_path / "copier-cache")}
    setting = Setting(tmp_path, env, base, has_target)
    measured = measure(setting)
    assert measured.old.release == previous
    assert measured.new.release == release_versions(SHIPPED_BUNDLE)[-1]
    # Killed once its journal is complete: the helper writes the update (or, killed before the
    # helper started, the next run rolls the journal back). Ctrl-C halfway: still merging.
    stop_and_check(setting, measured, signal.SIGKILL, 0, "journal complete")
    assert stop_and_check(setting, measured, signal.SIGINT, 1, "0.5") == "old"


# ------------------------------------------------- a journal left behind (the machine stopped)


@pytest.fixture
def half_written(tmp_path: Path) -> tuple[Path, Path]:
    """A team project whose update stopped with one file of its journal written, as a machine
    that stops mid-write leaves it: the journal is made by the real code from a real merge."""
    repo = TemplateRepo(tmp_path / "template")
    repo.release("v1", V1)
    repo.release("v2", V2, removed=V2_REMOVED)
    source = TemplateSource.at(repo.path)
    project = new_project(tmp_path / "team-project", defaults=True, template=source, vcs_ref="v1")
    edit_as_the_team(project)
    journal = project / ".git" / "mlopsify-update"
    with scratch_clone(project) as clone:
        update_template(clone, source, vcs_ref="v2", data={}, conflict="inline", trusted=True)
        write_journal(journal, clone, project, from_version="v1", to_version="v2")
    (journal / "new" / "Makefile").replace(project / "Makefile")
    assert (project / "Makefile").read_text() == TEAM_LINE + V2["template/Makefile"]
    return project, journal


def test_the_next_update_rolls_back_a_half_written_one_then_updates(half_written):
    project, journal = half_written
    head = git("rev-parse", "HEAD", cwd=project)
    result = runner.invoke(app, ["update", str(project)])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"note: an earlier update of {project} to v2 was interrupted while writing its files: "
        f"mlopsify put back the 7 files it touched, as they were at template v1 (commit {head[:7]})\n"
    )
    assert result.stdout.splitlines()[0] == f"Updated {project} from v1 to v2: 7 files changed"
    assert not journal.exists()
    assert (project / "Makefile").read_text() == TEAM_LINE + V2["template/Makefile"]
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v2"


def test_a_file_changed_after_the_interruption_is_never_overwritten(half_written):
    project, journal = half_written
    (project / "Makefile").write_text("ours, after the crash\n")
    result = runner.invoke(app, ["update", str(project)])
    assert result.exit_code == 5
    assert result.stderr == (
        f"error: an update of {project} to v2 was interrupted while writing its files, and "
        f"Makefile changed since: {journal} holds the files as they were before the update; "
        f"restore from it what you need, then delete {journal}\n"
    )
    assert (project / "Makefile").read_text() == "ours, after the crash\n"
    assert (journal / "old" / "Makefile").read_text() == TEAM_LINE + V1["template/Makefile"]


def test_a_journal_from_another_commit_is_left_for_a_person(half_written):
    project, journal = half_written
    git("commit", "--quiet", "--all", "-m", "committed half an update", cwd=project)
    head = git("rev-parse", "HEAD", cwd=project)
    result = runner.invoke(app, ["update", str(project)])
    assert result.exit_code == 5
    record = json.loads((journal / "journal.json").read_text())
    assert result.stderr == (
        f"error: an update of {project} to v2 was interrupted while writing its files, and HEAD "
        f"moved since (from {record['head'][:7]} to {head[:7]}): {journal} holds the files as "
        f"they were before the update; restore from it what you need, then delete {journal}\n"
    )


def test_a_copier_cache_broken_by_a_killed_run_says_how_to_repair_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Copier's shared mirror of the canonical URL, with the worktree registration a run
    killed mid-clone leaves behind: every later run fails in `git remote update` (bad
    object). The library may not set COPIER_CACHE_DIR for Copier (it never changes the
    process environment), so it says which directory to delete, in one line."""
    repo = TemplateRepo(tmp_path / "history")
    repo.release("v1", V1)
    old_bundle = repo.bundle(tmp_path / "old.bundle")
    repo.release("v2", V2, removed=V2_REMOVED)
    new_bundle = repo.bundle(tmp_path / "new.bundle")
    project = new_project(
        tmp_path / "p", defaults=True, template=TemplateSource(url=CANONICAL_URL, bundle=old_bundle)
    )
    cache = tmp_path / "copier-cache"
    mirror = cache / f"{hashlib.sha256(CANONICAL_URL.encode()).hexdigest()}.git"
    git("clone", "--quiet", "--mirror", new_bundle, mirror, cwd=tmp_path)
    stale = mirror / "worktrees" / "copier._vcs.clone.killed"
    stale.mkdir(parents=True)
    (stale / "HEAD").write_text("0" * 40 + "\n")
    (stale / "gitdir").write_text(str(tmp_path / "gone" / ".git") + "\n")
    (stale / "commondir").write_text("../..\n")
    with pytest.raises(subprocess.CalledProcessError) as broken:
        git("remote", "update", "--prune", cwd=mirror)
    assert "bad object" in broken.value.stderr
    monkeypatch.setenv("COPIER_CACHE_DIR", str(cache))
    template = TemplateSource(url=CANONICAL_URL, bundle=new_bundle)
    with pytest.raises(RepositoryStateError) as raised:
        update_project(project, template=template)
    assert str(raised.value) == (
        "Copier's cache of the template was left broken by an interrupted run (fatal: bad "
        f"object worktrees/copier._vcs.clone.killed/HEAD): delete {cache}, then run again"
    )
    assert git("status", "--porcelain", cwd=project) == ""
    shutil.rmtree(cache)
    assert update_project(project, template=template).to_version == "v2"
