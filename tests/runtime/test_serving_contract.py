"""The service's contract: the request parser under property-based tests, the OpenAPI snapshot
command, and schemathesis with all its checks against live services on 127.0.0.1."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np
import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st
from serving_models import TOKEN, save_model
from test_monitoring import write_monitoring

from mlopsify_runtime.serving import create_app, openapi_snapshot
from mlopsify_runtime.serving.schemas import InputError, Limits, service_models
from mlopsify_runtime.serving.spec import FeatureSpec

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")

LIMITS = Limits(max_batch_size=5, max_abs_value=1e15, max_string_length=12)
NUMBERS = FeatureSpec.from_dict({"features": ["a", "b", "c"], "task_type": "classification"})
MIXED = FeatureSpec.from_dict(
    {
        "features": ["size", "colour", "age"],
        "task_type": "regression",
        "columns": {
            "size": {"type": "number"},
            "colour": {"type": "category", "categories": ["red", "blue"], "nullable": True},
            "age": {"type": "number", "nullable": True},
        },
    }
)

WITH_ID = FeatureSpec.from_dict(
    {
        "features": ["size", "colour"],
        "task_type": "classification",
        "id_column": "key",
        "columns": {"size": {"type": "number", "nullable": True}, "colour": {"type": "category"}},
    }
)

in_range = st.floats(
    min_value=-LIMITS.max_abs_value, max_value=LIMITS.max_abs_value, allow_nan=False
)
out_of_range = st.one_of(
    st.just(math.nan),
    st.just(math.inf),
    st.just(-math.inf),
    st.floats(min_value=LIMITS.max_abs_value, exclude_min=True),
    st.floats(max_value=-LIMITS.max_abs_value, exclude_max=True),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


class Parsed(NamedTuple):
    matrix: np.ndarray
    batch: bool


MODELS = {id(spec): service_models(spec, LIMITS) for spec in (NUMBERS, MIXED, WITH_ID)}


def parse(spec: FeatureSpec, body: bytes) -> Parsed:
    """What /predict does with a body: the plan of the spec (pydantic's models past the common case)."""
    parsed = MODELS[id(spec)].predict_plan.parse(body)
    return Parsed(parsed.matrix, not parsed.single)


def judged_by_pydantic(spec: FeatureSpec, body: bytes) -> tuple[list[Any], list[Any] | None, bool]:
    """What the spec's pydantic models alone make of a body: the matrix, the ids and the form."""
    models = MODELS[id(spec)]
    valid = models.predict_check.validate(body)
    if hasattr(valid, "data"):  # a table
        return models.table(valid.data).tolist(), None, False
    records = getattr(valid, "records", None)
    validated = records if records is not None else [valid.record]
    ids = models.ids(validated) if spec.id_column else None
    return models.rows(validated).tolist(), ids, records is None


def outcome(judge: Any) -> Any:
    try:
        return judge()
    except InputError as error:
        return (error.status, error.detail, error.errors)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries({"a": in_range, "b": in_range, "c": in_range}), min_size=1, max_size=5
    )
)
def test_valid_records_become_a_float_matrix_in_feature_order(
    records: list[dict[str, float]],
) -> None:
    body = encode({"records": records})
    assert MODELS[id(NUMBERS)].predict_plan.common(body) is not None  # not left to pydantic
    parsed = parse(NUMBERS, body)
    assert parsed.batch
    assert parsed.matrix.dtype == np.float64
    assert parsed.matrix.tolist() == [
        [record[name] for name in ("a", "b", "c")] for record in records
    ]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries({"a": in_range | st.integers(), "b": in_range, "c": in_range}),
        min_size=1,
    ),
    st.sampled_from([", ", ",", ",\n  "]),
    st.sampled_from([": ", ":", " : "]),
)
def test_pydantic_core_reads_numbers_as_python_does(
    records: list[dict[str, Any]], comma: str, colon: str
) -> None:
    """Any layout, any integer: the matrix holds what Python's decoder reads, or the batch is refused."""
    body = json.dumps({"records": records}, separators=(comma, colon)).encode()
    expected = [
        [float(record[name]) for name in ("a", "b", "c")] for record in json.loads(body)["records"]
    ]
    if len(records) > LIMITS.max_batch_size or any(
        abs(row[0]) > LIMITS.max_abs_value for row in expected
    ):
        with pytest.raises(InputError) as refused:
            parse(NUMBERS, body)
        assert refused.value.status == 422
        return
    assert parse(NUMBERS, body).matrix.tolist() == expected


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["a", "b", "c"]), out_of_range)
def test_values_that_could_overflow_the_model_are_refused_with_their_location(
    name: str, value: float
) -> None:
    record = {"a": 1.0, "b": 2.0, "c": 3.0, name: value}
    with pytest.raises(InputError) as refused:
        parse(NUMBERS, json.dumps({"record": record}, allow_nan=True).encode())
    assert refused.value.status == 422
    message = "must be a finite number from -1e+15 to 1e+15"
    assert refused.value.errors == [
        {"loc": f"record.{name}", "msg": message, "type": "number_range"}
    ]


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_any_json_value_is_parsed_or_refused_with_400_or_422(payload: Any) -> None:
    for body in (encode(payload), encode({"record": payload}), encode({"records": [payload]})):
        try:
            parse(MIXED, body)
        except InputError as error:
            assert error.status in {400, 422}
            json.dumps(
                error.body("id"), allow_nan=False
            ).encode()  # the error itself always serialises


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_are_parsed_or_refused_with_400_or_422(body: bytes) -> None:
    try:
        parse(NUMBERS, body)
    except InputError as error:
        assert error.status in {400, 422}


