"""The OpenAPI document of the service, built from the model's feature spec: the contract.

Every route, request body (single and batch forms with their limits, an example), response
and error (one shape for every 4xx and 5xx) is written here, so that a client generator, an
API gateway or a fuzzer gets the exact rules the request parser applies.

The generated project keeps a snapshot of it in git, docs/openapi.json (openapi_snapshot.py).
"""

from __future__ import annotations

import json
from typing import Any

from .settings import Settings
from .spec import Column, FeatureSpec

API_VERSION = "1"
JSON = "application/json"

ERROR_STATUSES = {
    "400": "Malformed body: not UTF-8, not JSON, duplicate keys or nested too deeply.",
    "401": "Missing or wrong bearer token (when the service has API_TOKEN).",
    "404": "No such route, or (POST /feedback) a request id the service does not hold.",
    "405": "Method not allowed on this route.",
    "413": "Body over MAX_BODY_BYTES.",
    "415": "Content-Type is not application/json (UTF-8).",
    "422": "Valid JSON that breaks the schema, or values outside what the model can predict for.",
    "500": "A fault of the service: the request id is in its log.",
    "503": "The model is not loaded yet (retry when /health/ready answers 200).",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: str) -> dict[str, Any]:
    return {status: _json(_ref("Error"), ERROR_STATUSES[status]) for status in statuses}


def column_schema(column: Column, settings: Settings) -> dict[str, Any]:
    """JSON schema of one feature value, with the bounds the parser applies."""
    if column.kind == "number":
        schema: dict[str, Any] = {
            "type": ["number", "null"] if column.nullable else "number",
            "minimum": -settings.max_abs_value,
            "maximum": settings.max_abs_value,
        }
    else:
        schema = {"type": ["string", "null"] if column.nullable else "string", "maxLength": settings.max_string_length}
        if column.categories:
            schema["examples"] = list(column.categories)
            schema["description"] = "A category; values the model was not trained on are accepted."
    return schema


def example_record(spec: FeatureSpec) -> dict[str, Any]:
    return {
        column.name: (column.categories[0] if column.categories else "a") if column.kind == "category" else 1.0
        for column in spec.columns
    }


def _prediction_schema(spec: FeatureSpec) -> dict[str, Any]:
    if spec.task_type == "regression":
        return {"type": "number", "description": "The predicted value."}
    if spec.classes:
        return {"enum": list(spec.classes), "description": "The predicted class."}
    return {"type": ["integer", "number", "string", "boolean"], "description": "The predicted class."}


def schemas(spec: FeatureSpec, settings: Settings, with_feedback: bool) -> dict[str, Any]:
    """The components of the document."""
    record = {
        "type": "object",
        "description": "One record: every feature of the model (GET /version lists them), nothing else.",
        "properties": {column.name: column_schema(column, settings) for column in spec.columns},
        "required": spec.names,
        "additionalProperties": False,
    }
    prediction: dict[str, Any] = {
        "type": "object",
        "properties": {
            "request_id": {"type": "string", "description": "32 hex characters; POST /feedback refers to it."},
            "prediction": _prediction_schema(spec),
        },
        "required": ["request_id", "prediction"],
    }
    if spec.task_type == "classification":
        prediction["properties"]["probabilities"] = {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "description": "Probability of each class, keyed by the class as text.",
        }
    meta = {"model_name": {"type": "string"}, "model_version": {"type": "string"}}
    result: dict[str, Any] = {
        "Record": record,
        "SingleRequest": {
            "type": "object",
            "properties": {"record": _ref("Record")},
            "required": ["record"],
            "additionalProperties": False,
        },
        "BatchRequest": {
            "type": "object",
            "properties": {
                "records": {
                    "type": "array",
                    "items": _ref("Record"),
                    "minItems": 1,
                    "maxItems": settings.max_batch_size,
                }
            },
            "required": ["records"],
            "additionalProperties": False,
        },
        "Prediction": prediction,
        "SingleResponse": {
            "allOf": [_ref("Prediction")],
            "type": "object",
            "properties": meta,
            "required": ["request_id", "prediction", "model_name", "model_version"],
        },
        "BatchResponse": {
            "type": "object",
            "properties": {"predictions": {"type": "array", "items": _ref("Prediction")}, **meta},
            "required": ["predictions", "model_name", "model_version"],
        },
        "Error": {
            "type": "object",
            "description": "Every error of the service has this shape.",
            "properties": {
                "detail": {"type": "string", "description": "What went wrong and what to do, in one line."},
                "errors": {
                    "type": "array",
                    "description": "One entry per bad field (422), else empty.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "loc": {"type": "string"},
                            "msg": {"type": "string"},
                            "type": {"type": "string"},
                        },
                        "required": ["loc", "msg", "type"],
                    },
                },
                "request_id": {"type": "string", "description": "Also in the service's log for a 5xx."},
            },
            "required": ["detail", "errors", "request_id"],
        },
        "Health": {
            "type": "object",
            "properties": {
                "status": {"enum": ["alive", "ready", "loading", "failed"]},
                "detail": {"type": ["string", "null"]},
            },
            "required": ["status"],
        },
        "Version": {
            "type": "object",
            "properties": {
                **meta,
                "run_id": {"type": "string"},
                "git_commit": {"type": "string"},
                "trained_at": {"type": "number", "description": "Seconds since the epoch, UTC."},
                "task_type": {"enum": ["classification", "regression"]},
                "features": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["model_name", "model_version", "run_id", "git_commit", "trained_at", "task_type", "features"],
        },
    }
    if with_feedback:
        actual = (
            {"type": "number", "minimum": -settings.max_abs_value, "maximum": settings.max_abs_value}
            if spec.task_type == "regression"
            else {"enum": list(dict.fromkeys([*spec.classes, *(str(label) for label in spec.classes)]))}
            if spec.classes
            else {"type": ["integer", "number", "string"]}
        )
        result["Feedback"] = {
            "type": "object",
            "properties": {
                "request_id": {"type": "string", "minLength": 1, "maxLength": 64},
                "actual": {**actual, "description": "The true class (classification) or value (regression)."},
            },
            "required": ["request_id", "actual"],
            "additionalProperties": False,
        }
        result["FeedbackResponse"] = {
            "type": "object",
            "properties": {"request_id": {"type": "string"}, "prediction": {}, "actual": {}},
            "required": ["request_id", "prediction", "actual"],
        }
    return result


