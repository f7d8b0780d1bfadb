"""What mlopsify knows about a template: its releases and, for each, the questions it asks.

:func:`template_for` gives the one :class:`Template` of a source. Each release's
``copier.yml`` is read once from one bare clone; the shipped release history (a file that
does not change while mlopsify runs) is read once per process, another template once per
call, since it may gain releases between two calls. Every module that needs the questions,
their choices, the services or the supported Python versions asks a :class:`Release`.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from .errors import InvalidAnswerError, TemplateVersionError
from .template_source import TemplateSource, newest_release, same_release

CONFIG_NAMES = ("copier.yml", "copier.yaml")
# The questions whose answers are services (`mlopsify add`); their values come from copier.yml.
SERVICE_QUESTIONS = (
    "ci_provider",
    "use_kubernetes",
    "use_monitoring",
    "use_tracking_server",
    "dvc_remote_kind",
    "compliance",
    "orchestrator",
)


# How Copier parses a text answer to a question of each type that can refuse one.
_YES = {"y", "yes", "t", "true", "on", "1"}
_NO = {"n", "no", "f", "false", "off", "0"}


def _parse_bool(text: str) -> bool:
    """A yes/no answer as Copier reads it; anything else (``maybe``, ``flase``) is refused,
    where Copier would take any other non-empty text as yes."""
    word = text.strip().lower()
    if word in _YES | _NO:
        return word in _YES
    raise ValueError(text)


_TEXT_PARSERS: dict[str, Callable[[str], Any]] = {
    "bool": _parse_bool,
    "int": int,
    "float": float,
    "json": json.loads,
    "yaml": yaml.safe_load,
}
_TYPE_NAMES = {
    "bool": "true or false (also yes/no, 1/0)",
    "int": "an integer",
    "float": "a number",
    "json": "JSON",
    "yaml": "YAML",
}


@dataclass(frozen=True)
class Service:
    """``name`` turns on by answering ``question`` with ``value``."""

    name: str
    question: str
    value: Any
    help: str


@dataclass(frozen=True)
class Release:
    """One release of a template: its version and its ``copier.yml``."""

    version: str
    config: Mapping[str, Any]

    @cached_property
    def questions(self) -> dict[str, dict[str, Any]]:
        """Each question's specification by name, in the order Copier asks them."""
        return {
            name: spec
            for name, spec in self.config.items()
            if not name.startswith("_") and isinstance(spec, dict)
        }

    def choices(self, question: str) -> list[Any]:
        """The values ``question`` accepts (a list, or the values of a label -> value map)."""
        choices = self.questions.get(question, {}).get("choices") or []
        values = choices.values() if isinstance(choices, dict) else choices
        # A choice may be written [label, value].
        return [value[-1] if isinstance(value, list) else value for value in values]

    @cached_property
    def python_versions(self) -> tuple[str, ...]:
        """The Python versions a generated project supports."""
        return tuple(str(version) for version in self.choices("python_version"))

    @cached_property
    def services(self) -> list[Service]:
        """Every choice of a service question (except ``none``), every ``use_*`` switch.

        A choice is named by its value; a value an earlier question already names (``azure``:
        Azure Pipelines, then the Azure Blob DVC remote) is named ``question=value``.
        """
        found: list[Service] = []
        for question in SERVICE_QUESTIONS:
            spec = self.questions.get(question)
            if spec is None:
                continue
            help_text = str(spec.get("help", ""))
            if spec.get("type") == "bool":
                found.append(Service(question.removeprefix("use_"), question, True, help_text))
                continue
            taken = {service.name for service in found}
            found += [
                Service(
                    f"{question}={value}" if str(value) in taken else str(value),
                    question,
                    value,
                    help_text,
                )
                for value in self.choices(question)
                if value != "none"
            ]
        return found

    def service(self, name: str) -> Service:
        """The service called ``name``, or given as ``question=value``."""
        for service in self.services:
            if name in (service.name, f"{service.question}={service.value}"):
                return service
        names = ", ".join(s.name for s in self.services)
        raise InvalidAnswerError(f"unknown service {name}: use one of {names}")

    def check_answers(self, answers: Mapping[str, Any]) -> None:
        """Refuse, before Copier runs, answers to questions this release does not ask (Copier
        would ignore them) and text answers that are not of their question's type (Copier
        would fail on them with a bare ``ValueError``)."""
        unknown = sorted(
            key for key in answers if key not in self.questions and not key.startswith("_")
        )
        if unknown:
            known = ", ".join(sorted(self.questions))
            raise InvalidAnswerError(f"unknown question {', '.join(unknown)}: use one of {known}")
        for name, value in answers.items():
            kind = self.questions.get(name, {}).get("type", "str")
            parse = _TEXT_PARSERS.get(kind)
            if parse is None or not isinstance(value, str):
                continue
            try:
                parse(value)
            except (ValueError, yaml.YAMLError):
                raise InvalidAnswerError(
                    f"{name} takes {_TYPE_NAMES[kind]}, not {value!r}: give one, as --data {name}=VALUE"
                ) from None

    def refusal(
        self, answers: Mapping[str, Any], *, checked: Iterable[str]
    ) -> tuple[str, str] | None:
        """The first of the ``checked`` answers that this release's validators refuse, with
        the validator's message; None when they all pass.

        Copier drops a recorded answer that a newer release refuses and takes the question's
        default instead, silently (a project named ``json`` would become ``my-ml-service``):
        an update checks the recorded answers first. A validator that this plain Jinja cannot
        render (a filter of Copier's own) is left to Copier.
        """
        import jinja2
        from jinja2.sandbox import SandboxedEnvironment

        environment = SandboxedEnvironment()
        checked = set(checked)
        context: dict[str, Any] = {}
        # In question order, each validator seeing the answers so far, as Copier asks them.
        for name, spec in self.questions.items():
            if name not in answers:
                continue
            context[name] = answers[name]
            validator = spec.get("validator")
            if name not in checked or not isinstance(validator, str):
                continue
            try:
                message = environment.from_string(validator).render(context).strip()
            except jinja2.TemplateError:
                continue
            if message:
                return name, message
        return None