@settings(max_examples=100, deadline=None)
@given(
    st.fixed_dictionaries(
        {"size": in_range, "colour": st.none() | st.text(max_size=12), "age": st.none() | in_range}
    )
)
def test_categories_and_nullable_columns_become_an_object_matrix(record: dict[str, Any]) -> None:
    parsed = parse(MIXED, encode({"record": record}))
    assert parsed.matrix.dtype == object
    assert parsed.matrix.tolist() == [[record["size"], record["colour"], record["age"]]]


near_values = st.one_of(
    in_range,
    st.integers(),
    st.none(),
    st.booleans(),
    st.text(max_size=14),
    st.sampled_from([math.nan, math.inf, 1e16, "red", "a:b", ""]),
    st.lists(st.integers(), max_size=2),
)


def valid_value(spec: FeatureSpec, name: str) -> st.SearchStrategy[Any]:
    """What the spec's field `name` takes (the id column: a short string or an integer)."""
    if name == spec.id_column:
        return st.text(max_size=LIMITS.max_string_length) | st.integers(-(2**40), 2**40)
    column = next(column for column in spec.columns if column.name == name)
    valid = (
        in_range | st.integers(-(10**15), 10**15)
        if column.kind == "number"
        else st.text(max_size=LIMITS.max_string_length)
    )
    return (valid | st.none()) if column.nullable else valid


def near_records(spec: FeatureSpec) -> st.SearchStrategy[dict[str, Any]]:
    """Records of the spec's fields, mostly valid: now and then a wrong value, a field left
    out or an unknown field."""
    fields = [*spec.names, *([spec.id_column] if spec.id_column else [])]
    values = {name: st.one_of(*[valid_value(spec, name)] * 6, near_values) for name in fields}
    left_out = st.one_of(
        *[st.just(frozenset[str]())] * 4,
        st.sets(st.sampled_from(fields), max_size=1).map(frozenset),
    )
    unknown = st.dictionaries(st.sampled_from(["other", "a", "size"]), near_values, max_size=1)

    def record(
        values: dict[str, Any], dropped: frozenset[str], more: dict[str, Any]
    ) -> dict[str, Any]:
        return {**{key: value for key, value in values.items() if key not in dropped}, **more}

    return st.builds(
        record, st.fixed_dictionaries(values), left_out, st.one_of(*[st.just({})] * 4, unknown)
    )


def near_tables(spec: FeatureSpec) -> st.SearchStrategy[dict[str, Any]]:
    """Tables of the spec's features, mostly valid: now and then other columns, a wrong value, a
    row of another length, a row that is no array, or a key more."""
    names = spec.names
    columns = st.one_of(*[st.just(names)] * 6, st.just(names[::-1]), st.just(names[:-1]))
    value_lists = st.tuples(
        *(st.one_of(*[valid_value(spec, name)] * 6, near_values) for name in names)
    )
    rows = st.one_of(
        *[value_lists.map(list)] * 6, value_lists.map(lambda row: [*row, 1]), near_values
    )
    more = st.one_of(
        *[st.just({})] * 4,
        st.dictionaries(st.sampled_from(["record", "x"]), near_values, max_size=1),
    )
    return st.builds(
        lambda columns, data, more: {"columns": columns, "data": data, **more},
        columns,
        st.lists(rows, max_size=LIMITS.max_batch_size + 1),
        more,
    )


def near_bodies(spec: FeatureSpec) -> st.SearchStrategy[Any]:
    records = near_records(spec)
    return st.one_of(
        near_tables(spec),
        st.builds(lambda record: {"record": record}, records),
        st.builds(lambda batch: {"records": batch}, st.lists(records, max_size=3)),
        st.builds(
            lambda batch: {"records": batch}, st.lists(records, min_size=LIMITS.max_batch_size + 1)
        ),
        json_values,
    )


