"""Request validation: JSON bodies become a matrix in feature order, or one clear 4xx.

A body is either `{"record": {feature: value, ...}}` (one prediction) or
`{"records": [{...}, ...]}` (a batch). Every feature is required and no other field is
accepted. A number feature takes a JSON number within +-`max_abs_value` (booleans, strings,
NaN and Infinity are refused: out-of-range values would overflow the model); a category
feature takes a string of at most `max_string_length` characters (an unknown category is
accepted: the model's encoder handles it); a nullable feature also takes null. The body must
be UTF-8 JSON with no duplicate keys. Every refusal is an `InputError` with the one error
shape of the service (docs/runtime/serving.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import pydantic_core

from .spec import Column, FeatureSpec

MAX_REPORTED_ERRORS = 20  # enough to fix a request; a 1,000-record batch of errors would be noise
MAX_NAME_IN_ERROR = 80  # unknown field names are echoed, cut to this length


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


@dataclass(frozen=True)
class ParsedRequest:
    """Validated rows in feature order and whether the client sent a batch."""

    matrix: np.ndarray
    batch: bool


class DuplicateKeyError(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise DuplicateKeyError(f'duplicate key "{_printable(duplicate)}" in a JSON object')
    return obj


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates,
    parse_int=float,  # every number is a float: huge integers become inf and are refused as out of range
    parse_constant=float,  # NaN and Infinity parse, then fail the range check with their location
)
_EXACT_DECODER = json.JSONDecoder(object_pairs_hook=_object_without_duplicates, parse_constant=float)


def decode_json(body: bytes, exact_integers: bool = False) -> object:
    """The JSON value of `body`; 400 for anything that is not one UTF-8 JSON document.

    Numbers become floats unless `exact_integers` (a class label such as 1 must stay an int).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(400, f"the body is not UTF-8 (byte {error.start}): send UTF-8 JSON") from None
    try:
        return (_EXACT_DECODER if exact_integers else _DECODER).decode(text)
    except DuplicateKeyError as error:
        raise InputError(400, f"malformed JSON: {error}") from None
    except RecursionError:
        raise InputError(400, "malformed JSON: nested too deeply") from None
    except ValueError as error:
        raise InputError(400, f"malformed JSON: {error}") from None


def check_content_type(header: str) -> None:
    """415 unless the Content-Type is application/json (UTF-8 when a charset is given)."""
    media, _, parameters = header.partition(";")
    charset = parameters.strip().lower()
    if media.strip().lower() != "application/json" or charset not in {"", "charset=utf-8", 'charset="utf-8"'}:
        raise InputError(415, "send the body as UTF-8 JSON with Content-Type: application/json")


def _printable(name: str) -> str:
    """A client-sent name made safe to echo: cut short, lone surrogates (not UTF-8) escaped."""
    cut = name if len(name) <= MAX_NAME_IN_ERROR else name[:MAX_NAME_IN_ERROR] + "..."
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


Check = Callable[[object], str | None]  # None when the value is good, else the error type


