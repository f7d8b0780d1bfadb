"""``fleet status``: where each repository of a fleet stands, read in scratch clones.

For each repository, in parallel worker processes: a clone of its default branch in a
temporary directory (a local work tree is only read: ``git status`` without its optional
index refresh), then the release its answers file records, how many releases behind the
newest it is, an ``update --pretend`` (the files that would conflict), ``assess`` and the
options it was made with. A repository that cannot be read reports why; the others still
report. The clone is removed; nothing is written anywhere else.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import queue
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import _git
from .errors import MlopsifyError, RepositoryStateError, TemplateVersionError
from .fleet import Fleet, FleetRepository

SCHEMA_VERSION = 1
# A clone that takes longer than this is reported as unreadable rather than holding the fleet.
CLONE_TIMEOUT = 300
# `git describe` form of an untagged template commit: the release is the tag before it.
_DESCRIBED = re.compile(r"^(?P<tag>.+)-\d+-g[0-9a-f]{4,40}$")


@dataclass
class RepositoryStatus:
    """What ``fleet status`` reports for one repository (its JSON form is :func:`asdict`)."""

    name: str
    url: str
    branch: str
    release: str | None = None  # the template release it is on (_commit)
    newest: str | None = None  # the newest release of its template
    behind: int | None = None  # releases between the two
    conflicts: list[str] | None = None  # files an update would conflict in; None: up to date
    assess: dict[str, Any] | None = None  # score, max_score, and each area's level
    ci_provider: str | None = None
    options: dict[str, Any] | None = None  # the answers it was made with
    uncommitted: list[str] | None = None  # a local work tree's uncommitted files (not read)
    error: str | None = None  # why it could not be read

    @property
    def state(self) -> str:
        """unreadable, current, clean (an update merges cleanly) or conflicts."""
        if self.error is not None:
            return "unreadable"
        if not self.behind:
            return "current"
        return "conflicts" if self.conflicts else "clean"


@dataclass
class FleetStatus:
    releases: list[str]  # the shipped template's releases, oldest first
    repositories: list[RepositoryStatus] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "releases": self.releases,
            "repositories": [asdict(status) for status in self.repositories],
        }


def fleet_status(
    fleet: Fleet,
    *,
    jobs: int = 2,
    fresh: bool = False,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> FleetStatus:
    """The status of every repository of ``fleet``, in the fleet file's order; ``fresh``
    reads each again rather than from the cache of earlier runs."""
    from .template import template_for
    from .template_source import TemplateSource

    releases = template_for(TemplateSource.shipped()).versions
    work = "status-fresh" if fresh else "status"
    statuses = in_parallel(work, fleet.repositories, jobs=jobs, on_done=on_done)
    return FleetStatus(releases, [RepositoryStatus(**status) for status in statuses])


def in_parallel(
    work: str,
    repositories: list[FleetRepository],
    *,
    jobs: int,
    on_done: Callable[[dict[str, Any]], None] | None,
) -> list[dict[str, Any]]:
    """``work`` (status, status-fresh or update: :mod:`.fleet_worker`) for each repository, at
    most ``jobs`` at a time; their JSON results, in order.

    ``jobs`` worker processes, each taking the next repository as it finishes one, so each
    pays the imports once. Processes, not threads: Copier reads git's URL mapping from a
    process-wide environment. Each gets a Copier mirror cache of its own (Copier prunes the
    worktrees of its shared cache at each run, including those another process renders
    from), and git with its optional locks off (``git status`` would refresh the index of a
    clone it only reads).
    """
    from concurrent.futures import ThreadPoolExecutor

    waiting: queue.SimpleQueue[tuple[int, FleetRepository]] = queue.SimpleQueue()
    for item in enumerate(repositories):
        waiting.put(item)
    results: dict[int, dict[str, Any]] = {}

    def done(index: int, result: dict[str, Any]) -> None:
        results[index] = result
        if on_done is not None:
            on_done(result)

    with tempfile.TemporaryDirectory(prefix="mlopsify-fleet-caches-") as caches:
        env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
        wheel = runtime_wheel(Path(caches)) if work == "update" else None
        if wheel is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(wheel), env.get("PYTHONPATH")]))
        workers = max(1, min(jobs, len(repositories)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            running = [
                pool.submit(
                    _run_worker, work, waiting, env, Path(caches) / f"worker-{number}", done
                )
                for number in range(workers)
            ]
            for future in running:
                future.result()
    return [results[i] for i in range(len(repositories))]


def _run_worker(
    work: str,
    waiting: queue.SimpleQueue[tuple[int, FleetRepository]],
    env: dict[str, str],
    cache: Path,
    done: Callable[[int, dict[str, Any]], None],
) -> None:
    """One worker process: give it repositories from ``waiting`` one at a time until none is left."""
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(
            [sys.executable, "-m", "mlopsify.fleet_worker", work],
            env={**env, "COPIER_CACHE_DIR": str(cache)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        ) as worker,
    ):
        assert worker.stdin is not None and worker.stdout is not None
        while True:
            try:
                index, repository = waiting.get_nowait()
            except queue.Empty:
                break
            worker.stdin.write(json.dumps(asdict(repository)) + "\n")
            worker.stdin.flush()
            answer = worker.stdout.readline()
            if not answer:  # a bug: its traceback
                worker.wait()
                errors.seek(0)
                raise RuntimeError(
                    f"fleet {work} of {repository.name} failed:\n{errors.read().decode(errors='replace')}"
                )
            done(index, json.loads(answer))
        worker.stdin.close()


def runtime_wheel(directory: Path) -> Path | None:
    """The runtime library for a worker's path, when this Python cannot import it: the wheel
    of the newest release in the shipped template history, written into ``directory``.

    mlopsify does not depend on the runtime (it is not published on an index); every template
    release carries it in ``template/vendor/``, as the projects' ``make template-update`` job
    runs it, from the wheel on ``PYTHONPATH``.
    """
    import importlib.util

    from .template import template_for
    from .template_source import TemplateSource

    if importlib.util.find_spec("mlopsify_runtime") is not None:
        return None
    source = TemplateSource.shipped()
    tag = template_for(source).newest()
    history = directory / "history.git"
    _git.git("init", "--quiet", "--bare", str(history), cwd=directory)
    _git.git("fetch", "--quiet", source.location, f"refs/tags/{tag}:refs/tags/{tag}", cwd=history)
    try:
        listed = _git.git("ls-tree", "--name-only", f"{tag}:template/vendor", cwd=history).split()
        name = next(name for name in listed if name.startswith("mlopsify_runtime-"))
    except (subprocess.CalledProcessError, StopIteration):
        raise TemplateVersionError(
            f"template {tag} carries no runtime library (template/vendor/mlopsify_runtime-*.whl),"
            " which fleet update runs: install mlopsify-runtime beside mlopsify"
        ) from None
    wheel = directory / name
    wheel.write_bytes(
        subprocess.run(
            ["git", "cat-file", "blob", f"{tag}:template/vendor/{name}"],
            cwd=history,
            capture_output=True,
            check=True,
        ).stdout
    )
    return wheel


def repository_status(repository: FleetRepository, *, fresh: bool = False) -> RepositoryStatus:
    """Read one repository in a scratch clone; an unreadable one says why.

    What a commit's files give (all but the work tree's state) is kept in a cache under the
    files' git tree id: the same files, the same template history and the same mlopsify give
    the same report, so a repository that did not change since the last run is only cloned.
    ``fresh`` reads every repository again.
    """
    status = RepositoryStatus(repository.name, repository.url, repository.branch)
    try:
        status.uncommitted = uncommitted_files(repository)
        with fleet_clone(repository, depth=1) as clone:
            cache = _cache_file(clone)
            if not fresh and cache.is_file():
                for key, value in json.loads(cache.read_text(encoding="utf-8")).items():
                    setattr(status, key, value)
                return status
            _read_into(status, clone)
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({key: getattr(status, key) for key in _CACHED}))
    except MlopsifyError as error:
        status.error = str(error)
    except subprocess.CalledProcessError as error:
        status.error = git_failure(error)
    return status


def git_failure(error: subprocess.CalledProcessError) -> str:
    """A git command that failed on one repository, as a line of its report."""
    command = shlex.join(str(part) for part in error.cmd)
    return without_credentials(f"{command} failed: {_reason(str(error.stderr or ''))}")


def without_credentials(text: str) -> str:
    """``text`` with the user and password of any URL in it removed (a push URL may carry a token)."""
    return re.sub(r"//[^@/\s]+@", "//", text)


# What the commit's files alone decide, and so what the cache keeps.
_CACHED = ("release", "newest", "behind", "conflicts", "assess", "ci_provider", "options")


def _cache_file(clone: Path) -> Path:
    """Where the report of the clone's files is kept: by mlopsify's version, the template
    history's tags and commits, and the files' tree id."""
    from ._version import __version__
    from .template_source import TemplateSource

    tree = _git.git("rev-parse", "HEAD^{tree}", cwd=clone)
    history = _history_digest(TemplateSource.shipped().location)
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return home / "mlopsify" / "fleet" / f"{__version__}-{history}" / f"{tree}.json"


@functools.cache
def _history_digest(location: str) -> str:
    """The template history's tags and commits, as a short digest (read once per process)."""
    tags = _git.git("ls-remote", "--tags", location, cwd=Path(tempfile.gettempdir()))
    return hashlib.sha256(tags.encode()).hexdigest()[:16]