def valid_records(spec: FeatureSpec) -> st.SearchStrategy[list[dict[str, Any]]]:
    fields = [*spec.names, *([spec.id_column] if spec.id_column else [])]
    return st.lists(
        st.fixed_dictionaries({name: valid_value(spec, name) for name in fields}),
        min_size=1,
        max_size=LIMITS.max_batch_size,
    )


@pytest.mark.parametrize("form", ["records", "table"])
@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([NUMBERS, MIXED, WITH_ID]).flatmap(
        lambda spec: st.tuples(st.just(spec), valid_records(spec))
    )
)
def test_valid_bodies_are_read_by_the_plan_alone_as_the_models_read_them(
    form: str, spec_and_records: tuple[FeatureSpec, list[dict[str, Any]]]
) -> None:
    spec, records = spec_and_records
    rows = [[record[name] for name in spec.names] for record in records]
    body = encode(
        {"records": records} if form == "records" else {"columns": spec.names, "data": rows}
    )
    parsed = MODELS[id(spec)].predict_plan.common(body)
    if any(
        isinstance(value, str) and ":" in value for record in records for value in record.values()
    ):
        return  # a colon inside a string: left to the models, which tell it from a duplicate key
    assert parsed is not None
    assert (parsed.matrix.tolist(), parsed.ids, parsed.single) == judged_by_pydantic(spec, body)
    if form == "table":  # the same matrix as the same records give
        assert parsed.matrix.tolist() == parse(spec, encode({"records": records})).matrix.tolist()


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([NUMBERS, MIXED, WITH_ID]).flatmap(
        lambda spec: st.tuples(st.just(spec), near_bodies(spec))
    ),
    st.sampled_from([(", ", ": "), (",", ":")]),
)
def test_the_plan_accepts_and_refuses_exactly_as_the_pydantic_models_do(
    spec_and_payload: tuple[FeatureSpec, Any], separators: tuple[str, str]
) -> None:
    """Same matrix, ids and form, or the same status, detail and errors: the plan only goes faster."""
    spec, payload = spec_and_payload
    body = json.dumps(payload, separators=separators, allow_nan=True).encode()
    plan = MODELS[id(spec)].predict_plan

    def planned() -> tuple[list[Any], list[Any] | None, bool]:
        parsed = plan.parse(body)
        return parsed.matrix.tolist(), parsed.ids, parsed.single

    assert outcome(planned) == outcome(lambda: judged_by_pydantic(spec, body))


@pytest.mark.parametrize(
    "body",
    [
        b'{"columns": ["a", "b", "c"], "data": [[1, 2, true]]}',
        b'{"columns": ["a", "b", "c"], "data": [[1, 2, null]]}',
        b'{"columns": ["a", "b", "c"], "data": [[1, 2, "3"]]}',
        b'{"columns": ["a", "b", "c"], "data": [[1, 2, [3]]]}',
        b'{"columns": ["a", "b", "c"], "data": [[1, 2, {}]]}',
        b'{"columns": ["a", "b", "c"], "data": [[1, 2, 3]], "data": [[1, 2, 3]]}',
        b'{"columns": ["a", "b", "c"], "data": [[1, 2, 3]], "x": [1]}',
        b'{"columns": ["\\u0061", "b", "c"], "data": [[1, 2, true]]}',
        b'{"data": [[1, 2, true]], "columns": ["a", "b", "c"]}',
        b'{"records": [{"a": 1, "b": 2, "c": false}]}',
        b'{"record": {"a": 1, "b": 2, "c": [3]}}',
    ],
)
def test_numbers_read_without_a_type_per_value_still_refuse_every_other_value(body: bytes) -> None:
    """The plan reads a numeric spec's body in one conversion when its only strings are its keys:
    a boolean, a null, a string, an array or an object in a value still goes to the models."""
    assert MODELS[id(NUMBERS)].predict_plan.plain
    assert MODELS[id(NUMBERS)].predict_plan.common(body) is None
    with pytest.raises(InputError):
        parse(NUMBERS, body)


def test_a_table_of_numbers_is_read_by_the_plan_in_either_key_order() -> None:
    plan = MODELS[id(NUMBERS)].predict_plan
    for body in (
        b'{"columns": ["a", "b", "c"], "data": [[1, -2.5e3, 3], [4, 5, 6E-2]]}',
        b'{ "data" : [ [1,-2.5e3,3] ,[4,5,6E-2] ] , "columns":["a","b","c"]}',
    ):
        parsed = plan.common(body)
        assert parsed is not None
        assert parsed.matrix.tolist() == [[1.0, -2500.0, 3.0], [4.0, 5.0, 0.06]]


