"""Helpers the test modules share: where things are, running commands, requiring real tools."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlopsify import TemplateSource, new_project

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# Caches stay in the real home, so environments install from cache while HOME is isolated.
REAL_CACHES = {
    "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")),
    "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")),
    "NPM_CONFIG_CACHE": os.environ.get("NPM_CONFIG_CACHE", str(Path.home() / ".npm")),
}


def copy_template(target: Path) -> Path:
    """copier.yml and template/ of the working tree in ``target``, with the runtime's wheel in
    template/vendor/ as a release carries it (scripts/runtime_wheel.py); returns ``target``."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from runtime_wheel import VENDOR_DIR, build_runtime_wheel

    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "copier.yml", target / "copier.yml")
    shutil.copytree(
        ROOT / "template", target / "template", ignore=shutil.ignore_patterns("__pycache__")
    )
    build_runtime_wheel(target / "template" / VENDOR_DIR)
    return target


def require_tool(name: str) -> str:
    """Path of a checker the test needs; under CI=true a missing tool fails instead of skipping."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: run `make bootstrap`"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def chromium_screenshot(url: str, shot: Path, width: int, height: int) -> Path:
    """``url`` as headless Chromium shows it in a ``width`` x ``height`` window, as a PNG."""
    folder = shot.parent
    run(
        require_tool("chromium"),
        "--headless",
        "--no-sandbox",  # the tests may run as root, which Chromium's sandbox refuses
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={folder / 'profile'}",
        f"--window-size={width},{height}",
        f"--screenshot={shot}",
        url,
        cwd=folder,
        timeout=120,
        env={"HOME": str(folder)},
    )
    return shot


def run(
    *args: str | Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command, returning its output; on failure the assertion shows both streams."""
    completed = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and completed.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {completed.returncode}\n"
            f"--- stdout\n{completed.stdout[-6000:]}\n--- stderr\n{completed.stderr[-6000:]}"
        )
    return completed


def makefile_paths(project: Path) -> list[Path]:
    """The project's Makefile and the files of make/ it includes, one per concern."""
    return [project / "Makefile", *sorted((project / "make").glob("*.mk"))]


def makefile_text(project: Path) -> str:
    """Every target and variable of the project's make: the Makefile and make/*.mk, joined."""
    return "".join(path.read_text(encoding="utf-8") for path in makefile_paths(project))


Render = Callable[..., Path]
# The working tree's questions: an answer equal to its default is the same variant.
_QUESTIONS = {
    name: spec
    for name, spec in yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8")).items()
    if not name.startswith("_") and isinstance(spec, dict)
}
_RUNNING_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _defaults(name: str) -> dict[str, Any]:
    """The literal defaults of a project in directory ``name`` (as mlopsify derives them)."""
    found = {
        question: spec["default"]
        for question, spec in _QUESTIONS.items()
        if "default" in spec and "{" not in str(spec["default"])
    }
    found["project_name"] = name
    if _RUNNING_PYTHON in _QUESTIONS["python_version"]["choices"]:
        found["python_version"] = _RUNNING_PYTHON
    return found


class RenderedVariants:
    """Projects rendered from the working tree's template, each variant once per session.

    Every test module asks this one cache (the ``rendered`` fixture) instead of rendering its
    own copies; two modules that want the same answers share one project. The projects are
    for reading: a test that changes files renders its own with ``render``.
    """

    def __init__(self, template: Path, root: Path) -> None:
        self.template = template
        self.root = root
        self.home = root / "home"
        self.home.mkdir()
        (self.home / ".gitconfig").write_text(
            "[user]\n\tname = Test User\n\temail = test@example.com\n"
        )
        self._projects: dict[tuple[str, tuple[tuple[str, str], ...]], Path] = {}

    def __call__(
        self, answers: Mapping[str, Any] | None = None, *, name: str = "demo-project"
    ) -> Path:
        """The project rendered with ``answers`` (the rest default) in a directory ``name``."""
        defaults = _defaults(name)
        given = {k: v for k, v in (answers or {}).items() if defaults.get(k, object()) != v}
        key = (name, tuple(sorted((k, repr(v)) for k, v in given.items())))
        if key not in self._projects:
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("HOME", str(self.home))
                patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
                self._projects[key] = new_project(
                    self.root / f"variant-{len(self._projects)}" / name,
                    data=given,
                    defaults=True,
                    template=TemplateSource.at(self.template),
                )
        return self._projects[key]