def _read_into(status: RepositoryStatus, clone: Path) -> None:
    from .answers import read_project_answers
    from .assessment import assess_repository
    from .errors import UpdateConflictError
    from .template import template_for
    from .updating import source_for, update_project

    answers = read_project_answers(clone)
    status.release = str(answers["_commit"])
    status.ci_provider = answers.get("ci_provider")
    status.options = {key: value for key, value in answers.items() if not key.startswith("_")}
    template = template_for(source_for(answers, None))
    status.newest = template.newest()
    status.behind = releases_behind(template.versions, status.release)
    if status.behind:
        try:
            update_project(clone, pretend=True)
            status.conflicts = []
        except UpdateConflictError as error:
            status.conflicts = sorted(error.conflicted)
    report = assess_repository(clone)
    status.assess = {
        "score": report.score,
        "max_score": report.max_score,
        "levels": {area.key: area.level for area in report.areas},
    }


def releases_behind(versions: list[str], release: str) -> int:
    """How many of ``versions`` are newer than ``release`` (an untagged commit counts from its tag)."""
    described = _DESCRIBED.match(release)
    tag = described["tag"] if described and release not in versions else release
    if tag not in versions:
        raise RepositoryStateError(
            f"the project is on template {release}, which is not in the release history"
            f" ({', '.join(versions)}): install the mlopsify that ships it"
        )
    return len(versions) - 1 - versions.index(tag)


