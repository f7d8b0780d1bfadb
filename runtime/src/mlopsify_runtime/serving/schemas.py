"""The service's request and response models, built once from the model's feature spec.

A /predict body is `{"record": {feature: value, ...}}` (one prediction),
`{"records": [{...}, ...]}` (a batch), or `{"columns": [feature, ...], "data": [[value, ...], ...]}`
(a batch as a table: the features in the model's order, then one array of values per record,
what pandas' `to_json(orient="split")` and MLflow's `dataframe_split` send, a quarter of the
bytes of the same records). Every feature is required, unless it is nullable (a record may
leave it out, a table's row sends null), and no other field is accepted but the id column,
which each prediction echoes (records only: a table carries features alone). A number feature
takes a JSON number within +-`max_abs_value` (booleans, strings, NaN and Infinity are
refused: out-of-range values would overflow the model; a boolean feature is the number 0 or
1); a category feature takes a string of at most `max_string_length` characters (an unknown
category is accepted: the model's encoder handles it), and so do a date, a datetime and a
text feature; a nullable feature also takes null, or may be left out.

The models are pydantic models (`create_model`): FastAPI writes the OpenAPI document from
them and `BodyCheck` validates every body with them, so the contract and its enforcement are
one thing. What is not one UTF-8 JSON document without duplicate keys is a 400, and
`refusal` turns pydantic's errors into the one error shape of the service (docs/runtime/serving.md):
`{"detail", "errors": [{"loc", "msg", "type"}], "request_id"}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter, methodcaller
from typing import Annotated, Any, Literal, Union

import numpy as np
import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    create_model,
)

from .spec import Column, FeatureSpec

MAX_REPORTED_ERRORS = 20  # enough to fix a request; a 1,000-record batch of errors would be noise
MAX_NAME_IN_ERROR = 80  # unknown field names are echoed, cut to this length
ID_FIELD = "record_id"  # the field of the id column, whatever its name (its alias)
ONE_KEY = (
    'the body must be an object with one key, "record" (one) or "records" (a batch), '
    'or two, "columns" and "data" (a table)'
)
COLUMNS = "columns must be the model's features in its order (GET /version lists them)"


@dataclass
class InputError(Exception):
    """A request the service refuses: HTTP status, one-line detail, per-field errors."""

    status: int
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)

    def body(self, request_id: str) -> dict[str, Any]:
        return {"detail": self.detail, "errors": self.errors, "request_id": request_id}


@dataclass(frozen=True)
class Limits:
    """What a request may hold (from Settings)."""

    max_batch_size: int
    max_abs_value: float
    max_string_length: int


class DuplicateKeyError(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise DuplicateKeyError(f'duplicate key "{_printable(duplicate)}" in a JSON object')
    return obj


# Integers as floats: only the verdict is used, and int() refuses more than 4300 digits.
_DECODER = json.JSONDecoder(object_pairs_hook=_object_without_duplicates, parse_int=float, parse_constant=float)


def decode_json(body: bytes) -> object:
    """The JSON value of `body` by Python's decoder, which finds and names every fault; 400 for
    anything that is not one UTF-8 JSON document without duplicate keys."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(400, f"the body is not UTF-8 (byte {error.start}): send UTF-8 JSON") from None
    try:
        return _DECODER.decode(text)
    except DuplicateKeyError as error:
        raise InputError(400, f"malformed JSON: {error}") from None
    except RecursionError:
        raise InputError(400, "malformed JSON: nested too deeply") from None
    except ValueError as error:
        raise InputError(400, f"malformed JSON: {error}") from None


