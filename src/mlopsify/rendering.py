"""Running Copier: the one module that calls it, quiets it, and turns its errors into ours.

Copier compiles every file and every path part of a template from its text on each render,
and an update renders two or three times; :func:`compiled_once` makes a process compile each
text once (see there). Copier's errors are translated by type. Copier raises a plain ``ValueError`` for a choice
or validator that refuses an answer and for a required question without an answer; only
those messages become :class:`InvalidAnswerError`, any other ``ValueError`` is a bug and
keeps its traceback.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import CodeType
from typing import Any, Literal

from . import _git
from .answers import ANSWERS_FILE, read_answers_file
from .errors import InvalidAnswerError, RepositoryStateError, UntrustedTemplateError
from .template import Release, template_for
from .template_source import TemplateSource

Conflict = Literal["inline", "rej"]
_BROKEN_MIRROR = "bad object worktrees/copier._vcs.clone"

_CHOICE_ERROR = re.compile(r"Invalid choice for '(?P<key>\w+)': (?P<rest>.*)")
_VALIDATION_ERROR = re.compile(r"Validation error for question '\w+': (?P<rest>.*)")
_REQUIRED_ERROR = re.compile(r'Question "(?P<key>\w+)" is required')


@contextmanager
def copier_session(template: TemplateSource) -> Iterator[None]:
    """Resolve the template offline and translate Copier's user-facing errors."""
    from copier.errors import InvalidTypeError, UnsafeTemplateError, UserMessageError
    from plumbum import ProcessExecutionError

    with (
        template.activated(),
        compiled_once(),
        _file_mode_read_once(),
        warnings.catch_warnings(),
    ):
        # Copier warns about local dirty templates and its own deprecations: noise for our users.
        warnings.filterwarnings("ignore", module=r"copier(\.|$)")
        warnings.filterwarnings("ignore", message=r".*[Dd]irty template.*")
        try:
            yield
        except UnsafeTemplateError:
            raise UntrustedTemplateError(
                f"the template at {template.url} runs migrations or tasks: "
                "run again with --trust if you trust it"
            ) from None
        except InvalidTypeError as error:
            raise InvalidAnswerError(
                f"{_first_line(error) or 'an answer has the wrong type'}: give a value of the question's type"
            ) from None
        except UserMessageError as error:
            raise RepositoryStateError(_first_line(error)) from None
        except ProcessExecutionError as error:
            if _BROKEN_MIRROR not in str(error.stderr):
                raise
            # Copier's shared mirror of the template keeps a worktree registration per run; a
            # run killed in between leaves one that fails every later run until it is deleted.
            cache = os.environ.get("COPIER_CACHE_DIR") or "~/.cache/copier/git"
            fatal = str(error.stderr).strip().splitlines()[-1]
            raise RepositoryStateError(
                f"Copier's cache of the template was left broken by an interrupted run "
                f"({fatal}): delete {cache}, then run again"
            ) from None
        except ValueError as error:
            explained = _explain_answer_error(_first_line(error))
            if explained is None:
                raise  # not an answer Copier refused: a bug, with its traceback
            raise InvalidAnswerError(explained) from None


# Jinja's compiled code by (source text, template name, defer_init, the environment's
# compile-time settings): see compiled_once.
_COMPILED: dict[tuple[Any, ...], CodeType] = {}
# Per live environment: its compile-time settings (see _compile_settings).
_SETTINGS: weakref.WeakKeyDictionary[Any, tuple[Any, ...]] = weakref.WeakKeyDictionary()
_compiled_depth = 0


@contextmanager
def compiled_once() -> Iterator[None]:
    """While active, Jinja compiles each template text once per process, not once per render.

    Jinja turns a template's text into Python code that depends on nothing but the text, the
    template's name and the environment's compile-time settings (delimiters, whitespace and
    newline options, extensions, autoescape, finalize, optimisation, async, the code generator,
    and which filters and tests exist and how they are called: the optimiser may run them on
    constants). So :meth:`jinja2.Environment.compile` is memoised under exactly that key. Copier
    builds a new environment, from a new checkout of the template, for every render; the
    code's file name (the checkout's path, shown in tracebacks) is set on a reused code
    object. Nested uses share one memo; a text that fails to compile is never stored.
    """
    from jinja2 import Environment

    global _compiled_depth
    if _compiled_depth == 0:
        Environment.compile = _memoised_compile(Environment.compile)  # type: ignore[method-assign]
    _compiled_depth += 1
    try:
        yield
    finally:
        _compiled_depth -= 1
        if _compiled_depth == 0:
            Environment.compile = Environment.compile.__wrapped__  # type: ignore[attr-defined,method-assign]