class Template:
    """A template's release history and, read on demand, each release's ``copier.yml``."""

    def __init__(self, source: TemplateSource) -> None:
        self.source = source
        self._releases: dict[str, Release] = {}
        self._clone: tempfile.TemporaryDirectory[str] | None = None

    @cached_property
    def versions(self) -> list[str]:
        """Release tags, oldest first; empty for a plain directory."""
        if self._plain_directory is not None and not self._is_git:
            return []
        return self.source.versions()

    def newest(self, *, prereleases: bool = False) -> str:
        """The newest release: a final one unless ``prereleases`` or there is none."""
        newest = newest_release(self.versions, prereleases=prereleases)
        if newest is None:
            raise TemplateVersionError(f"the template at {self.source.url} has no release tags")
        return newest

    def tag_for(self, requested: str) -> str:
        """The release tag ``requested`` names (``0.4.0rc1`` finds ``v0.4.0-rc1``), or a git
        ref that is no version (``HEAD``, a branch) as it is; refuses a version not released."""
        from packaging.version import InvalidVersion, Version

        tag = same_release(self.versions, requested)
        if tag is not None:
            return tag
        try:
            Version(requested)
        except InvalidVersion:
            return requested
        raise self.unknown_version(requested)

    def unknown_version(self, requested: str) -> TemplateVersionError:
        """The error for a release ``requested`` that this template does not have."""
        available = ", ".join(self.versions) or "none"
        return TemplateVersionError(
            f"template version {requested} does not exist: available versions are {available}"
        )

    def release(self, ref: str | None = None) -> Release:
        """Release ``ref``; without one, what mlopsify renders: the newest final release (else
        the newest pre-release), else the work tree."""
        if ref is None:
            ref = self.newest() if self.versions else "HEAD"
        if ref not in self._releases:
            self._releases[ref] = Release(ref, self._read_config(ref))
        return self._releases[ref]

    @cached_property
    def _plain_directory(self) -> Path | None:
        """The template's directory when it is a local directory (git or not), else None."""
        path = Path(self.source.url)
        return path if self.source.bundle is None and path.is_dir() else None

    @cached_property
    def _is_git(self) -> bool:
        directory = self._plain_directory
        # The root of a git work tree, or a bare repository: Copier reads its tags.
        return directory is None or (directory / ".git").exists() or (directory / "HEAD").is_file()

    def _read_config(self, ref: str) -> dict[str, Any]:
        for name in CONFIG_NAMES:
            text = self._show(ref, name)
            if text is not None:
                loaded = yaml.safe_load(text)
                return loaded if isinstance(loaded, dict) else {}
        raise TemplateVersionError(f"template release {ref} has no copier.yml in {self.source.url}")

    def _show(self, ref: str, name: str) -> str | None:
        """The text of ``name`` at ``ref``, or None when the release has no such file."""
        directory = self._plain_directory
        if directory is not None and (ref == "HEAD" or not self._is_git):
            # Copier renders a local directory as it is, uncommitted changes included.
            file = directory / name
            return file.read_text(encoding="utf-8") if file.is_file() else None
        where = ["-C", str(directory)] if directory else ["--git-dir", str(self._bare_clone())]
        shown = subprocess.run(
            ["git", *where, "show", f"{ref}:{name}"], capture_output=True, text=True
        )
        return shown.stdout if shown.returncode == 0 else None

    def _bare_clone(self) -> Path:
        """One bare clone of a bundle or remote template, kept while this object lives."""
        if self._clone is None:
            self._clone = tempfile.TemporaryDirectory(prefix="mlopsify-template-")
            subprocess.run(
                [
                    "git",
                    "clone",
                    "--quiet",
                    "--bare",
                    str(self.source.bundle or self.source.url),
                    f"{self._clone.name}/template.git",
                ],
                check=True,
                capture_output=True,
            )
        return Path(self._clone.name) / "template.git"


_SHIPPED: dict[TemplateSource, Template] = {}


def template_for(source: TemplateSource) -> Template:
    """The :class:`Template` of ``source``: one per process for a bundle, else a new one."""
    if source.bundle is None:
        return Template(source)
    if source not in _SHIPPED:
        _SHIPPED[source] = Template(source)
    return _SHIPPED[source]
