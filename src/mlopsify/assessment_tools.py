"""Python checkers run without their start-up, in a process that assesses many repositories.

``dvc dag`` and ``check-jsonschema`` are Python programs that spend about 2 s and 0.7 s of
CPU importing themselves (and what they load on first use) for a few milliseconds of
checking. ``fleet status`` runs them once or more per repository. Within
:func:`warm_tools` (a fleet worker), a checker that is a console script of mlopsify's own
Python environment (the very program :func:`shutil.which` finds) runs instead:

- the first time, in this process itself, with its standard output and error sent to files,
  in the snapshot's directory: everything it loads stays loaded. Its deadline is a timer
  signal (SIGALRM) that interrupts it where it waits or computes, as a subprocess would be
  killed; a checker stopped halfway is not forked from again: its later runs are subprocesses;
- after that, in a fork of this process: a process of its own with its own files, working
  directory and exit code, as a subprocess, without the start-up.

Its output and exit code are those of a subprocess (files, not terminals, on both streams).
Elsewhere (``mlopsify assess``, one repository) checkers are ordinary subprocesses.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

# Console script name -> its entry point, once run here (None: its first run was stopped at
# its deadline, so it runs as a subprocess); filled while warm_tools is active.
_WARM: dict[str, importlib.metadata.EntryPoint | None] | None = None


@contextmanager
def warm_tools() -> Iterator[None]:
    """Run this environment's Python checkers without their start-up (see the module)."""
    global _WARM
    _WARM = {}
    try:
        yield
    finally:
        _WARM = None


def run_warm(args: list[str], cwd: Path, timeout: int) -> tuple[int, str, str] | None:
    """``args`` run as described in the module: exit code, standard output and error; None
    when not within :func:`warm_tools`, ``args[0]`` is not a console script of this Python,
    or a first run is not on the main thread (the only one a timer signal reaches).
    Raises :class:`subprocess.TimeoutExpired` as :func:`subprocess.run` does."""
    if _WARM is None:
        return None
    name = Path(args[0]).name
    if name in _WARM:
        warm = _WARM[name]
        return None if warm is None else _in_a_fork(warm, args, cwd, timeout)
    script = Path(sys.executable).parent / name
    entry = list(importlib.metadata.entry_points(group="console_scripts", name=name))
    if args[0] != str(script) or shutil.which(name) != str(script) or not entry:
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    _WARM[name] = entry[0]
    try:
        return _in_this_process(entry[0], args, cwd, timeout)
    except subprocess.TimeoutExpired:
        _WARM[name] = None  # stopped halfway: no state to fork from
        raise


@functools.cache
def _standard_streams() -> tuple[TextIO, TextIO]:
    """Text streams on file descriptors 1 and 2, kept open for the process's life: a checker
    may keep the streams it found at import (DVC's log handlers do) for its later runs."""
    return (
        open(1, "w", encoding="utf-8", closefd=False),
        open(2, "w", encoding="utf-8", closefd=False),
    )


def _call(script: importlib.metadata.EntryPoint, args: list[str]) -> int:
    """What a console script's ``sys.exit(main())`` exits with, run as that script: its
    arguments, a ``__main__`` of its own (Click names the program after it) and the standard
    streams on file descriptors 1 and 2 (whatever replaced them in this process), also while
    it is first imported."""
    saved = sys.argv, sys.modules["__main__"], sys.stdout, sys.stderr
    sys.argv = list(args)
    sys.modules["__main__"] = types.ModuleType("__main__")
    sys.stdout, sys.stderr = _standard_streams()
    try:
        try:
            code = script.load()()
        except SystemExit as exit_:
            code = exit_.code
        except Exception:  # a crash exits 1 with its traceback, as a script's does
            traceback.print_exc()
            code = 1
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        return (code or 0) % 256  # as the operating system reports an exit status
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.argv, sys.modules["__main__"], sys.stdout, sys.stderr = saved


@contextmanager
def _standard_streams_to(out: int, err: int, cwd: Path) -> Iterator[None]:
    """File descriptors 0-2 and the working directory of this process, for a while."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    here = Path.cwd()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.chdir(cwd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((0, 1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)
        os.chdir(here)


class _Late(BaseException):
    """A first run's deadline, raised where the checker is: a BaseException, so that the
    checker's own ``except Exception`` does not take it for one of its errors."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`_Late` in this (main) thread once ``seconds`` have passed, and each second
    after until it leaves: a timer signal interrupts a wait (a read, an open, a child) as well
    as Python code, and a checker that swallows one does not swallow the next."""

    def late(signum: int, frame: types.FrameType | None) -> None:
        raise _Late

    previous = signal.signal(signal.SIGALRM, late)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _in_this_process(
    script: importlib.metadata.EntryPoint, args: list[str], cwd: Path, timeout: int
) -> tuple[int, str, str]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            with _standard_streams_to(out.fileno(), err.fileno(), cwd), _deadline(timeout):
                code = _call(script, args)
        except _Late:
            raise subprocess.TimeoutExpired(args, timeout) from None
        return code, _read(out), _read(err)


def _in_a_fork(
    script: importlib.metadata.EntryPoint, args: list[str], cwd: Path, timeout: int
) -> tuple[int, str, str]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:  # the child: never returns
            code = 1
            try:
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                os.chdir(cwd)
                code = _call(script, args)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        # Killed at the deadline, as subprocess.run(timeout=...) kills its process.
        late = threading.Event()

        def stop() -> None:
            late.set()
            os.kill(child, signal.SIGKILL)

        timer = threading.Timer(timeout, stop)
        timer.start()
        try:
            _, status = os.waitpid(child, 0)
        finally:
            timer.cancel()
        if late.is_set():
            raise subprocess.TimeoutExpired(args, timeout)
        code = os.waitstatus_to_exitcode(status)
        return code, _read(out), _read(err)


def _read(file: Any) -> str:
    """The file's text as ``subprocess.run(text=True)`` reads a stream (universal newlines)."""
    file.seek(0)
    text: str = file.read().decode()
    return text.replace("\r\n", "\n").replace("\r", "\n")
