"""mlopsify: create, update, extend and assess MLOps repositories.

The public API is a handful of functions with keyword arguments; the ``mlopsify`` command
is a thin layer over them. Copier is imported lazily, inside the functions that need it.
"""

from ._version import __version__
from .adoption import AdoptResult, adopt_repository
from .assessment import Assessment, assess_repository
from .creation import new_project
from .errors import (
    DestinationError,
    InvalidAnswerError,
    MlopsifyError,
    RepositoryStateError,
    TemplateVersionError,
    UpdateConflictError,
)
from .services import AddResult, add_service, list_services
from .template_source import TemplateSource
from .updating import UpdateResult, update_project

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
    "UpdateConflictError",
    "UpdateResult",
    "__version__",
    "add_service",
    "adopt_repository",
    "assess_repository",
    "list_services",
    "new_project",
    "update_project",
]
