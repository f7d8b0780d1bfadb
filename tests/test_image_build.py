"""The production path for real: CI's own outputs become an image that is built and run.

A project made with GitLab CI runs its train and gate jobs with gitlab-ci-local (shell
executor, a fresh checkout per job); a clean clone receives the gate job's artifacts, as
the image job would; `make image` builds the Dockerfile unchanged with buildah (no Docker
engine here), on a Debian base image made with mmdebstrap that stands in under the upstream
python image's name (shared/TOOLS.md, "Building and running images here"). Then the serving
image runs as its non-root user, becomes ready, answers /predict and reports the commit CI
passed in on /version; the training image runs the CronJob's command to completion.

The rollback test runs `make rollback` in the CI workspace: the model registry part runs for
real on the project's MLflow SQLite registry; kubectl is a fake on PATH that records its
calls, because `kubectl rollout undo` needs an API server, which cannot run here.

One module-scoped build per run (the images are removed at the end). The base image's rootfs
is cached in .cache/images, made once per machine: Debian's minbase with Python 3.11 and, as the
python:slim images do, no manual pages, documentation or translations, and no Perl, so that its
size is the real base's (about 130 MB). The images live in a storage of their own under build/ with
the overlay driver: vfs copies every layer in full, which made this module's builds the slowest
part of the suite.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REAL_CACHES, ROOT, isolated_home, require_tool, run
from test_ci_providers import gitlab_ci_local
from test_deploy_preflight import fake_kubectl, kubectl_calls

from mlopsify import TemplateSource, new_project

pytestmark = pytest.mark.slow

BASE_ROOTFS = ROOT / ".cache" / "images" / "debian-bookworm-python3-slim.tar"
BASE_PACKAGES = "usr-is-merged,python3,python3-venv,python-is-python3,ca-certificates"
# What debian:bookworm-slim (under python:slim) leaves out; Perl comes only with mmdebstrap's
# usrmerge, which usr-is-merged replaces.
SLIM_DPKG_OPTIONS = tuple(
    f"--dpkgopt=path-{rule}"
    for rule in (
        "exclude=/usr/share/man/*",
        "exclude=/usr/share/doc/*",
        "include=/usr/share/doc/*/copyright",
        "exclude=/usr/share/locale/*",
        "exclude=/usr/share/info/*",
    )
)
NO_PERL = (
    'chroot "$1" dpkg --purge usrmerge libfile-find-rule-perl '
    "libnumber-compare-perl libtext-glob-perl perl libperl5.36 perl-modules-5.36 libgdbm-compat4"
)
# Per checkout (build/ is not shared): podman records the storage's path and refuses another.
CONTAINERS = ROOT / "build" / "containers"
STORAGE = (
    "--root",
    str(CONTAINERS / "storage"),
    "--runroot",
    str(CONTAINERS / "run"),
    "--storage-driver",
    "overlay",
)
REGISTRY = "localhost/mlopsify-test"
MB = 1_000_000
# Issue 24's goal: the compiled serving image, its base included, at most 250 MB.
SERVING_IMAGE_LIMIT = 250 * MB


def buildah(*args: str, cwd: Path = ROOT, timeout: float = 600) -> str:
    return run(require_tool("buildah"), *STORAGE, *args, cwd=cwd, timeout=timeout).stdout.strip()


def base_rootfs() -> Path:
    """Debian bookworm with Python 3.11, slim as python:slim, made once per machine (about a minute)."""
    if not BASE_ROOTFS.exists():
        BASE_ROOTFS.parent.mkdir(parents=True, exist_ok=True)
        partial = BASE_ROOTFS.with_name(f"tmp-{os.getpid()}-{BASE_ROOTFS.name}")
        run(
            require_tool("mmdebstrap"),
            "--variant=minbase",
            f"--include={BASE_PACKAGES}",
            *SLIM_DPKG_OPTIONS,
            f"--customize-hook={NO_PERL}",
            "bookworm",
            partial,
            cwd=ROOT,
            timeout=900,
        )
        partial.replace(BASE_ROOTFS)  # atomic: a concurrent run sees all or nothing
    return BASE_ROOTFS


def stand_in_base_images(dockerfile: Path) -> list[str]:
    """Import the rootfs under every upstream name the Dockerfile builds FROM."""
    podman = require_tool("podman")
    upstream = sorted(set(re.findall(r"^FROM (\S+) AS", dockerfile.read_text(), re.M)))
    run(podman, *STORAGE, "import", base_rootfs(), "localhost/debian-python3:bookworm", cwd=ROOT)
    names = [*upstream, *(f"docker.io/library/{name}" for name in upstream)]
    for name in names:  # the short name as written, and as Docker Hub qualifies it
        run(podman, *STORAGE, "tag", "localhost/debian-python3:bookworm", name, cwd=ROOT)
    return names


def pip_mounts(directory: Path) -> list[str]:
    """The host's certificate bundle and a pip.conf naming it, mounted into each RUN step.

    Package installs reach the registry only through the host's proxy (shared/TOOLS.md); the
    host's own pip.conf also names a constraints file of the host, so a minimal one is used.
    """
    cert = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    conf = directory / "pip.conf"
    conf.write_text(f"[global]\ncert = {cert}\n")
    return ["--volume", f"{cert}:{cert}:ro", "--volume", f"{conf}:/etc/pip.conf:ro"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str, body: object | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@dataclass
class CiWorkspace:
    project: Path  # where gitlab-ci-local ran the jobs
    workspace: Path  # a clean clone with the gate job's artifacts: the image job's view
    commit: str  # CI_COMMIT_SHORT_SHA, which the jobs pass on as GIT_COMMIT and IMAGE_TAG
    venv: Path
    timings: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def ci(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> CiWorkspace:
    base = tmp_path_factory.mktemp("production-path")
    with isolated_home(base), pytest.MonkeyPatch.context() as patch:
        for var, value in REAL_CACHES.items():
            patch.setenv(var, value)
        project = new_project(
            base / "churn-model",
            data={"ci_provider": "gitlab", "python_version": "3.11"},
            defaults=True,
            template=TemplateSource.at(template_dir),
        )
        # What a team commits after its first `make setup`: the lock and its hashed exports.
        run("make", "lock", cwd=project)
        run(
            "git",
            "add",
            "uv.lock",
            "requirements-dev.lock.txt",
            "requirements-serve.lock.txt",
            "requirements-serve-sklearn.lock.txt",
            cwd=project,
        )
        run("git", "commit", "--quiet", "-m", "Lock the dependencies", cwd=project)
        venv = base / "ci-venv"
        started = time.monotonic()
        jobs = gitlab_ci_local(project, venv, "train", "gate")
        assert jobs.returncode == 0, jobs.stdout[-6000:] + jobs.stderr[-3000:]
        timings = {"train and gate jobs (gitlab-ci-local)": time.monotonic() - started}
        commit = run("git", "rev-parse", "--short", "HEAD", cwd=project).stdout.strip()
        workspace = base / "image-job"
        run("git", "clone", "--quiet", project, workspace, cwd=base)
        # build-image `needs: [gate]`: it receives the gate job's artifacts and nothing else
        shutil.copytree(
            project / ".gitlab-ci-local" / "artifacts" / "gate", workspace, dirs_exist_ok=True
        )
    return CiWorkspace(project, workspace, commit, venv, timings)


@dataclass
class Images:
    serve: str
    train: str
    timings: dict[str, float]
    sizes: dict[str, int]
    build_output: str = ""


@pytest.fixture(scope="module")
def images(ci: CiWorkspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    require_tool("buildah")
    build_dir = tmp_path_factory.mktemp("build")
    upstream = stand_in_base_images(ci.workspace / "Dockerfile")
    flags = ["--isolation", "chroot", "--pull=never", *pip_mounts(build_dir)]
    started = time.monotonic()
    built = run(
        "make",
        "image",
        f"DOCKER=buildah {' '.join(STORAGE)}",
        f"IMAGE_BUILD_FLAGS={' '.join(flags)}",
        f"REGISTRY={REGISTRY}",
        f"IMAGE_TAG={ci.commit}",
        f"GIT_COMMIT={ci.commit}",
        cwd=ci.workspace,
        timeout=1800,
    )
    elapsed = time.monotonic() - started
    name = yaml.safe_load((ci.workspace / ".copier-answers.yml").read_text())["image_name"]
    serve, train = f"{REGISTRY}/{name}:{ci.commit}", f"{REGISTRY}/{name}-train:{ci.commit}"
    sizes = {
        image: image_size(image) for image in (serve, train, "localhost/debian-python3:bookworm")
    }
    timings = {**ci.timings, "make image (both images)": elapsed}
    yield Images(serve, train, timings, sizes, built.stdout)
    # podman names a short upstream name localhost/NAME: both go, and so does the stand-in base.
    stand_ins = [*upstream, *(f"localhost/{name}" for name in upstream)]
    for image in (
        serve,
        train,
        f"{serve}-sklearn",
        *stand_ins,
        "localhost/debian-python3:bookworm",
    ):
        subprocess.run(
            [require_tool("buildah"), *STORAGE, "rmi", "--force", image], capture_output=True
        )


def image_size(image: str) -> int:
    """Bytes of the image, as podman reports them."""
    podman = require_tool("podman")
    inspected = run(podman, *STORAGE, "image", "inspect", "--format", "{{.Size}}", image, cwd=ROOT)
    return int(inspected.stdout.strip())


@dataclass
class Container:
    name: str
    process: subprocess.Popen[str] | None = None


@pytest.fixture
def container(images: Images) -> Iterator[Container]:
    made: list[Container] = []

    def start(image: str) -> Container:
        found = Container(buildah("from", "--pull=never", image))
        made.append(found)
        return found

    yield start  # type: ignore[misc]
    for found in made:
        if found.process and found.process.poll() is None:
            os.killpg(found.process.pid, signal.SIGTERM)
            try:
                found.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(found.process.pid, signal.SIGKILL)
        subprocess.run([require_tool("buildah"), *STORAGE, "rm", found.name], capture_output=True)


def image_config(image: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", image))["OCIv1"][
        "config"
    ]
    return config


def serve_image(
    ci: CiWorkspace, image: str, container: Any, log_name: str
) -> tuple[str, Container, float]:
    """Run the image's CMD as its USER on a free port of 127.0.0.1: its URL, container and seconds to ready."""
    command = image_config(image)["Cmd"]
    port = free_port()
    served = container(image)
    buildah("config", "--env", f"PORT={port}", "--env", "HOST=127.0.0.1", served.name)
    log_path = ci.workspace.parent / log_name
    log = log_path.open("w")
    served.process = subprocess.Popen(
        [
            require_tool("buildah"),
            *STORAGE,
            "run",
            "--isolation",
            "chroot",
            served.name,
            "--",
            *command,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    while time.monotonic() - started < 90:
        assert served.process.poll() is None, log_path.read_text()
        try:
            if http("GET", f"{base}/health/ready")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.05)
    else:
        pytest.fail("not ready in 90 s:\n" + log_path.read_text())
    return base, served, time.monotonic() - started


def server_pid(group: int, module: str) -> int:
    """The pid of the process in ``group`` running ``python -m module``."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if os.getpgid(int(cmdline.parent.name)) != group:
                continue
            text = cmdline.read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ProcessLookupError):
            continue
        if f"-m {module}" in text and "buildah" not in text:
            return int(cmdline.parent.name)
    raise AssertionError(f"no process runs {module}")


def uid_of_server(group: int, module: str) -> int:
    """The real uid of the process in ``group`` running ``python -m module``."""
    status = (Path("/proc") / str(server_pid(group, module)) / "status").read_text()
    return int(re.search(r"^Uid:\s+(\d+)", status, re.M)[1])  # type: ignore[index]


def sklearn_probabilities(ci: CiWorkspace, records: list[dict[str, float]]) -> list[list[float]]:
    """scikit-learn's own probabilities for ``records``, from the pickled model CI registered."""
    code = (
        "import json, pickle, sys; import numpy as np; "
        "model = pickle.load(open('models/model/model.pkl', 'rb')); "
        "names = json.load(open('models/features.json'))['features']; "
        "rows = np.array([[r[n] for n in names] for r in json.loads(sys.argv[1])]); "
        "print(json.dumps(model.predict_proba(rows).tolist()))"
    )
    out = run(ci.venv / "bin" / "python", "-c", code, json.dumps(records), cwd=ci.workspace).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


def test_the_serving_image_runs_as_its_user_and_answers(
    ci: CiWorkspace, images: Images, container: Any
) -> None:
    config = image_config(images.serve)
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["python", "-m", "mlopsify_runtime.serving"]
    # The gate compiled the default model: the image is the compiled one, and the build said so.
    assert "MODEL_RUNTIME=onnx" in config["Env"]
    assert (
        "image: compiled: onnxruntime serves the ONNX model; no scikit-learn "
        "(requirements-serve.lock.txt, SERVING=onnx from models/serving.json)"
        in images.build_output
    )
    # The build removed what serving never uses and stripped the shared objects (serving/slim.py),
    # then wrote the byte-code of what start-up imports (the image writes none), and only that.
    slimmed = re.search(
        r"^slim: ([\d.]+) MB never served removed, (\d+) shared objects stripped of ([\d.]+) MB$",
        images.build_output,
        re.M,
    )
    assert slimmed and float(slimmed[1]) > 30 and int(slimmed[2]) > 10 and float(slimmed[3]) > 5, (
        slimmed
    )
    assert re.search(
        r"^precompile: \d{3} modules that start-up imports$", images.build_output, re.M
    )
    base, served, ready = serve_image(ci, images.serve, container, "serve.log")
    assert served.process is not None
    images.timings["serving image (compiled): start to ready"] = ready

    assert uid_of_server(served.process.pid, "mlopsify_runtime.serving") == 10001
    # onnxruntime runs the model; no scikit-learn, SciPy or pandas library is in the process.
    maps = Path(
        f"/proc/{server_pid(served.process.pid, 'mlopsify_runtime.serving')}/maps"
    ).read_text()
    assert "/onnxruntime/" in maps and not re.findall(r"/(sklearn|scipy|pandas)/", maps)
    status, version = http("GET", f"{base}/version")
    assert status == 200 and version["git_commit"] == ci.commit
    features = json.loads((ci.workspace / "models" / "features.json").read_text())["features"]
    records = [{f: row[f] for f in features} for row in ci_test_rows(ci)]
    status, answer = http("POST", f"{base}/predict", {"record": records[0]})
    assert status == 200, answer
    assert answer["prediction"] in (0, 1) and answer["model_version"] == version["model_version"]
    status, batch = http("POST", f"{base}/predict", {"records": records})
    assert status == 200, batch
    probabilities = [
        [item["probabilities"][label] for label in ("0", "1")] for item in batch["predictions"]
    ]
    for ours, theirs in zip(probabilities, sklearn_probabilities(ci, records), strict=True):
        assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)
    # The compiled image in all, its base (python:slim's stand-in, of the same size) included.
    base_size = images.sizes["localhost/debian-python3:bookworm"]
    images.sizes["serving image (compiled) above its base"] = images.sizes[images.serve] - base_size
    record_benchmarks(images)
    assert images.sizes[images.serve] <= SERVING_IMAGE_LIMIT, (
        f"the compiled serving image is {images.sizes[images.serve] / MB:.0f} MB, "
        f"{base_size / MB:.0f} MB of it its base: more than {SERVING_IMAGE_LIMIT / MB:.0f} MB"
    )