def _memoised_compile(compile_text: Callable[..., Any]) -> Callable[..., Any]:
    from jinja2 import Environment

    def compile_memoised(
        environment: Environment,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        if raw or not isinstance(source, str):
            return compile_text(environment, source, name, filename, raw, defer_init)
        key = (source, name, defer_init, _compile_settings(environment))
        code = _COMPILED.get(key)
        if code is None:
            code = _COMPILED[key] = compile_text(
                environment, source, name, filename, defer_init=defer_init
            )
        return _with_filename(code, "<template>" if filename is None else filename)

    compile_memoised.__wrapped__ = compile_text  # type: ignore[attr-defined]
    return compile_memoised


_OPTIONS = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "optimized",
    "is_async",
    "code_generator_class",
)


def _compile_settings(environment: Any) -> tuple[Any, ...]:
    """What of ``environment`` changes the code Jinja compiles, read at its first compilation
    (Jinja's documentation forbids changing an environment after it loaded a template)."""
    known = _SETTINGS.get(environment)
    if known is None:
        known = _SETTINGS[environment] = (
            type(environment),
            tuple(getattr(environment, name) for name in _OPTIONS),
            _callable_key(environment.autoescape),
            _callable_key(environment.finalize),
            tuple(sorted((key, type(ext)) for key, ext in environment.extensions.items())),
            tuple(
                sorted((key, _callable_key(value)) for key, value in environment.filters.items())
            ),
            tuple(sorted((key, _callable_key(value)) for key, value in environment.tests.items())),
        )
    return known


def _callable_key(value: Any) -> Any:
    """A filter, test, finalize or autoescape value by what it is, not by which object: the
    same function (a partial by its function and argument names), and how Jinja calls it."""
    if not callable(value):
        return value
    pass_arg = getattr(value, "jinja_pass_arg", None)
    if isinstance(value, partial):
        return (
            "partial",
            _callable_key(value.func),
            len(value.args),
            tuple(sorted(value.keywords)),
            pass_arg,
        )
    return (
        getattr(value, "__module__", None),
        getattr(value, "__qualname__", type(value).__qualname__),
        pass_arg,
    )


def _with_filename(code: CodeType, filename: str) -> CodeType:
    """``code`` and the code objects in it, as compiled from ``filename``."""
    if code.co_filename == filename:
        return code
    constants = tuple(
        _with_filename(constant, filename) if isinstance(constant, CodeType) else constant
        for constant in code.co_consts
    )
    return code.replace(co_filename=filename, co_consts=constants)


@contextmanager
def _file_mode_read_once() -> Iterator[None]:
    """Copier asks git for ``core.fileMode`` once per rendered file (to copy the executable bit
    into the index when it is false): ask once per destination in a session.

    Nothing Copier does between two files of a render changes a repository's configuration;
    the answer is the one Copier reads (its own command, where it runs it), and only where it
    is "false" does Copier's own step run, unchanged.
    """
    from copier._main import Worker
    from copier._vcs import get_git
    from plumbum import ProcessExecutionError

    sync = Worker._sync_git_index_executable_bit
    file_mode_off: dict[Path, bool] = {}

    def sync_when_file_mode_off(worker: Worker, dst_relpath: Path, src_mode: int) -> None:
        root = Path(worker.subproject.local_abspath)
        if root not in file_mode_off:
            git = get_git(context_dir=root)
            try:
                setting = git("config", "--type=bool", "--get", "core.fileMode").strip()
            except ProcessExecutionError:
                setting = ""
            file_mode_off[root] = setting == "false"
        if file_mode_off[root]:
            sync(worker, dst_relpath, src_mode)

    Worker._sync_git_index_executable_bit = sync_when_file_mode_off  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Worker._sync_git_index_executable_bit = sync  # type: ignore[method-assign]


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _explain_answer_error(message: str) -> str | None:
    """Copier's choice, validator and required-answer errors as one line that says what to do."""
    choice = _CHOICE_ERROR.match(message)
    if choice:
        return f"invalid choice for {choice['key']}: {choice['rest']}; use one of them"
    validation = _VALIDATION_ERROR.match(message)
    if validation:
        return validation["rest"]
    required = _REQUIRED_ERROR.match(message)
    if required:
        return f"question {required['key']} has no default: answer it with --data {required['key']}=VALUE"
    return None


