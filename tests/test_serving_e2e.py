"""End to end: generate a project, run its pipeline, serve the model on 127.0.0.1, use it over HTTP.

One project and one service for the module (the pipeline is the slow part). The service runs
with `make serve` and a bearer token, as a Kubernetes Secret would give it.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import listening_port, require_tool, run, wait_for

from mlopsify import TemplateSource, new_project

pytestmark = pytest.mark.slow

TOKEN = "e2e-token-value"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BATCH = 200
MAX_BODY = 262_144


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, template_dir: Path) -> Iterator[Path]:
    """A default project with its environment and a full pipeline run (model registered, gate passed)."""
    root = tmp_path_factory.mktemp("e2e")
    home = root / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Test User\n\temail = test@example.com\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        path = new_project(
            root / "credit-check", data={}, defaults=True, template=TemplateSource.at(template_dir)
        )
        run("make", "setup", cwd=path, timeout=900)
        run("make", "pipeline", cwd=path, timeout=1200)
        yield path


def call(
    base: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, str]:
    """Status, parsed body (JSON when it is JSON) and content type of one HTTP request."""
    request = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, ctype = response.status, response.read(), response.headers["content-type"]
    except urllib.error.HTTPError as error:
        status, raw, ctype = error.code, error.read(), error.headers["content-type"]
    parsed = json.loads(raw) if ctype.startswith("application/json") else raw.decode()
    return status, parsed, ctype


def predict(base: str, body: object, token: bool = True) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(AUTH if token else {})}
    status, parsed, _ = call(base, "POST", "/predict", raw, headers)
    return status, parsed


@pytest.fixture(scope="module")
def service(project: Path) -> Iterator[str]:
    """`make serve` on a 127.0.0.1 port the kernel picks; stopped (its process group) after the module."""
    log = (project / "serve.log").open("w")
    env = {
        **os.environ,
        "API_TOKEN": TOKEN,
        "MAX_BATCH_SIZE": str(MAX_BATCH),
        "MAX_BODY_BYTES": str(MAX_BODY),
    }
    process = subprocess.Popen(
        ["make", "serve", "PORT=0"],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{listening_port(process, project / 'serve.log', timeout=180)}"
        wait_for(
            "the service to be ready",
            lambda: call(base, "GET", "/health/ready")[0] == 200,
            timeout=180,
        )
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # make and the uvicorn it started
        process.wait(timeout=30)
        try:
            wait_for(
                "uvicorn to shut down gracefully",
                lambda: "Application shutdown complete" in (project / "serve.log").read_text(),
                timeout=20,
            )
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            log.close()


def held_out_rows(project: Path) -> tuple[list[str], list[dict[str, float]], list[int]]:
    features = json.loads((project / "models" / "features.json").read_text())["features"]
    with (project / "data" / "processed" / "test.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    records = [{name: float(row[name]) for name in features} for row in rows]
    return features, records, [int(float(row["target"])) for row in rows]


def test_health_and_version_describe_the_registered_model(project: Path, service: str) -> None:
    assert call(service, "GET", "/health/live")[:2] == (200, {"status": "alive"})
    assert call(service, "GET", "/health/ready")[:2] == (200, {"status": "ready"})
    status, version, _ = call(service, "GET", "/version")
    registration = json.loads((project / "models" / "registration.json").read_text())
    commit = run("git", "rev-parse", "--short", "HEAD", cwd=project).stdout.strip()
    assert status == 200
    assert (version["model_name"], version["model_version"], version["run_id"]) == (
        "credit-check",
        registration["version"],
        registration["run_id"],
    )
    assert version["git_commit"] == commit
    assert version["task_type"] == "classification"
    assert version["features"][:2] == ["mean_radius", "mean_texture"]


def test_single_and_batch_predictions_match_the_test_set(project: Path, service: str) -> None:
    _, records, targets = held_out_rows(project)
    status, batch = predict(service, {"records": records})
    assert status == 200, batch
    predicted = [item["prediction"] for item in batch["predictions"]]
    accuracy = sum(p == t for p, t in zip(predicted, targets, strict=True)) / len(targets)
    assert accuracy >= 0.9
    assert len({item["request_id"] for item in batch["predictions"]}) == len(records)
    status, single = predict(service, {"record": records[0]})
    assert status == 200
    assert single["prediction"] == predicted[0]
    # float32 in onnxruntime: one row and a batch take different kernels, equal to about 1e-7
    assert single["probabilities"] == pytest.approx(
        batch["predictions"][0]["probabilities"], rel=1e-5, abs=1e-6
    )
    assert len(single["request_id"]) == 32
    # The service runs the ONNX model (the gate compiled it): its answers are scikit-learn's.
    expected = probe(project, SKLEARN_PROBE, json.dumps(records))
    served = [
        [item["probabilities"][label] for label in ("0", "1")] for item in batch["predictions"]
    ]
    for ours, theirs in zip(served, expected["probabilities"], strict=True):
        assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)
    assert predicted == expected["labels"]
    # The same held-out set as a table (the features in order, one row each): the same answers.
    features = call(service, "GET", "/version")[1]["features"]
    status, table = predict(
        service,
        {"columns": features, "data": [[record[name] for name in features] for record in records]},
    )
    assert status == 200, table
    assert [item["probabilities"] for item in table["predictions"]] == [
        item["probabilities"] for item in batch["predictions"]
    ]


def bad_inputs(record: dict[str, float]) -> list[tuple[str, object, int, str]]:
    name = next(iter(record))
    return [
        ("malformed JSON", b'{"record": {', 400, "malformed JSON"),
        ("wrong type", {"record": {**record, name: "big"}}, 422, f"record.{name}"),
        ("boolean", {"record": {**record, name: True}}, 422, f"record.{name}"),
        (
            "missing field",
            {"record": {k: v for k, v in record.items() if k != name}},
            422,
            f"record.{name}",
        ),
        ("extra field", {"record": {**record, "patient_name": 1.0}}, 422, "record.patient_name"),
        (
            "NaN",
            json.dumps({"record": {**record, name: float("nan")}}).encode(),
            422,
            "finite number",
        ),
        (
            "infinity",
            json.dumps({"record": {**record, name: float("inf")}}).encode(),
            422,
            "finite number",
        ),
        (
            "body over the limit",
            b'{"records": [' + b" " * MAX_BODY + b"]}",
            413,
            f"limit of {MAX_BODY} bytes",
        ),
        ("empty batch", {"records": []}, 422, "empty batch"),
        (
            "batch over the limit",
            {"records": [record] * (MAX_BATCH + 1)},
            422,
            f"limit of {MAX_BATCH}",
        ),
        ("not an object", [record], 422, "one key"),
        # Finite, but the scaler overflowed on it: a plain-text 500 before the bound.
        (
            "overflowing value",
            json.dumps({"record": {**record, name: 1e306}}).encode(),
            422,
            "finite number",
        ),
        (
            "huge integer",
            json.dumps({"record": {**record, name: 0.125}})
            .encode()
            .replace(b"0.125", b"1" + b"0" * 400),
            422,
            "finite number",
        ),
        (
            "duplicate key",
            b'{"record": {"' + name.encode() + b'": 1, ' + json.dumps(record).encode()[1:] + b"}",
            400,
            "duplicate key",
        ),
        ("not UTF-8", b'{"record": "\xff"}', 400, "not UTF-8"),
        ("deep nesting", b"[" * 100_000, 400, "malformed JSON"),
    ]


def test_every_bad_input_is_a_clear_4xx_and_the_service_keeps_serving(
    project: Path, service: str
) -> None:
    _, records, _ = held_out_rows(project)
    for label, body, status, message in bad_inputs(records[0]):
        got, answer = predict(service, body)
        assert got == status, f"{label}: {got} {answer}"
        text = answer["detail"] + " " + " ".join(f"{e['loc']} {e['msg']}" for e in answer["errors"])
        assert message in text, f"{label}: {answer}"
        assert len(answer["request_id"]) == 32, f"{label}: {answer}"
        assert predict(service, {"record": records[0]})[0] == 200, f"not serving after {label}"
    status, answer, _ = call(
        service, "POST", "/predict", b"mean_radius=1", {"Content-Type": "text/plain", **AUTH}
    )
    assert (status, answer["detail"]) == (
        415,
        "send the body as UTF-8 JSON with Content-Type: application/json",
    )


def test_the_bearer_token_is_required(project: Path, service: str) -> None:
    _, records, _ = held_out_rows(project)
    status, answer = predict(service, {"record": records[0]}, token=False)
    assert (status, answer["detail"]) == (
        401,
        "missing or invalid bearer token: send Authorization: Bearer <API_TOKEN>",
    )
    headers = {"Content-Type": "application/json", "Authorization": "Bearer not-the-token"}
    assert (
        call(service, "POST", "/predict", json.dumps({"record": records[0]}).encode(), headers)[0]
        == 401
    )
    assert call(service, "GET", "/health/ready")[0] == 200  # probes need no token


def test_metrics_count_what_happened(project: Path, service: str) -> None:
    _, records, _ = held_out_rows(project)
    predict(service, {"record": records[0]})
    predict(service, {"records": []})
    predict(service, {"record": records[0]}, token=False)
    status, text, ctype = call(service, "GET", "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    for code in ("200", "401", "422"):
        assert samples[f'model_requests_total{{route="/predict",status="{code}"}}'] >= 1
    assert samples['model_request_duration_seconds_count{route="/predict"}'] >= 3
    assert (
        samples['model_predictions_total{outcome="0"}']
        + samples['model_predictions_total{outcome="1"}']
        >= 1
    )
    registration = json.loads((project / "models" / "registration.json").read_text())
    info = [key for key in samples if key.startswith("model_info{")]
    assert len(info) == 1 and f'model_version="{registration["version"]}"' in info[0]
    assert samples["model_trained_timestamp_seconds"] > time.time() - 7200


def test_the_pipeline_writes_the_openapi_snapshot_of_the_served_model(
    project: Path, service: str
) -> None:
    """make pipeline wrote docs/openapi.json; it is current, and describes what the service serves."""
    check = run(
        ".venv/bin/python",
        "-m",
        "mlopsify_runtime.serving.openapi_snapshot",
        "--check",
        cwd=project,
    )
    assert check.stdout.strip() == "docs/openapi.json is up to date"
    snapshot = json.loads((project / "docs" / "openapi.json").read_text())
    status, live, _ = call(service, "GET", "/openapi.json")
    assert status == 200
    assert snapshot["components"]["schemas"]["Record"] == live["components"]["schemas"]["Record"]
    assert snapshot["paths"].keys() == live["paths"].keys()
    assert (
        live["components"]["schemas"]["BatchRequest"]["properties"]["records"]["maxItems"]
        == MAX_BATCH
    )
    assert "[docs/openapi.json](openapi.json)" in (project / "docs" / "operations.md").read_text()


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
def test_schemathesis_with_all_checks_finds_no_failure(
    project: Path, service: str, with_token: bool, tmp_path: Path
) -> None:
    """The fuzzer of the issue, against the live service: every check, with and without the token."""
    command = [
        # schemathesis is mlopsify's test tool (the runtime's `test` extra), not the project's
        require_tool("st"),
        "run",
        f"{service}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "50",
        "--seed",
        "13",
        "--workers",
        "1",
        "--no-color",
    ]
    if with_token:
        command += ["-H", f"Authorization: Bearer {TOKEN}"]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "failure" not in result.stdout.splitlines()[-1], result.stdout[-3000:]


# ------------------------------------------------------------- time to first prediction (issue 19)
# Probes run with the project's own Python, in the environment `make setup` made.
UNCOMPILED_PROBE = """
import importlib.util, json, pathlib, sysconfig
site = pathlib.Path(sysconfig.get_path("purelib"))
print(json.dumps([str(p.relative_to(site)) for p in site.rglob("*.py")
                  if not pathlib.Path(importlib.util.cache_from_source(str(p))).is_file()]))
