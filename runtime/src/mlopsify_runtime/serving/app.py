"""The FastAPI application: an app factory around one `ServingState`.

Routes: POST /predict, GET /health/live, GET /health/ready, GET /version, GET /metrics (and
GET /openapi.json, the contract, with /docs to read it). The model loads in a background
thread at start-up: the process answers liveness at once and readiness once the model is in
memory. Other modules extend the service by adding a route and by subscribing to
`ServingState.prediction_listeners`.

The routes are FastAPI routes: /predict and /feedback take the request models of schemas.py,
built once from the model's feature spec; FastAPI writes the OpenAPI document from them, and
they judge every body that is not valid in the common way (schemas.py: `PredictPlan`).
`CheckedBodyRoute` checks the token, the readiness, the Content-Type, the size, then reads the
body. A request is handled as a whole: one parse, one model call, one answer encoded at once,
and its monitoring in a few calls whatever its number of records.
Every error, 4xx or 5xx, has one JSON shape: `{"detail", "errors", "request_id"}`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from itertools import repeat
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import Body, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from ..hooks import hook
from .metrics import ServiceMetrics
from .model import LoadedModel, Scored, load_model
from .openapi import API_VERSION, ERROR_STATUSES, SUMMARY
from .schemas import (
    Error,
    Health,
    InputError,
    Limits,
    Parsed,
    ServiceModels,
    Version,
    check_content_type,
    service_models,
)
from .settings import Settings
from .signature import SignatureError, check_served_model
from .spec import FeatureSpec

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Endpoint = Callable[..., Coroutine[Any, Any, Response]]
FeedbackHandler = Callable[[BaseModel], dict[str, Any]]


@dataclass(frozen=True)
class PredictionEvent:
    """What listeners (drift tracking, prediction logging) receive after each /predict: the whole request at once."""

    batch_id: str  # the first 24 characters of every request id of the request
    request_ids: list[str]
    matrix: np.ndarray
    scored: Scored
    model: LoadedModel


PredictionListener = Callable[[PredictionEvent], None]


@dataclass
class ServingState:
    """Everything the routes share: settings, metrics, the loaded model and extension hooks."""

    settings: Settings
    metrics: ServiceMetrics
    app: FastAPI | None = None
    models: ServiceModels | None = None  # the request and response models of the served spec
    model: LoadedModel | None = None
    load_error: str | None = None
    feedback: FeedbackHandler | None = None  # set by monitoring: POST /feedback
    # the project's hooks (mlopsify_runtime.hooks), read once at start-up
    preprocess: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    postprocess: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None
    route_paths: dict[Endpoint, str] = field(default_factory=dict)
    direct_routes: dict[str, Endpoint] = field(default_factory=dict)  # POST handlers served below the router
    body_readers: dict[str, Callable[[bytes], Any]] = field(default_factory=dict)  # by route path: bytes to body
    prediction_listeners: list[PredictionListener] = field(default_factory=list)

    @property
    def monitored(self) -> bool:
        return self.feedback is not None

    @property
    def limits(self) -> Limits:
        settings = self.settings
        return Limits(settings.max_batch_size, settings.max_abs_value, settings.max_string_length)

    def use_spec(self, spec: FeatureSpec) -> None:
        """Build the models of `spec` and the routes that take them (at start-up, or once the model brings its spec)."""
        if self.models is not None and self.models.spec == spec:
            return
        self.models = service_models(spec, self.limits)
        if self.app is not None:
            add_model_routes(self.app, self, self.models)

    def install(self, model: LoadedModel) -> None:
        """Make `model` the served model (called once it is loaded)."""
        self.use_spec(model.spec)
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


def check_token(request: Request, token: str | None) -> None:
    """Bearer-token check for protected routes; a no-op when API_TOKEN is not set."""
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise InputError(401, "missing or invalid bearer token: send Authorization: Bearer <API_TOKEN>")


def new_request_ids(count: int) -> list[str]:
    """`count` random 128-bit ids, 32 hex characters each (one urandom call: 40x cheaper than uuid4)."""
    raw = os.urandom(16 * count).hex()
    return [raw[start : start + 32] for start in range(0, 32 * count, 32)]


_INDICES: list[str] = []  # "00000000", "00000001", ...: the last 8 characters of a batch's ids


def batch_request_ids(count: int) -> tuple[str, list[str]]:
    """A random 96-bit batch id (24 hex characters) and the `count` request ids derived from it:
    the batch id and the record's index, 8 hex characters (32 in all, as a random id has)."""
    if len(_INDICES) < count:
        _INDICES.extend(f"{index:08x}" for index in range(len(_INDICES), count))
    batch_id = os.urandom(12).hex()
    return batch_id, list(map(batch_id.__add__, _INDICES[:count]))


