"""``new``: render the template into a fresh git repository, atomically."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import _git
from .answers import ANSWERS_FILE, parse_data, read_answers_file, unknown_keys
from .errors import DestinationError, InvalidAnswerError
from .rendering import copy_template
from .template_source import TemplateSource

SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")


def derived_defaults(destination: Path) -> dict[str, Any]:
    """Defaults that only the caller knows: the directory name and the running Python."""
    found: dict[str, Any] = {}
    name = destination.name
    # As copier.yml's project_name validator: ASCII letters, digits, '-', '_', '.', not
    # starting with '-' or '.' (k8s_name makes a Kubernetes name of any of them).
    if (
        name.isascii()
        and name[:1] not in "-."
        and f"a{name}".replace("-", "_").replace(".", "_").isidentifier()
    ):
        found["project_name"] = name
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running in SUPPORTED_PYTHONS:
        found["python_version"] = running
    return found


def check_destination(destination: Path) -> None:
    if destination.is_file() or destination.is_symlink():
        raise DestinationError(
            f"{destination} is a file: give a new directory path for the project"
        )
    if destination.is_dir() and any(destination.iterdir()):
        raise DestinationError(
            f"{destination} is not empty: give a new directory, or use `mlopsify adopt` for an existing repository"
        )


def gather_answers(
    *,
    data: dict[str, Any] | None = None,
    data_pairs: list[str] | None = None,
    answers_file: Path | None = None,
) -> dict[str, Any]:
    """Answers from ``answers_file``, then ``data`` and ``data_pairs`` (``KEY=VALUE``), which win."""
    answers: dict[str, Any] = read_answers_file(answers_file) if answers_file else {}
    answers.update(data or {})
    answers.update(parse_data(data_pairs or []))
    return answers


def check_known(answers: dict[str, Any], questions: dict[str, Any]) -> None:
    """Refuse answers to questions the template does not ask (Copier would ignore them)."""
    unknown = unknown_keys(answers, questions)
    if unknown:
        known = ", ".join(sorted(questions))
        raise InvalidAnswerError(f"unknown question {', '.join(unknown)}: use one of {known}")


def render_answers(
    template: TemplateSource,
    target: Path,
    answers: dict[str, Any],
    *,
    defaults: bool,
    vcs_ref: str | None,
    named_after: Path,
) -> str:
    """Render ``template`` into ``target``, refuse unknown questions, return the release used.

    ``named_after`` is the directory whose name becomes the default project name.
    """
    worker = copy_template(
        template,
        target,
        data=answers,
        user_defaults=derived_defaults(named_after),
        defaults=defaults,
        vcs_ref=vcs_ref,
    )
    check_known(answers, worker.template.questions_data)
    return str(read_answers_file(target / ANSWERS_FILE).get("_commit", "unreleased"))


def new_project(
    destination: Path,
    *,
    data: dict[str, Any] | None = None,
    data_pairs: list[str] | None = None,
    answers_file: Path | None = None,
    defaults: bool = False,
    template: TemplateSource | None = None,
    vcs_ref: str | None = None,
) -> Path:
    """Create a project at ``destination`` and commit it; on any failure nothing is written.

    Answers come from ``answers_file``, then ``data`` and ``data_pairs`` (``KEY=VALUE``), which
    win; with ``defaults`` every other question takes its default, else Copier asks on the TTY.
    """
    destination = destination.expanduser().absolute()
    check_destination(destination)
    answers = gather_answers(data=data, data_pairs=data_pairs, answers_file=answers_file)
    template = template or TemplateSource.shipped()

    created_parents = [p for p in reversed(destination.parents) if not p.exists()]
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{destination.name}.mlopsify-", dir=destination.parent)
    )
    try:
        version = render_answers(
            template, staging, answers, defaults=defaults, vcs_ref=vcs_ref, named_after=destination
        )
        _git.init_repository(staging, f"Create project from the mlopsify template {version}")
        if destination.is_dir():
            destination.rmdir()
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created_parents:
            shutil.rmtree(created_parents[0], ignore_errors=True)
        raise
    return destination
