"""Which Dockerfile builds the service, and which user its image runs as.

A repository may hold several Dockerfiles: the service's, and images of tools it runs beside it
(an MLflow tracking server, Prometheus). Only the service's image says whether the service runs
as root, so assess decides which one that is:

1. a Dockerfile that the CI files or the Makefile build (``docker|podman build [-f FILE] DIR``,
   ``buildah bud``, GitHub's build-push-action ``file:``), unless it runs a tool's server;
   the root one first when several are built;
2. else the Dockerfile (or Containerfile) at the root;
3. else the only Dockerfile that does not run a tool's server.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from pathlib import Path

DOCKERFILES = ("Dockerfile", "Containerfile", "*.Dockerfile", "*.dockerfile")
# The files of each CI provider mlopsify reads (assessment.py's rules use them too).
CI_FILES = (
    ".gitlab-ci.yml",
    "Jenkinsfile",
    ".github/workflows/*.yml",
    ".github/workflows/*.yaml",
    "azure-pipelines.yml",
    ".circleci/config.yml",
    "bitbucket-pipelines.yml",
)
BUILD_FILES = ("Makefile", *CI_FILES)
_BUILD = re.compile(
    r"(?:docker|podman|buildah|\$\(DOCKER\)|\$\{DOCKER\}|\$DOCKER)\s+(?:buildx\s+)?(?:build|bud)\b([^\n;&|]*)"
)
_ACTION_FILE = re.compile(r"(?m)^\s*file:\s*['\"]?([^\s'\"]+)")
# Images of tools a service runs beside it: they say nothing of the service's own image.
_TOOL_SERVER = re.compile(
    r"(?im)^\s*(?:CMD|ENTRYPOINT)\b.*\b(?:mlflow\W+(?:server|ui)|prometheus|grafana|alertmanager)\b"
)


def is_dockerfile(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, pattern) for pattern in DOCKERFILES)


def runs_a_tool_server(text: str) -> bool:
    return _TOOL_SERVER.search(text) is not None


def built_dockerfiles(tree: Path, paths: list[str]) -> list[str]:
    """The Dockerfiles that the CI files and the Makefile build, in the order they name them."""
    built: list[str] = []
    for path in paths:
        if not any(fnmatch.fnmatch(path, pattern) for pattern in BUILD_FILES):
            continue
        text = _read(tree / path)
        for arguments in _BUILD.findall(text):
            built.append(_dockerfile_of(arguments))
        if "build-push-action" in text:
            built.extend(posixpath.normpath(found) for found in _ACTION_FILE.findall(text))
    return list(dict.fromkeys(built))


def _dockerfile_of(arguments: str) -> str:
    try:
        words = shlex.split(arguments)
    except ValueError:
        words = arguments.split()
    context = "."
    for number, word in enumerate(words):
        if word in ("-f", "--file") and number + 1 < len(words):
            return posixpath.normpath(words[number + 1])
        if word.startswith("--file="):
            return posixpath.normpath(word.removeprefix("--file="))
    if words and not words[-1].startswith("-") and "$" not in words[-1]:
        context = words[-1]
    return posixpath.normpath(posixpath.join(context, "Dockerfile"))


def service_dockerfile(tree: Path, paths: list[str]) -> tuple[str | None, str]:
    """The Dockerfile that builds the service and how it was chosen, or None and why none."""
    dockerfiles = [p for p in paths if is_dockerfile(p) and (tree / p).is_file()]
    services = [p for p in dockerfiles if not runs_a_tool_server(_read(tree / p))]
    built = [p for p in built_dockerfiles(tree, paths) if p in services]
    if built:
        return (sorted(built, key=lambda p: "/" in p)[0], "built by CI or the Makefile")
    for root in ("Dockerfile", "Containerfile"):
        if root in services:
            return root, "at the root"
    if len(services) == 1:
        return services[0], "the only Dockerfile of a service"
    if not services:
        return None, "no Dockerfile builds the service (each one runs a tool's server)"
    return None, (
        f"no Dockerfile is known to build the service ({len(services)} candidates; none is built"
        " by CI or the Makefile, none is at the root)"
    )


def user_of_last_stage(text: str) -> str | None:
    """The USER the image's last stage ends with; None when it sets none (root)."""
    user = None
    for line in _instructions(text):
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            user = None
        elif word.upper() == "USER" and rest.strip():
            user = rest.strip()
    return user


def _instructions(text: str) -> list[str]:
    """Instructions one a line: comments dropped, continuation lines joined."""
    joined = re.sub(
        r"\\\s*\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    return [line.strip() for line in joined.splitlines() if line.strip()]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
