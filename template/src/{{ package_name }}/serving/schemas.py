"""Request validation: JSON bodies become a float matrix in feature order, or a clear 4xx.

A body is either `{"record": {feature: number, ...}}` (one prediction) or
`{"records": [{...}, ...]}` (a batch). Every feature is required, no other field is
accepted, values must be finite JSON numbers (booleans and strings are refused).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter
from typing import Annotated, Any

import numpy as np
import pydantic_core
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]


@dataclass
class InputError(Exception):
    """A request the service refuses: HTTP status, one-line detail, per-field errors."""

    status: int
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "errors": self.errors}


@dataclass(frozen=True)
class ParsedRequest:
    """Validated rows in feature order and whether the client sent a batch."""

    matrix: np.ndarray
    batch: bool


def _location(loc: tuple[int | str, ...], prefix: str) -> str:
    text = prefix
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _field_errors(error: ValidationError, prefix: str) -> list[dict[str, str]]:
    return [
        {"loc": _location(tuple(item["loc"]), prefix), "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False, include_input=False)
    ]


class RequestParser:
    """Turns request bodies into matrices for one model's feature list."""

    def __init__(self, features: list[str], max_batch_size: int) -> None:
        self.features = features
        self.max_batch_size = max_batch_size
        make_record: Any = TypedDict  # a record type built at run time from the feature list
        record = make_record("Record", {name: FiniteNumber for name in features})
        record.__pydantic_config__ = ConfigDict(extra="forbid")
        self._record: TypeAdapter[dict[str, float]] = TypeAdapter(record)
        self._records: TypeAdapter[list[dict[str, float]]] = TypeAdapter(list[record])  # type: ignore[valid-type]
        self._row = itemgetter(*features) if len(features) > 1 else (lambda rec: (rec[features[0]],))

    def record_schema(self) -> dict[str, Any]:
        """JSON schema of one record (for the OpenAPI document)."""
        return self._record.json_schema()

    def parse(self, body: bytes) -> ParsedRequest:
        """Validate `body`; raises `InputError` with a 400 or 422 that names every bad field."""
        try:
            payload = pydantic_core.from_json(body, allow_inf_nan=True)
        except ValueError as error:
            raise InputError(400, f"malformed JSON: {error}") from None
        if not isinstance(payload, dict) or len(payload) != 1 or not payload.keys() & {"record", "records"}:
            raise InputError(
                422,
                'the body must be an object with one key: "record" (one) or "records" (a batch)',
            )
        if "record" in payload:
            try:
                rows = [self._record.validate_python(payload["record"])]
            except ValidationError as error:
                raise InputError(422, "invalid record", _field_errors(error, "record")) from None
            return ParsedRequest(self._matrix(rows), batch=False)
        records = payload["records"]
        if isinstance(records, list):
            if not records:
                raise InputError(422, "empty batch: send at least one record")
            if len(records) > self.max_batch_size:
                raise InputError(
                    422,
                    f"batch of {len(records)} records is over the limit of {self.max_batch_size}",
                )
        try:
            rows = self._records.validate_python(records)
        except ValidationError as error:
            raise InputError(422, "invalid records", _field_errors(error, "records")) from None
        return ParsedRequest(self._matrix(rows), batch=True)

    def _matrix(self, rows: list[dict[str, float]]) -> np.ndarray:
        return np.array([self._row(row) for row in rows], dtype=np.float64)
