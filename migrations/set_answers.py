"""Template migration step: give a question that a release adds the answer older projects had.

A question a release adds takes its default on update; where the default would change an older
project (0.4.0 made the tracking server opt-in, and an older Kubernetes project has one), this
step records the answer that keeps the project as it was. In copier.yml:

    _migrations:
      - version: v0.4.0
        when: "{{ _stage == 'before' }}"
        command:
          - "{{ _copier_python }}"
          - "{{ _copier_conf.src_path }}/migrations/set_answers.py"
          - use_tracking_server=true
          - --when
          - use_kubernetes=true

Each KEY=VALUE (VALUE read as YAML) is set only where the project has no answer for KEY yet, and,
with ``--when KEY=VALUE``, only where the project's answer for that KEY is VALUE. Copier runs it
in the project's directory for projects updated across the version. It needs only Python and
PyYAML (which Copier has).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ANSWERS_FILE = Path(".copier-answers.yml")


def pairs(arguments: list[str]) -> dict[str, object]:
    parsed: dict[str, object] = {}
    for argument in arguments:
        key, sep, value = argument.partition("=")
        if not sep or not key:
            raise SystemExit(f"set_answers: '{argument}' is not KEY=VALUE")
        parsed[key] = yaml.safe_load(value)
    return parsed


def set_answers(
    answers: dict[str, object], values: dict[str, object], when: dict[str, object]
) -> dict[str, object]:
    """The answers with each of ``values`` that is not answered yet, where ``when`` holds."""
    if any(answers.get(key) != value for key, value in when.items()):
        return dict(answers)
    return {**values, **answers}


def main(arguments: list[str]) -> int:
    split = arguments.index("--when") if "--when" in arguments else len(arguments)
    values, when = pairs(arguments[:split]), pairs(arguments[split + 1 :])
    text = ANSWERS_FILE.read_text(encoding="utf-8")
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    answers = yaml.safe_load(text) or {}
    ANSWERS_FILE.write_text(
        header + yaml.safe_dump(set_answers(answers, values, when), sort_keys=True),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
