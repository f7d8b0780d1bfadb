"""Template migration step: rename questions in a project's answers file before an update.

A merge cannot follow a renamed question: without this step the new name would take its
default and the project's choice would be lost. In copier.yml:

    _migrations:
      - version: v0.3.0
        when: "{{ _stage == 'before' }}"
        command:
          - "{{ _copier_python }}"
          - "{{ _copier_conf.src_path }}/migrations/rename_answers.py"
          - old_name=new_name

Copier runs it in the project's directory, between rendering the old release and the new
one, for projects updated across v0.3.0. It needs only Python and PyYAML (which Copier has).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ANSWERS_FILE = Path(".copier-answers.yml")


def rename(answers: dict[str, object], renames: dict[str, str]) -> dict[str, object]:
    """The answers with each old key renamed; a new key already answered wins over the old one."""
    renamed = dict(answers)
    for old, new in renames.items():
        if old in renamed:
            value = renamed.pop(old)
            renamed.setdefault(new, value)
    return renamed


def main(arguments: list[str]) -> int:
    renames: dict[str, str] = {}
    for argument in arguments:
        old, sep, new = argument.partition("=")
        if not sep or not old or not new:
            print(f"rename_answers: '{argument}' is not OLD=NEW", file=sys.stderr)
            return 2
        renames[old] = new
    text = ANSWERS_FILE.read_text(encoding="utf-8")
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    answers = yaml.safe_load(text) or {}
    ANSWERS_FILE.write_text(
        header + yaml.safe_dump(rename(answers, renames), sort_keys=True), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
