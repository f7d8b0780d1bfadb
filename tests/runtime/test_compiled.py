"""Compiled serving (compiled.py): conversion, parity, the gate's decision and the ONNX service.

The served answers are compared with scikit-learn's own on the same records: through the
in-process service for each kind of model (binary, multiclass over numbers and categories with
missing values, regression, a tree ensemble), and through a real uvicorn process on 127.0.0.1
whose memory map must hold no scikit-learn, SciPy or pandas library while it serves ONNX.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from serving_models import NUMBERS, post, save_model, training_frame, wait_ready
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from mlopsify_runtime import evaluate
from mlopsify_runtime.compiled import (
    BOUND_SIZES,
    ONNX_FILE,
    SERVING_FILE,
    CompiledParams,
    ConversionError,
    OnnxScorer,
    ServingDecision,
    convert,
    parity,
)
from mlopsify_runtime.config import PipelineError, load_params
from mlopsify_runtime.ingest import ingest
from mlopsify_runtime.serving import create_app
from mlopsify_runtime.serving.model import ModelLoadError, load_model
from mlopsify_runtime.serving.settings import Settings
from mlopsify_runtime.serving.signature import SignatureError, verify_model_signature
from mlopsify_runtime.serving.spec import FeatureSpec
from mlopsify_runtime.signing import sign_if_configured
from mlopsify_runtime.spec import describe, model_input, read_frame, to_matrix
from mlopsify_runtime.training import run_training

FEATURES = [*NUMBERS, "colour"]
NOT_CONVERTIBLE = "RuntimeError: FunctionTransformer is not supported unless the transform function is None (= identity)"

with warnings.catch_warnings():  # starlette's test client warns about its own httpx use
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def mixed_frame(rows: int = 120) -> pd.DataFrame:
    """Numbers and a category, both with missing values, and a three-class label."""
    frame = training_frame(rows, seed=3)
    frame.loc[::7, "feature_a"] = np.nan
    frame.loc[::5, "colour"] = None
    frame["label"] = np.where(
        frame["feature_b"] > 0.4, "high", np.where(frame["feature_b"] < -0.4, "low", "mid")
    )
    return frame


def template_pipeline(task_type: str) -> Pipeline:
    """The template's default model (its train.py): imputation, scaling, one-hot, a linear model."""
    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categories = Pipeline(
        [
            ("impute", SimpleImputer(missing_values=None, strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    prepare = ColumnTransformer([("numbers", numbers, [0, 1, 2]), ("categories", categories, [3])])
    estimator = LogisticRegression(max_iter=1000) if task_type == "classification" else Ridge()
    return Pipeline([("prepare", prepare), ("model", estimator)])


def forest() -> Pipeline:
    prepare = ColumnTransformer(
        [
            ("numbers", "passthrough", [0, 1, 2]),
            ("colour", OneHotEncoder(handle_unknown="ignore"), [3]),
        ]
    )
    model = RandomForestClassifier(
        n_estimators=25, random_state=0
    )  # odd: no tied votes of two classes
    return Pipeline([("prepare", prepare), ("model", model)])


def fitted(
    pipeline: Pipeline, frame: pd.DataFrame, task_type: str
) -> tuple[Pipeline, dict[str, Any]]:
    target = "label" if task_type == "classification" else "value"
    spec = describe(frame, FEATURES, target, task_type)
    return pipeline.fit(model_input(frame, spec), frame[target].to_numpy()), spec


def sklearn_scores(pipeline: Pipeline, frame: pd.DataFrame, spec: dict[str, Any]) -> np.ndarray:
    matrix = model_input(frame, spec)
    return (
        pipeline.predict_proba(matrix)
        if spec["task_type"] == "classification"
        else pipeline.predict(matrix)
    )


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as a client sends them: null for a missing value."""
    rows = frame[FEATURES].astype(object).where(frame[FEATURES].notna(), None)
    return [dict(row) for _, row in rows.iterrows()]


def served_scores(answers: list[dict[str, Any]], classes: list[Any]) -> np.ndarray:
    if "probabilities" in answers[0]:
        return np.array(
            [[answer["probabilities"][str(label)] for label in classes] for answer in answers]
        )
    return np.array([answer["prediction"] for answer in answers])


MODELS: dict[str, tuple[Callable[[], Pipeline], str, Callable[[], pd.DataFrame]]] = {
    "multiclass, numbers and categories with missing values": (
        lambda: template_pipeline("classification"),
        "classification",
        mixed_frame,
    ),
    "regression, numbers and categories with missing values": (
        lambda: template_pipeline("regression"),
        "regression",
        mixed_frame,
    ),
    "random forest": (forest, "classification", training_frame),
}


@pytest.mark.parametrize("kind", MODELS)
def test_the_served_onnx_answers_match_scikit_learn(tmp_path: Path, kind: str) -> None:
    build, task_type, data = MODELS[kind]
    frame = data()
    pipeline, spec = fitted(build(), frame, task_type)
    settings = save_model(tmp_path, task_type, pipeline, FEATURES, frame=frame, compiled=True)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        assert client.app.state.serving.model.runtime == "onnx"  # type: ignore[attr-defined]
        body = records(frame)
        batch = post(client, {"records": body}).json()["predictions"]
        singles = [post(client, {"record": record}).json() for record in body[:20]]
    expected = sklearn_scores(pipeline, frame, spec)
    classes = spec.get("classes", [])
    # float32 inputs: the answers agree with scikit-learn's to about 1e-7, and the labels exactly
    np.testing.assert_allclose(served_scores(batch, classes), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(served_scores(singles, classes), expected[:20], rtol=1e-5, atol=1e-5)
    if task_type == "classification":
        assert [answer["prediction"] for answer in batch] == list(
            pipeline.predict(model_input(frame, spec))
        )


def test_a_batch_is_one_onnx_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = mixed_frame()
    pipeline, _ = fitted(template_pipeline("classification"), frame, "classification")
    settings = save_model(
        tmp_path, "classification", pipeline, FEATURES, frame=frame, compiled=True
    )
    calls: list[int] = []
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        scorer = client.app.state.serving.model.scorer  # type: ignore[attr-defined]
        run = scorer.run

        def counted(
            outputs: list[str], feeds: dict[str, np.ndarray], options: None
        ) -> list[np.ndarray]:
            calls.append(len(next(iter(feeds.values()))))
            result: list[np.ndarray] = run(outputs, feeds, options)
            return result

        monkeypatch.setattr(scorer, "run", counted)
        assert post(client, {"records": records(frame)[:100]}).status_code == 200
    assert calls == [100]


@pytest.mark.parametrize("task_type", ["classification", "regression"])
def test_a_numeric_model_bound_to_fixed_buffers_answers_as_the_plain_call(task_type: str) -> None:
    """Numbers only: the session is bound once per batch size (IOBinding); every answer equals the
    plain call's, an answer is not overwritten by the next call, and a busy binding is not waited for."""
    frame = training_frame(200, seed=5)
    target = "label" if task_type == "classification" else "value"
    spec = FeatureSpec.from_dict(describe(frame, NUMBERS, target, task_type))
    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            ("model", LogisticRegression() if target == "label" else Ridge()),
        ]
    )
    pipeline.fit(frame[NUMBERS].to_numpy(), frame[target].to_numpy())
    scorer = OnnxScorer(convert(pipeline, spec), spec)
    matrix = frame[NUMBERS].to_numpy()

    def plain(rows: np.ndarray) -> np.ndarray:  # one array per input, converted a call
        (result,) = scorer.run(scorer._output, scorer.feeds(rows), None)
        scores = np.asarray(result, dtype=np.float64)
        return scores if task_type == "classification" else scores.reshape(len(rows))

    answers = []
    for size in [1, 100, 1, *range(2, 2 + BOUND_SIZES), 100]:  # more sizes than are kept
        rows = matrix[size : 2 * size]
        answer = scorer.scores(rows)
        assert answer.shape == plain(rows).shape
        np.testing.assert_array_equal(answer, plain(rows))
        answers.append((rows, answer))
    assert len(scorer._bound) == BOUND_SIZES
    for rows, answer in answers:  # each answer is the caller's own copy
        np.testing.assert_array_equal(answer, plain(rows))
    with scorer._lock:  # another thread's call holds the binding: this one runs the plain way
        np.testing.assert_array_equal(scorer.scores(matrix[:5]), plain(matrix[:5]))
    expected = (
        pipeline.predict_proba(matrix)
        if task_type == "classification"
        else pipeline.predict(matrix)
    )
    np.testing.assert_allclose(scorer.scores(matrix), expected, rtol=1e-5, atol=1e-5)


def test_a_forest_whose_float32_arithmetic_moves_labels_is_not_compiled() -> None:
    # Scaled in float64 by scikit-learn and in float32 by onnxruntime, values of this size land
    # on either side of a few thresholds: parity is measured, never assumed.
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"x": rng.normal(size=4000) * 1000 + 12345.678, "label": rng.integers(0, 2, 4000)}
    )
    spec = describe(frame, ["x"], "label", "classification")
    model = RandomForestClassifier(n_estimators=5, random_state=0)
    pipeline = Pipeline([("scale", StandardScaler()), ("model", model)])
    pipeline.fit(model_input(frame, spec), frame["label"].to_numpy())
    scorer = OnnxScorer(convert(pipeline, FeatureSpec.from_dict(spec)), FeatureSpec.from_dict(spec))
    measured = parity(sklearn_scores(pipeline, frame, spec), scorer.scores(to_matrix(frame, spec)))
    assert measured.labels_equal is not None and 0.99 < measured.labels_equal < 1.0
    assert measured.max_difference > 0.1 and not measured.within(1e-4)
    assert measured.describe() == (
        f"{measured.labels_equal:.2%} of labels equal, largest probability difference "
        f"{measured.max_difference:.2g} on 4000 test rows"
    )


