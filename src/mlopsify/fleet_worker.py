"""A worker of ``fleet status`` or ``fleet update``: many repositories, one process.

    python -m mlopsify.fleet_worker status|status-fresh|update  < repositories.jsonl

Reads repositories (:class:`~mlopsify.fleet.FleetRepository` as JSON), one a line, and answers
each with its result as one line of JSON as soon as it is done, until stdin ends; so the
imports and what a process keeps (the template's release history, compiled Jinja code) are
paid once per worker, not once per repository. :func:`mlopsify.fleet_status.in_parallel`
runs ``jobs`` of them, with the environment each needs. Anything else that writes to
stdout (a library, a git command) goes to stderr: stdout holds only the answers.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict

from .fleet import FleetRepository


def main(work: str) -> None:
    from .assessment_tools import warm_tools
    from .fleet_status import repository_status
    from .fleet_update import update_repository

    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with warm_tools():  # assess's Python checkers start once per worker
        for line in sys.stdin:
            repository = FleetRepository(**json.loads(line))
            if work == "update":
                result = asdict(update_repository(repository))
            else:
                result = asdict(repository_status(repository, fresh=work == "status-fresh"))
            answers.write(json.dumps(result) + "\n")
            answers.flush()


if __name__ == "__main__":
    main(sys.argv[1])
