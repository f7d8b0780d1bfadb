"""``add``: switch on one service of the template (a CI provider, Kubernetes, monitoring...).

A service is one answer to one of the template's questions, read from the ``copier.yml`` of
the release the project is at (:attr:`Release.services`): every choice of a choice question
(except ``none``) and every ``use_*`` yes/no question. Adding one changes that answer and
updates the project at its current release, with the safety rules of ``update`` (written
all at once or not at all).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answers import ANSWERS_FILE, read_project_answers
from .changes import UpdateResult
from .rendering import Conflict
from .template import Release, Service, template_for
from .template_source import TemplateSource
from .updating import check_updatable, source_for, update_checked, update_session

__all__ = ["AddResult", "Service", "ServiceList", "add_service", "list_services"]


@dataclass(frozen=True)
class ServiceList:
    version: str
    services: list[Service]
    answers: dict[str, Any]

    def is_on(self, service: Service) -> bool:
        return bool(self.answers.get(service.question) == service.value)


@dataclass(frozen=True)
class AddResult:
    """The service, the answer it replaced, and the update (None when it was already on).

    ``recovered`` is the line about an interrupted earlier update rolled back first, if any.
    """

    service: Service
    previous: Any
    update: UpdateResult | None
    recovered: str | None = None


def list_services(project: Path) -> ServiceList:
    """The services of ``project``'s template release, or of the shipped template outside a project."""
    project = project.expanduser().absolute()
    if (project / ANSWERS_FILE).exists():
        answers = read_project_answers(project)
        template = template_for(TemplateSource.recorded(str(answers["_src_path"])))
        release = template.release(str(answers["_commit"]))
    else:
        answers, release = {}, template_for(TemplateSource.shipped()).release()
    return ServiceList(release.version, release.services, answers)


def dependent_answers(
    release: Release, answers: Mapping[str, Any], question: str, value: Any
) -> dict[str, Any]:
    """Answers whose default or validator depends on ``question``, to send along with it.

    One that still has its default follows the new value (changing dvc_remote_kind from local
    to s3 moves dvc_remote_url to the s3 default); one the user chose is kept and sent again,
    so that its validator checks it against the new value (Copier does not re-check answers
    it reuses) and says what to give instead.
    """
    from jinja2 import TemplateError
    from jinja2.sandbox import SandboxedEnvironment

    environment = SandboxedEnvironment()
    mentions = re.compile(rf"\b{re.escape(question)}\b")
    dependent: dict[str, Any] = {}
    for name, spec in release.questions.items():
        if name == question or name not in answers:
            continue
        default, validator = spec.get("default"), spec.get("validator")
        if isinstance(default, str) and mentions.search(default):
            try:
                before = environment.from_string(default).render(answers)
                after = environment.from_string(default).render({**answers, question: value})
            except TemplateError:
                before = after = ""
            if before and str(answers[name]).strip() == before.strip():
                dependent[name] = after.strip()
                continue
            dependent[name] = answers[name]
        elif isinstance(validator, str) and mentions.search(validator):
            dependent[name] = answers[name]
    return dependent


def add_service(
    project: Path,
    service: str,
    *,
    data: Mapping[str, Any] | None = None,
    conflict: Conflict = "inline",
    pretend: bool = False,
    trust: bool = False,
    template: TemplateSource | None = None,
) -> AddResult:
    """Turn ``service`` on in ``project`` by changing one answer and updating at its release.

    ``data`` changes other answers on the way (for example the URL of a new DVC remote).
    """
    project = project.expanduser().absolute()
    with update_session(project) as session:
        answers = check_updatable(project)
        known = template_for(source_for(answers, template))
        version = str(answers["_commit"])
        release = known.release(version)
        chosen = release.service(service)
        previous = answers.get(chosen.question)
        if previous == chosen.value:
            return AddResult(chosen, previous, None, session.recovered)
        changed = {
            **dependent_answers(release, answers, chosen.question, chosen.value),
            chosen.question: chosen.value,
            **(data or {}),
        }
        result = update_checked(
            session,
            answers,
            known,
            to=version,
            data=changed,
            conflict=conflict,
            pretend=pretend,
            trust=trust,
        )
    return AddResult(chosen, previous, result, session.recovered)