@dataclass(frozen=True)
class BodyCheck:
    """Validates a JSON body with a route's body model, in one pass of pydantic-core over the bytes.

    Python's decoder is the judge of what is not JSON (400, with its message) and of duplicate
    keys, which pydantic-core lets through keeping the last: a valid body stands only when it
    has exactly as many colons as the keys its model holds (each key is followed by one; a
    colon inside a string also sends it to Python's decoder, which then lets it through).
    """

    adapter: TypeAdapter[Any]
    keys: Callable[[Any], int]  # the number of JSON keys of a validated body
    refuse: Callable[[Sequence[Any]], InputError]  # pydantic's errors as the service's 422

    def validate(self, body: bytes) -> Any:
        try:
            value = self.adapter.validate_json(body)
        except ValidationError as error:
            errors = error.errors(include_url=False)
            decoded = decode_json(body)  # 400 for a body that is not JSON or repeats a key
            if any(item["type"] == "json_invalid" for item in errors):  # JSON that pydantic-core cannot read:
                try:  # a number past its range; Python's decoder reads it, as a float (inf: refused)
                    return self.adapter.validate_python(decoded)
                except ValidationError as again:
                    errors = again.errors(include_url=False)
            raise self.refuse(errors) from None
        if body.count(b":") != self.keys(value):
            decode_json(body)
        return value


def check_content_type(header: str) -> None:
    """415 unless the Content-Type is application/json (UTF-8 when a charset is given)."""
    media, _, parameters = header.partition(";")
    charset = parameters.strip().lower()
    if media.strip().lower() != "application/json" or charset not in {
        "",
        "charset=utf-8",
        'charset="utf-8"',
    }:
        raise InputError(415, "send the body as UTF-8 JSON with Content-Type: application/json")


def _printable(name: str) -> str:
    """A client-sent name made safe to echo: cut short, lone surrogates (not UTF-8) escaped."""
    cut = name if len(name) <= MAX_NAME_IN_ERROR else name[:MAX_NAME_IN_ERROR] + "..."
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


def _without_titles(schema: dict[str, Any]) -> None:
    """The document names features by their own names: pydantic's generated titles are noise."""
    for item in schema.get("properties", {}).values():
        item.pop("title", None)


STRICT = ConfigDict(extra="forbid", strict=True, json_schema_extra=_without_titles)  # true is not 1, "1" is not 1


# What a feature of each kind beyond number and category takes (runtime kinds.py makes its features).
KIND_DESCRIPTIONS = {
    "boolean": "A boolean, as the number 0 or 1.",
    "date": "A date as text, YYYY-MM-DD.",
    "datetime": "A date and time as text, YYYY-MM-DD hh:mm[:ss].",
    "text": "Free text; the model hashes it.",
}


def _feature_type(column: Column, limits: Limits) -> Any:
    if column.kind == "number":
        kind: Any = Annotated[
            float,
            Field(
                ge=-limits.max_abs_value,
                le=limits.max_abs_value,
                allow_inf_nan=False,
                description=KIND_DESCRIPTIONS.get(column.detail),
            ),
        ]
    elif column.detail:
        described = KIND_DESCRIPTIONS.get(column.detail)
        kind = Annotated[str, Field(max_length=limits.max_string_length, description=described)]
    else:
        kind = Annotated[
            str,
            Field(
                max_length=limits.max_string_length,
                description="A category; values the model was not trained on are accepted.",
                examples=list(column.categories) or None,
            ),
        ]
    return (kind | None) if column.nullable else kind


def _prediction_type(spec: FeatureSpec) -> Any:
    if spec.task_type == "regression":
        return Annotated[float, Field(description="The predicted value.")]
    if spec.classes:
        return Annotated[Literal[tuple(spec.classes)], Field(description="The predicted class.")]
    return Annotated[int | float | str | bool, Field(description="The predicted class.")]


def _request_kind(value: Any) -> str | None:
    """The form of a /predict body: "single", "batch", "table", or None for none (refused: ONE_KEY)."""
    if type(value) is dict:
        forms = [form for form, keys in FORM_KEYS.items() if not keys.isdisjoint(value)]
        if len(forms) == 1:
            return forms[0]
    return None


FORM_KEYS = {"single": {"record"}, "batch": {"records"}, "table": {"columns", "data"}}


class ErrorItem(BaseModel):
    loc: str
    msg: str
    type: str