"""
# scikit-learn's own answers for the records in argv[1], from the pickled model of models/model.
SKLEARN_PROBE = """
import json, pickle, sys
import numpy as np
model = pickle.load(open("models/model/model.pkl", "rb"))
features = json.load(open("models/features.json"))["features"]
matrix = np.array([[record[name] for name in features] for record in json.loads(sys.argv[1])])
print(json.dumps({"probabilities": model.predict_proba(matrix).tolist(), "labels": model.predict(matrix).tolist()}))
"""
IMPORTS_PROBE = """
import json, sys
from mlopsify_runtime.serving.app import create_app
from mlopsify_runtime.serving.model import load_model
from mlopsify_runtime.serving.settings import Settings
heavy = ("skops", "mlflow", "pandas", "sklearn", "scipy", "onnxruntime")
create_app()
started = [name for name in heavy if name in sys.modules]
load_model(Settings.from_env())
print(json.dumps({{"started": started, "loaded": [name for name in heavy if name in sys.modules]}}))
"""
# registered_model_meta is not the model's: MLflow writes it on each download (how it was asked for).
REGISTERED_PROBE = """
import hashlib, json, pathlib, sys, mlflow
mlflow.set_tracking_uri("sqlite:///mlflow.db")
local = pathlib.Path(mlflow.artifacts.download_artifacts(f"models:/{sys.argv[1]}@champion"))
print(json.dumps({str(p.relative_to(local)): hashlib.sha256(p.read_bytes()).hexdigest()
                  for p in sorted(local.rglob("*")) if p.is_file() and p.name != "registered_model_meta"}))
