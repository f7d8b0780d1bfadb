"""Answers to the template's questions in files: an answers file, a project's ``.copier-answers.yml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import InvalidAnswerError, RepositoryStateError

ANSWERS_FILE = ".copier-answers.yml"


def load_yaml_file(path: Path, what: str, fix: str) -> Any:
    """The YAML document in ``path``; one line naming ``what`` it is when it is missing or broken."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidAnswerError(
            f"{what} {path} does not exist: give the path of a YAML file"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InvalidAnswerError(f"{what} {path} is not valid YAML{where}: {fix}") from None


def read_answers_file(path: Path) -> dict[str, Any]:
    """Read a YAML mapping of answers (an ``--answers-file`` or a project's answers file)."""
    loaded = load_yaml_file(path, "answers file", "fix it or answer with --data KEY=VALUE")
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise InvalidAnswerError(f"answers file {path} must be a mapping of question: answer")
    return loaded


def read_project_answers(project: Path) -> dict[str, Any]:
    """The answers a project was rendered with, including Copier's ``_src_path`` and ``_commit``."""
    path = project / ANSWERS_FILE
    if not path.is_file():
        raise RepositoryStateError(
            f"{project} has no {ANSWERS_FILE}: it was not made with mlopsify; run `mlopsify adopt` instead"
        )
    try:
        answers = read_answers_file(path)
    except InvalidAnswerError:
        raise RepositoryStateError(
            f"{path} is corrupt: restore it from git (`git checkout -- {ANSWERS_FILE}`)"
        ) from None
    if not isinstance(answers.get("_commit"), str) or not isinstance(answers.get("_src_path"), str):
        raise RepositoryStateError(
            f"{path} lacks _commit or _src_path: restore it from git (`git checkout -- {ANSWERS_FILE}`)"
        )
    return answers