def copy_template(
    template: TemplateSource,
    destination: Path,
    *,
    data: Mapping[str, Any],
    user_defaults: Mapping[str, Any],
    defaults: bool,
    vcs_ref: str | None,
) -> dict[str, Any]:
    """Render ``template`` into ``destination``; return every answer, computed ones included."""
    from copier import Settings, run_copy

    with copier_session(template):
        worker = run_copy(
            template.url,
            destination,
            data=dict(data),
            user_defaults=dict(user_defaults),
            defaults=defaults,
            vcs_ref=vcs_ref,
            settings=Settings(),
            quiet=True,
        )
    return {key: value for key, value in worker.answers.combined.items() if not key.startswith("_")}


def usable_project_name(name: str) -> bool:
    """Whether a directory name passes the project_name question's validator (copier.yml)."""
    return (
        name.isascii()
        and name[:1] not in "-."
        and f"a{name}".replace("-", "_").replace(".", "_").isidentifier()
    )


def derived_defaults(destination: Path, release: Release) -> dict[str, Any]:
    """Defaults that only the caller knows: the directory name, the running Python and, for a
    repository being adopted, its default branch (CI triggers and deploys from it)."""
    found: dict[str, Any] = {}
    adopted = _git.repository_top(destination) == destination.resolve()
    branch = _git.default_branch(destination) if adopted else None
    if branch:
        found["default_branch"] = branch
    if usable_project_name(destination.name):
        found["project_name"] = destination.name
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running in release.python_versions:
        found["python_version"] = running
    return found


@dataclass(frozen=True)
class Rendered:
    """What :func:`render_answers` rendered: the release, and every answer (computed ones too)."""

    version: str
    answers: Mapping[str, Any]

    @property
    def names(self) -> str | None:
        """The names derived from the project name, as ``new`` reports them (None for a
        template that derives none)."""
        package, k8s_name = self.answers.get("package_name"), self.answers.get("k8s_name")
        if package is None or k8s_name is None:
            return None
        image = self.answers.get("image_name", k8s_name)
        if image == k8s_name:
            return f"package {package}, Kubernetes and image name {k8s_name}"
        return f"package {package}, Kubernetes name {k8s_name}, image name {image}"


def render_answers(
    template: TemplateSource,
    target: Path,
    answers: Mapping[str, Any],
    *,
    defaults: bool,
    vcs_ref: str | None,
    named_after: Path,
) -> Rendered:
    """Refuse unknown questions, render ``template`` into ``target``, return what was rendered.

    ``vcs_ref`` is a release in any spelling of its version (default: the newest final
    release), or another git ref. ``named_after`` is the directory whose name becomes the
    default project name.
    """
    known = template_for(template)
    if vcs_ref is not None:
        vcs_ref = known.tag_for(vcs_ref)
    elif known.versions:
        vcs_ref = known.newest()
    release = known.release(vcs_ref)
    release.check_answers(answers)
    if defaults and "project_name" not in answers and not usable_project_name(named_after.name):
        # Without questions the name would silently become the default (my-ml-service).
        raise InvalidAnswerError(
            f"the directory name '{named_after.name}' cannot be the project name (ASCII letters,"
            " digits, '-', '_' and '.', starting with a letter or digit): give one with"
            " --data project_name=NAME"
        )
    used = copy_template(
        template,
        target,
        data=answers,
        user_defaults=derived_defaults(named_after, release),
        defaults=defaults,
        vcs_ref=vcs_ref,
    )
    version = str(read_answers_file(target / ANSWERS_FILE).get("_commit", "unreleased"))
    return Rendered(version, used)


def update_template(
    project: Path,
    template: TemplateSource,
    *,
    vcs_ref: str,
    data: Mapping[str, Any],
    conflict: Conflict,
    trusted: bool,
) -> None:
    """Merge release ``vcs_ref`` of ``template`` into ``project`` (Copier's three-way update)."""
    from copier import Settings, run_update

    with copier_session(template):
        run_update(
            project,
            data=dict(data),
            vcs_ref=vcs_ref,
            settings=Settings(),
            defaults=True,
            overwrite=True,
            conflict=conflict,
            unsafe=trusted,
            quiet=True,
        )
