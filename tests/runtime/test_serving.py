"""The service over every route and every bad input, on tiny models saved as training saves them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from fastapi import FastAPI
from serving_models import (
    FEATURES,
    MODEL_NAME,
    RECORD,
    TASK_TYPES,
    TOKEN,
    TestClient,
    post,
    save_model,
    training_frame,
    wait_ready,
    without_request_id,
)
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mlopsify_runtime.serving import Settings, create_app
from mlopsify_runtime.serving.app import PredictionEvent
from mlopsify_runtime.serving.model import LoadedModel, load_model
from mlopsify_runtime.spec import describe, model_input

ONE_KEY = (
    'the body must be an object with one key, "record" (one) or "records" (a batch), '
    'or two, "columns" and "data" (a table)'
)
COLUMNS = "columns must be the model's features in its order (GET /version lists them)"
NOT_A_NUMBER = {"msg": "must be a number", "type": "number_type"}
OUT_OF_RANGE = {"msg": "must be a finite number from -1e+15 to 1e+15", "type": "number_range"}
REQUIRED = {"msg": "field required", "type": "missing"}
UNKNOWN = {"msg": "unknown field: /version lists the model's features", "type": "extra_forbidden"}
NOT_AN_OBJECT = {
    "msg": "must be an object of feature values (/version lists the features)",
    "type": "dict_type",
}


def refused(detail: str, *errors: tuple[str, dict[str, str]]) -> dict[str, Any]:
    """An error body (without its request id): `detail` and one entry per (loc, error)."""
    return {"detail": detail, "errors": [{"loc": loc, **error} for loc, error in errors]}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Settings]:
    root = tmp_path_factory.mktemp("models")
    return {task: save_model(root / task, task) for task in TASK_TYPES}


@pytest.fixture(scope="module")
def client(models: dict[str, Settings]) -> Iterator[TestClient]:
    settings = replace(models["classification"], max_body_bytes=4096, max_batch_size=5)
    with TestClient(create_app(settings)) as test_client:
        wait_ready(test_client)
        yield test_client


def test_a_classifier_answers_its_class_probabilities_and_a_request_id(client: TestClient) -> None:
    response = post(client, {"record": RECORD})
    assert response.status_code == 200
    body = without_request_id(response)
    assert set(body) == {"prediction", "probabilities", "model_name", "model_version"}
    assert body["prediction"] == 1  # feature_a + feature_b > 0: the label the model learnt
    assert set(body["probabilities"]) == {"0", "1"}
    assert body["probabilities"]["1"] > 0.5
    assert sum(body["probabilities"].values()) == pytest.approx(1)
    assert (body["model_name"], body["model_version"]) == (MODEL_NAME, "7")


def test_a_regressor_answers_a_value_and_counts_it_by_bucket(models: dict[str, Settings]) -> None:
    with TestClient(create_app(models["regression"])) as client:
        wait_ready(client)
        single = without_request_id(post(client, {"record": RECORD}))
        batch = post(client, {"records": [RECORD, {**RECORD, "feature_a": 5.0}]}).json()
        text = client.get("/metrics").text
    assert set(single) == {"prediction", "model_name", "model_version"}
    assert single["prediction"] == pytest.approx(
        150 + 40 * 1.0 - 10 * 2, abs=1.0
    )  # the learnt line
    values = [item["prediction"] for item in batch["predictions"]]
    assert [type(value) for value in values] == [float, float]
    assert values[1] == pytest.approx(150 + 40 * 5.0 - 10 * 2, abs=2.0)
    assert 'model_predictions_total{outcome="le_50"} 0.0' in text
    assert 'model_predictions_total{outcome="150_200"} 2.0' in text  # 170 twice (single and batch)
    assert 'model_predictions_total{outcome="gt_300"} 1.0' in text  # 330


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_a_batch_gives_each_record_its_own_request_id_in_order(
    models: dict[str, Settings], task_type: str
) -> None:
    records = [RECORD, {**RECORD, "feature_a": -3.0, "colour": "a colour never seen"}]
    with TestClient(create_app(models[task_type])) as client:
        wait_ready(client)
        response = post(client, {"records": records})
        singles = [post(client, {"record": record}).json()["prediction"] for record in records]
    assert response.status_code == 200
    body = response.json()
    assert (body["model_name"], body["model_version"]) == (MODEL_NAME, "7")
    assert [item["prediction"] for item in body["predictions"]] == pytest.approx(singles)
    assert len({item["request_id"] for item in body["predictions"]}) == 2


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_a_table_is_answered_as_the_same_records_are(
    models: dict[str, Settings], task_type: str
) -> None:
    records = [
        RECORD,
        {**RECORD, "feature_a": -3.0, "colour": "a colour never seen"},
        {**RECORD, "feature_b": 9},
    ]
    table = {
        "columns": FEATURES,
        "data": [[record[name] for name in FEATURES] for record in records],
    }
    with TestClient(create_app(models[task_type])) as client:
        wait_ready(client)
        as_records, as_table = post(client, {"records": records}).json(), post(client, table)
    assert as_table.status_code == 200, as_table.text
    answer = as_table.json()
    assert len({item.pop("request_id") for item in answer["predictions"]}) == 3
    for item in as_records["predictions"]:
        del item["request_id"]
    assert answer == as_records


TABLE_ROW = [RECORD[name] for name in FEATURES]


def test_predict_is_answered_alike_below_the_router_and_through_it(
    models: dict[str, Settings],
) -> None:
    """ServiceMiddleware answers POST /predict itself; under a root path the router does: same answers."""
    app = create_app(models["classification"])
    bodies: list[object] = [{"record": RECORD}, {"record": {**RECORD, "feature_a": "x"}}, b"{", []]
    answers = []
    for root_path in ("", "/api"):
        with TestClient(app, root_path=root_path) as client:
            wait_ready(client)
            responses = [post(client, body, path=f"{root_path}/predict") for body in bodies]
            metrics = client.get(f"{root_path}/metrics").text
        answers.append(
            [(response.status_code, without_request_id(response)) for response in responses]
        )
        assert [response.status_code for response in responses] == [200, 422, 400, 422]
        assert 'route="/predict",status="200"' in metrics
    direct, routed = answers
    assert direct == routed


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (
            b'{"record": {"feature_a": 1',
            400,
            refused("malformed JSON: Expecting ',' delimiter: line 1 column 27 (char 26)"),
        ),
        (b"", 400, refused("malformed JSON: Expecting value: line 1 column 1 (char 0)")),
        ([RECORD], 422, refused(ONE_KEY)),
        ({}, 422, refused(ONE_KEY)),
        ({"record": RECORD, "records": [RECORD]}, 422, refused(ONE_KEY)),
        (
            {"record": {**RECORD, "feature_a": "1.0"}},
            422,
            refused("invalid record", ("record.feature_a", NOT_A_NUMBER)),
        ),
        (
            {"record": {**RECORD, "feature_a": True}},
            422,
            refused("invalid record", ("record.feature_a", NOT_A_NUMBER)),
        ),
        (
            {"record": {**RECORD, "feature_a": None}},
            422,
            refused("invalid record", ("record.feature_a", NOT_A_NUMBER)),
        ),
        (
            {"record": {"feature_a": 1.0, "feature_b": 2.0}},
            422,
            refused("invalid record", ("record.feature_c", REQUIRED), ("record.colour", REQUIRED)),
        ),
        (
            {"record": {**RECORD, "extra": 1.0}},
            422,
            refused("invalid record", ("record.extra", UNKNOWN)),
        ),
        (
            {"record": {**RECORD, "colour": 3}},
            422,
            refused(
                "invalid record",
                ("record.colour", {"msg": "must be a string (a category)", "type": "string_type"}),
            ),
        ),
        (
            {"record": {**RECORD, "colour": None}},
            422,
            refused(
                "invalid record",
                ("record.colour", {"msg": "must be a string (a category)", "type": "string_type"}),
            ),
        ),
        (
            {"record": {**RECORD, "colour": "x" * 257}},
            422,
            refused(
                "invalid record",
                (
                    "record.colour",
                    {"msg": "must be at most 256 characters", "type": "string_too_long"},
                ),
            ),
        ),
        ({"record": 5}, 422, refused("invalid record", ("record", NOT_AN_OBJECT))),
        (
            b'{"record": {"feature_a": NaN, "feature_b": 0, "feature_c": 0, "colour": "red"}}',
            422,
            refused("invalid record", ("record.feature_a", OUT_OF_RANGE)),
        ),
        (
            b'{"record": {"feature_a": Infinity, "feature_b": 0, "feature_c": 0, "colour": "red"}}',
            422,
            refused("invalid record", ("record.feature_a", OUT_OF_RANGE)),
        ),
        (
            b'{"record": {"feature_a": -1e999, "feature_b": 0, "feature_c": 0, "colour": "red"}}',
            422,
            refused("invalid record", ("record.feature_a", OUT_OF_RANGE)),
        ),
        (
            b'{"record": {"feature_a": 1e306, "feature_b": 0, "feature_c": 0, "colour": "red"}}',
            422,
            refused("invalid record", ("record.feature_a", OUT_OF_RANGE)),
        ),
        (
            b'{"record": {"feature_a": '
            + b"9" * 400
            + b', "feature_b": 0, "feature_c": 0, "colour": "red"}}',
            422,
            refused("invalid record", ("record.feature_a", OUT_OF_RANGE)),
        ),
        (
            b'{"record": {"feature_a": 1, "feature_a": 2, "feature_b": 0, "feature_c": 0, "colour": "red"}}',
            400,
            refused('malformed JSON: duplicate key "feature_a" in a JSON object'),
        ),
        (
            b'{"record": {"feature_a": "\xe9"}}',
            400,
            refused("the body is not UTF-8 (byte 26): send UTF-8 JSON"),
        ),
        (b"[" * 4000, 400, refused("malformed JSON: nested too deeply")),
        ({"records": []}, 422, refused("empty batch: send at least one record")),
        ({"records": [RECORD] * 6}, 422, refused("batch of 6 records is over the limit of 5")),
        (
            {"records": RECORD},
            422,
            refused(
                "invalid records",
                ("records", {"msg": "must be an array of records", "type": "list_type"}),
            ),
        ),
        (
            {"records": [RECORD, {**RECORD, "feature_b": "x"}]},
            422,
            refused("invalid records", ("records[1].feature_b", NOT_A_NUMBER)),
        ),
        ({"records": [RECORD, 7]}, 422, refused("invalid records", ("records[1]", NOT_AN_OBJECT))),
        (
            {"record": {"n" * 100: 1}},
            422,
            refused(
                "invalid record",
                *[(f"record.{name}", REQUIRED) for name in FEATURES],
                ("record." + "n" * 80 + "...", UNKNOWN),
            ),
        ),
        (
            {"records": [{"nope": 1}] * 5},
            422,
            refused(
                "invalid records (25 errors, the first 20 listed)",
                *[
                    error
                    for index in range(4)
                    for error in [
                        *((f"records[{index}].{name}", REQUIRED) for name in FEATURES),
                        (f"records[{index}].nope", UNKNOWN),
                    ]
                ],
            ),
        ),
        ({"columns": FEATURES[::-1], "data": [TABLE_ROW]}, 422, refused(COLUMNS)),
        ({"columns": FEATURES, "data": [TABLE_ROW], "records": []}, 422, refused(ONE_KEY)),
        ({"columns": FEATURES, "data": []}, 422, refused("empty table: send at least one row")),
        (
            {"columns": FEATURES, "data": [TABLE_ROW] * 6},
            422,
            refused("table of 6 rows is over the limit of 5"),
        ),
        (
            {
                "columns": FEATURES,
                "data": [TABLE_ROW, TABLE_ROW[:2], [*TABLE_ROW, 1], {"feature_a": 1}],
            },
            422,
            refused(
                "invalid data",
                *[
                    (f"data[{index}]", {"msg": "must be an array of 4 values", "type": "row_shape"})
                    for index in (1, 2, 3)
                ],
            ),
        ),
        (
            {
                "columns": FEATURES,
                "data": [TABLE_ROW, [True, 1.0, 1.0, "red"], [1.0, 2.0, 3.0, None]],
            },
            422,
            refused(
                "invalid data",
                ("data[1].feature_a", NOT_A_NUMBER),
                ("data[2].colour", {"msg": "must be a string (a category)", "type": "string_type"}),
            ),
        ),
        (
            {"records": [{**RECORD, "pad": "x" * 5000}]},
            413,
            refused("request body of 5096 bytes is over the limit of 4096 bytes"),
        ),
    ],
)
def test_bad_input_gets_one_exact_error_body_and_the_service_keeps_serving(
    client: TestClient, body: object, status: int, expected: dict[str, Any]
) -> None:
    response = post(client, body)
    assert response.status_code == status, response.text
    assert without_request_id(response) == expected
    assert post(client, {"record": RECORD}).status_code == 200


def test_a_streamed_body_is_cut_off_at_the_limit(client: TestClient) -> None:
    chunks = iter(
        [b'{"records": [' + b" " * 3000, b" " * 3000 + b"]}"]
    )  # chunked: no Content-Length
    response = client.post("/predict", content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert without_request_id(response) == refused("request body is over the limit of 4096 bytes")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/json; charset=utf-16", "application/x-www-form-urlencoded", ""],
)
def test_a_body_that_is_not_utf8_json_is_415(client: TestClient, content_type: str) -> None:
    body = json.dumps({"record": RECORD}).encode("utf-16" if "16" in content_type else "utf-8")
    response = client.post("/predict", content=body, headers={"content-type": content_type})
    assert response.status_code == 415
    assert without_request_id(response) == refused(
        "send the body as UTF-8 JSON with Content-Type: application/json"
    )


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", 'Application/JSON; charset="UTF-8"']
)
def test_json_with_a_utf8_charset_is_accepted(client: TestClient, content_type: str) -> None:
    response = client.post(
        "/predict", content=json.dumps({"record": RECORD}), headers={"content-type": content_type}
    )
    assert response.status_code == 200


def test_unknown_routes_and_methods_get_the_one_error_shape(client: TestClient) -> None:
    missing = client.get("/no-such-route")
    assert (missing.status_code, without_request_id(missing)) == (404, refused("Not Found"))
    wrong = client.get("/predict")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "POST")
    assert without_request_id(wrong) == refused("Method Not Allowed")


def test_a_non_finite_prediction_is_a_422(tmp_path: Path) -> None:
    """exp(800) overflows inside the model, although 800 is well within the accepted range."""
    frame = training_frame()
    numbers = ["feature_a", "feature_b", "feature_c"]
    spec = describe(frame, numbers, "value", "regression")
    exp = ColumnTransformer([("exp", FunctionTransformer(np.exp), [0, 1, 2])])
    model = make_pipeline(exp, LinearRegression()).fit(
        model_input(frame, spec), frame["feature_a"].to_numpy()
    )
    settings = save_model(tmp_path, "regression", model, features=numbers)
    record = {name: RECORD[name] for name in numbers}
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        assert post(client, {"record": record}).status_code == 200
        response = post(client, {"record": {**record, "feature_a": 800.0}})
    assert response.status_code == 422
    assert without_request_id(response) == refused(
        "the model gives no finite prediction for these values: they are outside what it was trained on"
    )


class CrashingEstimator:
    """Stands for any fault inside the service: a model whose predict raises (no real model does on demand)."""

    classes_ = np.array([0, 1])

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        raise RuntimeError("a fault of the model")


def test_a_server_fault_is_a_json_500_whose_request_id_is_in_the_log(
    models: dict[str, Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = models["classification"]
    model = load_model(settings)
    broken = LoadedModel(CrashingEstimator(), model.spec, model.info)
    with TestClient(create_app(settings, loader=lambda _: broken)) as client:
        wait_ready(client)
        response = post(client, {"record": RECORD})
        text = client.get("/metrics").text
    assert response.status_code == 500
    body = response.json()
    assert body == {
        "detail": "internal error: report the request_id",
        "errors": [],
        "request_id": body["request_id"],
    }
    assert f"request_id={body['request_id']} POST /predict failed" in caplog.text
    assert 'model_requests_total{route="/predict",status="500"} 1.0' in text


def test_health_and_version(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "alive"}
    assert client.get("/health/ready").json() == {"status": "ready"}
    version = client.get("/version").json()
    trained_at = version.pop("trained_at")
    assert abs(trained_at - time.time()) < 3600  # MLflow's utc_time_created, read as UTC
    assert version == {
        "model_name": MODEL_NAME,
        "model_version": "7",
        "run_id": "run123",
        "git_commit": "abc1234",
        "task_type": "classification",
        "features": FEATURES,
    }


def test_metrics_count_requests_predictions_and_model_info(models: dict[str, Settings]) -> None:
    with TestClient(create_app(models["classification"])) as client:
        wait_ready(client)
        post(client, {"records": [RECORD, {**RECORD, "feature_a": -3.0}]})
        post(client, {"records": []})
        client.get("/no-such-route")
        text = client.get("/metrics").text
    assert 'model_requests_total{route="/predict",status="200"} 1.0' in text
    assert 'model_requests_total{route="/predict",status="422"} 1.0' in text
    assert 'model_requests_total{route="other",status="404"} 1.0' in text
    assert 'model_request_duration_seconds_bucket{le="0.005",route="/predict"}' in text
    assert 'model_predictions_total{outcome="1"} 1.0' in text
    assert 'model_predictions_total{outcome="0"} 1.0' in text
    info = f'model_info{{git_commit="abc1234",model_name="{MODEL_NAME}",model_version="7",run_id="run123"}} 1.0'
    assert info in text
    assert "model_trained_timestamp_seconds " in text


def test_bearer_token_is_required_when_configured(models: dict[str, Settings]) -> None:
    settings = replace(models["classification"], api_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        missing = post(client, {"record": RECORD})
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert without_request_id(missing) == refused(
            "missing or invalid bearer token: send Authorization: Bearer <API_TOKEN>"
        )
        assert post(client, {"record": RECORD}, authorization="Bearer wrong").status_code == 401
        assert post(client, {"record": RECORD}, authorization=f"Basic {TOKEN}").status_code == 401
        assert post(client, {"record": RECORD}, authorization=f"Bearer {TOKEN}").status_code == 200
        assert client.get("/health/ready").status_code == 200  # probes and scrapes need no token
        assert client.get("/metrics").status_code == 200


def test_ready_only_once_the_model_is_loaded(models: dict[str, Settings]) -> None:
    release = threading.Event()

    def slow_loader(settings: Settings) -> LoadedModel:
        release.wait(10)
        return load_model(settings)

    with TestClient(create_app(models["classification"], loader=slow_loader)) as client:
        assert client.get("/health/live").status_code == 200
        assert client.get("/health/ready").json() == {"status": "loading", "detail": None}
        loading = post(client, {"record": RECORD})
        assert loading.status_code == 503
        assert without_request_id(loading) == refused(
            "the model is not loaded yet: retry when /health/ready answers 200"
        )
        assert client.get("/version").status_code == 503
        release.set()
        wait_ready(client)
        assert post(client, {"record": RECORD}).status_code == 200


def test_a_model_that_fails_to_load_fails_liveness(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path / "missing", features_path=tmp_path / "features.json")
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 10
        while client.get("/health/live").status_code == 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        live = client.get("/health/live").json()
        detail = f"ModelLoadError: {tmp_path}/missing/MLmodel not found: run the pipeline (make pipeline) first"
        assert live == {"status": "failed", "detail": detail}
        assert client.get("/health/ready").json() == {"status": "failed", "detail": detail}


def test_listeners_see_every_prediction_and_cannot_break_it(models: dict[str, Settings]) -> None:
    app = create_app(models["classification"])
    events: list[PredictionEvent] = []

    def broken(_: PredictionEvent) -> None:
        raise RuntimeError("listener bug")

    app.state.serving.prediction_listeners.extend([events.append, broken])
    with TestClient(app) as client:
        wait_ready(client)
        response = post(client, {"records": [RECORD, RECORD]})
    assert response.status_code == 200
    assert events[0].matrix.tolist() == [[1.0, -0.5, 2.0, "red"]] * 2
    assert events[0].request_ids == [item["request_id"] for item in response.json()["predictions"]]


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_the_openapi_document_describes_the_model_s_features(
    models: dict[str, Settings], task_type: str
) -> None:
    settings = replace(models[task_type], max_batch_size=5)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        document = client.get("/openapi.json").json()
        app = cast(FastAPI, client.app)
    schemas = document["components"]["schemas"]
    record = schemas["Record"]
    assert list(record["properties"]) == FEATURES
    assert record["required"] == FEATURES
    assert record["additionalProperties"] is False
    assert record["properties"]["feature_a"] == {
        "type": "number",
        "minimum": -1e15,
        "maximum": 1e15,
    }
    assert record["properties"]["colour"]["type"] == "string"
    assert record["properties"]["colour"]["maxLength"] == 256
    assert schemas["BatchRequest"]["properties"]["records"]["maxItems"] == 5
    prediction = schemas["Prediction"]["properties"]["prediction"]
    if task_type == "classification":
        assert prediction["enum"] == [0, 1]
        assert "probabilities" in schemas["Prediction"]["properties"]
    else:
        assert prediction["type"] == "number"
        assert "probabilities" not in schemas["Prediction"]["properties"]
    assert list(document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == [
        "text/plain"
    ]
    predict = document["paths"]["/predict"]["post"]["responses"]
    assert {"200", "400", "401", "413", "415", "422", "500", "503"} <= set(predict)
    assert predict["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    documentation = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    served = {getattr(route, "path", "") for route in app.routes} - documentation
    assert (
        served
        == set(document["paths"])
        == {"/predict", "/health/live", "/health/ready", "/version", "/metrics"}
    )


def test_settings_from_env_refuse_bad_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BATCH_SIZE", "lots")
    with pytest.raises(ValueError, match=r"^MAX_BATCH_SIZE='lots' is not an integer$"):
        Settings.from_env()
    monkeypatch.setenv("MAX_BATCH_SIZE", "0")
    with pytest.raises(ValueError, match=r"^MAX_BATCH_SIZE='0' must be positive$"):
        Settings.from_env()
    monkeypatch.setenv("MAX_BATCH_SIZE", "10")
    monkeypatch.setenv("MAX_ABS_VALUE", "inf")
    with pytest.raises(ValueError, match=r"^MAX_ABS_VALUE='inf' must be a positive finite number$"):
        Settings.from_env()
    monkeypatch.delenv("MAX_ABS_VALUE")
    monkeypatch.setenv("PREDICTION_BUCKETS", "3,2")
    with pytest.raises(ValueError, match="strictly increasing"):
        Settings.from_env()
    monkeypatch.setenv("PREDICTION_BUCKETS", "1,2.5")
    assert Settings.from_env().prediction_buckets == (1.0, 2.5)
    assert Settings.from_env().max_batch_size == 10


def test_the_token_can_come_from_a_mounted_secret_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("API_TOKEN", raising=False)
    monkeypatch.setenv("API_TOKEN_FILE", str(tmp_path / "token"))
    assert Settings.from_env().api_token == ""  # optional Secret not created: no auth
    (tmp_path / "token").write_text("from-the-secret\n")
    assert Settings.from_env().api_token == "from-the-secret"
    monkeypatch.setenv("API_TOKEN", "from-the-variable")
    assert Settings.from_env().api_token == "from-the-variable"


def test_monitoring_follows_the_monitoring_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On when models/monitoring.json exists or MONITORING_FILE names a file; MONITORING_FILE="" turns it off."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITORING_FILE", raising=False)
    assert Settings.from_env().monitoring_file is None  # no file: off
    (tmp_path / "models").mkdir()
    (tmp_path / "models/monitoring.json").write_text("{}")
    assert Settings.from_env().monitoring_file == Path("models/monitoring.json")
    monkeypatch.setenv("MONITORING_FILE", "")
    assert Settings.from_env().monitoring_file is None
    monkeypatch.setenv("MONITORING_FILE", "  ")
    assert Settings.from_env().monitoring_file is None
    monkeypatch.setenv("MONITORING_FILE", "/etc/monitoring/monitoring.json")
    assert Settings.from_env().monitoring_file == Path("/etc/monitoring/monitoring.json")


def test_the_model_name_comes_from_the_registration(
    models: dict[str, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings know no project: the name is registration.json's, else MODEL_NAME, else "model"."""
    for name in ("MODEL_NAME", "MODEL_VERSION"):
        monkeypatch.delenv(name, raising=False)
    assert Settings.from_env().model_name == "model"
    registered = models["classification"]
    assert load_model(registered).info.name == MODEL_NAME
    assert load_model(replace(registered, model_name="other")).info.name == MODEL_NAME
    unregistered = replace(
        registered, registration_path=registered.registration_path.with_name("missing.json")
    )
    info = load_model(unregistered).info
    assert (info.name, info.version) == ("model", "unregistered")
    monkeypatch.setenv("MODEL_NAME", "named-by-the-environment")
    assert Settings.from_env().model_name == "named-by-the-environment"