def test_the_serving_image_has_the_versions_of_the_ci_environment(
    ci: CiWorkspace, images: Images, container: Any
) -> None:
    """One lock: every package in the serving image has the version CI's environment has."""
    listed = buildah(
        "run",
        "--isolation",
        "chroot",
        container(images.serve).name,
        "--",
        "python",
        "-c",
        "import importlib.metadata as m, json; "
        "print(json.dumps([[d.metadata['Name'], d.version] for d in m.distributions()]))",
    )
    in_image = {name.lower().replace("_", "-"): version for name, version in json.loads(listed)}
    # The build removed pip and setuptools; model-signing's sigstore stack never came.
    assert not {"pip", "setuptools", "model-signing", "sigstore", "pyopenssl"} & set(in_image)
    uv_list = run(
        require_tool("uv"),
        "pip",
        "list",
        "--format",
        "json",
        "--python",
        ci.venv / "bin" / "python",
        cwd=ci.project,
    )
    in_env = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(uv_list.stdout)}
    package = yaml.safe_load((ci.workspace / ".copier-answers.yml").read_text())["project_name"]

    served = set(in_image) - {package}
    assert {"onnxruntime", "numpy", "fastapi", "uvicorn"} <= served
    assert not {"scikit-learn", "scipy", "skops", "pandas"} & served  # the compiled image
    assert {
        name: (in_image[name], in_env.get(name))
        for name in served
        if in_image[name] != in_env.get(name)
    } == {}


