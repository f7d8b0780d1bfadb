"""A registry that outlives a pipeline: two pipelines, one MLflow server on PostgreSQL.

A real PostgreSQL (Debian's `postgresql`, run as an unprivileged user with a scratch data
directory) and a real `mlflow server` (the version of the generated project's `ui` extra, with
psycopg2, from .cache/mlflow-server) listen on 127.0.0.1, set up as the Kubernetes component
deploy/k8s/components/tracking sets them up: the password reaches libpq as PGPASSWORD, never
in the backend store URI. One generated project is cloned into two clean workspaces (no
mlflow.db in either) that share one environment; each runs `make pipeline` with
MLFLOW_TRACKING_URI pointing at the server, as CI does when the variable is set. The second
pipeline's gate must find the first one's champion in the server's registry and compare
against it. Artifacts go to a local directory (`--artifacts-destination`), proxied by the
server as in the cluster: there is no cloud bucket here.

The component is opt-in (use_tracking_server): the last test adds it to a default project
with `mlopsify add tracking_server`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    REAL_CACHES,
    ROOT,
    isolated_home,
    require_tool,
    reserved_port,
    run,
    wait_for,
)
from test_monitoring_e2e import stop
from test_render_matrix import TRACKING_COMPONENT, check_project
from typer.testing import CliRunner

from mlopsify import TemplateSource, new_project
from mlopsify.cli import app

pytestmark = pytest.mark.slow

NAME = "churn-shared"
PASSWORD = "test-only-password"  # pragma: allowlist secret (a scratch database, deleted after)
MLFLOW = ROOT / ".cache" / "mlflow-server" / "bin" / "mlflow"
# Reads the aliases and every version's tags from the server's registry.
REGISTRY_PROBE = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient()
name = sys.argv[1]
print(json.dumps({
    "aliases": {a: str(v) for a, v in client.get_registered_model(name).aliases.items()},
    "tags": {str(v.version): dict(v.tags) for v in client.search_model_versions(f"name = '{name}'")},
}))
"""


