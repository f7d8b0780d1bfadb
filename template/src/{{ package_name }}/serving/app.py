"""The FastAPI application: an app factory around one `ServingState`.

Routes: POST /predict, GET /health/live, GET /health/ready, GET /version, GET /metrics.
The model loads in a background thread at start-up: the process answers liveness at once
and readiness once the model is in memory. Other modules extend the service by adding a
router (`app.include_router`) and by subscribing to `ServingState.prediction_listeners`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .metrics import ServiceMetrics
from .model import LoadedModel, Prediction, load_model
from .schemas import InputError, RequestParser
from .settings import Settings

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class PredictionEvent:
    """What listeners (drift tracking, prediction logging) receive after each /predict."""

    request_ids: list[str]
    matrix: np.ndarray
    predictions: list[Prediction]
    model: LoadedModel


PredictionListener = Callable[[PredictionEvent], None]


@dataclass
class ServingState:
    """Everything the routes share: settings, metrics, the loaded model and extension hooks."""

    settings: Settings
    metrics: ServiceMetrics
    model: LoadedModel | None = None
    parser: RequestParser | None = None
    load_error: str | None = None
    prediction_listeners: list[PredictionListener] = field(default_factory=list)

    def install(self, model: LoadedModel) -> None:
        """Make `model` the served model (called once it is loaded)."""
        self.parser = RequestParser(model.features, self.settings.max_batch_size)
        self.metrics.model_loaded(model)
        self.model = model

    def notify(self, event: PredictionEvent) -> None:
        for listener in self.prediction_listeners:
            try:
                listener(event)
            except Exception:  # a listener must never fail a prediction
                logger.exception("prediction listener %r failed", listener)


def get_state(request: Request) -> ServingState:
    state: ServingState = request.app.state.serving
    return state


async def require_token(request: Request) -> None:
    """Bearer-token check for protected routes; a no-op when API_TOKEN is not set."""
    token = get_state(request).settings.api_token
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise InputError(401, "missing or invalid bearer token")


class MetricsMiddleware:
    """Counts requests by route template and status, and times them (pure ASGI, no body copies)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "other")  # unknown paths share one label
            self.metrics.latency.labels(path).observe(time.perf_counter() - start)
            self.metrics.requests.labels(path, str(status)).inc()


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is longer than `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InputError(413, f"request body of {declared} bytes is over the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise InputError(413, f"request body is over the limit of {limit} bytes")
    return bytes(body)


def new_request_ids(count: int) -> list[str]:
    """`count` random 128-bit ids, 32 hex characters each (one urandom call: 40x cheaper than uuid4)."""
    raw = os.urandom(16 * count).hex()
    return [raw[start : start + 32] for start in range(0, 32 * count, 32)]


def _prediction_json(request_id: str, prediction: Prediction) -> dict[str, Any]:
    item: dict[str, Any] = {"request_id": request_id, "prediction": prediction.value}
    if prediction.probabilities is not None:
        item["probabilities"] = prediction.probabilities
    return item


def create_app(
    settings: Settings | None = None,
    loader: Callable[[Settings], LoadedModel] = load_model,
) -> FastAPI:
    """The service for `settings` (default: from the environment); `loader` loads the model."""
    settings = settings or Settings.from_env()
    state = ServingState(settings=settings, metrics=ServiceMetrics(settings.prediction_buckets))

    async def load() -> None:
        try:
            model = await asyncio.to_thread(loader, settings)
        except Exception as error:
            state.load_error = f"{type(error).__name__}: {error}"
            logger.exception("model loading failed")
            return
        state.install(model)
        logger.info("model %s version %s is ready", model.info.name, model.info.version)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(load())
        yield
        task.cancel()

    app = FastAPI(
        title=settings.model_name,
        summary="Predictions of the model, with health, version and Prometheus metrics.",
        lifespan=lifespan,
    )
    app.state.serving = state
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    monitoring_file = getattr(settings, "monitoring_file", None)  # a setting of monitored projects only
    if monitoring_file is not None:
        from .monitoring import install  # drift, live quality and /feedback (docs/monitoring.md)

        install(app, state, monitoring_file)

    @app.exception_handler(InputError)
    async def input_error(_: Request, error: InputError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse(error.body(), status_code=error.status, headers=headers)

    @app.post(
        "/predict",
        dependencies=[Depends(require_token)],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "description": 'One record {"record": {feature: number}} or a batch '
                            '{"records": [{feature: number}, ...]}; /version lists the features.',
                            "type": "object",
                        }
                    }
                },
            }
        },
    )
    async def predict(request: Request) -> JSONResponse:
        """Predict one record or a batch; every prediction carries its own `request_id`."""
        model, parser = state.model, state.parser
        if model is None or parser is None:
            raise InputError(503, "the model is not loaded yet: retry when /health/ready answers 200")
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise InputError(415, "send the body as JSON with Content-Type: application/json")
        parsed = parser.parse(await read_body(request, settings.max_body_bytes))
        predictions = model.predict(parsed.matrix)
        request_ids = new_request_ids(len(predictions))
        state.metrics.count_predictions(model, predictions)
        if state.prediction_listeners:
            state.notify(PredictionEvent(request_ids, parsed.matrix, predictions, model))
        meta = {"model_name": model.info.name, "model_version": model.info.version}
        if parsed.batch:
            items = [_prediction_json(rid, p) for rid, p in zip(request_ids, predictions, strict=True)]
            return JSONResponse({"predictions": items, **meta})
        return JSONResponse({**_prediction_json(request_ids[0], predictions[0]), **meta})

    @app.get("/health/live")
    async def live() -> JSONResponse:
        """200 while the process is healthy; 503 once the model failed to load (restart me)."""
        if state.load_error:
            return JSONResponse({"status": "failed", "detail": state.load_error}, status_code=503)
        return JSONResponse({"status": "alive"})

    @app.get("/health/ready")
    async def ready() -> JSONResponse:
        """200 once the model is loaded and the service can predict; 503 before."""
        if state.model is not None:
            return JSONResponse({"status": "ready"})
        status = "failed" if state.load_error else "loading"
        return JSONResponse({"status": status, "detail": state.load_error}, status_code=503)

    @app.get("/version")
    async def version() -> JSONResponse:
        """The served model: name, version, training run, git commit, features and task type."""
        model = state.model
        if model is None:
            raise InputError(503, "the model is not loaded yet")
        info = model.info
        return JSONResponse(
            {
                "model_name": info.name,
                "model_version": info.version,
                "run_id": info.run_id,
                "git_commit": info.git_commit,
                "trained_at": info.trained_at,
                "task_type": model.task_type,
                "features": model.features,
            }
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus metrics in the text exposition format."""
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
