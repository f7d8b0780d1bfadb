"""mlopsify: create, update, extend and assess MLOps repositories.

The public API is a handful of functions with keyword arguments; the ``mlopsify`` command
is a thin layer over them. Copier is imported lazily, inside the functions that need it, and
the library modules load on first use (PEP 562), so ``mlopsify --help`` imports little more
than Typer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    DestinationError,
    InvalidAnswerError,
    MlopsifyError,
    RepositoryStateError,
    TemplateVersionError,
    UpdateConflictError,
)

if TYPE_CHECKING:
    from .creation import new_project
    from .template_source import TemplateSource

# Public name -> module that defines it; imported on first attribute access.
_LAZY = {
    "new_project": "creation",
    "TemplateSource": "template_source",
}

__all__ = [
    "DestinationError",
    "InvalidAnswerError",
    "MlopsifyError",
    "RepositoryStateError",
    "TemplateSource",
    "TemplateVersionError",
    "UpdateConflictError",
    "__version__",
    "new_project",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