def postgres_bin() -> Path:
    """Debian keeps initdb and postgres off PATH, in /usr/lib/postgresql/VERSION/bin."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    return Path(require_tool("initdb")).parent  # fails under CI=true, skips elsewhere


def as_unprivileged(*args: str | Path) -> list[str]:
    """initdb and postgres refuse root: as root, run them as `nobody`."""
    command = [str(a) for a in args]
    return ["runuser", "-u", "nobody", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgresql() -> Iterator[int]:
    """A scratch PostgreSQL on 127.0.0.1 with a password-protected database `mlflow`; its port."""
    bindir = postgres_bin()
    # Not under pytest's tmp_path: `nobody` cannot enter its private parent directories.
    scratch = Path(tempfile.mkdtemp(prefix="mlflow-postgres-"))
    try:
        (scratch / "pwfile").write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(scratch, "nobody", "nogroup")
            shutil.chown(scratch / "pwfile", "nobody", "nogroup")
        run(
            *as_unprivileged(
                bindir / "initdb",
                "--pgdata",
                scratch / "data",
                "--username",
                "mlflow",
                "--pwfile",
                scratch / "pwfile",
                "--auth",
                "scram-sha-256",
                "--no-sync",
            ),
            cwd=scratch,
        )
        with reserved_port() as port:
            log = scratch / "postgres.log"
            with log.open("w") as out:
                server = subprocess.Popen(
                    as_unprivileged(
                        bindir / "postgres",
                        "-D",
                        scratch / "data",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-k",
                        scratch,
                        "-c",
                        "fsync=off",
                    ),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            try:
                wait_for(
                    "PostgreSQL to accept connections",
                    lambda: (
                        server.poll() is None
                        and subprocess.run(
                            [bindir / "pg_isready", "-h", "127.0.0.1", "-p", str(port)],
                            capture_output=True,
                            check=False,
                        ).returncode
                        == 0
                    ),
                    timeout=60,
                )
                run(
                    bindir / "createdb",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "mlflow",
                    "mlflow",
                    cwd=scratch,
                    env={"PGPASSWORD": PASSWORD},
                )
                yield port
            finally:
                stop(server)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(postgres_port: int, artifacts: Path, log: Path) -> Iterator[str]:
    """`mlflow server` on the database, with proxied artifacts in ``artifacts``; its URL."""
    if not MLFLOW.is_file():
        require_tool(str(MLFLOW))  # fails under CI=true, skips elsewhere
    with reserved_port() as port, log.open("w") as out:
        server = subprocess.Popen(
            [
                str(MLFLOW),
                "server",
                "--host=127.0.0.1",
                f"--port={port}",
                "--workers=1",
                # as in the cluster: the password reaches libpq as PGPASSWORD, not in the URI
                f"--backend-store-uri=postgresql+psycopg2://mlflow@127.0.0.1:{postgres_port}/mlflow",
                "--serve-artifacts",
                f"--artifacts-destination={artifacts}",
            ],
            env={**os.environ, "PGPASSWORD": PASSWORD, "HOME": str(log.parent)},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:

            def healthy() -> bool:
                if server.poll() is not None:
                    pytest.fail(
                        f"mlflow server exited {server.returncode}:\n{log.read_text()[-4000:]}"
                    )
                return bool(urllib.request.urlopen(f"{url}/health", timeout=2).status == 200)

            # a minute on a busy machine: MLflow imports much before it binds
            wait_for("the MLflow server's /health", healthy, timeout=300, every=0.5)
            yield url
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, 15)  # the server and its uvicorn workers
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)
                server.wait(timeout=10)


def pipeline_env(home: Path, venv: Path, tracking_uri: str) -> dict[str, str]:
    env = {**REAL_CACHES}
    env.update(
        VIRTUAL_ENV=str(venv),
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        MLFLOW_TRACKING_URI=tracking_uri,
        PYTHONPATH="src",  # this workspace's code before the shared environment's editable install
    )
    return env


def make(workspace: Path, venv: Path, env: dict[str, str], *targets: str) -> str:
    completed = run("make", *targets, f"VENV={venv}", cwd=workspace, env=env, timeout=900)
    return completed.stdout + completed.stderr


def registry(venv: Path, env: dict[str, str]) -> dict[str, dict[str, dict[str, str]]]:
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", REGISTRY_PROBE, NAME],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, dict[str, dict[str, str]]] = json.loads(probe.stdout.splitlines()[-1])
    return result


def test_second_pipeline_gates_against_the_first_pipelines_champion(
    template_dir: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    with isolated_home(tmp_path) as home:
        origin = new_project(  # with the tracking component this test sets up by hand
            tmp_path / "origin" / NAME,
            data={"use_tracking_server": True},
            defaults=True,
            template=TemplateSource.at(template_dir),
        )
    workspaces = [tmp_path / "ci-1" / NAME, tmp_path / "ci-2" / NAME]
    for workspace in workspaces:  # two CI jobs' clean checkouts: no mlflow.db in either
        run("git", "clone", "--quiet", origin, workspace, cwd=tmp_path)
        assert not (workspace / "mlflow.db").exists()
    venv = tmp_path / "venv"  # one environment for both workspaces
    artifacts = tmp_path / "artifacts"

    with (
        postgresql() as postgres_port,
        mlflow_server(postgres_port, artifacts, tmp_path / "mlflow-server.log") as url,
    ):
        env = pipeline_env(home, venv, url)
        make(workspaces[0], venv, env, "setup")

        first = make(workspaces[0], venv, env, "pipeline")
        assert f"the first model: alias 'champion' -> {NAME} version 1" in first, first[-3000:]

        second = make(workspaces[1], venv, env, "pipeline")
        assert f"against version 1: alias 'champion' -> {NAME} version 2" in second, second[-3000:]

        state = registry(venv, env)
    assert state["aliases"] == {"champion": "2"}
    first_tags, second_tags = state["tags"]["1"], state["tags"]["2"]
    assert (first_tags["gate.result"], first_tags["gate.champion_version"]) == ("promoted", "none")
    assert (second_tags["gate.result"], second_tags["gate.champion_version"]) == ("promoted", "1")
    # the champion was evaluated again on the second pipeline's data: its metrics are recorded
    assert json.loads(second_tags["gate.champion_metrics"]) == json.loads(
        first_tags["gate.challenger_metrics"]
    )
    for workspace in workspaces:
        assert not (workspace / "mlflow.db").exists(), "the pipeline used SQLite, not the server"
    # both models' files went through the server to its artifact store
    assert len(list(artifacts.rglob("MLmodel"))) >= 2, sorted(artifacts.rglob("*"))[:20]
    print(f"two pipelines against one tracking server: {time.monotonic() - started:.0f} s")


def test_add_tracking_server_to_a_default_project(tagged_template: Path, tmp_path: Path) -> None:
    """`mlopsify add tracking_server` on a project made with the default answers gives it the
    files a project made with the server has, byte for byte, and the kustomization builds."""
    template = TemplateSource.at(tagged_template)
    project = new_project(
        tmp_path / "added" / NAME, defaults=True, template=template, vcs_ref="v9.0.0"
    )
    made = new_project(
        tmp_path / "made" / NAME,
        data={"use_tracking_server": True},
        defaults=True,
        template=template,
        vcs_ref="v9.0.0",
    )
    assert not (project / "deploy/k8s/tracking").exists()
    result = CliRunner().invoke(app, ["add", "tracking_server", str(project)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Added tracking_server: use_tracking_server false -> true"
    changed = {line.split()[1] for line in lines[1:-1]}
    tracking = {
        "deploy/tracking/Dockerfile",
        "deploy/k8s/tracking/kustomization.yaml",
        "deploy/k8s/tracking/namespace.yaml",
        *(f"deploy/k8s/components/tracking/{name}.yaml" for name in TRACKING_COMPONENT),
    }
    assert changed == tracking | {
        ".copier-answers.yml",
        "make/deploy.mk",
        "docs/operations.md",
    }
    assert check_project(project)["use_tracking_server"] is True  # exactly the expected files
    for name in sorted(changed - {".copier-answers.yml"}):
        assert (project / name).read_bytes() == (made / name).read_bytes(), name
    built = run(require_tool("kubectl"), "kustomize", "deploy/k8s/tracking", cwd=project).stdout
    assert "name: mlflow-postgres" in built and "namespace: mlflow" in built