def paths(spec: FeatureSpec, settings: Settings, with_feedback: bool) -> dict[str, Any]:
    secured: list[dict[str, list[str]]] = [{"bearer": []}] if settings.api_token else []
    common = ("404", "405", "500")
    example = example_record(spec)
    predict = {
        "post": {
            "summary": "Predict one record or a batch",
            "description": f"Send one record, or a batch of 1 to {settings.max_batch_size} records; "
            "every prediction carries its own request_id.",
            "operationId": "predict",
            "security": secured,
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {
                        "schema": {"oneOf": [_ref("SingleRequest"), _ref("BatchRequest")]},
                        "examples": {
                            "single": {"value": {"record": example}},
                            "batch": {"value": {"records": [example, example]}},
                        },
                    }
                },
            },
            "responses": {
                "200": _json(
                    {"oneOf": [_ref("SingleResponse"), _ref("BatchResponse")]},
                    "A prediction (single form) or one per record, in order (batch form).",
                ),
                **_errors("400", "401", *common, "413", "415", "422", "503"),
            },
        }
    }
    health = {
        "200": _json(_ref("Health"), "Healthy."),
        "503": _json(_ref("Health"), "Not (or no longer) able to serve."),
        **_errors(*common),
    }
    result: dict[str, Any] = {
        "/predict": predict,
        "/health/live": {"get": {"summary": "Liveness", "operationId": "live", "responses": health}},
        "/health/ready": {"get": {"summary": "Readiness", "operationId": "ready", "responses": health}},
        "/version": {
            "get": {
                "summary": "The served model",
                "operationId": "version",
                "responses": {"200": _json(_ref("Version"), "Name, version and features."), **_errors(*common, "503")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "The text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(*common),
                },
            }
        },
    }
    if with_feedback:
        result["/feedback"] = {
            "post": {
                "summary": "Ground truth for an earlier prediction",
                "operationId": "feedback",
                "security": secured,
                "requestBody": {"required": True, "content": {JSON: {"schema": _ref("Feedback")}}},
                "responses": {
                    "200": _json(_ref("FeedbackResponse"), "Paired with its prediction."),
                    **_errors("400", "401", *common, "413", "415", "422", "503"),
                },
            }
        }
    return result


def document(spec: FeatureSpec, settings: Settings, with_feedback: bool) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document of the service for `spec`."""
    components: dict[str, Any] = {"schemas": schemas(spec, settings, with_feedback)}
    if settings.api_token:
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": settings.model_name,
            "version": API_VERSION,
            "summary": "Predictions of the model, with health, version and Prometheus metrics.",
            "x-feature-spec": spec.to_dict(),
        },
        "paths": paths(spec, settings, with_feedback),
        "components": components,
    }


def render(doc: dict[str, Any]) -> str:
    """The document as the snapshot file holds it (stable key order)."""
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
