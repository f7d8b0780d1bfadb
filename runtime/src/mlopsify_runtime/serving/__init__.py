"""The HTTP service: loads the model once, then answers predictions, health, version and metrics.

`create_app` builds the application around a `ServingState`; other modules (a drift tracker,
a feedback endpoint) extend it through `ServingState.prediction_listeners` and their own
routers, without touching the prediction path.
"""

from .app import ServingState, create_app
from .settings import Settings

__all__ = ["ServingState", "Settings", "create_app"]