def test_a_model_that_does_not_compile_gets_the_scikit_learn_image(
    ci: CiWorkspace, images: Images, container: Any, tmp_path: Path
) -> None:
    """The gate's fallback decision makes `make image` build the scikit-learn serving image."""
    workspace = tmp_path / "fallback"
    shutil.copytree(ci.workspace, workspace, symlinks=True)
    serving = workspace / "models" / "serving.json"
    decision = json.loads(serving.read_text())
    reason = (
        "skl2onnx cannot convert the pipeline: RuntimeError: FunctionTransformer is not supported"
    )
    serving.write_text(
        json.dumps({**decision, "runtime": "sklearn", "reason": reason}, indent=2) + "\n"
    )
    planned = run(
        "make", "-n", "image", "IMAGE_TAG=fallback", "GIT_COMMIT=fallback", cwd=workspace
    ).stdout
    assert (
        'echo "image: scikit-learn serves the model (requirements-serve-sklearn.lock.txt,'
        ' SERVING=sklearn from models/serving.json)"' in planned
    )
    assert (
        "--build-arg SERVE_LOCK=requirements-serve-sklearn.lock.txt --build-arg MODEL_RUNTIME=sklearn"
        in planned
    )
    # The serving image as make image builds it, without rebuilding the training image.
    flags = ["--isolation", "chroot", "--pull=never", *pip_mounts(tmp_path)]
    image = f"{images.serve}-sklearn"
    started = time.monotonic()
    buildah(
        "bud",
        *flags,
        "--build-arg",
        "SERVE_LOCK=requirements-serve-sklearn.lock.txt",
        "--build-arg",
        "MODEL_RUNTIME=sklearn",
        "--tag",
        image,
        ".",
        cwd=workspace,
        timeout=1800,
    )
    images.timings["scikit-learn serving image: build"] = time.monotonic() - started
    images.sizes["serving image (scikit-learn)"] = image_size(image)
    assert "MODEL_RUNTIME=sklearn" in image_config(image)["Env"]
    base, served, ready = serve_image(ci, image, container, "serve-sklearn.log")
    assert served.process is not None
    images.timings["serving image (scikit-learn): start to ready"] = ready
    maps = Path(
        f"/proc/{server_pid(served.process.pid, 'mlopsify_runtime.serving')}/maps"
    ).read_text()
    assert "/sklearn/" in maps
    features = json.loads((workspace / "models" / "features.json").read_text())["features"]
    records = [{f: row[f] for f in features} for row in ci_test_rows(ci)]
    status, batch = http("POST", f"{base}/predict", {"records": records})
    assert status == 200, batch
    served_probabilities = [
        [item["probabilities"][label] for label in ("0", "1")] for item in batch["predictions"]
    ]
    for ours, theirs in zip(served_probabilities, sklearn_probabilities(ci, records), strict=True):
        assert ours == pytest.approx(theirs, rel=1e-9)  # scikit-learn itself serves
    record_benchmarks(images)


