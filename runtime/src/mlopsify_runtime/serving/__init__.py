"""The HTTP service: loads the model once, then answers predictions, health, version and metrics.

`create_app` builds the application around a `ServingState`; other modules (a drift tracker,
a feedback endpoint) extend it through `ServingState.prediction_listeners` and their own
routers, without touching the prediction path. The names are imported when first used: the
pipeline (training, the gate) imports `serving.spec` in an environment without FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import ServingState, create_app
    from .settings import Settings

__all__ = ["ServingState", "Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name in {"ServingState", "create_app"}:
        from . import app

        return getattr(app, name)
    if name == "Settings":
        from .settings import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
