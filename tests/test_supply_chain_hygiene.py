"""Hygiene of a generated project: the secret scan passes DVC's hashes but refuses a credential,
and `make setup` installs the pre-commit hooks it configures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import Render, require_tool, run

# What `dvc add` and `dvc repro` write: hex digests that a naive entropy scan takes for keys.
DVC_POINTER = """outs:
- md5: 3f2a5d6c9b8e7f1a2b3c4d5e6f708192
  size: 58231
  hash: md5
  path: customers.csv
"""
DVC_LOCK = """schema: '2.0'
stages:
  train:
    cmd: python -m demo_project.train
    outs:
    - path: models/model
      hash: md5
      md5: 9f8e7d6c5b4a39281706f5e4d3c2b1a0.dir
      size: 4211
      nfiles: 4
"""
# AWS's documented example key pair: a real key's shape, never a live credential.
CREDENTIAL = (
    'AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"\n'
    'AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n'
)


def _scan(project: Path, *files: str) -> tuple[int, str]:
    """The project's own detect-secrets hook (pre-commit, as `git commit` runs it) on ``files``."""
    require_tool("detect-secrets-hook")
    pre_commit = require_tool("pre-commit")
    run("git", "add", *files, cwd=project)
    done = run(pre_commit, "run", "detect-secrets", "--files", *files, cwd=project, check=False)
    return done.returncode, done.stdout + done.stderr


def test_secret_scan_passes_dvc_pointers_and_locks_but_refuses_a_credential(render: Render) -> None:
    project = render()
    (project / "data" / "external" / "customers.csv.dvc").write_text(DVC_POINTER)
    (project / "dvc.lock").write_text(DVC_LOCK)
    (project / "inference" / "dvc.lock").write_text(DVC_LOCK)

    code, output = _scan(
        project, "data/external/customers.csv.dvc", "dvc.lock", "inference/dvc.lock"
    )
    assert code == 0, output
    assert "Passed" in output

    (project / "settings.py").write_text(CREDENTIAL)
    code, output = _scan(project, "data/external/customers.csv.dvc", "settings.py")
    assert code == 1, output
    assert "Secret Type: AWS Access Key" in output
    assert "Location:    settings.py:1" in output
    assert "customers.csv.dvc" not in output


@pytest.mark.slow
def test_make_setup_installs_the_pre_commit_hooks(render: Render) -> None:
    project = render()
    hook = project / ".git" / "hooks" / "pre-commit"
    assert not hook.exists()

    done = run("make", "setup", cwd=project)

    assert "pre-commit installed at .git/hooks/pre-commit" in done.stdout
    assert "pre-commit" in hook.read_text()
    # The installed hook really runs at commit: a committed credential is refused.
    (project / "settings.py").write_text(CREDENTIAL)
    run("git", "add", "settings.py", cwd=project)
    active = {"PATH": f"{project / '.venv' / 'bin'}:{os.environ['PATH']}"}
    refused = run("git", "commit", "-m", "add settings", cwd=project, check=False, env=active)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "Secret Type: AWS Access Key" in refused.stdout + refused.stderr