def test_the_plan_reads_ids_and_missing_values_without_pydantic() -> None:
    body = b'{"records": [{"size": 1, "colour": "red", "key": "k1"}, {"size": null, "colour": "", "key": 7}]}'
    parsed = MODELS[id(WITH_ID)].predict_plan.common(body)
    assert parsed is not None
    assert (parsed.matrix.tolist(), parsed.ids, parsed.single) == (
        [[1.0, "red"], [None, ""]],
        ["k1", 7],
        False,
    )


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (
            b'{"record": {"a": 1, "a": 2, "b": 3, "c": 4}}',
            400,
            'malformed JSON: duplicate key "a" in a JSON object',
        ),
        (
            b'{"record": {"a": 1, "b": 2, "b"\n : 2, "c": 4}}',
            400,
            'malformed JSON: duplicate key "b" in a JSON object',
        ),
        (
            b'{"records": [{"a": 1, "b": 2, "c": 3}], "records": []}',
            400,
            'malformed JSON: duplicate key "records" in a JSON object',
        ),
        (
            b'{"record": {"a": 1, "b": 2, "c": "\xff"}}',
            400,
            "the body is not UTF-8 (byte 34): send UTF-8 JSON",
        ),
        (b"[" * 100_000 + b"]" * 100_000, 400, "malformed JSON: nested too deeply"),
        (b'{"record": {"a": 1e306, "b": 2, "c": 3}}', 422, "invalid record"),
        (b'{"record": {"a": ' + b"9" * 5000 + b', "b": 2, "c": 3}}', 422, "invalid record"),
        (b'{"record": {"a": true, "b": 2, "c": 3}}', 422, "invalid record"),
        (b'{"records": [{"a": 1, "b": 2, "c": 3}, 7]}', 422, "invalid records"),
    ],
)
def test_hostile_bodies_get_one_clear_4xx(body: bytes, status: int, detail: str) -> None:
    with pytest.raises(InputError) as refused:
        parse(NUMBERS, body)
    assert (refused.value.status, refused.value.detail) == (status, detail)


def test_the_snapshot_command_writes_the_document_and_checks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m mlopsify_runtime.serving.openapi_snapshot [--check]` in a project's directory."""
    monkeypatch.chdir(tmp_path)
    assert openapi_snapshot.main([]) == 1
    assert (
        "models/features.json is missing: run the pipeline (make pipeline) first"
        in capsys.readouterr().err
    )
    save_model(tmp_path, "classification")
    assert openapi_snapshot.main(["--check"]) == 1
    assert (
        "docs/openapi.json is out of date: run `make openapi` and commit it"
        in capsys.readouterr().err
    )
    assert openapi_snapshot.main([]) == 0
    assert capsys.readouterr().out == "wrote docs/openapi.json\n"
    assert openapi_snapshot.main(["--check"]) == 0
    written = json.loads((tmp_path / "docs/openapi.json").read_text(encoding="utf-8"))
    spec = FeatureSpec.from_file(tmp_path / "models/features.json")
    assert written["info"]["x-feature-spec"] == spec.to_dict()
    assert written["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer"}
    }
    assert "/feedback" in written["paths"]  # the snapshot describes a monitored service
    (tmp_path / "docs/openapi.json").write_text("{}", encoding="utf-8")
    assert openapi_snapshot.main(["--check"]) == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


VARIANTS = {  # name: (task type, bearer token, monitored)
    "classification-token-monitored": ("classification", TOKEN, True),
    "regression-open": ("regression", "", False),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Live services on 127.0.0.1 (uvicorn threads), one per variant."""
    servers, urls = [], {}
    for name, (task_type, token, monitored) in VARIANTS.items():
        root = tmp_path_factory.mktemp(name)
        settings = replace(save_model(root, task_type), api_token=token)
        if monitored:
            settings = replace(settings, monitoring_file=write_monitoring(root, task_type))
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
        urls[name] = f"http://127.0.0.1:{port}"
    for url in urls.values():
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{url} did not become ready"
            time.sleep(0.05)
    yield urls
    for server in servers:
        server.should_exit = True


@pytest.mark.slow  # 20 to 40 s a variant
@pytest.mark.skipif(sys.version_info < (3, 11), reason="schemathesis 4 needs Python 3.11 or newer")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_schemathesis_finds_no_failure(
    served: dict[str, str], variant: str, tmp_path: Path
) -> None:
    """Every check of schemathesis (status codes, schemas, content types, auth, negative data) passes."""
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{served[variant]}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "60",
        "--seed",
        "1",
        "--workers",
        "1",
        "--no-color",
    ]
    if VARIANTS[variant][1]:
        command += ["-H", f"Authorization: Bearer {TOKEN}"]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