def error_response(error: InputError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The one error shape, with a fresh request id."""
    if error.status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(error.body(new_request_ids(1)[0]), status_code=error.status, headers=headers)


class ServiceMiddleware:
    """Counts and times requests by route template and status, and turns a crash into a JSON 500.

    Pure ASGI (no body copies). A crash is logged with a request id that the 500 body repeats,
    so that a client's report leads to the traceback. A POST to a checked-body route (/predict,
    /feedback) is handed to its handler here, below Starlette's exception middleware, router and
    per-route wrapper, which took a third of a single-record prediction's time in process.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServiceMetrics,
        route_paths: dict[Endpoint, str],
        direct: dict[str, Endpoint],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.route_paths = route_paths  # the route template of each endpoint, the `route` label
        self.direct = direct  # by path: the handlers of POST routes served without the router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        path = scope["path"]
        handler = self.direct.get(path) if scope["method"] == "POST" and not scope.get("root_path") else None

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if handler is None:
                await self.app(scope, receive, send_with_status)
            else:
                await answer_directly(handler, scope, receive, send_with_status)
        except Exception:
            request_id = new_request_ids(1)[0]
            logger.exception("request_id=%s %s %s failed", request_id, scope.get("method"), scope.get("path"))
            if status == 0:  # nothing was sent yet: answer in the one error shape
                response = JSONResponse(
                    InputError(500, "internal error: report the request_id").body(request_id),
                    status_code=500,
                )
                await response(scope, receive, send_with_status)
            status = 500
        finally:
            if handler is None:  # unknown paths share one label
                path = self.route_paths.get(scope.get("endpoint"), "other")  # type: ignore[arg-type]
            self.metrics.observe_request(path, status or 500, time.perf_counter() - start)


