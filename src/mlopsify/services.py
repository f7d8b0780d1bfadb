"""``add``: switch on one service of the template (a CI provider, Kubernetes, monitoring...).

A service is one answer to one of the template's questions, read from the ``copier.yml`` of
the release the project is at: every choice of a choice question (except ``none``) and
every ``use_*`` yes/no question. Adding one changes that answer and updates the project at
its current release, with the safety rules of ``update``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answers import ANSWERS_FILE, parse_data, read_project_answers
from .errors import InvalidAnswerError
from .template_source import TemplateSource
from .updating import (
    Conflict,
    UpdateResult,
    check_updatable,
    project_template,
    template_config,
    update_project,
)

# The questions whose answers are services; their values come from copier.yml.
SERVICE_QUESTIONS = (
    "ci_provider",
    "use_kubernetes",
    "use_monitoring",
    "dvc_remote_kind",
    "compliance",
    "orchestrator",
)


@dataclass(frozen=True)
class Service:
    """``name`` turns on by answering ``question`` with ``value``."""

    name: str
    question: str
    value: Any
    help: str


@dataclass(frozen=True)
class ServiceList:
    version: str
    services: list[Service]
    answers: dict[str, Any]

    def is_on(self, service: Service) -> bool:
        return bool(self.answers.get(service.question) == service.value)


@dataclass(frozen=True)
class AddResult:
    """The service, the answer it replaced, and the update (None when it was already on)."""

    service: Service
    previous: Any
    update: UpdateResult | None


def services_from_config(config: dict[str, Any]) -> list[Service]:
    found: list[Service] = []
    for question in SERVICE_QUESTIONS:
        spec = config.get(question)
        if not isinstance(spec, dict):
            continue
        help_text = str(spec.get("help", ""))
        if spec.get("type") == "bool":
            found.append(Service(question.removeprefix("use_"), question, True, help_text))
            continue
        choices = spec.get("choices") or []
        values = choices.values() if isinstance(choices, dict) else choices
        for value in values:
            value = value[-1] if isinstance(value, list) else value
            if value != "none":
                found.append(Service(str(value), question, value, help_text))
    return found


def list_services(project: Path) -> ServiceList:
    """The services of ``project``'s template release, or of the shipped template outside a project."""
    project = project.expanduser().absolute()
    if (project / ANSWERS_FILE).exists():
        answers = read_project_answers(project)
        template, version = project_template(answers), str(answers["_commit"])
    else:
        answers, template = {}, TemplateSource.shipped()
        version = template.versions()[-1]
    return ServiceList(version, services_from_config(template_config(template, version)), answers)


def dependent_answers(
    config: dict[str, Any], answers: dict[str, Any], question: str, value: Any
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
    for name, spec in config.items():
        if name.startswith("_") or name == question or name not in answers:
            continue
        if not isinstance(spec, dict):
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
    data_pairs: list[str] | None = None,
    conflict: Conflict = "inline",
    pretend: bool = False,
    trust: bool = False,
    template: TemplateSource | None = None,
) -> AddResult:
    """Turn ``service`` on in ``project`` by changing one answer and updating at its release."""
    project = project.expanduser().absolute()
    answers = check_updatable(project)
    template = template or project_template(answers)
    version = str(answers["_commit"])
    config = template_config(template, version)
    services = services_from_config(config)
    chosen = next((s for s in services if s.name == service), None)
    if chosen is None:
        names = ", ".join(s.name for s in services)
        raise InvalidAnswerError(f"unknown service {service}: use one of {names}")
    previous = answers.get(chosen.question)
    if previous == chosen.value:
        return AddResult(chosen, previous, None)
    data = {
        **dependent_answers(config, answers, chosen.question, chosen.value),
        chosen.question: chosen.value,
        **parse_data(data_pairs or []),
    }
    result = update_project(
        project,
        to=version,
        data=data,
        conflict=conflict,
        pretend=pretend,
        trust=trust,
        template=template,
    )
    return AddResult(chosen, previous, result)
