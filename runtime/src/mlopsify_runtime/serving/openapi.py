"""What the OpenAPI document of the service says besides its schemas, and how its snapshot is written.

FastAPI writes the document from the routes and the request and response models of schemas.py
(app.py declares them); this module holds the texts it adds: the API version, the summary and
the meaning of each error status (one shape for every 4xx and 5xx).

The generated project keeps a snapshot of it in git, docs/openapi.json (openapi_snapshot.py).
"""

from __future__ import annotations

import json
from typing import Any

API_VERSION = "1"
SUMMARY = "Predictions of the model, with health, version and Prometheus metrics."

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


def render(doc: dict[str, Any]) -> str:
    """The document as the snapshot file holds it (stable key order)."""
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