"""
DISTRIBUTIONS_PROBE = """
import importlib.metadata, json
print(json.dumps(sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions())))
"""


def probe(project: Path, code: str, *args: str) -> Any:
    """The JSON that ``code`` prints, run by the project's Python in the project's root."""
    env = {"PYTHONDONTWRITEBYTECODE": "1"}  # as on these machines: nothing compiles on the way
    result = run(project / ".venv" / "bin" / "python", "-c", code, *args, cwd=project, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_setup_leaves_every_installed_module_compiled(project: Path) -> None:
    """Each stage and the service is a fresh process: none of them compiles a library again."""
    assert probe(project, UNCOMPILED_PROBE) == []


def test_the_service_starts_without_ml_libraries_and_loads_the_compiled_model_only(
    project: Path,
) -> None:
    package = next((project / "src").iterdir()).name
    imported = probe(project, IMPORTS_PROBE.format(package=package))
    # Liveness answers while the model loads: the app itself imports no ML library.
    assert imported["started"] == []
    # The default model compiles: onnxruntime runs it; scikit-learn is never imported (nothing
    # is unpickled), nor skops, MLflow, pandas or SciPy.
    assert imported["loaded"] == ["onnxruntime"]


def test_the_served_model_is_the_registered_champion_byte_for_byte(project: Path) -> None:
    name = json.loads((project / "models" / "registration.json").read_text())["model_name"]
    registered = probe(project, REGISTERED_PROBE, name)
    model_dir = project / "models" / "model"
    served = {
        str(path.relative_to(model_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(model_dir.rglob("*"))
        if path.is_file() and path.name != "registered_model_meta"
    }
    assert served == registered
    assert "model.pkl" in served  # pickle: the scikit-learn fallback loads it without skops
    assert "model.onnx" in served  # the ONNX conversion is registered with the version


def test_the_environment_carries_mlflow_s_client_not_its_server(project: Path) -> None:
    installed = set(probe(project, DISTRIBUTIONS_PROBE))
    assert "mlflow-skinny" in installed
    # The full package (UI, server) and what only it pulls in are the `ui` extra's.
    assert not {"mlflow", "pyarrow", "flask", "gunicorn", "matplotlib"} & installed
