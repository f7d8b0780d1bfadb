"""Time `mlopsify fleet status` and `fleet update` over the twelve-repository fleet of the tests.

    .venv/bin/python benchmarks/fleet.py [--jobs 2] [--keep DIR] [--status-only]

Builds the fleet of tests/fleet_fixtures.py (four releases rendered once, twelve bare
remotes, three conflicting, one clone with uncommitted changes, one unreachable address),
then times, with the load average before and after each:

- `fleet status --fresh`: every repository read again (the cache of earlier runs unused);
- `fleet status`: the same fleet again, from the cache (what a daily run over repositories
  that did not change costs);
- `fleet update` without a token: nine branches updated, tested and pushed, no request;
- `fleet update` again: every repository skipped;
- `fleet status --fresh` over a second fleet, the same but with every repository rendered
  on its own under its own project name (as in a real fleet, where no two projects share
  answers): nothing of one repository's renders can serve another's.

``--status-only`` times the two cold runs alone.

Prints a Markdown table for docs/benchmarks.md (written by hand there, not rewritten).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fleet_fixtures import build_fleet  # noqa: E402  (tests/ is not a package)
from template_releases import MLOPSIFY  # noqa: E402


def load() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def timed(fleet, *args: str) -> tuple[float, float, str, str]:
    """Wall time, CPU time (the command and its workers), load average before and after."""
    before = load()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [str(MLOPSIFY), "fleet", *args, str(fleet.fleet_file)],
        cwd=fleet.root,
        env={**os.environ, **fleet.workspace.env},
        capture_output=True,
        check=False,
    )
    wall = time.perf_counter() - start
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = used.ru_utime - cpu.ru_utime + used.ru_stime - cpu.ru_stime
    return wall, seconds, before, load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="2")
    parser.add_argument("--keep", type=Path, help="build the fleets here and keep them")
    parser.add_argument(
        "--status-only", action="store_true", help="time the cold fleet status runs alone"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as scratch:
        root = args.keep or Path(scratch)
        start = time.perf_counter()
        fleet = build_fleet(root / "shared-renders")
        named = build_fleet(root / "own-names", own_names=True)
        print(f"fleets built in {time.perf_counter() - start:.0f} s (not timed below)")
        jobs = ("--jobs", args.jobs)
        rows = [
            (
                "`fleet status --fresh` (every repository read)",
                timed(fleet, "status", *jobs, "--fresh"),
            ),
            (
                "`fleet status --fresh`, every project its own name",
                timed(named, "status", *jobs, "--fresh"),
            ),
        ]
        if not args.status_only:
            rows += [
                ("`fleet status` (again, from the cache)", timed(fleet, "status", *jobs)),
                ("`fleet update` (9 updated, tested, pushed)", timed(fleet, "update", *jobs)),
                ("`fleet update` again (9 skipped)", timed(fleet, "update", *jobs)),
            ]
    print(
        f"\n| command, 12 repositories, --jobs {args.jobs} | time | CPU time |"
        " load average before | after |"
    )
    print("|---|---:|---:|---|---|")
    for label, (wall, cpu, before, after) in rows:
        print(f"| {label} | {wall:.1f} s | {cpu:.1f} s | {before} | {after} |")


if __name__ == "__main__":
    main()
