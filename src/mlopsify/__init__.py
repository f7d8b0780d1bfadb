"""mlopsify: create, update, extend and assess MLOps repositories.

The public API is a handful of functions with keyword arguments; the ``mlopsify`` command
is a thin layer over them. Copier is imported lazily, inside the functions that need it, and
the library modules load on first use (PEP 562), so ``mlopsify --help`` imports little more
than Typer (docs/benchmarks.md). Add a public name to ``_LAZY``, not as an import.
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
    UntrustedTemplateError,
    UpdateConflictError,
    UpdateInterruptedError,
)

if TYPE_CHECKING:
    from .adoption import AdoptResult, adopt_repository
    from .assessment import Assessment, assess_repository
    from .changes import UpdateResult
    from .creation import new_project
    from .services import AddResult, add_service, list_services
    from .template_source import TemplateSource
    from .updating import update_project

# Public name -> module that defines it; imported on first attribute access.
_LAZY = {
    "AddResult": "services",
    "AdoptResult": "adoption",
    "Assessment": "assessment",
    "TemplateSource": "template_source",
    "UpdateResult": "changes",
    "add_service": "services",
    "adopt_repository": "adoption",
    "assess_repository": "assessment",
    "list_services": "services",
    "new_project": "creation",
    "update_project": "updating",
}

__all__ = [
    "AddResult",
    "AdoptResult",
    "Assessment",
    "DestinationError",
    "InvalidAnswerError",
    "MlopsifyError",
    "RepositoryStateError",
    "TemplateSource",
    "TemplateVersionError",
    "UntrustedTemplateError",
    "UpdateConflictError",
    "UpdateInterruptedError",
    "UpdateResult",
    "__version__",
    "add_service",
    "adopt_repository",
    "assess_repository",
    "list_services",
    "new_project",
    "update_project",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