def uncommitted_files(repository: FleetRepository) -> list[str] | None:
    """The uncommitted files of a local work tree (None for a remote or a bare repository).

    Read in a worker of :func:`in_parallel`, where git's optional locks are off: not even the
    index's cached file times change.
    """
    path = Path(repository.url)
    if not repository.is_local or not (path / ".git").exists():
        return None
    return [entry for _, entry in _git.status_entries(path, "--untracked-files=all")]


@contextmanager
def fleet_clone(repository: FleetRepository, *, depth: int | None = None) -> Iterator[Path]:
    """A clone of the repository's default branch in a temporary directory, removed after;
    only its last ``depth`` commits when given."""
    with tempfile.TemporaryDirectory(prefix="mlopsify-fleet-") as scratch:
        clone = Path(scratch) / repository.name
        try:
            subprocess.run(
                [
                    "git",
                    "clone",
                    "--quiet",
                    "--single-branch",
                    *(["--depth", str(depth)] if depth else []),
                    # A local repository's objects are copied, not hard-linked: not even their
                    # link counts change.
                    *(["--no-hardlinks"] if repository.is_local else []),
                    "--branch",
                    repository.branch,
                    # --depth is ignored for a local path unless it is a file:// URL.
                    f"file://{repository.url}" if depth and repository.is_local else repository.url,
                    str(clone),
                ],
                # Never wait for a password on a terminal: a repository git cannot reach is reported.
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
                capture_output=True,
                text=True,
                check=True,
                timeout=CLONE_TIMEOUT,
            )
        except subprocess.CalledProcessError as error:
            raise RepositoryStateError(
                without_credentials(
                    f"cannot clone {repository.url} at branch {repository.branch}: {_reason(error.stderr)}"
                )
            ) from None
        except subprocess.TimeoutExpired:
            raise RepositoryStateError(
                f"cannot clone {repository.url}: no answer in {CLONE_TIMEOUT} s"
            ) from None
        yield clone


def _reason(stderr: str) -> str:
    """Git's last ``fatal:`` line, without the prefix."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith("fatal: ")] or lines or ["git failed"]
    return fatal[-1].removeprefix("fatal: ")


def status_table(status: FleetStatus) -> list[str]:
    """The report as text lines, one repository a line."""
    width = max([10, *(len(repository.name) for repository in status.repositories)])
    lines = [f"{'repository':<{width}} {'release':<9} {'behind':<6} {'ci':<8} {'assess':<7} update"]
    for repository in status.repositories:
        if repository.error is not None:
            lines.append(f"{repository.name:<{width}} unreadable: {repository.error}")
            continue
        if repository.conflicts is None:
            update = "up to date"
        elif repository.conflicts:
            update = f"conflicts in {', '.join(repository.conflicts)}"
        else:
            update = f"merges cleanly to {repository.newest}"
        assessed = repository.assess or {}
        score = f"{assessed.get('score')}/{assessed.get('max_score')}"
        note = (
            f" ({len(repository.uncommitted)} uncommitted files not read)"
            if repository.uncommitted
            else ""
        )
        lines.append(
            f"{repository.name:<{width}} {repository.release:<9} {repository.behind!s:<6} "
            f"{repository.ci_provider or '-':<8} {score:<7} {update}{note}"
        )
    return lines
