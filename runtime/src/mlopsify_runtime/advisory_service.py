"""Audit the locked packages with pip-audit, or warn when the advisory service cannot be asked.

    python -m mlopsify_runtime.advisory_service [--service URL] REQUIREMENTS...

pip-audit asks PyPI's JSON API for the advisories of each pinned version
(https://pypi.org/pypi/NAME/VERSION/json). This asks the same API for every pin first:

- the service cannot be asked (DNS, refused, timed out, HTTP 5xx or another error, or it
  lists none of the pins, as a mirror without per-version JSON): one WARNING line naming the
  service, and exit 0: an advisory service that is down never stops the pipeline;
- a pin the service answers 404 for is a package it does not list (the runtime's own wheel,
  which is not published): it is named and left out of the audit, as are path lines such as
  ``./vendor/...whl``, which pip-audit cannot audit;
- otherwise pip-audit audits the listed pins (hashes required, nothing installed) and its
  exit code is this one's: a known vulnerability fails the audit.

``--service`` is the base URL of the API to probe (default https://pypi.org; the tests point
it at a stand-in). Exit codes: 0 no known vulnerability, or the service cannot be asked; 1
pip-audit found a vulnerability (or failed); 2 no pinned package in the requirements.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SERVICE = "https://pypi.org"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)")
TIMEOUT = 15
PROBES_AT_ONCE = 16

Pin = tuple[str, str]
Audit = Callable[[list[Path]], int]


class Unreachable(Exception):
    """The service gave no usable answer: the reason, as the warning says it."""


@dataclass
class Requirements:
    """One hashed requirements file as entries: a requirement with its continuation lines."""

    path: Path
    entries: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Requirements:
        entries: list[str] = []
        continued = False
        for line in path.read_text().splitlines():
            if continued:
                entries[-1] += "\n" + line
            elif line.strip() and not line.lstrip().startswith("#"):
                entries.append(line)
            continued = line.rstrip().endswith("\\")
        return cls(path, entries)

    def pins(self) -> list[Pin]:
        return [(found[1], found[2]) for entry in self.entries if (found := PIN.match(entry))]

    def unpinned(self) -> list[str]:
        """Packages that are not NAME==VERSION (a wheel's path): the service lists none of them."""
        return [e.split()[0] for e in self.entries if not PIN.match(e) and not e.startswith("-")]

    def keeping(self, listed: set[Pin]) -> str:
        kept = [e for e in self.entries if (found := PIN.match(e)) and (found[1], found[2]) in listed]
        return "".join(entry + "\n" for entry in kept)


def probe(service: str, pin: Pin) -> bool:
    """Whether the service lists ``pin`` (200) or not (404); Unreachable for anything else."""
    url = f"{service}/pypi/{pin[0]}/{pin[1]}/json"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            answer.read()
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise Unreachable(f"HTTP {error.code} for {url}") from None
    except (OSError, ValueError) as error:  # no answer: DNS, refused, timed out, proxy
        raise Unreachable(f"{getattr(error, 'reason', error)} for {url}") from None
    return True


def listed_pins(service: str, pins: list[Pin]) -> set[Pin]:
    """The pins the service lists; the first is asked alone, so a dead service fails fast."""
    first, rest = pins[0], pins[1:]
    found = {first} if probe(service, first) else set()
    with ThreadPoolExecutor(max_workers=PROBES_AT_ONCE) as pool:
        answers = list(pool.map(lambda pin: probe(service, pin), rest))
    found |= {pin for pin, listed in zip(rest, answers, strict=True) if listed}
    if not found:
        raise Unreachable(f"it lists none of the {len(pins)} pins")
    return found


def pip_audit(requirements: list[Path]) -> int:
    """pip-audit on exactly these pins: hashes required, nothing resolved or installed."""
    command = [sys.executable, "-m", "pip_audit", "--strict", "--require-hashes", "--disable-pip"]
    command += ["--progress-spinner", "off"]
    for path in requirements:
        command += ["--requirement", str(path)]
    return subprocess.run(command, check=False).returncode


def unique(pins: Iterable[Pin]) -> list[Pin]:
    return list(dict.fromkeys(pins))


def main(argv: list[str] | None = None, audit: Audit = pip_audit) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", default=DEFAULT_SERVICE, help="base URL of PyPI's JSON API")
    parser.add_argument("requirements", nargs="+", type=Path)
    args = parser.parse_args(argv)
    service = args.service.rstrip("/")
    files = [Requirements.read(path) for path in args.requirements]
    pins = unique(pin for file in files for pin in file.pins())
    names = " ".join(str(path) for path in args.requirements)
    if not pins:
        print(f"audit-deps: no pinned package in {names}: run make lock", file=sys.stderr)
        return 2
    try:
        listed = listed_pins(service, pins)
    except Unreachable as reason:
        print(
            f"audit-deps: WARNING: the advisory service {service} (PyPI's JSON API) could not be "
            f"asked ({reason}): the locked packages were not audited; run make audit-deps where "
            "it answers, or set HTTPS_PROXY to a proxy that reaches it",
            file=sys.stderr,
        )
        return 0
    unlisted = [f"{name}=={version}" for name, version in pins if (name, version) not in listed]
    unlisted += list(dict.fromkeys(entry for file in files for entry in file.unpinned()))
    if unlisted:
        print(f"audit-deps: not audited, {service} does not list them: {', '.join(unlisted)}")
    with tempfile.TemporaryDirectory(prefix="audit-deps-") as scratch:
        kept = []
        for number, file in enumerate(files):
            if text := file.keeping(listed):
                kept.append(Path(scratch) / f"{number}-{file.path.name}")
                kept[-1].write_text(text)
        print(f"audit-deps: pip-audit audits the {len(listed)} listed pins of {names}", flush=True)
        return audit(kept)


if __name__ == "__main__":
    sys.exit(main())