def test_without_features_json_the_routes_wait_for_the_model_s_own_feature_names(
    tmp_path: Path,
) -> None:
    """No features.json: /predict and the document answer 503 until the model, which names its features, loads."""
    frame = training_frame()
    numbers = ["feature_a", "feature_b", "feature_c"]
    spec = describe(frame, numbers, "value", "regression")
    fitted = make_pipeline(LinearRegression()).fit(
        model_input(frame, spec), frame["value"].to_numpy()
    )
    settings = save_model(tmp_path, "regression", fitted, features=numbers)
    settings.features_path.unlink()
    release = threading.Event()

    def slow_loader(settings: Settings) -> LoadedModel:
        release.wait(10)
        return load_model(settings)

    record = {name: RECORD[name] for name in numbers}
    with TestClient(create_app(settings, loader=slow_loader)) as client:
        waiting = post(client, {"record": record})
        document = client.get("/openapi.json")
        release.set()
        wait_ready(client)
        answer = post(client, {"record": record})
        paths = client.get("/openapi.json").json()["paths"]
    assert (waiting.status_code, waiting.json()["detail"]) == (
        503,
        "the model is not loaded yet: retry when /health/ready answers 200",
    )
    assert document.status_code == 503
    assert answer.status_code == 200
    assert answer.json()["prediction"] == pytest.approx(150 + 40 * 1.0 - 10 * 2, abs=1.0)
    assert "/predict" in paths