def _process_tree(root: int) -> set[int]:
    """``root`` and every process below it (a server that `make` started, for example)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree, grown = {root}, True
    while grown:
        below = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= below
        grown = bool(below)
    return tree


def _listening_sockets() -> dict[str, int]:
    """Socket inode -> port of every TCP socket listening on 127.0.0.1."""
    found: dict[str, int] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, port = fields[1].split(":")
        if fields[3] == "0A" and address == "0100007F":  # LISTEN on 127.0.0.1
            found[fields[9]] = int(port, 16)
    return found


def listening_port(
    process: subprocess.Popen[Any], log: Path | None = None, timeout: float = 120
) -> int:
    """The 127.0.0.1 port that ``process`` (or a process it started) listens on.

    Servers start on port 0: the kernel picks a free port when the server binds, so no other
    test can take it between a choice and the bind, and the port is read back from /proc.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the server exited {process.returncode}: {log.read_text()[-3000:] if log else ''}"
            )
        listening = _listening_sockets()
        for pid in _process_tree(process.pid):
            for fd in Path(f"/proc/{pid}/fd").glob("*"):
                try:
                    target = str(fd.readlink())
                except OSError:
                    continue
                inode = target.removeprefix("socket:[").removesuffix("]")
                if inode in listening:
                    return listening[inode]
        time.sleep(0.1)
    pytest.fail(
        f"no listening port after {timeout:.0f} s: {log.read_text()[-3000:] if log else ''}"
    )


@contextlib.contextmanager
def reserved_port() -> Iterator[int]:
    """A 127.0.0.1 port held bound (not listening) while a server that cannot bind port 0 uses it.

    For a command that must know its port in advance (a shell walk-through): the bound
    socket keeps the kernel from giving the port to anyone else, and the server can still
    bind it with SO_REUSEADDR (uvicorn and Go servers set it), since nothing listens on it.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60, every: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy (errors count as not yet); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as error:  # urllib's URLError and connection errors among them
            last = error
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


@contextlib.contextmanager
def isolated_home(root: Path) -> Iterator[Path]:
    """HOME at `root`/home with a git identity of its own and no system git config, for
    fixtures wider than a test (the autouse `isolated_git` fixture covers one test)."""
    home = root / "home"
    home.mkdir(exist_ok=True)
    (home / ".gitconfig").write_text("[user]\n\tname = Test User\n\temail = test@example.com\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        yield home


PROMETHEUS_RULE = "deploy/k8s/components/monitoring/prometheusrule.yaml"
RULES_FILE = "monitoring/prometheus/rules.yml"


def with_made_rules(project: Path, into: Path) -> Path:
    """A copy of ``project`` (shared renders stay read only) whose monitoring/prometheus/rules.yml
    is made as `make rules` makes it in a Kubernetes project: from the PrometheusRule's spec."""
    copy = Path(shutil.copytree(project, into, ignore=shutil.ignore_patterns(".git")))
    module = "mlopsify_runtime.prometheus_rules"
    run(sys.executable, "-m", module, PROMETHEUS_RULE, RULES_FILE, cwd=copy)
    return copy


def signing_key_pair(directory: Path) -> tuple[Path, Path]:
    """An EC P-256 key pair in PEM files, as `make keys` writes them: ``directory``/model-signing.key
    (the private key, PKCS#8) and model-signing.pub; returns their paths."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = directory / "model-signing.key", directory / "model-signing.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public