class Error(BaseModel):
    """Every error of the service has this shape."""

    detail: str = Field(description="What went wrong and what to do, in one line.")
    errors: list[ErrorItem] = Field(description="One entry per bad field (422), else empty.")
    request_id: str = Field(description="Also in the service's log for a 5xx.")


class Health(BaseModel):
    status: Literal["alive", "ready", "loading", "failed"]
    detail: str | None = None


class Version(BaseModel):
    model_name: str
    model_version: str
    run_id: str
    git_commit: str
    trained_at: float = Field(description="Seconds since the epoch, UTC.")
    task_type: Literal["classification", "regression"]
    features: list[str]


@dataclass(frozen=True)
class ServiceModels:
    """The models of one feature spec: `predict_body` is what FastAPI validates a /predict body with."""

    spec: FeatureSpec
    limits: Limits
    record: type[BaseModel]
    predict_body: Any
    response: Any
    feedback: type[BaseModel]
    feedback_response: type[BaseModel]
    predict_check: BodyCheck = field(init=False)
    feedback_check: BodyCheck = field(init=False)
    predict_plan: PredictPlan = field(init=False)

    def __post_init__(self) -> None:

        def predict_keys(body: Any) -> int:
            if hasattr(body, "data"):  # a table: its two keys
                return 2
            records = getattr(body, "records", None)
            return 1 + sum(
                len(record.model_fields_set) for record in (records if records is not None else [body.record])
            )

        object.__setattr__(
            self,
            "predict_check",
            BodyCheck(TypeAdapter(self.predict_body), predict_keys, self.refusal),
        )
        object.__setattr__(
            self,
            "feedback_check",
            BodyCheck(TypeAdapter(self.feedback), lambda _: 2, self.feedback_refusal),
        )
        object.__setattr__(self, "predict_plan", PredictPlan(self))

    def rows(self, records: Sequence[BaseModel]) -> np.ndarray:
        """Validated records as the model's matrix: features in order (fields are declared in it,
        the id column after them)."""
        width = len(self.spec.columns)
        return self.table([tuple(record.__dict__.values())[:width] for record in records])

    def table(self, rows: Sequence[Sequence[Any]]) -> np.ndarray:
        """Validated rows of feature values, in feature order, as the model's matrix."""
        return np.array(rows, dtype=np.float64 if self.spec.numeric else object).reshape(len(rows), -1)

    def named(self, records: Sequence[BaseModel]) -> list[dict[str, Any]]:
        """Validated records as dicts of feature name to value (what the project's hooks take)."""
        names = self.spec.names
        return [dict(zip(names, tuple(record.__dict__.values())[: len(names)], strict=True)) for record in records]

    def ids(self, records: Sequence[BaseModel]) -> list[Any]:
        """Each record's id (None when it sent none): what each prediction echoes."""
        return [getattr(record, ID_FIELD, None) for record in records]

    def matrix(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Records as dicts (from `named`, through a hook) as the model's matrix."""
        names = self.spec.names
        return np.array(
            [[record[name] for name in names] for record in records],
            dtype=np.float64 if self.spec.numeric else object,
        )

    def refusal(self, errors: Sequence[Any]) -> InputError:
        """pydantic's validation errors of a /predict body as one 422 (or the body's shape error)."""
        return _refusal(self, errors)

    def feedback_refusal(self, errors: Sequence[Any]) -> InputError:
        """pydantic's validation errors of a /feedback body as one 422: a wrong outcome says what is right."""
        for error in errors:
            if tuple(error["loc"]) == ("actual",) and error["type"] != "missing":
                if self.spec.task_type == "regression":
                    return InputError(422, "actual must be a finite number for a regression model")
                if self.spec.classes:
                    known = sorted(str(label) for label in self.spec.classes)
                    return InputError(422, f"actual {error['input']!r} is not one of the model's classes {known}")
        items = [{"loc": _loc(error["loc"]) or "body", "msg": error["msg"], "type": error["type"]} for error in errors]
        return InputError(422, "invalid feedback body", items[:MAX_REPORTED_ERRORS])


@dataclass(frozen=True)
class Parsed:
    """A valid /predict body: its records as the model's matrix, each record's id, and its form."""

    matrix: np.ndarray  # records x features, in feature order (float64, or object with None when missing)
    ids: list[Any] | None  # with an id column: each record's id, None when it sent none
    single: bool  # {"record": ...}, else {"records": [...]}


NUMBER_TYPES = frozenset({float, int})  # JSON numbers as parsed (a bool is neither: refused)
NUMBER_TEXT = b"0123456789+-.eE,[] \t\n\r"  # what a table's rows of numbers are written with
STRING_TYPES = frozenset({str})
NONE_TYPE = type(None)


class PredictPlan:
    """Reads a /predict body with a plan made once from the feature spec: one JSON parse, then a few
    checks per feature over all records at once (the value types, their range or length).

    A body the plan does not find valid in every respect (a wrong type, a value out of range,
    a missing or unknown field, a left-out nullable feature, a duplicate key or a colon inside a
    string) goes to the pydantic models (`BodyCheck`), which accept it or give the contract's
    400 or 422 with their messages: what the service accepts and refuses is decided by the
    models that the OpenAPI document describes, the plan only finds the common case faster.
    """

    def __init__(self, models: ServiceModels) -> None:
        spec, limits = models.spec, models.limits
        self.models = models
        self.limits = limits
        names = spec.names
        self.names = names
        self.width = len(names)
        self.row: Callable[[Any], tuple[Any, ...]] = (
            itemgetter(*names) if len(names) > 1 else lambda record: (record[names[0]],)
        )
        self.id_of: Callable[[Any], Any] | None = methodcaller("get", spec.id_column) if spec.id_column else None
        self.numeric = spec.numeric
        # A numeric body whose only strings are its keys and holds no true or false has numbers
        # alone (a null becomes NaN, out of range): one conversion, without a type per value.
        self.plain = (
            spec.numeric
            and not spec.id_column
            and not any(word in name for name in names for word in ("true", "false", '"', "\\"))
        )
        # A table of numbers less NUMBER_TEXT is its keys and column names alone, in either order:
        # one translate tells that it holds no string, boolean, null or object and no third key.
        self.table_texts = (
            frozenset(
                orjson.dumps(form).translate(None, NUMBER_TEXT)
                for form in ({"columns": names, "data": []}, {"data": [], "columns": names})
            )
            if self.plain
            else frozenset()
        )
        # per feature: the JSON types it takes, and whether it is a number
        self.columns = [
            (
                (NUMBER_TYPES if column.kind == "number" else STRING_TYPES)
                | ({NONE_TYPE} if column.nullable else set()),
                column.kind == "number",
            )
            for column in spec.columns
        ]

    def parse(self, body: bytes) -> Parsed:
        """The body's records as the model's matrix; `InputError` (400, 422) for a body the contract refuses."""
        parsed = self.common(body)
        if parsed is not None:
            return parsed
        valid = self.models.predict_check.validate(body)  # refuses with the contract's messages
        if hasattr(valid, "data"):
            return Parsed(self.models.table(valid.data), None, False)
        records = getattr(valid, "records", None)
        validated = [valid.record] if records is None else records
        ids = self.models.ids(validated) if self.id_of is not None else None
        return Parsed(self.models.rows(validated), ids, records is None)

    def common(self, body: bytes) -> Parsed | None:
        """The parsed body when it is valid in the common way, else None (then pydantic judges it)."""
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(value) is not dict:
            return None
        if len(value) == 2 and value.get("columns") == self.names:
            return self._table(body, value.get("data"))
        if len(value) != 1:
            return None
        records = value.get("records")
        single = records is None
        if single:
            records = [value.get("record")]
        elif type(records) is not list or not 0 < len(records) <= self.limits.max_batch_size:
            return None
        if set(map(type, records)) != {dict}:
            return None
        try:
            rows = list(map(self.row, records))
        except KeyError:  # a missing feature (or a left-out nullable one)
            return None
        keys = self.width * len(records)
        ids = None
        if self.id_of is not None:
            ids = list(map(self.id_of, records))
            sent = [record_id for record_id in ids if record_id is not None]
            longest = self.limits.max_string_length
            if not all(type(key) is int or (type(key) is str and len(key) <= longest) for key in sent):
                return None
            keys += len(sent)
        # Every record has its features (and its id): more keys are unknown fields, more colons
        # are a duplicate key (which the JSON parser keeps once) or a colon inside a string.
        if sum(map(len, records)) != keys or body.count(b":") != keys + 1:
            return None
        matrix = self._rows(body, rows, 2 * (keys + 1))
        return None if matrix is None else Parsed(matrix, ids, single)

    def _table(self, body: bytes, rows: Any) -> Parsed | None:
        """A table's rows (its columns are the features in order), when they are valid in the common way."""
        if type(rows) is not list or not 0 < len(rows) <= self.limits.max_batch_size:
            return None
        if set(map(type, rows)) != {list} or set(map(len, rows)) != {self.width}:
            return None
        if body.translate(None, NUMBER_TEXT) in self.table_texts:
            matrix = self._floats(rows, shape=(len(rows), self.width))
        elif body.count(b":") == 2:  # no more colons: a third key repeats one (the JSON parser keeps it once)
            matrix = self._rows(body, rows, 2 * (2 + self.width))
        else:
            return None
        return None if matrix is None else Parsed(matrix, None, False)

    def _rows(self, body: bytes, rows: Sequence[Sequence[Any]], quotes: int) -> np.ndarray | None:
        """Rows of feature values as the model's matrix (`quotes`: the body's quote marks when its only strings are keys)."""
        if not self.numeric:
            return self._mixed(rows)
        if self.plain and body.count(b'"') == quotes and b"true" not in body and b"false" not in body:
            return self._floats(rows, shape=(len(rows), self.width))
        if not set(map(type, chain.from_iterable(rows))) <= NUMBER_TYPES:
            return None
        return self._floats(rows)

    def _floats(self, values: Sequence[Any], shape: tuple[int, int] | None = None) -> np.ndarray | None:
        """JSON numbers as floats, when every one is within the limit (NaN never is); rows of `shape`
        values are read one value at a time (a value that is an array fails, where numpy would nest it)."""
        try:
            if shape is None:
                floats = np.array(values, dtype=np.float64)
            else:
                flat = chain.from_iterable(values)
                floats = np.fromiter(flat, np.float64, count=shape[0] * shape[1]).reshape(shape)
        except (OverflowError, TypeError, ValueError):  # an integer beyond any float, a value that is no number
            return None
        return floats if (np.abs(floats) <= self.limits.max_abs_value).all() else None

    def _mixed(self, rows: Sequence[Sequence[Any]]) -> np.ndarray | None:
        """Rows of numbers, strings and nulls as an object matrix (numbers as floats, None when null)."""
        matrix = np.empty((len(rows), self.width), dtype=object)
        for index, (column, (types, number)) in enumerate(zip(zip(*rows, strict=True), self.columns, strict=True)):
            if not set(map(type, column)) <= types:
                return None
            present = [value for value in column if value is not None] if NONE_TYPE in types else column
            if number:
                floats = self._floats(present)
                if floats is None:
                    return None
                if len(present) == len(column):
                    matrix[:, index] = floats.tolist()
                else:  # the nulls stay None, as the models give them
                    numbers = iter(floats.tolist())
                    matrix[:, index] = [None if value is None else next(numbers) for value in column]
            else:
                if max(map(len, present), default=0) > self.limits.max_string_length:
                    return None
                matrix[:, index] = column
        return matrix


def _id_field(spec: FeatureSpec, limits: Limits, description: str) -> Any:
    kind = Annotated[str, Field(max_length=limits.max_string_length)] | int
    return (kind | None, Field(None, alias=spec.id_column, description=description))


def service_models(spec: FeatureSpec, limits: Limits) -> ServiceModels:
    """Build the models of `spec` once (at start-up, or when the model brings its spec)."""
    # Fields are f0, f1, ... with the feature names as aliases: a feature may be called anything.
    # A nullable feature may be left out (None); the id column, declared last, is never a feature.
    fields: dict[str, Any] = {
        f"f{index}": (_feature_type(column, limits), Field(None if column.nullable else ..., alias=column.name))
        for index, column in enumerate(spec.columns)
    }
    if spec.id_column:
        fields[ID_FIELD] = _id_field(spec, limits, "Identifies the record, never a feature; its prediction echoes it.")
    record = create_model(
        "Record",
        __config__=ConfigDict(**STRICT, title="Record"),
        __doc__="One record: every feature of the model (GET /version lists them), nothing else.",
        **fields,
    )
    single = create_model("SingleRequest", __config__=STRICT, record=(record, ...))
    batch = create_model(
        "BatchRequest",
        __config__=STRICT,
        records=(list[record], Field(min_length=1, max_length=limits.max_batch_size)),  # type: ignore[valid-type]
    )
    # A table's columns are the features in order, and each row a value of each feature in that order.
    columns: Any = tuple[tuple(Literal[name] for name in spec.names)]  # type: ignore[misc]
    row: Any = tuple[tuple(_feature_type(column, limits) for column in spec.columns)]  # type: ignore[misc]
    table = create_model(
        "TableRequest",
        __config__=STRICT,
        columns=(columns, Field(description="The model's features in its order (GET /version lists them).")),
        data=(
            list[row],
            Field(
                min_length=1,
                max_length=limits.max_batch_size,
                description="One array of feature values per record, in the order of columns.",
            ),
        ),
    )
    predict_body = Annotated[
        Union[  # noqa: UP007  # built at run time
            Annotated[single, Tag("single")],  # type: ignore[valid-type]
            Annotated[batch, Tag("batch")],  # type: ignore[valid-type]
            Annotated[table, Tag("table")],  # type: ignore[valid-type]
        ],
        Discriminator(_request_kind, custom_error_type="body_shape", custom_error_message=ONE_KEY),
    ]
    prediction_fields: dict[str, Any] = {
        "request_id": (str, Field(description="32 hex characters; POST /feedback refers to it.")),
        "prediction": (_prediction_type(spec), ...),
    }
    if spec.id_column:
        prediction_fields[ID_FIELD] = _id_field(spec, limits, "The record's id, as sent (absent when it sent none).")
    if spec.task_type == "classification":
        prediction_fields["probabilities"] = (
            dict[str, float],
            Field(description="Probability of each class, keyed by the class as text."),
        )
    prediction = create_model("Prediction", **prediction_fields)
    meta: dict[str, Any] = {"model_name": (str, ...), "model_version": (str, ...)}
    single_response = create_model("SingleResponse", __base__=prediction, **meta)
    batch_response = create_model("BatchResponse", predictions=(list[prediction], ...), **meta)  # type: ignore[valid-type]
    if spec.task_type == "regression":
        actual: Any = Annotated[float, Field(ge=-limits.max_abs_value, le=limits.max_abs_value, allow_inf_nan=False)]
    elif spec.classes:  # a class as it is, or as text (a label 1 may come back as "1")
        actual = Literal[tuple(dict.fromkeys([*spec.classes, *(str(label) for label in spec.classes)]))]
    else:
        actual = int | float | str
    feedback = create_model(
        "Feedback",
        __config__=STRICT,
        request_id=(str, Field(min_length=1, max_length=64)),
        actual=(
            actual,
            Field(description="The true class (classification) or value (regression)."),
        ),
    )
    feedback_response = create_model(
        "FeedbackResponse", request_id=(str, ...), prediction=(Any, ...), actual=(Any, ...)
    )
    return ServiceModels(
        spec,
        limits,
        record,
        predict_body,
        single_response | batch_response,
        feedback,
        feedback_response,
    )


def _loc(parts: Sequence[Any]) -> str:
    """("record", "feature_a") as "record.feature_a", ("records", 1) as "records[1]"."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{_printable(str(part))}" if text else str(part)
    return text


def _messages(spec: FeatureSpec, limits: Limits) -> Callable[[str, str | None, object], tuple[str, str]]:
    """The service's message and error type for pydantic's error type on a feature."""
    nullable = {column.name: column.nullable for column in spec.columns}

    def message(kind: str, feature: str | None, given: object) -> tuple[str, str]:
        null = " or null" if feature is not None and nullable.get(feature) else ""
        if kind == "float_type" and type(given) is int:  # an integer beyond any float
            kind = "finite_number"
        if kind in {"float_type", "float_parsing", "int_type"}:
            return f"must be a number{null}", "number_type"
        if kind in {"finite_number", "greater_than_equal", "less_than_equal"}:
            return (
                f"must be a finite number from {-limits.max_abs_value:g} to {limits.max_abs_value:g}",
                "number_range",
            )
        if kind == "string_type":
            return f"must be a string (a category){null}", "string_type"
        if kind == "string_too_long":
            return f"must be at most {limits.max_string_length} characters", "string_too_long"
        if kind == "missing":
            return "field required", "missing"
        if kind == "extra_forbidden":
            return "unknown field: /version lists the model's features", "extra_forbidden"
        if kind in {"model_type", "model_attributes_type", "dict_type"}:
            return "must be an object of feature values (/version lists the features)", "dict_type"
        return kind, kind

    return message


def _refusal(models: ServiceModels, errors: Sequence[Any]) -> InputError:
    message = _messages(models.spec, models.limits)
    items: list[dict[str, str]] = []
    where = "record"
    for error in errors:
        loc = list(error["loc"])
        if loc[:1] == ["body"]:
            loc = loc[1:]
        if loc[:1] in (["single"], ["batch"], ["table"]):  # the union's tag
            loc = loc[1:]
        if not loc or (len(loc) == 1 and error["type"] == "extra_forbidden"):
            return InputError(422, ONE_KEY)
        where = str(loc[0])
        if where == "columns":
            return InputError(422, COLUMNS)
        if where == "data":
            if len(loc) == 1:
                if error["type"] in ("too_short", "too_long"):
                    return _size_refusal(error, models.limits, "table", "rows")
                items.append({"loc": "data", "msg": "must be an array of rows", "type": "list_type"})
                continue
            if len(loc) == 2 or error["type"] == "missing":  # a row that is not an array of one value per column
                width = len(models.spec.columns)
                item = {"loc": _loc(loc[:2]), "msg": f"must be an array of {width} values", "type": "row_shape"}
                if item not in items:
                    items.append(item)
                continue
            loc = [*loc[:2], models.spec.names[loc[2]]]  # the value's feature by name: data[3].age
        if loc == ["records"]:
            if error["type"] in ("too_short", "too_long"):
                return _size_refusal(error, models.limits, "batch", "records")
            items.append({"loc": "records", "msg": "must be an array of records", "type": "list_type"})
            continue
        feature = str(loc[-1]) if len(loc) == (2 if where == "record" else 3) else None
        msg, kind = message(error["type"], feature, error.get("input"))
        items.append({"loc": _loc(loc), "msg": msg, "type": kind})
    shown = items[:MAX_REPORTED_ERRORS]
    more = f" ({len(items)} errors, the first {len(shown)} listed)" if len(items) > len(shown) else ""
    return InputError(422, f"invalid {where}{more}", shown)


def _size_refusal(error: Any, limits: Limits, form: str, unit: str) -> InputError:
    """An empty batch or table, or one over the limit."""
    if error["type"] == "too_short":
        return InputError(422, f"empty {form}: send at least one {unit[:-1]}")
    size = error.get("ctx", {}).get("actual_length")
    return InputError(422, f"{form} of {size} {unit} is over the limit of {limits.max_batch_size}")


def finite_or_refuse(values: np.ndarray) -> None:
    """422 when the model produced NaN or infinity (inputs at the edge of its range)."""
    if values.dtype.kind in "fc" and not np.isfinite(values).all():
        raise InputError(
            422,
            "the model gives no finite prediction for these values: they are outside what it was trained on",
        )