async def answer_directly(handler: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
    """The route handler's answer, its refusals in the one error shape (as the exception handlers give them)."""
    try:
        response: Response = await handler(Request(scope, receive))
    except InputError as error:
        response = error_response(error)
    await response(scope, receive, send)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is longer than `limit` bytes.

    Read from the ASGI messages themselves: a body usually comes whole in the first, and
    Starlette's `stream()` generator cost more than the rest of reading it.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InputError(413, f"request body of {declared} bytes is over the limit of {limit} bytes")
    receive, chunks, size, more = request.receive, [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
        if size > limit:
            raise InputError(413, f"request body is over the limit of {limit} bytes")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class CheckedBodyRoute(APIRoute):
    """A route whose JSON body is checked, then read by the route's own body reader.

    In this order: the bearer token (401), a loaded model (503), the Content-Type (415), the
    size (413, while the body streams in), then the reader parses and validates the bytes:
    /predict with the plan of its feature spec (schemas.py: `PredictPlan`, the records as the
    model's matrix), /feedback with pydantic-core and the model FastAPI documents (`BodyCheck`).
    FastAPI's own request handler would parse the JSON a second time and solve the endpoint's
    dependencies: that doubled the CPU time of a prediction.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint, path = self.endpoint, self.path

        async def checked(request: Request) -> Response:
            state = get_state(request)
            check_token(request, state.settings.api_token)
            if state.model is None:
                raise InputError(503, "the model is not loaded yet: retry when /health/ready answers 200")
            check_content_type(request.headers.get("content-type", ""))
            body = await read_body(request, state.settings.max_body_bytes)
            response: Response = await endpoint(request, state.body_readers[path](body))
            return response

        return checked


def prediction_items(request_ids: list[str], scored: Scored, keys: list[str]) -> list[dict[str, Any]]:
    """One answer per record, from the batch's columns: each row's probabilities by C loops (map,
    zip), each answer a dict display (twice as fast as dict(zip(...)) per record)."""
    if scored.probabilities is None:
        return [
            {"request_id": request_id, "prediction": value}
            for request_id, value in zip(request_ids, scored.values, strict=True)
        ]
    probabilities = map(dict, map(zip, repeat(keys), scored.probabilities.tolist()))  # keyed by the class as text
    return [
        {"request_id": request_id, "prediction": value, "probabilities": row}
        for request_id, value, row in zip(request_ids, scored.values, probabilities, strict=True)
    ]


def json_response(content: Any) -> Response:
    """The answer encoded in one call (orjson: several times faster than the json module); numpy
    scalars too, which a project's postprocess hook may return (the json module took np.float64)."""
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


def predict_endpoint(models: ServiceModels, state: ServingState) -> Endpoint:
    """/predict for the models of one feature spec."""
    id_column = models.spec.id_column

    async def predict(request: Request, body: Parsed) -> Response:
        """Predict one record or a batch; every prediction carries its own `request_id`."""
        model = state.model
        assert model is not None  # CheckedBodyRoute answered 503 before
        pre, post = state.preprocess, state.postprocess
        matrix = body.matrix
        named: list[dict[str, Any]] = []
        if (
            pre is not None or post is not None
        ):  # the project's hooks see each record as a dict of feature name to value
            names = models.spec.names
            named = [dict(zip(names, row, strict=True)) for row in matrix.tolist()]
            if pre is not None:
                named = [pre(record) for record in named]
                matrix = models.matrix(named)
        scored = model.score(matrix)
        batch_id, request_ids = batch_request_ids(len(scored))
        state.metrics.count_predictions(model, scored)
        if state.prediction_listeners:
            state.notify(PredictionEvent(batch_id, request_ids, matrix, scored, model))
        items = prediction_items(request_ids, scored, model.keys)
        if id_column and body.ids is not None:  # each prediction echoes its record's id, when the record sent one
            for item, sent in zip(items, body.ids, strict=True):
                if sent is not None:
                    item[id_column] = sent
        if post is not None:
            items = [post(record, item) for record, item in zip(named, items, strict=True)]
        info = model.info
        if body.single:
            return json_response({**items[0], "model_name": info.name, "model_version": info.version})
        return json_response({"predictions": items, "model_name": info.name, "model_version": info.version})

    # FastAPI documents the body with the model of this spec; the route reads it with the spec's plan.
    predict.__annotations__ = {
        "request": Request,
        "body": Annotated[models.predict_body, Body()],
        "return": Response,
    }
    return predict


def feedback_endpoint(models: ServiceModels) -> Endpoint:
    """/feedback for the models of one feature spec (the handler comes from monitoring.py)."""

    async def feedback(request: Request, body: BaseModel) -> Response:
        """Ground truth for an earlier prediction: `{"request_id": "...", "actual": <label or value>}`."""
        handler = get_state(request).feedback
        assert handler is not None  # the route exists only with monitoring
        return JSONResponse(handler(body))

    feedback.__annotations__ = {
        "request": Request,
        "body": Annotated[models.feedback, Body()],
        "return": Response,
    }
    return feedback


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


def errors(*statuses: str) -> dict[int | str, dict[str, Any]]:
    """The documented error answers: each in the one error shape."""
    return {status: {"model": Error, "description": ERROR_STATUSES[status]} for status in statuses}


COMMON = ("404", "405", "500")
BODY_ERRORS = errors("400", "401", *COMMON, "413", "415", "422", "503")
HEALTH: dict[int | str, dict[str, Any]] = {
    200: {"model": Health, "description": "Healthy."},
    503: {"model": Health, "description": "Not (or no longer) able to serve."},
    **errors(*COMMON),
}
METRICS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The text exposition format."},
    **errors(*COMMON),
}


def add_route(
    app: FastAPI,
    path: str,
    endpoint: Endpoint,
    method: str,
    responses: dict[int | str, dict[str, Any]],
    **extra: Any,
) -> None:
    """A FastAPI route whose answers are Responses (no response model to validate) and are documented by `responses`."""
    routes = app.router.routes
    routes[:] = [route for route in routes if getattr(route, "path", None) != path]  # a spec replaces its routes
    app.router.add_api_route(
        path,
        endpoint,
        methods=[method],
        response_model=None,
        responses=responses,
        operation_id=endpoint.__name__,
        **extra,
    )
    declared = routes.pop()
    routes.insert(0, declared)  # first: /predict is matched on every request, the docs' routes rarely
    app.state.serving.route_paths[endpoint] = path
    if isinstance(declared, CheckedBodyRoute):  # answered by ServiceMiddleware; FastAPI documents the declared route
        app.state.serving.direct_routes[path] = declared.get_route_handler()
    app.openapi_schema = None  # the document changes with the routes


def add_model_routes(app: FastAPI, state: ServingState, models: ServiceModels) -> None:
    """/predict (and /feedback with monitoring) for the models of the served spec."""
    secured: dict[str, Any] = {"openapi_extra": {"security": [{"bearer": []}]}} if state.settings.api_token else {}
    limit = state.settings.max_batch_size
    add_route(
        app,
        "/predict",
        predict_endpoint(models, state),
        "POST",
        {
            200: {
                "model": models.response,
                "description": "A prediction (single form) or one per record, in order (batch form).",
            },
            **BODY_ERRORS,
        },
        summary="Predict one record or a batch",
        description=(
            f"Send one record, a batch of 1 to {limit} records, or a table of 1 to {limit} rows (columns: the"
            " features in the model's order); every prediction carries its own request_id."
        ),
        route_class_override=CheckedBodyRoute,
        **secured,
    )
    state.body_readers["/predict"] = models.predict_plan.parse
    if state.monitored:
        add_route(
            app,
            "/feedback",
            feedback_endpoint(models),
            "POST",
            {
                200: {
                    "model": models.feedback_response,
                    "description": "Paired with its prediction.",
                },
                **BODY_ERRORS,
            },
            summary="Ground truth for an earlier prediction",
            route_class_override=CheckedBodyRoute,
            **secured,
        )
        state.body_readers["/feedback"] = models.feedback_check.validate


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
        try:
            await asyncio.to_thread(check_served_model, settings)
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
        runtime = "onnxruntime" if model.runtime == "onnx" else "scikit-learn"
        logger.info("model %s version %s is ready (%s)", model.info.name, model.info.version, runtime)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(load())
        yield
        task.cancel()

    return lifespan


def _startup_spec(settings: Settings) -> FeatureSpec | None:
    """The feature spec for the routes before the model is in memory (None: wait for the model)."""
    try:
        return FeatureSpec.from_file(settings.features_path) if settings.features_path.is_file() else None
    except ValueError:  # the loader reports a bad file as a load error
        return None


def openapi_document(app: FastAPI, state: ServingState) -> dict[str, Any]:
    """FastAPI's document of the routes, with the feature spec it describes and the bearer scheme."""
    if state.models is None:
        raise InputError(503, "the model's features are not known yet: retry when /health/ready answers 200")
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=API_VERSION, summary=SUMMARY, routes=app.routes)
        document["info"]["x-feature-spec"] = state.models.spec.to_dict()
        if state.settings.api_token:
            document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        app.openapi_schema = document
    return app.openapi_schema


