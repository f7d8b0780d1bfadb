"""The FastAPI application: an app factory around one `ServingState`.

Routes: POST /predict, GET /health/live, GET /health/ready, GET /version, GET /metrics (and
GET /openapi.json, the contract, with /docs to read it). The model loads in a background
thread at start-up: the process answers liveness at once and readiness once the model is in
memory. Other modules extend the service by adding a route and by subscribing to
`ServingState.prediction_listeners`.

The routes are plain Starlette endpoints: their request and response schemas live in
openapi.py (built from the model's feature spec), and the parser of schemas.py applies them,
which is several times cheaper than FastAPI's per-request dependency and model machinery.
Every error, 4xx or 5xx, has one JSON shape: `{"detail", "errors", "request_id"}`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from .metrics import ServiceMetrics
from .model import LoadedModel, Prediction, load_model
from .openapi import document
from .schemas import InputError, Limits, RequestParser, check_content_type
from .settings import Settings
from .signature import SignatureError, verify_model_signature
from .spec import FeatureSpec

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Endpoint = Callable[[Request], Awaitable[Response]]


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
    spec: FeatureSpec | None = None  # from models/features.json at start-up, for the document
    model: LoadedModel | None = None
    parser: RequestParser | None = None
    load_error: str | None = None
    monitored: bool = False
    route_paths: dict[Endpoint, str] = field(default_factory=dict)
    prediction_listeners: list[PredictionListener] = field(default_factory=list)
    _document: tuple[FeatureSpec, dict[str, Any]] | None = None

    def install(self, model: LoadedModel) -> None:
        """Make `model` the served model (called once it is loaded)."""
        settings = self.settings
        limits = Limits(settings.max_batch_size, settings.max_abs_value, settings.max_string_length)
        self.parser = RequestParser(model.spec, limits)
        self.metrics.model_loaded(model)
        self.spec = model.spec
        self.model = model

    def notify(self, event: PredictionEvent) -> None:
        for listener in self.prediction_listeners:
            try:
                listener(event)
            except Exception:  # a listener must never fail a prediction
                logger.exception("prediction listener %r failed", listener)

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document for the served model's features (cached per spec)."""
        if self.spec is None:
            raise InputError(503, "the model's features are not known yet: retry when /health/ready answers 200")
        if self._document is None or self._document[0] is not self.spec:
            self._document = (self.spec, document(self.spec, self.settings, self.monitored))
        return self._document[1]


def get_state(request: Request) -> ServingState:
    state: ServingState = request.app.state.serving
    return state


def check_token(request: Request) -> None:
    """Bearer-token check for protected routes; a no-op when API_TOKEN is not set."""
    token = get_state(request).settings.api_token
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise InputError(401, "missing or invalid bearer token: send Authorization: Bearer <API_TOKEN>")


def new_request_ids(count: int) -> list[str]:
    """`count` random 128-bit ids, 32 hex characters each (one urandom call: 40x cheaper than uuid4)."""
    raw = os.urandom(16 * count).hex()
    return [raw[start : start + 32] for start in range(0, 32 * count, 32)]


