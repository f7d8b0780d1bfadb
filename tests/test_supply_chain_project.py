"""The supply chain of a generated project, on one environment and one trained model.

One lock: `make setup` writes uv.lock when there is none and installs exactly it; a
dependency change without `make lock` stops `make setup` with one clear line; `make lock`
refreshes uv.lock and the hashed requirements files that pip and the image use (the same
versions inside the built serving image: tests/test_image_build.py).

Signed models: `make keys` makes a development key pair (the private key git-ignored), the
pipeline signs the model directory, and the service checks it before it becomes ready: one
flipped byte of the model keeps it from ever being ready, with one log line and a metric.

Dependency audit: `make audit-deps` runs pip-audit on exactly the lock's pins, against PyPI's
JSON API, after asking that API for each pin. From these machines that API cannot answer
(pypi.org is a mirror here that has no per-version JSON, HTTP 404, and api.osv.dev does not
resolve), so the real audit cannot run: the tests prove the target and GitLab's audit-deps
job warn in one line that the advisory service could not be asked and pass, so that an
unreachable service never stops training (the probe's other answers, against a stand-in:
tests/runtime/test_advisory_service.py). With a stand-in that answers the probe, the real
pip-audit gets the listed pins without the unpublished runtime, and its failure fails the audit. They make the service unreachable on purpose
(HTTPS_PROXY on a closed port) so that they give the same verdict on a machine that can reach
pypi.org.

SBOM: `make sbom` writes a CycloneDX 1.6 JSON document of the serving image's packages that
the CycloneDX schema accepts (checked offline against tests/data/cyclonedx/).

About 2 minutes: one `make setup` (uv, shared cache) and one `make gate` (the pipeline).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib
from helpers import isolated_home, listening_port, require_tool, run, wait_for
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from test_ci_providers import gitlab_ci_local

from mlopsify import TemplateSource, __version__, new_project

pytestmark = pytest.mark.slow

# Seeded into the venv by `uv venv --seed`, never in a lock; the project itself is editable.
NOT_LOCKED = {"pip", "setuptools", "wheel"}
# The CycloneDX 1.6 JSON schema and the two it references (SPDX license ids, JSF signatures),
# from github.com/CycloneDX/specification (schema/, commit e02a34ae42a4): read offline.
CYCLONEDX = Path(__file__).parent / "data" / "cyclonedx"


def locked_versions(project: Path) -> dict[str, str]:
    lock = tomllib.loads((project / "uv.lock").read_text())
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        versions.setdefault(package["name"], set()).add(package["version"])
    return {name: ",".join(sorted(found)) for name, found in versions.items()}


def pinned(requirements: Path) -> dict[str, str]:
    """name -> versions (comma-joined) of the pins in a hashed requirements file."""
    found: dict[str, set[str]] = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", line)
        if match:
            found.setdefault(match.group(1).lower(), set()).add(match.group(2))
    return {name: ",".join(sorted(versions)) for name, versions in found.items()}


def installed(venv: Path) -> dict[str, str]:
    listed = run(
        require_tool("uv"),
        "pip",
        "list",
        "--format",
        "json",
        "--python",
        venv / "bin" / "python",
        cwd=venv,
    )
    return {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(listed.stdout)}


@pytest.fixture(scope="module")
def project(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("locked")
    with isolated_home(base):
        made = new_project(
            base / "churn-model",
            data={"python_version": "3.11"},
            defaults=True,
            template=TemplateSource.at(template_dir),
        )
        assert not (made / "uv.lock").exists()  # written by the first make setup, then committed
        done = run("make", "setup", cwd=made)
        run("make", "keys", cwd=made)
        run("make", "gate", cwd=made, timeout=900)
    assert (
        "lock: uv.lock, requirements-dev.lock.txt, requirements-serve.lock.txt and"
        " requirements-serve-sklearn.lock.txt are up to date" in done.stdout
    )
    return made


def test_make_setup_installs_exactly_the_lock(project: Path) -> None:
    locked = locked_versions(project)
    env = installed(project / ".venv")
    name = tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"]

    extra = {pkg: v for pkg, v in env.items() if pkg not in locked and pkg not in NOT_LOCKED}
    assert extra == {}
    assert {
        pkg: v for pkg, v in env.items() if pkg in locked and v not in locked[pkg].split(",")
    } == {}
    assert env[name] == locked[name] == "0.1.0"
    # The exported file for pip names the same versions as uv.lock, each with its hashes.
    for pkg, version in pinned(project / "requirements-dev.lock.txt").items():
        assert set(version.split(",")) <= set(locked[pkg].split(",")), pkg
    assert "--hash=sha256:" in (project / "requirements-dev.lock.txt").read_text()


def test_the_serving_requirements_are_the_serve_extras_at_the_locked_versions(
    project: Path,
) -> None:
    locked = locked_versions(project)
    compiled = pinned(project / "requirements-serve.lock.txt")
    sklearn = pinned(project / "requirements-serve-sklearn.lock.txt")

    # The compiled image: onnxruntime and numpy run the model; no scikit-learn, SciPy or skops.
    assert {"onnxruntime", "numpy", "fastapi", "uvicorn", "prometheus-client"} <= set(compiled)
    assert not {"scikit-learn", "scipy", "skops"} & set(compiled)
    assert {"scikit-learn", "skops", "fastapi", "uvicorn", "prometheus-client"} <= set(sklearn)
    for serve, name in ((compiled, "requirements-serve"), (sklearn, "requirements-serve-sklearn")):
        # Never the pipeline's heavy packages: the images stay small.
        assert not {"mlflow", "dvc", "pandas", "pandera"} & set(serve)
        for pkg, versions in serve.items():
            assert set(versions.split(",")) <= set(locked[pkg].split(",")), pkg
        text = (project / f"{name}.lock.txt").read_text()
        assert all("--hash=sha256:" in block for block in text.split("==")[1:])


def test_a_dependency_change_without_make_lock_stops_setup(project: Path, tmp_path: Path) -> None:
    copy = tmp_path / "project"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".venv"))
    pyproject = copy / "pyproject.toml"
    # requests is already in the lock's closure (MLflow needs it): the refresh works offline.
    text = pyproject.read_text()
    assert '  "pandas>=2.2,<3",\n' in text  # the team's own dependencies, after the runtime
    pyproject.write_text(
        text.replace('  "pandas>=2.2,<3",\n', '  "pandas>=2.2,<3",\n  "requests>=2",\n', 1)
    )

    stale = run("make", "setup", cwd=copy, check=False)
    assert stale.returncode == 2
    assert (
        "setup: uv.lock does not match pyproject.toml: run make lock, then commit uv.lock and "
        "requirements-*.lock.txt"
    ) in stale.stderr

    run("make", "lock", cwd=copy)
    run(require_tool("uv"), "lock", "--check", "--offline", cwd=copy)
    assert "requests==" in (copy / "requirements-dev.lock.txt").read_text()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@contextlib.contextmanager
def _service(project: Path, log: Path) -> Iterator[str]:
    """`make serve` on a port the kernel picks; stopped by its process group."""
    with log.open("w") as out:
        process = subprocess.Popen(
            ["make", "serve", "PORT=0"],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield f"http://127.0.0.1:{listening_port(process, log, timeout=120)}"
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def test_make_keys_keeps_the_private_key_out_of_git(project: Path) -> None:
    assert (
        (project / "keys" / "model-signing.pub")
        .read_text()
        .startswith("-----BEGIN PUBLIC KEY-----")
    )
    assert (
        run("git", "check-ignore", "keys/model-signing.key", cwd=project).stdout.strip()
        == "keys/model-signing.key"
    )
    untracked = run(
        "git", "status", "--porcelain", "--untracked-files=all", "keys", cwd=project
    ).stdout
    assert untracked.split() == ["??", "keys/model-signing.pub"]
    again = run("make", "keys", cwd=project, check=False)
    assert again.returncode == 2
    assert "keys: keys/model-signing.key exists: remove it first to make a new pair" in again.stderr


def test_a_signed_model_is_served_and_a_flipped_byte_never_becomes_ready(
    project: Path, tmp_path: Path
) -> None:
    model = project / "models" / "model"
    assert (model / "model.sig").is_file()  # the pipeline signed what it registered
    with _service(project, tmp_path / "signed.log") as base:
        wait_for(
            "the signed model to be ready",
            lambda: _get(f"{base}/health/ready")[0] == 200,
            timeout=120,
        )
        assert "model_signature_failures_total 0.0" in _get(f"{base}/metrics")[1]

    weights = model / "model.pkl"
    original = weights.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    weights.write_bytes(bytes(flipped))
    try:
        log = tmp_path / "tampered.log"
        with _service(project, log) as base:

            def verdict() -> tuple[int, str] | None:
                got = _get(f"{base}/health/ready")
                return got if '"failed"' in got[1] else None

            status, body = wait_for("the signature verdict", verdict, timeout=120)
            metrics = _get(f"{base}/metrics")[1]
        assert status == 503
        assert json.loads(body)["detail"].startswith(
            "SignatureError: the model in models/model does not match its signature "
            "(model.pkl changed after signing)"
        )
        assert "model_signature_failures_total 1.0" in metrics
        refused = [line for line in log.read_text().splitlines() if "model refused" in line]
        assert len(refused) == 1, log.read_text()
        assert "Traceback" not in log.read_text()
    finally:
        weights.write_bytes(original)


def cyclonedx_validator() -> Draft7Validator:
    """The CycloneDX 1.6 schema with its $refs resolved from the local copies, by their $id."""
    schemas = [json.loads(path.read_text()) for path in sorted(CYCLONEDX.glob("*.schema.json"))]
    registry: Registry[object] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )
    (bom,) = (s for s in schemas if s["$id"] == "http://cyclonedx.org/schema/bom-1.6.schema.json")
    return Draft7Validator(bom, registry=registry, format_checker=Draft7Validator.FORMAT_CHECKER)


def test_make_sbom_writes_a_valid_cyclonedx_document_of_the_serving_packages(
    project: Path,
) -> None:
    done = run("make", "sbom", cwd=project)
    sbom = json.loads((project / "build" / "sbom" / "serve.cdx.json").read_text())
    validator = cyclonedx_validator()

    assert [error.message for error in validator.iter_errors(sbom)] == []
    assert (sbom["bomFormat"], sbom["specVersion"]) == ("CycloneDX", "1.6")
    assert sbom["metadata"]["component"]["name"] == "churn-model"
    # Every pin of the serving lock, each once (numpy and scipy: one per Python version range).
    listed = sorted((c["name"].lower(), c["version"]) for c in sbom["components"])
    serve = pinned(project / "requirements-serve.lock.txt")
    assert listed == sorted(
        (name, v) for name, versions in serve.items() for v in versions.split(",")
    )
    assert "sbom: build/sbom/serve.cdx.json lists the serving image's packages" in done.stdout
    # The schema is no rubber stamp: a license id SPDX does not know is refused.
    sbom["components"][0]["licenses"] = [{"license": {"id": "NOT-A-LICENSE"}}]
    assert not validator.is_valid(sbom)


# A proxy on a closed port: the advisory service is unreachable, on any machine. uv stays
# offline (the module's environment is in its cache), so only the audit needs the network.
UNREACHABLE = {"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}


def unreachable_line(project: Path) -> str:
    """The warning of make audit-deps without the service (the first pin is asked first)."""
    name, version = re.search(
        r"^([A-Za-z0-9._-]+)==([^ ;\\]+)",
        (project / "requirements-serve.lock.txt").read_text(),
        re.M,
    ).groups()  # type: ignore[union-attr]
    return (
        "audit-deps: WARNING: the advisory service https://pypi.org (PyPI's JSON API) could not "
        f"be asked ([Errno 111] Connection refused for https://pypi.org/pypi/{name}/{version}/"
        "json): the locked packages were not audited; run make audit-deps where it answers, or "
        "set HTTPS_PROXY to a proxy that reaches it"
    )


def test_make_audit_deps_warns_in_one_line_without_the_advisory_service(project: Path) -> None:
    done = run("make", "audit-deps", cwd=project, env=UNREACHABLE, check=False)

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [unreachable_line(project)]
    assert done.stdout.splitlines() == [
        ".venv/bin/python -m mlopsify_runtime.advisory_service requirements-serve.lock.txt "
        "requirements-serve-sklearn.lock.txt requirements-dev.lock.txt"
    ]  # nothing audited


def test_gitlab_ci_local_runs_the_audit_deps_job_to_a_warning(project: Path) -> None:
    done = gitlab_ci_local(
        project,
        project / ".venv",
        "audit-deps",
        variables={**UNREACHABLE, "UV_OFFLINE": "1"},
    )

    assert done.returncode == 0, done.stdout[-4000:]
    assert re.search(r"^ PASS  audit-deps", done.stdout, re.M), done.stdout[-4000:]
    # The job's stderr comes out on gitlab-ci-local's stderr, each line prefixed like stdout.
    log = [
        line.split("> ", 1)[1]
        for line in (done.stdout + done.stderr).splitlines()
        if line.startswith("audit-deps > ")
    ]
    commands = [line for line in done.stdout.splitlines() if line.startswith("audit-deps $ ")]
    assert commands == ["audit-deps $ make setup", "audit-deps $ make audit-deps"]
    assert unreachable_line(project) in log


@contextlib.contextmanager
def _advisory_stand_in(unlisted: str) -> Iterator[str]:
    """PyPI's JSON API as the probe sees it, on 127.0.0.1: every pin listed but ``unlisted``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404 if self.path.startswith(f"/pypi/{unlisted}/") else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_pip_audit_gets_the_listed_pins_and_its_failure_fails_the_audit(project: Path) -> None:
    """With a service that answers the probe, pip-audit runs on the filtered locks; it cannot
    reach its own service here (the closed proxy), and that failure is the audit's."""
    requirements = ["requirements-serve.lock.txt", "requirements-dev.lock.txt"]
    first = re.search(
        r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", (project / requirements[0]).read_text(), re.M
    )
    assert first is not None
    with _advisory_stand_in("mlopsify-runtime") as url:
        done = run(
            ".venv/bin/python",
            "-m",
            "mlopsify_runtime.advisory_service",
            "--service",
            url,
            *requirements,
            cwd=project,
            env={**UNREACHABLE, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"},
            check=False,
            timeout=900,
        )

    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    wheel = f"./vendor/mlopsify_runtime-{__version__}-py3-none-any.whl"
    # The runtime is not published: its pin (serving lock) and its wheel's path (dev lock).
    assert lines[0] == (
        f"audit-deps: not audited, {url} does not list them: mlopsify-runtime=={__version__}, "
        f"{wheel}"
    )
    assert re.fullmatch(
        rf"audit-deps: pip-audit audits the \d+ listed pins of {' '.join(requirements)}", lines[1]
    )
    # pip-audit asked pypi.org for the serving lock's first pin: the vendored wheel was left out.
    assert f"/pypi/{first[1]}/{first[2]}/json" in done.stderr
    assert "/pypi/mlopsify-runtime/" not in done.stderr