def create_app(
    settings: Settings | None = None,
    loader: Callable[[Settings], LoadedModel] = load_model,
) -> FastAPI:
    """The service for `settings` (default: from the environment); `loader` loads the model."""
    settings = settings or Settings.from_env()
    state = ServingState(settings, ServiceMetrics(settings.prediction_buckets))
    state.preprocess, state.postprocess = hook("preprocess"), hook("postprocess")
    app = FastAPI(title=settings.model_name, lifespan=lifespan_loading(state, loader))
    app.state.serving = state
    state.app = app
    app.add_middleware(
        ServiceMiddleware, metrics=state.metrics, route_paths=state.route_paths, direct=state.direct_routes
    )
    add_error_handlers(app)
    add_route(app, "/health/live", live, "GET", HEALTH, summary="Liveness")
    add_route(app, "/health/ready", ready, "GET", HEALTH, summary="Readiness")
    add_route(
        app,
        "/version",
        version,
        "GET",
        {
            200: {"model": Version, "description": "Name, version and features."},
            **errors(*COMMON, "503"),
        },
        summary="The served model",
    )
    add_route(
        app,
        "/metrics",
        metrics,
        "GET",
        METRICS,
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
    )
    if settings.monitoring_file is not None:
        from .monitoring import install  # drift, live quality and /feedback (docs/runtime/monitoring.md)

        install(state, settings.monitoring_file)
    spec = _startup_spec(settings)
    if spec is not None:
        state.use_spec(spec)
    else:  # /predict answers 503 until the model brings its spec
        add_route(
            app,
            "/predict",
            unknown_spec,
            "POST",
            BODY_ERRORS,
            route_class_override=CheckedBodyRoute,
        )
    app.openapi = lambda: openapi_document(app, state)  # type: ignore[method-assign]
    return app


async def unknown_spec(request: Request) -> Response:
    raise InputError(503, "the model is not loaded yet: retry when /health/ready answers 200")


def describe(spec: FeatureSpec, settings: Settings, monitored: bool) -> dict[str, Any]:
    """The OpenAPI document of the service for `spec`, without a model (the snapshot's)."""
    app = create_app(replace(settings, features_path=Path("/nonexistent"), monitoring_file=None))
    state: ServingState = app.state.serving
    if monitored:  # the route is documented; nothing answers it here
        state.feedback = lambda _: {}
    state.use_spec(spec)
    return openapi_document(app, state)