def test_a_tie_that_rounding_breaks_moves_a_label_within_the_tolerance() -> None:
    measured = parity(
        np.array([[0.5, 0.5], [0.9, 0.1]]), np.array([[0.5 - 1e-8, 0.5 + 1e-8], [0.9, 0.1]])
    )
    assert measured.labels_equal == 0.5
    assert measured.within(1e-4) and not measured.within(1e-9)


def test_regression_predictions_are_compared_relative_to_their_size() -> None:
    measured = parity(np.array([300.0, 0.5]), np.array([300.003, 0.5]))
    assert measured.labels_equal is None and measured.max_difference == pytest.approx(1e-5)
    assert parity(np.array([1.0]), np.array([np.nan])).max_difference == np.inf


def test_a_pipeline_skl2onnx_cannot_convert_says_why() -> None:
    frame = training_frame()
    spec = describe(frame, NUMBERS, "label", "classification")
    pipeline = Pipeline([("log", FunctionTransformer(np.abs)), ("model", LogisticRegression())])
    pipeline.fit(model_input(frame, spec), frame["label"].to_numpy())
    with pytest.raises(ConversionError) as error:
        convert(pipeline, FeatureSpec.from_dict(spec))
    assert str(error.value) == NOT_CONVERTIBLE


def test_the_onnx_inputs_are_one_per_feature_and_no_zipmap(tmp_path: Path) -> None:
    frame = mixed_frame()
    pipeline, spec = fitted(template_pipeline("classification"), frame, "classification")
    scorer = OnnxScorer(convert(pipeline, FeatureSpec.from_dict(spec)), FeatureSpec.from_dict(spec))
    inputs = {node.name: node.type for node in scorer.session.get_inputs()}
    assert inputs == {
        "feature_a": "tensor(float)",
        "feature_b": "tensor(float)",
        "feature_c": "tensor(float)",
        "colour": "tensor(string)",
    }
    assert [node.type for node in scorer.session.get_outputs()] == [
        "tensor(string)",
        "tensor(float)",
    ]


