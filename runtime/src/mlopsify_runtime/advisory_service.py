"""Fail in one line when the advisory service of `make audit-deps` cannot answer.

    python -m mlopsify_runtime.advisory_service REQUIREMENTS...

pip-audit asks PyPI's JSON API for the advisories of each pinned version
(https://pypi.org/pypi/NAME/VERSION/json). Where that API cannot be reached, or a mirror
answers only part of it, pip-audit would report every package as "could not be audited":
this asks once, for the first pin, so that the audit fails early with what to do.

Exit codes: 0 the service answers, 3 it does not.
"""

from __future__ import annotations

import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", re.MULTILINE)


def first_pin(requirements: list[str]) -> tuple[str, str]:
    for path in requirements:
        found = PIN.search(Path(path).read_text())
        if found:
            return found.group(1), found.group(2)
    raise SystemExit(f"audit-deps: no pinned package in {' '.join(requirements)}: run make lock")


def main(requirements: list[str]) -> int:
    name, version = first_pin(requirements)
    url = f"https://pypi.org/pypi/{name}/{version}/json"
    try:
        with urllib.request.urlopen(url, timeout=15) as answer:
            answer.read()
    except urllib.error.HTTPError as error:  # an answer, but not the advisories
        return unreachable(url, f"HTTP {error.code}")
    except OSError as error:  # no answer: DNS, refused, timed out, proxy
        return unreachable(url, str(getattr(error, "reason", error)))
    return 0


def unreachable(url: str, reason: str) -> int:
    print(
        f"audit-deps: the advisory service (PyPI's JSON API, {url}) could not be reached "
        f"({reason}): run make audit-deps where pypi.org is reachable (CI does), or set "
        "HTTPS_PROXY to a proxy that reaches it",
        file=sys.stderr,
    )
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
