"""The one error hierarchy for what a user can cause.

The CLI prints any :class:`MlopsifyError` as one line on stderr and exits with its
``exit_code``; every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .updating import UpdateResult


class MlopsifyError(Exception):
    """Something the user can fix; the message says how."""

    exit_code = 1


class InvalidAnswerError(MlopsifyError):
    """An answer to a template question is missing, unknown or invalid."""

    exit_code = 3


class DestinationError(MlopsifyError):
    """The destination of a new project cannot receive it."""

    exit_code = 4


class RepositoryStateError(MlopsifyError):
    """The repository is not in a state the command can work on (dirty, not git, no answers)."""

    exit_code = 5


class TemplateVersionError(MlopsifyError):
    """The requested template version does not exist in the shipped release history."""

    exit_code = 6


class UpdateConflictError(MlopsifyError):
    """An update merged with conflicts that a person must resolve.

    ``result`` is the update's outcome (every changed file) when there is one.
    """

    exit_code = 7

    def __init__(
        self, message: str, conflicted: list[str], result: UpdateResult | None = None
    ) -> None:
        super().__init__(message)
        self.conflicted = conflicted
        self.result = result


EXIT_CODES: dict[str, int] = {
    cls.__name__: cls.exit_code
    for cls in (
        MlopsifyError,
        InvalidAnswerError,
        DestinationError,
        RepositoryStateError,
        TemplateVersionError,
        UpdateConflictError,
    )
}