def error_response(error: InputError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The one error shape, with a fresh request id."""
    if error.status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(error.body(new_request_ids(1)[0]), status_code=error.status, headers=headers)


class ServiceMiddleware:
    """Counts and times requests by route template and status, and turns a crash into a JSON 500.

    Pure ASGI (no body copies). A crash is logged with a request id that the 500 body repeats,
    so that a client's report leads to the traceback.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, route_paths: dict[Endpoint, str]) -> None:
        self.app = app
        self.metrics = metrics
        self.route_paths = route_paths  # the route template of each endpoint, the `route` label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except Exception:
            request_id = new_request_ids(1)[0]
            logger.exception("request_id=%s %s %s failed", request_id, scope.get("method"), scope.get("path"))
            if status == 0:  # nothing was sent yet: answer in the one error shape
                response = JSONResponse(
                    InputError(500, "internal error: report the request_id").body(request_id), status_code=500
                )
                await response(scope, receive, send_with_status)
            status = 500
        finally:
            path = self.route_paths.get(scope.get("endpoint"), "other")  # type: ignore[arg-type]  # unknown paths share one label
            self.metrics.latency.labels(path).observe(time.perf_counter() - start)
            self.metrics.requests.labels(path, str(status or 500)).inc()


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


async def read_json_body(request: Request, limit: int) -> bytes:
    """`read_body` after the token and Content-Type checks that every JSON route makes."""
    check_token(request)
    check_content_type(request.headers.get("content-type", ""))
    return await read_body(request, limit)


def _prediction_json(request_id: str, prediction: Prediction) -> dict[str, Any]:
    item: dict[str, Any] = {"request_id": request_id, "prediction": prediction.value}
    if prediction.probabilities is not None:
        item["probabilities"] = prediction.probabilities
    return item


async def predict(request: Request) -> Response:
    """Predict one record or a batch; every prediction carries its own `request_id`."""
    state = get_state(request)
    check_token(request)
    model, parser = state.model, state.parser
    if model is None or parser is None:
        raise InputError(503, "the model is not loaded yet: retry when /health/ready answers 200")
    check_content_type(request.headers.get("content-type", ""))
    parsed = parser.parse(await read_body(request, state.settings.max_body_bytes))
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


async def live(request: Request) -> Response:
    """200 while the process is healthy; 503 once the model failed to load (restart me)."""
    load_error = get_state(request).load_error
    if load_error:
        return JSONResponse({"status": "failed", "detail": load_error}, status_code=503)
    return JSONResponse({"status": "alive"})


async def ready(request: Request) -> Response:
    """200 once the model is loaded and the service can predict; 503 before."""
    state = get_state(request)
    if state.model is not None:
        return JSONResponse({"status": "ready"})
    status = "failed" if state.load_error else "loading"
    return JSONResponse({"status": status, "detail": state.load_error}, status_code=503)


async def version(request: Request) -> Response:
    """The served model: name, version, training run, git commit, features and task type."""
    model = get_state(request).model
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


async def metrics(request: Request) -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(generate_latest(get_state(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)


ROUTES: list[tuple[str, Endpoint, str]] = [
    ("/predict", predict, "POST"),
    ("/health/live", live, "GET"),
    ("/health/ready", ready, "GET"),
    ("/version", version, "GET"),
    ("/metrics", metrics, "GET"),
]


def add_route(app: FastAPI, path: str, endpoint: Endpoint, method: str) -> None:
    """A plain Starlette route: openapi.py documents it, so FastAPI's schema is not used."""
    app.add_route(path, endpoint, methods=[method], include_in_schema=False)
    app.state.serving.route_paths[endpoint] = path


def add_error_handlers(app: FastAPI) -> None:
    """Every refusal, the service's own and Starlette's (404, 405), in the one error shape."""

    async def input_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, InputError)
        return error_response(error)

    async def http_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return error_response(InputError(error.status_code, str(error.detail)), error.headers)

    app.add_exception_handler(InputError, input_error)
    app.add_exception_handler(HTTPException, http_error)


def lifespan_loading(
    state: ServingState, loader: Callable[[Settings], LoadedModel]
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A lifespan that loads the model in a thread, so that liveness answers at once."""

    async def load() -> None:
        settings = state.settings
        try:  # a model from the registry (MODEL_URI, development) has no directory to check
            if not settings.model_uri:
                await asyncio.to_thread(verify_model_signature, settings.model_dir, settings.signing_public_key)
        except SignatureError as error:
            state.load_error = f"SignatureError: {error}"
            state.metrics.signature_failures.inc()
            logger.error("model refused: %s", error)  # one line, no traceback: nothing to debug
            return
        try:
            model = await asyncio.to_thread(loader, state.settings)
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

    return lifespan


def _startup_spec(settings: Settings) -> FeatureSpec | None:
    """The feature spec for the document before the model is in memory (None: wait for the model)."""
    try:
        return FeatureSpec.from_file(settings.features_path) if settings.features_path.is_file() else None
    except ValueError:  # the loader reports a bad file as a load error
        return None


def create_app(
    settings: Settings | None = None,
    loader: Callable[[Settings], LoadedModel] = load_model,
) -> FastAPI:
    """The service for `settings` (default: from the environment); `loader` loads the model."""
    settings = settings or Settings.from_env()
    state = ServingState(settings, ServiceMetrics(settings.prediction_buckets), spec=_startup_spec(settings))
    app = FastAPI(title=settings.model_name, lifespan=lifespan_loading(state, loader))
    app.state.serving = state
    app.add_middleware(ServiceMiddleware, metrics=state.metrics, route_paths=state.route_paths)
    add_error_handlers(app)
    for path, endpoint, method in ROUTES:
        add_route(app, path, endpoint, method)
    monitoring_file = getattr(settings, "monitoring_file", None)  # a setting of monitored projects only
    if monitoring_file is not None:
        from .monitoring import install  # drift, quality, /feedback: docs/runtime/monitoring.md

        install(app, state, monitoring_file)
        state.monitored = True
    app.openapi = state.openapi  # type: ignore[method-assign]
    return app
