"""One repository's share of ``fleet status`` or ``fleet update``, in a process of its own.

    python -m mlopsify.fleet_worker status|status-fresh|update  < repository.json

Reads the repository (:class:`~mlopsify.fleet.FleetRepository` as JSON) on stdin and prints
its result as JSON; :func:`mlopsify.fleet_status.in_parallel` runs one per repository, with
the environment each needs.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from .fleet import FleetRepository


def main(work: str) -> None:
    from .fleet_status import repository_status
    from .fleet_update import update_repository

    repository = FleetRepository(**json.loads(sys.stdin.read()))
    if work == "update":
        print(json.dumps(asdict(update_repository(repository))))
    else:
        print(json.dumps(asdict(repository_status(repository, fresh=work == "status-fresh"))))


if __name__ == "__main__":
    main(sys.argv[1])