class RequestParser:
    """Turns request bodies into matrices for one model's feature spec."""

    def __init__(self, spec: FeatureSpec, limits: Limits) -> None:
        self.spec = spec
        self.limits = limits
        self.names = spec.names
        self._name_set = set(self.names)
        self._row = itemgetter(*self.names) if len(self.names) > 1 else (lambda rec: (rec[self.names[0]],))
        self._checks: list[Check] = [self._check_for(column) for column in spec.columns]
        self._plain_numbers = all(column.kind == "number" and not column.nullable for column in spec.columns)
        self._dtype = np.float64 if spec.numeric else object

    def parse(self, body: bytes) -> ParsedRequest:
        """Validate `body`; raises `InputError` (400 or 422) that names every bad field."""
        return self._parse_fast(body) or self._parse_exact(body)

    def _parse_fast(self, body: bytes) -> ParsedRequest | None:
        """The common case, a good body, at the cost of pydantic-core's JSON parser; None for anything else.

        That parser keeps the last of duplicate keys, so a body passes only when its colons are
        exactly the keys found: every key is followed by a colon, so a duplicate key would leave
        more colons than keys (a colon inside a string also sends the body to the exact path).
        """
        try:
            payload = pydantic_core.from_json(body, allow_inf_nan=True)
        except ValueError:
            return None
        if type(payload) is not dict or len(payload) != 1:
            return None
        batch = "records" in payload
        records = payload["records"] if batch else [payload.get("record")]
        if type(records) is not list or not 0 < len(records) <= self.limits.max_batch_size:
            return None
        rows = [self._valid_row(record) for record in records]
        if None in rows or body.count(b":") != 1 + len(records) * len(self.names):
            return None
        return ParsedRequest(np.array(rows, dtype=self._dtype), batch)

    def _parse_exact(self, body: bytes) -> ParsedRequest:
        """Every body, with Python's JSON decoder: duplicate keys and every bad field are found and named."""
        payload = decode_json(body)
        if type(payload) is not dict or len(payload) != 1 or not payload.keys() & {"record", "records"}:
            raise InputError(422, 'the body must be an object with one key: "record" (one) or "records" (a batch)')
        if "record" in payload:
            return ParsedRequest(self._matrix([payload["record"]], "record"), batch=False)
        records = payload["records"]
        if type(records) is not list:
            raise InputError(422, "invalid records", [_error("records", "must be an array of records", "list_type")])
        if not records:
            raise InputError(422, "empty batch: send at least one record")
        if len(records) > self.limits.max_batch_size:
            raise InputError(422, f"batch of {len(records)} records is over the limit of {self.limits.max_batch_size}")
        return ParsedRequest(self._matrix(records, "records"), batch=True)

    def _matrix(self, records: list[object], where: str) -> np.ndarray:
        rows = [self._valid_row(record) for record in records]
        if None in rows:
            errors = [
                error
                for index, record in enumerate(records)
                for error in self._record_errors(record, where if where == "record" else f"{where}[{index}]")
            ]
            shown = errors[:MAX_REPORTED_ERRORS]
            more = f" ({len(errors)} errors, the first {len(shown)} listed)" if len(errors) > len(shown) else ""
            raise InputError(422, f"invalid {where}{more}", shown)
        return np.array(rows, dtype=self._dtype)

    def _valid_row(self, record: object) -> tuple[object, ...] | None:
        """The record's values in feature order, or None when anything is wrong (the fast path)."""
        if type(record) is not dict or record.keys() != self._name_set:
            return None
        row: tuple[object, ...] = self._row(record)
        if self._plain_numbers:
            low, high = -self.limits.max_abs_value, self.limits.max_abs_value
            for value in row:  # NaN fails both comparisons, +-inf the range; bool is neither float nor int
                kind = type(value)
                if (kind is not float and kind is not int) or not low <= value <= high:  # type: ignore[operator]
                    return None
            return row
        for check, value in zip(self._checks, row, strict=True):
            if check(value) is not None:
                return None
        return row

    def _record_errors(self, record: object, where: str) -> list[dict[str, str]]:
        """Every problem of one record, each with its location (the slow path, for refusals only)."""
        if type(record) is not dict:
            return [_error(where, "must be an object of feature values (/version lists the features)", "dict_type")]
        errors = []
        for column, check in zip(self.spec.columns, self._checks, strict=True):  # in feature order
            if column.name not in record:
                errors.append(_error(f"{where}.{column.name}", "field required", "missing"))
            elif (kind := check(record[column.name])) is not None:
                errors.append(_error(f"{where}.{column.name}", self._message(column, kind), kind))
        errors += [
            _error(
                f"{where}.{_printable(name)}", "unknown field: /version lists the model's features", "extra_forbidden"
            )
            for name in record
            if name not in self._name_set
        ]
        return errors

    def _check_for(self, column: Column) -> Check:
        limit, longest, nullable = self.limits.max_abs_value, self.limits.max_string_length, column.nullable

        def number(value: object) -> str | None:
            if value is None and nullable:
                return None
            if not isinstance(value, float):  # JSON integers were parsed as floats; true is refused
                return "number_type"
            return None if -limit <= value <= limit else "number_range"

        def category(value: object) -> str | None:
            if value is None and nullable:
                return None
            if not isinstance(value, str):
                return "string_type"
            return None if len(value) <= longest else "string_too_long"

        return number if column.kind == "number" else category

    def _message(self, column: Column, kind: str) -> str:
        null = " or null" if column.nullable else ""
        messages = {
            "number_type": f"must be a number{null}",
            "number_range": f"must be a finite number from {-self.limits.max_abs_value:g} to "
            f"{self.limits.max_abs_value:g}",
            "string_type": f"must be a string (a category){null}",
            "string_too_long": f"must be at most {self.limits.max_string_length} characters",
        }
        return messages[kind]


def _error(loc: str, msg: str, kind: str) -> dict[str, str]:
    return {"loc": loc, "msg": msg, "type": kind}


def finite_or_refuse(values: np.ndarray) -> None:
    """422 when the model produced NaN or infinity (inputs at the edge of its range)."""
    if values.dtype.kind in "fc" and not np.isfinite(values).all():
        raise InputError(
            422,
            "the model gives no finite prediction for these values: they are outside what it was trained on",
        )
