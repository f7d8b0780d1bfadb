"""Updates that are all or nothing: merged in a scratch clone, moved in by a journaled step.

``update`` and ``add`` merge in a throwaway clone of the project's repository
(:func:`scratch_clone`), where Copier may take seconds, fail, or be killed without touching
the project. What the merge produced (changed, new and removed files, and the index entries
with their conflict stages) is then written to a journal in the git directory
(``.git/mlopsify-update/``): the new files, copies of the files they replace, the index
before and after. The journal is built under another name and renamed into place when
complete, so its presence means "the project's files may be half written".

The writes themselves (one rename a file, the index last) run in a helper process in a
session of its own (``python -m mlopsify.applying JOURNAL``): neither Ctrl-C in the terminal
nor a kill of ``mlopsify`` stops it, so once started the project goes from the old state to
the new within a fraction of a second. The helper removes the journal when done; if a write
fails, it puts every file and the index back from the journal. A journal still present at
the next ``update`` or ``add`` (the machine stopped during those writes) is rolled back
first, and the command says so in one line. A lock on ``.git/mlopsify.lock``, held by the
command and inherited by the helper, keeps two updates of one repository apart and makes
the next run wait for a helper that is still finishing.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from . import _git
from .errors import RepositoryStateError, UpdateInterruptedError
from .repository import check_git_directory

JOURNAL = "mlopsify-update"
LOCK = "mlopsify.lock"
# How long a run waits for another one (or the helper of a killed one) to release the lock.
LOCK_WAIT_SECONDS = 30.0


@dataclass
class UpdateSession:
    """A locked project: where its repository is, and what was recovered on the way in."""

    project: Path
    top: Path
    git_dir: Path
    lock: int
    recovered: str | None = None
    written: bool = field(default=False)

    @property
    def journal(self) -> Path:
        return self.git_dir / JOURNAL

    def apply(self, clone_top: Path, *, from_version: str, to_version: str) -> None:
        """Move what the merge in ``clone_top`` produced into the project, all or nothing."""
        staged = self.git_dir / f"{JOURNAL}.new"
        write_journal(staged, clone_top, self.top, from_version=from_version, to_version=to_version)
        # From the journal's rename to the helper's start a Ctrl-C would leave a journal with
        # nobody applying it: hold it back until the helper runs, then wait for the helper.
        with held_interrupts() as held:
            try:
                staged.rename(self.journal)
                errors = tempfile.TemporaryFile()  # noqa: SIM115 (read after the helper ends)
                helper = _start_helper(self.journal, self.lock, errors)
            except BaseException:
                if self.journal.exists():
                    roll_back(self.journal)
                raise
        interrupted = held.caught
        while True:
            try:
                code = helper.wait()
                break
            except KeyboardInterrupt:
                interrupted = True  # the helper finishes in its own session; wait for it
        errors.seek(0)
        message = errors.read().decode(errors="replace").strip()
        errors.close()
        if code != 0:
            raise RepositoryStateError(
                f"could not write the update into {self.project}: {message or f'exit {code}'}"
            )
        self.written = True
        if interrupted:
            raise KeyboardInterrupt


def _start_helper(journal: Path, lock: int, errors: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start the helper that applies ``journal``, in a session of its own, sharing ``lock``.

    It starts with SIGINT ignored (an ignored signal stays ignored through exec, and Python
    keeps it so), so a Ctrl-C sent to our process group between its fork and its ``setsid``
    cannot stop it either.
    """
    with _sigint_handled_by(signal.SIG_IGN):
        return subprocess.Popen(
            [sys.executable, "-m", "mlopsify.applying", str(journal)],
            start_new_session=True,
            pass_fds=(lock,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )


@dataclass
class HeldInterrupts:
    """Whether a Ctrl-C came while :func:`held_interrupts` held it back."""

    caught: bool = False


@contextmanager
def held_interrupts() -> Iterator[HeldInterrupts]:
    """Record a Ctrl-C instead of raising it, for statements that must run together.

    A signal mask would not do: SIGINT goes to any thread that does not block it, and
    libraries start threads.
    """
    held = HeldInterrupts()

    def hold(_signum: int, _frame: object) -> None:
        held.caught = True

    with _sigint_handled_by(hold):
        yield held


@contextmanager
def _sigint_handled_by(handler: Callable[[int, Any], None] | signal.Handlers) -> Iterator[None]:
    """SIGINT goes to ``handler`` for a while. Only the main thread sets handlers, and
    Python delivers signals to no other, so elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        # None: a handler not set from Python; the interpreter's default raises KeyboardInterrupt.
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)


@contextmanager
def update_session(project: Path) -> Iterator[UpdateSession]:
    """Lock ``project``'s repository, roll back an interrupted update, and turn Ctrl-C into an error.

    A Ctrl-C before the helper starts leaves the project as it was; one after it leaves the
    update written. Either way the command says which, in :class:`UpdateInterruptedError`.
    """
    check_git_directory(
        project,
        kind="project",
        hint="updates merge through git; run `git init` and commit the project first",
    )
    session: UpdateSession | None = None
    try:  # from the first step on: a Ctrl-C as the lock is taken still says what it left
        top = Path(_git.git("rev-parse", "--show-toplevel", cwd=project))
        git_dir = Path(_git.git("rev-parse", "--absolute-git-dir", cwd=project))
        lock = os.open(git_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            session = UpdateSession(project, top, git_dir, lock)
            _acquire(lock, project)
            with held_interrupts() as held:  # a roll-back is short: let it finish
                session.recovered = recover(session)
            if held.caught:
                raise KeyboardInterrupt
            yield session
        finally:
            os.close(lock)
    except KeyboardInterrupt:
        if session is not None and session.written:
            raise UpdateInterruptedError(
                f"interrupted after the update was written into {project}: "
                "review it with `git diff`, then commit"
            ) from None
        raise UpdateInterruptedError(
            f"interrupted: {project} was left as it was (nothing was written)"
        ) from None


def _acquire(lock: int, project: Path) -> None:
    import fcntl

    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise RepositoryStateError(
                    f"another mlopsify update or add is running on {project}: "
                    "let it finish, then run again"
                ) from None
            time.sleep(0.05)


@contextmanager
def scratch_clone(top: Path) -> Iterator[Path]:
    """A throwaway clone of the repository at ``top``, checked out at the project's HEAD."""
    head = _git.git("rev-parse", "HEAD", cwd=top)
    with tempfile.TemporaryDirectory(prefix="mlopsify-update-") as scratch:
        clone = Path(scratch) / top.name
        _git.git("clone", "--quiet", "--no-checkout", str(top), str(clone), cwd=top)
        _git.git("checkout", "--quiet", "--detach", head, cwd=clone)
        yield clone


# ------------------------------------------------------------------ the journal


def write_journal(
    journal: Path, clone: Path, top: Path, *, from_version: str, to_version: str
) -> None:
    """Record in ``journal`` everything that turns ``top`` into the merged ``clone``.

    ``new/`` holds the files to write, ``old/`` the project's files they replace or remove,
    ``index.new`` and ``index.old`` the index after and before; ``journal.json`` lists them.
    """
    shutil.rmtree(journal, ignore_errors=True)
    try:
        journal.mkdir()
        entries = _git.status_entries(clone, "--untracked-files=all", "--ignored", "--no-renames")
        touched = sorted({path for _, path in entries})
        write = [path for path in touched if os.path.lexists(clone / path)]
        delete = [path for path in touched if path not in write]
        existed = [path for path in touched if os.path.lexists(top / path)]
        for path in write:
            _copy(clone / path, journal / "new" / path)
        for path in existed:
            _copy(top / path, journal / "old" / path)
        index = _index_path(top)
        shutil.copyfile(index, journal / "index.old")
        shutil.copyfile(index, journal / "index.new")
        _stage_index(clone, top, journal / "index.new")
        record = {
            "top": str(top),
            "index": str(index),
            "head": _git.git("rev-parse", "HEAD", cwd=top),
            "from": from_version,
            "to": to_version,
            "write": write,
            "delete": delete,
            "existed": existed,
            "new_dirs": _missing_parents(top, write),
            "gone_dirs": [d for d in _missing_parents(clone, delete) if (top / d).is_dir()],
            "digests": {path: _digest(clone / path) for path in write},
        }
        with (journal / "journal.json").open("w", encoding="utf-8") as out:
            json.dump(record, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        shutil.rmtree(journal, ignore_errors=True)
        raise


def _stage_index(clone: Path, top: Path, index: Path) -> None:
    """Give ``index`` (a copy of the project's) the clone's entries for every path it changed.

    The blobs those entries name (merge stages, ``git add``-ed files) are copied into the
    project's object store first; unreachable objects there are harmless if we stop.
    """
    changed = set(
        _git.git("diff", "--cached", "--name-only", "--no-renames", "-z", cwd=clone).split("\0")
    )
    changed |= {
        line.split("\t", 1)[1]
        for line in _git.git("ls-files", "-u", "-z", cwd=clone).split("\0")
        if line
    }
    changed.discard("")
    if not changed:
        return
    stages = [
        line
        for line in _git.git("ls-files", "-s", "-z", cwd=clone).split("\0")
        if line and line.split("\t", 1)[1] in changed
    ]
    blobs = {line.split()[1] for line in stages if not line.startswith("160000")}
    _copy_objects(clone, top, blobs)
    null = "0" * len(_git.git("rev-parse", "HEAD", cwd=top))
    records = [f"0 {null}\t{path}" for path in sorted(changed)] + stages
    subprocess.run(
        ["git", "update-index", "-z", "--index-info"],
        cwd=top,
        env={**os.environ, "GIT_INDEX_FILE": str(index)},
        input="".join(f"{record}\0" for record in records).encode(),
        check=True,
        capture_output=True,
    )


def _copy_objects(clone: Path, top: Path, blobs: set[str]) -> None:
    if not blobs:
        return
    checked = subprocess.run(
        ["git", "cat-file", "--batch-check=%(objectname)"],
        cwd=top,
        input="".join(f"{blob}\n" for blob in sorted(blobs)).encode(),
        check=True,
        capture_output=True,
    ).stdout.decode()
    for line in checked.splitlines():
        if not line.endswith(" missing"):
            continue
        blob = line.split()[0]
        content = subprocess.run(
            ["git", "cat-file", "blob", blob], cwd=clone, check=True, capture_output=True
        ).stdout
        subprocess.run(
            ["git", "hash-object", "-w", "--no-filters", "--stdin"],
            cwd=top,
            input=content,
            check=True,
            capture_output=True,
        )


def _index_path(top: Path) -> Path:
    return top / _git.git("rev-parse", "--git-path", "index", cwd=top)


def _missing_parents(root: Path, paths: list[str]) -> list[str]:
    """Directories above ``paths`` that do not exist under ``root``, deepest first."""
    missing = {
        parent.as_posix()
        for path in paths
        for parent in Path(path).parents
        if parent != Path() and not (root / parent).is_dir()
    }
    return sorted(missing, key=lambda d: (-d.count("/"), d))


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        target.symlink_to(source.readlink())
    else:
        shutil.copy(source, target)


def _digest(path: Path) -> str:
    if path.is_symlink():
        return hashlib.sha256(str(path.readlink()).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def _replace(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` in one rename (a copy first when they are on two file systems)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not target.is_symlink():
        raise IsADirectoryError(errno.EISDIR, "a directory is in the way", str(target))
    try:
        source.replace(target)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        beside = target.with_name(f".{target.name}.mlopsify")
        _copy(source, beside)
        beside.replace(target)


def _remove(path: Path) -> None:
    if os.path.lexists(path):
        path.unlink()


def _read(journal: Path) -> dict[str, Any]:
    with (journal / "journal.json").open(encoding="utf-8") as source:
        record: dict[str, Any] = json.load(source)
    return record


def _finish(journal: Path) -> None:
    """Drop ``journal`` in one rename, then delete it."""
    done = journal.with_name(f"{JOURNAL}.done")
    shutil.rmtree(done, ignore_errors=True)
    journal.rename(done)
    shutil.rmtree(done, ignore_errors=True)


def apply_journal(journal: Path) -> None:
    """Write the journal's files and index into the project; on any failure, put everything back."""
    record = _read(journal)
    top = Path(record["top"])
    try:
        for path in record["delete"]:
            _remove(top / path)
        for directory in record["gone_dirs"]:
            with suppress(OSError):  # something else lives there: keep it
                (top / directory).rmdir()
        for path in record["write"]:
            _replace(journal / "new" / path, top / path)
        _replace(journal / "index.new", Path(record["index"]))
    except BaseException:
        roll_back(journal)
        raise
    _finish(journal)


def roll_back(journal: Path) -> None:
    """Put back every file the journal names and the index as they were; drop the journal."""
    record = _read(journal)
    top = Path(record["top"])
    existed = set(record["existed"])
    for path in record["write"] + record["delete"]:
        if path in existed:
            _remove(top / path)
            _replace_copy(journal / "old" / path, top / path)
        else:
            _remove(top / path)
    for directory in record["new_dirs"]:
        with suppress(OSError):  # something else lives there: keep it
            (top / directory).rmdir()
    _replace_copy(journal / "index.old", Path(record["index"]))
    _finish(journal)


def _replace_copy(source: Path, target: Path) -> None:
    """Put a copy of ``source`` at ``target`` (the journal keeps it, so a roll-back can repeat)."""
    beside = target.with_name(f".{target.name}.mlopsify")
    _remove(beside)
    _copy(source, beside)
    beside.replace(target)


def recover(session: UpdateSession) -> str | None:
    """Roll back an update whose writes were cut short; the line that says so, or None."""
    for leftover in (f"{JOURNAL}.new", f"{JOURNAL}.done"):
        shutil.rmtree(session.git_dir / leftover, ignore_errors=True)  # never applied / applied
    journal = session.journal
    if not journal.is_dir():
        return None
    record = _read(journal)
    top = Path(record["top"])
    head = _git.git("rev-parse", "HEAD", cwd=top)
    where = f"{journal} holds the files as they were before the update"
    if head != record["head"]:
        raise RepositoryStateError(
            f"an update of {session.project} to {record['to']} was interrupted while writing its "
            f"files, and HEAD moved since (from {record['head'][:7]} to {head[:7]}): {where}; "
            f"restore from it what you need, then delete {journal}"
        )
    changed = [
        path
        for path in record["write"] + record["delete"]
        if not _as_recorded(journal, record, path)
    ]
    if changed:
        raise RepositoryStateError(
            f"an update of {session.project} to {record['to']} was interrupted while writing its "
            f"files, and {', '.join(changed)} changed since: {where}; restore from it what you "
            f"need, then delete {journal}"
        )
    roll_back(journal)
    count = len(record["write"]) + len(record["delete"])
    return (
        f"an earlier update of {session.project} to {record['to']} was interrupted while writing "
        f"its files: mlopsify put back the {count} files it touched, as they were at template "
        f"{record['from']} (commit {record['head'][:7]})"
    )


def _as_recorded(journal: Path, record: dict[str, Any], path: str) -> bool:
    """Whether the project's ``path`` is still the old file, the new one, or absent."""
    current = Path(record["top"]) / path
    if not os.path.lexists(current):
        return True
    old = journal / "old" / path
    digest = _digest(current)
    if os.path.lexists(old) and digest == _digest(old):
        return True
    return bool(digest == record["digests"].get(path))


def _helper(arguments: list[str]) -> int:
    """The helper process: apply one journal; on failure, say why in one line on stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        apply_journal(Path(arguments[0]))
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"{error}; the project was left as it was", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_helper(sys.argv[1:]))