def test_model_runtime_forces_either_path_and_a_stale_decision_is_refused(tmp_path: Path) -> None:
    settings = save_model(tmp_path, "classification", compiled=True)
    assert load_model(settings).runtime == "onnx"
    assert (
        load_model(Settings(**{**settings.__dict__, "model_runtime": "sklearn"})).runtime
        == "sklearn"
    )
    ServingDecision("6", "onnx", "an older gate").write(settings.serving_path)
    with pytest.raises(
        ModelLoadError, match=r"decides for version 6, the model is version 7: run the gate"
    ):
        load_model(settings)
    ServingDecision("7", "onnx", "the gate").write(settings.serving_path)
    spec = json.loads(settings.features_path.read_text())
    settings.features_path.write_text(json.dumps({**spec, "classes": []}))
    with pytest.raises(ModelLoadError, match=r"features.json lists no classes: train again"):
        load_model(settings)
    plain = save_model(tmp_path / "plain", "classification")
    assert load_model(plain).runtime == "sklearn"
    with pytest.raises(
        ModelLoadError, match=r"model.onnx not found: train again to convert the model"
    ):
        load_model(Settings(**{**plain.__dict__, "model_runtime": "onnx"}))


def test_the_signature_covers_the_onnx_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers import signing_key_pair

    settings = save_model(tmp_path, "classification", compiled=True)
    private, public = signing_key_pair(tmp_path / "pair")
    monkeypatch.setenv("MODEL_SIGNING_KEY", private.read_text())
    sign_if_configured(settings.model_dir)
    signed = Settings(**{**settings.__dict__, "signing_public_key": public})
    with TestClient(create_app(signed)) as client:
        wait_ready(client)
    onnx = settings.model_dir / ONNX_FILE
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    with pytest.raises(SignatureError, match=r"model\.onnx changed after signing"):
        verify_model_signature(settings.model_dir, public)
    with TestClient(create_app(signed)) as client:
        deadline = time.monotonic() + 30
        while (ready := client.get("/health/ready")).json()["status"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert ready.status_code == 503
        assert "model.onnx changed after signing" in ready.json()["detail"]


def test_compiled_params_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("task_type: regression\n")
    assert CompiledParams.from_file(path) == CompiledParams(True, 1e-4)
    path.write_text("compiled: {enabled: false, tolerance: 0.01}\n")
    assert CompiledParams.from_file(path) == CompiledParams(False, 0.01)
    path.write_text("compiled: {tolerance: -1}\n")
    with pytest.raises(
        PipelineError,
        match=r"^params.yaml compiled.tolerance must be a number of 0 or more, not -1$",
    ):
        CompiledParams.from_file(path)


# ---- the pipeline's own steps: train (MLflow registry), the gate, then the service


def gate_line(project: Path) -> str:
    return (project / "reports" / "gate.md").read_text(encoding="utf-8").splitlines()[-1]


def test_the_gate_marks_a_version_whose_onnx_model_agrees(
    project: Path, train: Callable[[], None], task_type: str
) -> None:
    from mlflow import MlflowClient

    train()
    assert (project / "models" / "model" / ONNX_FILE).is_file()  # registered with the version
    evaluate.main()
    decision = ServingDecision.read(project / SERVING_FILE)
    assert decision is not None and (decision.model_version, decision.runtime) == ("1", "onnx")
    kind = "probability" if task_type == "classification" else "prediction"
    labels = r"100\.00% of labels equal, " if task_type == "classification" else ""
    assert re.fullmatch(
        rf"- compiled serving: version 1 is served by onnxruntime \({labels}largest {kind} difference "
        rf"[0-9.e-]+ on \d+ test rows: within params.yaml compiled.tolerance 0.0001\)",
        gate_line(project),
    ), gate_line(project)
    tags = MlflowClient().get_model_version(load_params().mlflow.model_name, "1").tags
    assert tags["serving.runtime"] == "onnx"

    # Served from a real process on 127.0.0.1: the answers are scikit-learn's, and no
    # scikit-learn, SciPy or pandas library is in its memory.
    pipeline = __import__("mlflow").sklearn.load_model(str(project / "models" / "model"))
    test = read_frame(project / "data" / "processed" / "test.csv")
    spec = json.loads((project / "models" / "features.json").read_text())
    with (service := serving_process(project)) as (url, pid):
        body = [
            dict(zip(spec["features"], row, strict=True)) for row in to_matrix(test, spec).tolist()
        ]
        answers = httpx.post(f"{url}/predict", json={"records": body}, timeout=30).json()[
            "predictions"
        ]
        single = httpx.post(f"{url}/predict", json={"record": body[0]}, timeout=30).json()
        loaded = Path(f"/proc/{pid}/maps").read_text()
    expected = sklearn_scores(pipeline, test, spec)
    np.testing.assert_allclose(
        served_scores(answers, spec.get("classes", [])), expected, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        served_scores([single], spec.get("classes", [])), expected[:1], rtol=1e-5, atol=1e-5
    )
    assert "/onnxruntime/" in loaded
    assert not re.findall(r"/(sklearn|scipy|pandas)/", loaded)
    assert (
        f"model {load_params().mlflow.model_name} version 1 is ready (onnxruntime)" in service.log
    )


@pytest.mark.parametrize(
    "task_type", ["classification"]
)  # one project is enough: the line is the same
def test_a_model_that_cannot_convert_is_served_by_scikit_learn(
    project: Path, train: Callable[[], None], task_type: str
) -> None:
    from mlflow import MlflowClient

    def build(task: str, model_params: dict[str, Any], spec: dict[str, Any]) -> Pipeline:
        estimator = LogisticRegression(max_iter=1000) if task == "classification" else Ridge()
        return Pipeline([("shift", FunctionTransformer(np.tanh)), ("model", estimator)])

    ingest(load_params().data)
    sys.modules[
        train.__module__
    ].split_data()  # the fixture's features step (tests/runtime/conftest.py)
    run_training(build)
    assert not (project / "models" / "model" / ONNX_FILE).exists()
    assert (
        json.loads((project / "models" / "registration.json").read_text())["onnx_error"]
        == NOT_CONVERTIBLE
    )
    with contextlib.suppress(
        SystemExit
    ):  # a tanh of raw features may miss the thresholds: the decision stands
        evaluate.main()
    assert gate_line(project) == (
        "- compiled serving: none, version 1 is served by scikit-learn "
        f"(skl2onnx cannot convert the pipeline: {NOT_CONVERTIBLE})"
    )
    assert (
        MlflowClient()
        .get_model_version(load_params().mlflow.model_name, "1")
        .tags["serving.runtime"]
        == "sklearn"
    )
    settings = Settings(signing_public_key=project / "none.pub")
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        assert client.app.state.serving.model.runtime == "sklearn"  # type: ignore[attr-defined]


@pytest.mark.parametrize("task_type", ["regression"])
def test_compiled_serving_can_be_turned_off(project: Path, train: Callable[[], None]) -> None:
    raw = yaml.safe_load((project / "params.yaml").read_text())
    assert raw["compiled"] == {"enabled": True, "tolerance": 0.0001}  # what the template writes
    raw["compiled"]["enabled"] = False
    (project / "params.yaml").write_text(yaml.safe_dump(raw))
    train()
    evaluate.main()
    assert gate_line(project) == (
        "- compiled serving: none, version 1 is served by scikit-learn (params.yaml compiled.enabled is false)"
    )


class serving_process:
    """`python -m mlopsify_runtime.serving` in `project` on a free port of 127.0.0.1, until ready."""

    def __init__(self, project: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.project = project

    def __enter__(self) -> tuple[str, int]:
        env = {
            **os.environ,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "MODEL_SIGNING_PUBLIC_KEY": "none.pub",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlopsify_runtime.serving"],
            cwd=self.project,
            env=env,
            stderr=subprocess.PIPE,
        )
        url, deadline = f"http://127.0.0.1:{self.port}", time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.process.stderr.read().decode()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    return url, self.process.pid
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service was not ready within 60 s"
            time.sleep(0.05)

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log = self.process.stderr.read().decode()  # type: ignore[union-attr]


def test_training_and_the_gate_import_without_the_serving_stack() -> None:
    """The training image has the pipeline's packages, not FastAPI's: converting and judging must not need them."""
    blocked = ("fastapi", "starlette", "uvicorn", "prometheus_client")
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({blocked!r}));"
        " import mlopsify_runtime.training, mlopsify_runtime.evaluate, mlopsify_runtime.compiled"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_features_whose_names_are_no_identifiers_are_fed_by_position() -> None:
    """skl2onnx renames an input "mean radius" to "mean_radius" (the default model's data)."""
    names = {
        "feature_a": "mean radius",
        "feature_b": "worst area",
        "feature_c": "c-3",
        "colour": "colour",
    }
    frame = mixed_frame().rename(columns=names)
    spec = describe(frame, list(names.values()), "label", "classification")
    pipeline = template_pipeline("classification").fit(
        model_input(frame, spec), frame["label"].to_numpy()
    )
    scorer = OnnxScorer(convert(pipeline, FeatureSpec.from_dict(spec)), FeatureSpec.from_dict(spec))
    assert [node.name for node in scorer.session.get_inputs()][:2] == ["mean_radius", "worst_area"]
    expected = pipeline.predict_proba(model_input(frame, spec))
    np.testing.assert_allclose(scorer.scores(to_matrix(frame, spec)), expected, atol=1e-5)
