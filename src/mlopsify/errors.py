"""The one error hierarchy for what a user can cause, and the one table of exit codes.

The CLI prints any :class:`MlopsifyError` as one line on stderr and exits with its
``exit_code``; every other exception is a bug and keeps its traceback. The docs' table of
exit codes is generated from :data:`EXIT_CODES` (scripts/reference_docs.py).
"""

from __future__ import annotations

from .changes import UpdateResult


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
    """The template cannot be read, or has not the requested version (shipped or ``--template``)."""

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


class UntrustedTemplateError(MlopsifyError):
    """A template other than the shipped one would run migrations or tasks, and is not trusted."""

    exit_code = 8


class UpdateInterruptedError(MlopsifyError):
    """Ctrl-C stopped an update or add; the message says whether the update was written."""

    exit_code = 130


# The two codes that no error class has: success, and Typer's usage errors.
SUCCESS = 0
USAGE_ERROR = 2

EXIT_CODES: dict[int, tuple[str, str]] = {
    SUCCESS: ("", "done (also: nothing to update, the service is already on, `--pretend`)"),
    MlopsifyError.exit_code: (
        "MlopsifyError",
        "other user error (for example no terminal to ask the questions on)",
    ),
    USAGE_ERROR: (
        "",
        "bad command line: an unknown option, or an option value not among its choices",
    ),
    InvalidAnswerError.exit_code: (
        "InvalidAnswerError",
        "an invalid answer; an unknown question, choice or service; a bad answers file",
    ),
    DestinationError.exit_code: (
        "DestinationError",
        "`new` got a destination that is a file or a non-empty directory",
    ),
    RepositoryStateError.exit_code: (
        "RepositoryStateError",
        "the path is not a directory or not a git repository; uncommitted changes; the answers "
        "file is missing or corrupt; the repository is already adopted",
    ),
    TemplateVersionError.exit_code: (
        "TemplateVersionError",
        "the template version does not exist, or is older than the project's (a downgrade); the "
        "template (`--template`, or the one the answers file records) cannot be read",
    ),
    UpdateConflictError.exit_code: (
        "UpdateConflictError",
        "the update merged with conflicts that a person must resolve; each file is listed",
    ),
    UntrustedTemplateError.exit_code: (
        "UntrustedTemplateError",
        "a template other than mlopsify's own runs migrations or tasks; `--trust` lets it",
    ),
    UpdateInterruptedError.exit_code: (
        "UpdateInterruptedError",
        "Ctrl-C stopped `update` or `add`: the project is as it was, or (as the message says) "
        "holds the whole update",
    ),
}
"""Every exit code of the ``mlopsify`` command: code -> (error class, meaning)."""
