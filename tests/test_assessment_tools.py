"""A fleet worker's first, in-process run of a Python checker stops at the deadline, as the
forked runs and a subprocess do (src/mlopsify/assessment_tools.py).

The checker is the real check-jsonschema, made to wait: the instance it reads is a named pipe
that nothing writes to, so opening it blocks. A thread writes to the pipe after a minute, so
that a run that was not stopped ends (and the test fails) instead of hanging the suite.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
from pathlib import Path

from helpers import require_tool

from mlopsify.assessment_checks import _run
from mlopsify.assessment_tools import warm_tools

DEADLINE = 5  # seconds: the checker's start-up (under one) and a busy machine fit in it
RESCUE_AFTER = 60  # seconds: the test fails, rather than hangs, without the deadline


def unblock(pipe: Path) -> None:
    """Write an empty JSON object to ``pipe`` if a reader is waiting on it."""
    try:
        fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:  # no reader: nothing waits on it
        assert error.errno == errno.ENXIO, error
        return
    os.write(fd, b"{}")
    os.close(fd)


def test_the_first_warm_run_stops_at_the_deadline_and_the_next_ones_are_subprocesses(
    tmp_path: Path,
) -> None:
    checker = require_tool("check-jsonschema")
    assert checker == str(Path(sys.executable).parent / "check-jsonschema")  # a warm one
    (tmp_path / "schema.json").write_text('{"type": "object"}')
    (tmp_path / "ok.json").write_text("{}")
    pipe = tmp_path / "never-written.json"
    os.mkfifo(pipe)
    waits = [checker, "--schemafile", "schema.json", pipe.name]
    rescue = threading.Timer(RESCUE_AFTER, unblock, [pipe])
    rescue.start()
    try:
        with warm_tools():
            started = time.monotonic()
            first = _run(waits, tmp_path, DEADLINE)
            stopped_after = time.monotonic() - started
            # the checker stopped halfway is not forked from: a subprocess, with its own deadline
            again = _run(waits, tmp_path, DEADLINE)
            checked = _run([checker, "--schemafile", "schema.json", "ok.json"], tmp_path)
    finally:
        rescue.cancel()
    assert first == (124, f"timed out after {DEADLINE} s")
    assert DEADLINE <= stopped_after < DEADLINE + 5, stopped_after
    assert again == (124, f"timed out after {DEADLINE} s")
    assert checked == (0, "ok -- validation done")
