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
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from helpers import (
    REAL_CACHES,
    ROOT,
    isolated_home,
    require_tool,
    reserved_port,
    run,
    signing_key_pair,
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
ADMIN_PASSWORD = "test-only-admin-password"  # pragma: allowlist secret
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


def auth_settings(postgres_port: int, directory: Path) -> dict[str, str]:
    """The basic-auth app's settings as deploy/k8s/components/tracking gives them: its ini from
    the component's ConfigMap (the database moved to the scratch one), the Secret mlflow-auth's
    values, and the runtime that the tracking image installs for tracking_auth."""
    component = next((ROOT / "template").glob("*deploy*/k8s/components/*tracking*"))
    configmap = yaml.safe_load((component / "auth.yaml").read_text())
    ini = configmap["data"]["basic_auth.ini"].replace(
        "mlflow-postgres:5432", f"127.0.0.1:{postgres_port}"
    )
    (directory / "basic_auth.ini").write_text(ini)
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(directory / "basic_auth.ini"),
        "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-flask-secret",  # pragma: allowlist secret
        "PYTHONPATH": str(ROOT / "runtime" / "src"),
    }


@contextlib.contextmanager
def mlflow_server(
    postgres_port: int, artifacts: Path, log: Path, auth: dict[str, str] | None = None
) -> Iterator[str]:
    """`mlflow server` on the database, with proxied artifacts in ``artifacts``; its URL.
    With ``auth`` (auth_settings), the basic-auth app, as the tracking component runs it."""
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
                *(["--app-name=basic-auth"] if auth else []),
            ],
            env={**os.environ, "PGPASSWORD": PASSWORD, "HOME": str(log.parent), **(auth or {})},
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
        "docs/security.md",  # make tracking-users, and which namespaces the server admits
    }
    assert check_project(project)["use_tracking_server"] is True  # exactly the expected files
    for name in sorted(changed - {".copier-answers.yml"}):
        assert (project / name).read_bytes() == (made / name).read_bytes(), name
    built = run(require_tool("kubectl"), "kustomize", "deploy/k8s/tracking", cwd=project).stdout
    assert "name: mlflow-postgres" in built and "namespace: mlflow" in built


MODEL, EXPERIMENT = "credit-risk", "credit-risk"
IDENTITIES = {  # each role's secret, as CI and Kubernetes give them (docs/security.md)
    "pipeline": ("ci-pipeline", "pipeline-password-for-tests"),  # pragma: allowlist secret
    "promotion": ("ci-promotion", "promotion-password-for-tests"),  # pragma: allowlist secret
    "reader": ("service-reader", "reader-password-for-tests"),  # pragma: allowlist secret
}


def refused(status: int, call: Callable[[], object]) -> str:
    """The server's refusal of ``call`` with HTTP ``status``: its message."""
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as error:
        call()
    assert f"error code {status} != 200" in str(error.value), str(error.value)
    return str(error.value)