def ci_test_rows(ci: CiWorkspace) -> list[dict[str, float]]:
    """Rows of the test split the train job made (its artifacts carry data/)."""
    lines = (
        (
            ci.project
            / ".gitlab-ci-local"
            / "artifacts"
            / "train"
            / "data"
            / "processed"
            / "test.csv"
        )
        .read_text()
        .splitlines()
    )
    header = lines[0].split(",")
    return [dict(zip(header, map(float, line.split(",")), strict=True)) for line in lines[1:6]]


def test_the_training_image_runs_the_cronjobs_training_to_completion(
    ci: CiWorkspace, images: Images, container: Any
) -> None:
    built = run(require_tool("kubectl"), "kustomize", "deploy/k8s/overlays/dev", cwd=ci.workspace)
    cronjob = next(
        d
        for d in yaml.safe_load_all(built.stdout)
        if d and d["kind"] == "CronJob" and d["metadata"]["name"].endswith("-retrain")
    )
    spec = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert spec["workingDir"] == "/work"
    # The pod mounts an emptyDir at /work; here a directory in /tmp stands in for it.
    script = spec["args"][0].replace("/work", "/tmp/work")
    trained = container(images.train)
    started = time.monotonic()
    result = run(
        require_tool("buildah"),
        *STORAGE,
        "run",
        "--isolation",
        "chroot",
        trained.name,
        "--",
        *spec["command"],
        f"mkdir -p /tmp/work && cd /tmp/work && {script}",
        cwd=ci.workspace,
        timeout=900,
    )
    images.timings["training image: the CronJob's pipeline"] = time.monotonic() - started
    assert "quality gate passed" in result.stdout + result.stderr
    assert buildah("run", "--isolation", "chroot", trained.name, "--", "id", "-u") == "10001"


