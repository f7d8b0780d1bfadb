"""mlopsify: create, update, extend and assess MLOps repositories.

The public API is a handful of functions with keyword arguments; the ``mlopsify`` command
is a thin layer over them. Copier is imported lazily, inside the functions that need it.
"""

from ._version import __version__
from .creation import new_project
from .errors import (
    DestinationError,
    InvalidAnswerError,
    MlopsifyError,
    RepositoryStateError,
    TemplateVersionError,
    UpdateConflictError,
)
from .template_source import TemplateSource

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
