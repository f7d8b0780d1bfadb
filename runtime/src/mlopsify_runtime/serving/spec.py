"""The model's feature spec (models/features.json, written by the train step): the request contract.

The file holds `{"features": [names in model order], "target": ..., "task_type": ...}` and,
optionally, `"columns": {name: {"type": "number"} | {"type": "category", "categories": [...]}}`
(with `"nullable": true` where the training data had missing values, and `"kind"` for a
boolean, date, datetime or text column: runtime kinds.py), `"id_column"` (a column the
service accepts in a record and echoes, never a feature) and `"classes": [...]`.
A file without "columns" means every feature is a non-nullable number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ColumnKind = Literal["number", "category"]


class SpecError(ValueError):
    """models/features.json is missing a field or holds one of the wrong kind."""


@dataclass(frozen=True)
class Column:
    """One feature: a number or a category (a string; unknown categories go to the model's encoder)."""

    name: str
    kind: ColumnKind = "number"
    nullable: bool = False
    categories: tuple[str, ...] = ()
    detail: str = ""  # the column's kind beyond number and category: boolean, date, datetime, text


@dataclass(frozen=True)
class FeatureSpec:
    """The ordered features the model takes, its task type and, for a classifier, its classes."""

    columns: tuple[Column, ...]
    task_type: str
    classes: tuple[Any, ...] = ()
    id_column: str | None = None

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def numeric(self) -> bool:
        """True when every feature is a number: the model gets a float64 matrix."""
        return all(column.kind == "number" for column in self.columns)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "models/features.json") -> FeatureSpec:
        names = raw.get("features")
        if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
            raise SpecError(f"{source}: 'features' must be a non-empty list of feature names")
        if len(set(names)) != len(names):
            raise SpecError(f"{source}: 'features' lists a name twice")
        task_type = raw.get("task_type")
        if task_type not in {"classification", "regression"}:
            raise SpecError(f"{source}: 'task_type' must be classification or regression, not {task_type!r}")
        described = raw.get("columns") or {}
        if not isinstance(described, dict):
            raise SpecError(f"{source}: 'columns' must map feature names to their type")
        columns = tuple(_column(name, described.get(name, {"type": "number"}), source) for name in names)
        id_column = raw.get("id_column")
        if id_column is not None and (not isinstance(id_column, str) or id_column in names):
            raise SpecError(f"{source}: 'id_column' must be the name of a column that is not a feature")
        return cls(columns, task_type, tuple(raw.get("classes") or ()), id_column)

    @classmethod
    def from_file(cls, path: Path) -> FeatureSpec:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))

    def to_dict(self) -> dict[str, Any]:
        """The spec in the file's own form (what the OpenAPI snapshot records as `x-feature-spec`)."""
        columns: dict[str, Any] = {}
        for column in self.columns:
            entry: dict[str, Any] = {"type": column.kind}
            if column.kind == "category":
                entry["categories"] = list(column.categories)
            if column.nullable:
                entry["nullable"] = True
            if column.detail:
                entry["kind"] = column.detail
            columns[column.name] = entry
        result: dict[str, Any] = {
            "features": self.names,
            "task_type": self.task_type,
            "columns": columns,
        }
        if self.classes:
            result["classes"] = list(self.classes)
        if self.id_column:
            result["id_column"] = self.id_column
        return result


def _column(name: str, raw: object, source: str) -> Column:
    if not isinstance(raw, dict) or raw.get("type") not in {"number", "category"}:
        raise SpecError(f"{source}: column {name!r} must have type 'number' or 'category'")
    nullable = bool(raw.get("nullable", False))
    detail = str(raw.get("kind") or "")
    if raw["type"] == "number":
        return Column(name, "number", nullable, detail=detail)
    categories = raw.get("categories") or []
    if not isinstance(categories, list):
        raise SpecError(f"{source}: column {name!r} must list its categories")
    return Column(name, "category", nullable, tuple(str(category) for category in categories), detail)
