"""Running Copier: one place that imports it, quiets it, and turns its errors into ours."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidAnswerError, RepositoryStateError
from .template_source import TemplateSource

if TYPE_CHECKING:
    from copier._main import Worker

_CHOICE_ERROR = re.compile(r"Invalid choice for '(?P<key>\w+)': (?P<rest>.*)")


@contextmanager
def copier_session(template: TemplateSource) -> Iterator[None]:
    """Resolve the template offline and translate Copier's user-facing errors."""
    from copier.errors import UserMessageError

    with template.activated(), warnings.catch_warnings():
        # Copier warns about local dirty templates and its own deprecations: noise for our users.
        warnings.filterwarnings("ignore", module=r"copier(\.|$)")
        warnings.filterwarnings("ignore", message=r".*[Dd]irty template.*")
        try:
            yield
        except ValueError as error:
            raise InvalidAnswerError(_explain_value_error(str(error))) from None
        except UserMessageError as error:
            raise RepositoryStateError(str(error).strip().splitlines()[0]) from None


def _explain_value_error(message: str) -> str:
    """Copier's validator and choice errors, made into one line that says what to do."""
    first = message.strip().splitlines()[0] if message.strip() else "invalid answer"
    choice = _CHOICE_ERROR.match(first)
    if choice:
        return f"invalid choice for {choice['key']}: {choice['rest']}; use one of them"
    return re.sub(r"^Validation error for question '\w+': ", "", first)


def copy_template(
    template: TemplateSource,
    destination: Path,
    *,
    data: dict[str, Any],
    user_defaults: dict[str, Any],
    defaults: bool,
    vcs_ref: str | None,
) -> Worker:
    """Render ``template`` into ``destination`` and return Copier's worker (for its questions)."""
    from copier import Settings, run_copy

    with copier_session(template):
        return run_copy(
            template.url,
            destination,
            data=data,
            user_defaults=user_defaults,
            defaults=defaults,
            vcs_ref=vcs_ref,
            settings=Settings(),
            quiet=True,
        )
