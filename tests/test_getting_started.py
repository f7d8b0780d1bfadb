"""docs/getting-started.md is executable: its marked shell blocks run, in order, as one script.

A block belongs to the walk-through when the line before its opening fence is
``<!-- walkthrough -->``. The test runs those blocks exactly as written, in a temporary
directory, with the dev environment's ``bin`` first on PATH (where ``pip install`` puts
``mlopsify``). Two things differ from a person at a terminal, and both are environment
only: ``PORT`` is a free port (the page keeps a ``PORT`` that is already set), and
``MLOPSIFY_TEMPLATE_BUNDLE`` points at this checkout's template when it differs from the
shipped release, so the page is checked against the template it documents.

The script runs with job control (``set -m``), as an interactive shell has: the page stops
the service it started in the background with ``kill %1``, which signals the whole job.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from helpers import ROOT, require_tool, reserved_port, run, wait_for
from template_releases import next_release_bundle

PAGE = ROOT / "docs" / "getting-started.md"
MARKER = "<!-- walkthrough -->"
BLOCK = re.compile(re.escape(MARKER) + r"\n```(?:sh|bash)\n(.*?)\n```", re.DOTALL)
TIMEOUT = 1500  # seconds for the whole walk-through (measured: about 3 minutes)


def walkthrough_blocks(text: str) -> list[str]:
    return BLOCK.findall(text)


def test_page_marks_the_walkthrough_blocks():
    text = PAGE.read_text()
    blocks = walkthrough_blocks(text)
    # Every marker is followed by a shell block the pattern understands (no silent skips).
    assert len(blocks) == text.count(MARKER)
    script = "\n".join(blocks)
    for step in (
        "mlopsify new credit-risk",
        "make setup",
        "make pipeline",
        "make serve",
        "/health/ready",
        "/predict",
        "kill %1",
        "kubectl kustomize deploy/k8s/overlays/staging",
        "make rules",
        "mlopsify update",
    ):
        assert step in script, f"the walk-through no longer runs {step!r}"
    assert "0.0.0.0" not in script


def session_processes(session: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields after the name: state, ppid, pgrp, session; a zombie has ended already
        if int(fields[3]) == session and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def stop_session(session: int) -> None:
    """End every process still in the walk-through's session (a server the page left running)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = session_processes(session)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        with contextlib.suppress(pytest.fail.Exception):
            wait_for("the session to end", lambda: not session_processes(session), timeout=5)


@pytest.mark.slow
def test_walkthrough_runs(tmp_path: Path):
    for tool in ("git", "make", "curl", "kubectl", "promtool"):
        require_tool(tool)
    work = tmp_path / "work"
    work.mkdir()
    script = tmp_path / "walkthrough.sh"
    blocks = walkthrough_blocks(PAGE.read_text())
    script.write_text(
        "set -euo pipefail\nset -m\n"
        + "".join(f"echo '### block {n}'\n{block}\n" for n, block in enumerate(blocks, 1))
    )
    # The page's commands need the port in advance (curl, make serve): it is held bound meanwhile.
    with reserved_port() as port:
        env = {
            **os.environ,
            "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "PORT": str(port),
            "MLOPSIFY_TEMPLATE_BUNDLE": str(next_release_bundle(tmp_path)),
        }
        env.pop("VIRTUAL_ENV", None)
        process = subprocess.Popen(
            ["bash", str(script)],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            stop_session(process.pid)
            output, _ = process.communicate()
            pytest.fail(f"the walk-through did not finish in {TIMEOUT} s\n{output[-8000:]}")
        finally:
            stop_session(process.pid)
        assert process.returncode == 0, f"the walk-through failed\n{output[-8000:]}"

        project = work / "credit-risk"
        assert f"### block {len(blocks)}" in output
        assert '{"status":"ready"}' in output
        assert '"prediction":' in output and '"model_name":"credit-risk"' in output
        assert 'model_requests_total{route="/predict",status="200"} 1.0' in output
        assert "kind: Deployment" in output
        assert "nothing to update" in output
        assert 'Added github: ci_provider "gitlab" -> "github"' in output
        assert (project / ".github" / "workflows" / "ci.yml").is_file()
        assert not (project / ".gitlab-ci.yml").exists()
        # The page leaves a clean, committed project and no server behind.
        assert run("git", "status", "--porcelain", cwd=project).stdout == ""
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