def registry_state(ci: CiWorkspace, project: Path) -> dict[str, Any]:
    script = (
        "import json, mlflow; from mlflow import MlflowClient; "
        "mlflow.set_tracking_uri('sqlite:///mlflow.db'); c = MlflowClient(); "
        "name = 'churn-model'; "
        "print(json.dumps({'champion': str(c.get_model_version_by_alias(name, 'champion').version), "
        "'tags': {str(v.version): v.tags for v in c.search_model_versions(f\"name='{name}'\")}}))"
    )
    out = run(ci.venv / "bin" / "python", "-c", script, cwd=project).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_make_rollback_undoes_the_deployment_and_moves_the_alias_back(
    ci: CiWorkspace, tmp_path: Path
) -> None:
    """prod requires signatures (its overlay keeps the base's REQUIRE_MODEL_SIGNATURE=true): the
    project makes its key pair after its first champion, unsigned, and signs the two it trains."""
    project = tmp_path / "rollback"
    run("git", "clone", "--quiet", ci.project, project, cwd=tmp_path)
    # the train job's artifacts: the pipeline state and the MLflow registry it wrote
    shutil.copytree(
        ci.project / ".gitlab-ci-local" / "artifacts" / "train", project, dirs_exist_ok=True
    )
    make = ("make", f"VENV={ci.venv}")
    run(*make, "gate", cwd=project)
    unsigned = registry_state(ci, project)["champion"]
    run(*make, "keys", cwd=project)
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("  C: 1.0\n", "  C: 0.5\n", 1))
    run(*make, "train", "gate", cwd=project)
    before = registry_state(ci, project)["champion"]
    # the same parameters again: a second signed version, as good as the champion, which it replaces
    in_venv = {"PATH": f"{ci.venv / 'bin'}:{os.environ['PATH']}"}
    run(
        ci.venv / "bin" / "dvc",
        "repro",
        "--force",
        "--single-item",
        "train",
        cwd=project,
        env=in_venv,
    )
    run(*make, "gate", cwd=project)
    after = registry_state(ci, project)["champion"]
    assert int(unsigned) < int(before) < int(after), "each retrained model is the new champion"

    kubectl = fake_kubectl(tmp_path / "bin")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    env = {
        "PATH": f"{kubectl.parent}:{os.environ['PATH']}",
        "KUBECONFIG": str(kubeconfig),
        "ROLLBACK_BY": "alice",
    }
    reason = "error rate doubled after the deploy"
    rolled = run(*make, "rollback", "ENV=prod", f"REASON={reason}", cwd=project, env=env)
    undone = [
        "kubectl -n churn-model rollout undo deployment/churn-model",
        "kubectl -n churn-model rollout status deployment/churn-model --timeout=10m",
    ]
    assert kubectl_calls(kubectl) == undone
    assert (
        f"rollback: alias 'champion' of churn-model moved from version {after} to version "
        f"{before} (by alice: {reason})" in rolled.stdout
    )
    state = registry_state(ci, project)
    assert state["champion"] == before
    abandoned, restored = state["tags"][after], state["tags"][before]
    assert abandoned["rollback.status"] == "rolled back" and abandoned["rollback.to"] == before
    assert restored["rollback.restored_from"] == after
    for tags in (abandoned, restored):
        assert (tags["rollback.by"], tags["rollback.reason"]) == ("alice", reason)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", tags["rollback.at"])

    # A second rollback skips the abandoned version; the next one that passed the gate is the
    # unsigned first champion: refused before kubectl is called, and nothing moves.
    passed = [v for v, tags in state["tags"].items() if tags.get("quality_gate") == "passed"]
    assert sorted(passed, key=int) == [unsigned, before, after]
    again = run(*make, "rollback", "ENV=prod", "REASON=again", cwd=project, env=env, check=False)
    assert again.returncode != 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert re.search(
        rf"^rollback refused, nothing moved: version {unsigned} of 'churn-model' is not signed: its run "
        r"\w+ has no model-signature/model.sig \(train with MODEL_SIGNING_KEY set, docs/security.md\)$",
        again.stderr,
        re.M,
    ), again.stderr
    assert kubectl_calls(kubectl) == undone
    assert registry_state(ci, project) == state


def record_benchmarks(images: Images) -> None:
    """Print the measurements; docs/benchmarks.md quotes a run of them."""
    print({"timings_s": images.timings, "sizes_bytes": images.sizes})