def test_each_identity_can_do_its_part_only_and_promotion_checks_signatures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtime in-process against `mlflow server --app-name basic-auth` on PostgreSQL, set up
    as the tracking component sets it up: tracking_users makes the identities; the pipeline
    trains, registers and moves champion but not production; promotion verifies the published
    signature and moves staging and production; the reader reads and writes nothing."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    from mlopsify_runtime import promotion, tracking_users
    from mlopsify_runtime.audit import audit_table
    from mlopsify_runtime.config import PipelineError
    from mlopsify_runtime.signing import publish_signature, sign_model
    from mlopsify_runtime.training import save_registered_model

    started = time.monotonic()
    key, public_key = signing_key_pair(tmp_path / "keys")
    other_key, _ = signing_key_pair(tmp_path / "other-keys")
    monkeypatch.setenv("MODEL_SIGNING_PUBLIC_KEY", str(public_key))
    for role, (username, password) in IDENTITIES.items():
        monkeypatch.setenv(f"MLFLOW_{role.upper()}_USERNAME", username)
        monkeypatch.setenv(f"MLFLOW_{role.upper()}_PASSWORD", password)

    def as_identity(username: str, password: str) -> MlflowClient:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        return MlflowClient()

    def train_and_register(signing_key: Path | None) -> str:
        """What the training step does: log, register, download the version, sign, publish."""
        mlflow.set_experiment(EXPERIMENT)
        with mlflow.start_run() as run_:
            model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
            info = mlflow.sklearn.log_model(
                model, name="model", registered_model_name=MODEL, pip_requirements=["scikit-learn"]
            )
        version = str(info.registered_model_version)
        if signing_key is not None:
            local = tmp_path / "models" / version
            save_registered_model({"model_name": MODEL, "version": version}, local)
            publish_signature(sign_model(local, signing_key), run_.info.run_id)
        return version

    with (
        postgresql() as postgres_port,
        mlflow_server(
            postgres_port,
            tmp_path / "artifacts",
            tmp_path / "mlflow-server.log",
            auth_settings(postgres_port, tmp_path),
        ) as url,
    ):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        mlflow.set_tracking_uri(url)

        # The admin makes the identities, idempotently.
        as_identity("admin", ADMIN_PASSWORD)
        grants = {
            "pipeline": "EDIT on experiment 'credit-risk', EDIT on model 'credit-risk'",
            "promotion": "READ on experiment 'credit-risk', MANAGE on model 'credit-risk'",
            "reader": "READ on experiment 'credit-risk', READ on model 'credit-risk'",
        }
        expected = [
            f"tracking-users: {role} '{IDENTITIES[role][0]}' {{}}; {grant} ({{}})"
            for role, grant in grants.items()
        ]
        first = tracking_users.ensure_identities(EXPERIMENT, MODEL)
        assert first == [line.format("created", "granted") for line in expected]
        again = tracking_users.ensure_identities(EXPERIMENT, MODEL)
        assert again == [line.format("exists, password set", "unchanged") for line in expected]

        # Anonymous: refused, whatever the route.
        for path in (
            "/api/2.0/mlflow/registered-models/get?name=credit-risk",
            "/api/2.0/mlflow/experiments/search?max_results=1",
        ):
            with pytest.raises(urllib.error.HTTPError) as anonymous:
                urllib.request.urlopen(url + path, timeout=10)
            assert anonymous.value.code == 401, path

        # The pipeline trains, registers and moves the gate's alias; never production.
        pipeline = as_identity(*IDENTITIES["pipeline"])
        assert tracking_users.current_identity() == "ci-pipeline"
        signed = train_and_register(key)
        pipeline.set_registered_model_alias(MODEL, "champion", signed)
        message = refused(
            403, lambda: pipeline.set_registered_model_alias(MODEL, "production", signed)
        )
        assert (
            "alias 'production' of 'credit-risk' changes only by promotion (MANAGE on the model)"
            in message
        )
        # nor the tag production's deployment reads its image from (promotion.py)
        message = refused(
            403,
            lambda: pipeline.set_model_version_tag(
                MODEL, signed, "promotion.staging.image_tag", "evil"
            ),
        )
        assert (
            "tag 'promotion.staging.image_tag' of 'credit-risk' changes only by promotion"
            in message
        )
        refused(
            403, lambda: promotion.promote(MODEL, "champion", "staging", "abc1234", "gate", "bob")
        )
        assert "promotion.staging.at" not in pipeline.get_model_version(MODEL, signed).tags

        # Promotion checks the signature, then moves staging and production, recording who.
        promoter = as_identity(*IDENTITIES["promotion"])
        assert (
            promotion.promote(MODEL, "champion", "staging", "abc1234", "passed the gate", "carol")
            == signed
        )
        assert (
            promotion.promote(MODEL, "champion", "production", "abc1234", "approved", "dave")
            == signed
        )
        tags = promoter.get_model_version(MODEL, signed).tags
        assert (tags["promotion.staging.identity"], tags["promotion.production.by"]) == (
            "ci-promotion",
            "dave",
        )
        aliases = {a: str(v) for a, v in promoter.get_registered_model(MODEL).aliases.items()}
        assert aliases == {"champion": signed, "staging": signed, "production": signed}
        row = audit_table(
            MODEL, promoter.search_model_versions(f"name='{MODEL}'"), aliases
        ).splitlines()[-1]
        assert "staging (image abc1234, replaced none) by carol as ci-promotion at " in row
        assert "production (image abc1234, replaced none) by dave as ci-promotion at " in row

        # The service's and batch scoring's identity reads the model and writes nothing.
        reader = as_identity(*IDENTITIES["reader"])
        assert str(reader.get_model_version_by_alias(MODEL, "production").version) == signed
        downloaded = Path(
            mlflow.artifacts.download_artifacts(
                f"models:/{MODEL}@production", dst_path=str(tmp_path / "read")
            )
        )
        assert (downloaded / "MLmodel").is_file()
        refused(403, lambda: reader.set_model_version_tag(MODEL, signed, "note", "x"))
        refused(403, lambda: reader.set_registered_model_alias(MODEL, "champion", signed))
        experiment_id = reader.get_experiment_by_name(EXPERIMENT).experiment_id
        refused(403, lambda: reader.create_run(experiment_id))

        # A model whose signature fails never gets an alias: another key, then none at all.
        as_identity(*IDENTITIES["pipeline"])
        forged, unsigned = train_and_register(other_key), train_and_register(None)
        as_identity(*IDENTITIES["promotion"])
        for version, why in (
            (forged, r"does not match its signature \(.*\)"),
            (unsigned, "is not signed: its run"),
        ):
            pipeline_as_gate = as_identity(*IDENTITIES["pipeline"])
            pipeline_as_gate.set_registered_model_alias(MODEL, "champion", version)
            as_identity(*IDENTITIES["promotion"])
            with pytest.raises(
                PipelineError,
                match=rf"^promotion refused: version {version} of 'credit-risk' {why}",
            ):
                promotion.promote(MODEL, "champion", "staging", "def5678", "gate", "carol")
        final = {a: str(v) for a, v in promoter.get_registered_model(MODEL).aliases.items()}
        assert final == {"champion": unsigned, "staging": signed, "production": signed}
    print(
        f"identities, grants and signed promotion on a real server: {time.monotonic() - started:.0f} s"
    )
