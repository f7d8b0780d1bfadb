"""The generated service against its peers, same model, same machine, same load, one run.

    make bench-serving            (or: .venv/bin/python benchmarks/serving.py)

Generates a default project (build/bench-serving/project, reused when it is there), runs its
pipeline, then serves the trained model on 127.0.0.1 with: the project's own service
(`make serve`: the ONNX model with onnxruntime, as the gate decided), the same service with
scikit-learn (`MODEL_RUNTIME=sklearn`, the fallback for a model that does not compile), an idiomatic BentoML 1.4 service (benchmarks/peers/bentoml_service.py, its
defaults, in a venv of its own), `mlflow models serve --env-manager local`, and a bare endpoint
of the same HTTP stack that returns a constant (benchmarks/peers/bare_asgi.py: the stack's own
limit). wrk sends single-record and batch requests to each (the service gets the batch as records
and as a table), three rounds, and the page reports
medians; then 64 connections for 30 s against the service. The in-process predict rate and a
profile of the service's hot path complete the figures. The page is docs/benchmarks-serving.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import charts  # benchmarks/ is not a package: found through sys.path
from helpers import copy_template  # the working tree's template with the runtime's wheel

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb")
wrk.body = f:read("*a")
f:close()
"""
PEERS = ROOT / "benchmarks" / "peers"
ANALYSIS_MARKER = "<!-- analysis: written by hand, kept by make bench-serving -->"
ROUNDS = 3
SERVERS = {  # name: label on the page
    "service": "generated service",
    "sklearn": "generated service, scikit-learn",
    "bentoml": "BentoML 1.4",
    "mlflow": "mlflow models serve",
    "bare": "bare endpoint (constant)",
}
# In the project's venv: the rate of scikit-learn's `predict_proba` and of the ONNX model on one
# record, the service's parse-and-predict path, and where one request's time goes in that path.
IN_PROCESS = """
import asyncio, dataclasses, json, statistics, sys, time, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "{peers}")
import bare_asgi
from mlopsify_runtime.serving.app import batch_request_ids, create_app, json_response, prediction_items
from mlopsify_runtime.serving.model import load_model
from mlopsify_runtime.serving.settings import Settings
body = open("{body}", "rb").read()
batch_body = open("{batch_body}", "rb").read()
table_body = open("{table_body}", "rb").read()
scope = {{"type": "http", "asgi": {{"version": "3.0"}}, "http_version": "1.1", "method": "POST", "scheme": "http",
    "path": "/predict", "raw_path": b"/predict", "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
    "server": ("127.0.0.1", 80), "headers": [(b"content-type", b"application/json")]}}
def receiving(raw):
    async def receive():
        return {{"type": "http.request", "body": raw, "more_body": False}}
    return receive
async def send(message):
    pass
def rate(fn, seconds=1.0):
    fn(); n = 0; start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(); n += 1
    return n / (time.perf_counter() - start)
async def asgi_us(app, raw=body, n=1000):
    receive = receiving(raw)
    for _ in range(20): await app(dict(scope), receive, send)
    start = time.perf_counter()
    for _ in range(n): await app(dict(scope), receive, send)
    return 1e6 * (time.perf_counter() - start) / n
async def main():
    app = create_app(Settings.from_env())  # as `make serve` runs it, monitoring included
    async with app.router.lifespan_context(app):
        while app.state.serving.model is None:
            await asyncio.sleep(0.1)
        state = app.state.serving
        model, plan = state.model, state.models.predict_plan
        def parse(raw):  # what /predict does before the model: the body read by the spec's plan, the matrix
            return plan.parse(raw).matrix
        row = parse(body)
        scored = model.score(row)
        sklearn = load_model(dataclasses.replace(Settings.from_env(), model_runtime="sklearn")).estimator
        def respond():
            _, ids = batch_request_ids(1)
            return json_response({{**prediction_items(ids, scored, model.keys)[0], "model_name": "m", "model_version": "1"}})
        rounds = []
        for _ in range({rounds}):
            figures = {{
                "estimator": rate(lambda: sklearn.predict_proba(row), 2.0),
                "onnx": rate(lambda: model.scorer.scores(row), 2.0),
                "service_path": rate(lambda: model.score(parse(body)), 2.0),
                "parse_us": 1e6 / rate(lambda: parse(body)),
                "predict_us": 1e6 / rate(lambda: model.score(row)),
                "respond_us": 1e6 / rate(respond),
                "asgi_service_us": await asgi_us(app),
                "asgi_bare_us": await asgi_us(bare_asgi.app),
                "asgi_batch_us": await asgi_us(app, batch_body, 200),
                "batch_parse_us": 1e6 / rate(lambda: parse(batch_body)),
                "asgi_table_us": await asgi_us(app, table_body, 200),
                "table_parse_us": 1e6 / rate(lambda: parse(table_body)),
            }}
            real_score = model.score
            model.score = lambda matrix: scored  # the app without the model call
            figures["asgi_no_model_us"] = await asgi_us(app)
            model.score = real_score
            rounds.append(figures)
    print(json.dumps({{key: statistics.median(r[key] for r in rounds) for key in rounds[0]}}))
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sh(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode:
        sys.exit(
            f"{' '.join(args)} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        )
    return completed.stdout


def prepare_project(directory: Path) -> Path:
    """A default project with a trained model (rendered and trained once, then reused)."""
    project = directory / "project"
    if (project / "models" / "model" / "MLmodel").is_file():
        return project
    sys.path.insert(0, str(ROOT / "src"))
    from mlopsify import TemplateSource, new_project

    shutil.rmtree(project, ignore_errors=True)
    copy = copy_template(Path(tempfile.mkdtemp(prefix="mlopsify-template-")))
    print(f"bench: generating {project} and running its pipeline (a few minutes)", flush=True)
    new_project(
        project,
        data={"project_name": "bench-service"},
        defaults=True,
        template=TemplateSource.at(copy),
    )
    shutil.rmtree(copy)
    sh("make", "setup", cwd=project)
    sh("make", "pipeline", cwd=project)
    return project


@contextmanager
def server(
    command: list[str], cwd: Path, env: dict[str, str], ready_url: str, log: Path
) -> Iterator[None]:
    """Start a server in its own process group; stop that group afterwards."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 300
            while True:
                if process.poll() is not None:
                    sys.exit(
                        f"{command[0]} exited {process.returncode}:\n{log.read_text()[-3000:]}"
                    )
                try:
                    with urllib.request.urlopen(ready_url, timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    sys.exit(f"{command[0]} not ready in 300 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.25)
            yield
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    url: str,
    body_file: Path,
    work: Path,
    threads: int,
    connections: int,
    seconds: int,
    timeout: int = 2,
) -> dict[str, float]:
    """One wrk run (after a 1 s warm-up): requests/s, p50 and p99 in ms, and the failed requests."""
    script = body_file.with_suffix(".lua")
    script.write_text(WRK_SCRIPT.format(body=body_file))
    sh("wrk", "-t1", "-c2", "-d1s", "-s", str(script), url, cwd=work)
    out = sh(
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout}s",
        "--latency",
        "-s",
        str(script),
        url,
        cwd=work,
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        "p50": to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1]),  # type: ignore[index]
        "p99": to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1]),  # type: ignore[index]
        "errors": (int(non_2xx[1]) if non_2xx else 0) + socket_errors,
        "non_2xx": int(non_2xx[1]) if non_2xx else 0,
        "socket_errors": socket_errors,
        "socket_detail": (re.search(r"Socket errors: ([^\n]*)", out) or ["", "none"])[1],
    }


def bodies(project: Path, batch: int) -> dict[str, dict[str, bytes]]:
    """The request bodies of each server: one record of the test set, and a batch of `batch`."""
    features = json.loads((project / "models" / "features.json").read_text())["features"]
    header, *rows = (project / "data" / "processed" / "test.csv").read_text().splitlines()
    columns = header.split(",")
    records = [
        {
            name: float(value)
            for name, value in zip(columns, row.split(","), strict=True)
            if name in features
        }
        for row in rows
    ]
    records = (records * (batch // len(records) + 1))[:batch]
    matrix = [[record[name] for name in features] for record in records]
    service = {
        "single": {"record": records[0]},
        "batch": {"records": records},
        "table": {
            "columns": features,
            "data": matrix,
        },  # the same records, as BentoML's peer gets them
    }
    return {
        name: {kind: json.dumps(body).encode() for kind, body in forms.items()}
        for name, forms in {
            "service": service,
            "sklearn": service,
            "bare": {"single": service["single"]},
            "bentoml": {"single": {"data": matrix[:1]}, "batch": {"data": matrix}},
            "mlflow": {
                "single": {"dataframe_split": {"columns": features, "data": matrix[:1]}},
                "batch": {"dataframe_split": {"columns": features, "data": matrix}},
            },
        }.items()
    }


def package_versions(project: Path, packages: tuple[str, ...], separator: str) -> str:
    """`name<separator>version` of each package in the project's environment, space-separated."""
    code = f"import importlib.metadata as m; print(' '.join(p + {separator!r} + m.version(p) for p in {packages!r}))"
    return sh(str(project / ".venv" / "bin" / "python"), "-c", code, cwd=project).strip()


def bentoml_venv(work: Path, project: Path) -> Path:
    """A venv with BentoML 1.4 and the project's own scikit-learn, skops and numpy versions (same model)."""
    venv = work / "bentoml-venv"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "bentoml").is_file():
        pins = package_versions(project, ("scikit-learn", "skops", "numpy", "pyyaml"), "==").split()
        print("bench: installing BentoML 1.4 in its own venv", flush=True)
        sh("uv", "venv", "--quiet", "--python", sys.executable, str(venv), cwd=work)
        sh(
            "uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "bentoml>=1.4,<1.5",
            *pins,
            cwd=work,
        )
    return venv


def start_servers(stack: ExitStack, project: Path, work: Path, batch: int) -> dict[str, str]:
    """Every server on a port of its own, ready; their predict URLs by name."""
    venv_bin = project / ".venv" / "bin"
    path_env = {
        "PATH": f"{venv_bin}:{os.environ['PATH']}"
    }  # mlflow models serve runs uvicorn from PATH
    bento_bin = bentoml_venv(work, project) / "bin"
    ports = {name: free_port() for name in SERVERS}
    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    commands = {
        "service": (["make", "serve", f"PORT={ports['service']}"], "/health/ready", "/predict"),
        "sklearn": (
            ["make", "serve", f"PORT={ports['sklearn']}", "MODEL_RUNTIME=sklearn"],
            "/health/ready",
            "/predict",
        ),
        "bentoml": (
            [
                str(bento_bin / "bentoml"),
                "serve",
                "bentoml_service:Classifier",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["bentoml"]),
            ],
            "/readyz",
            "/predict",
        ),
        "mlflow": (
            [
                str(venv_bin / "mlflow"),
                "models",
                "serve",
                "-m",
                "models/model",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(ports["mlflow"]),
            ],
            "/ping",
            "/invocations",
        ),
        "bare": (
            [str(venv_bin / "python"), str(PEERS / "bare_asgi.py"), str(ports["bare"])],
            "/ready",
            "/predict",
        ),
    }
    env = {
        **path_env,
        "MAX_BATCH_SIZE": str(max(batch, 1000)),
        "MODEL_DIR": str(project / "models" / "model"),
        "BENTOML_HOME": str(work / "bentoml-home"),
    }
    urls = {}
    for name, (command, ready, predict) in commands.items():
        cwd = PEERS if name == "bentoml" else project
        stack.enter_context(server(command, cwd, env, base[name] + ready, work / f"{name}.log"))
        urls[name] = base[name] + predict
    return urls


def measure(
    urls: dict[str, str], payloads: dict[str, dict[str, bytes]], args: argparse.Namespace
) -> dict:
    """ROUNDS rounds over every server and request kind; the median of each figure."""
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    for round_number in range(1, ROUNDS + 1):
        for name, url in urls.items():
            for kind, body in payloads[name].items():
                print(f"bench: round {round_number}, {name}, {kind}", flush=True)
                body_file = args.work / f"{name}-{kind}.json"
                body_file.write_bytes(body)
                result = wrk(
                    url, body_file, args.work, args.threads, args.connections, args.duration
                )
                runs.setdefault((name, kind), []).append(result)
    return {
        key: {
            "rps": statistics.median(r["rps"] for r in results),
            "p50": statistics.median(r["p50"] for r in results),
            "p99": statistics.median(r["p99"] for r in results),
            "errors": sum(r["errors"] for r in results),
        }
        for key, results in runs.items()
    }


def verdict(met: bool, shortfall: str) -> str:
    return "**met**" if met else f"**missed** ({shortfall})"


def goals(
    by: dict, in_process: dict[str, float], soak: dict[str, float], batch: int, seconds: int
) -> tuple[list[str], dict]:
    """The goals of issue 24 (compiled serving), each marked met or missed, with the numbers behind it."""
    bare = by[("bare", "single")]["rps"]
    single = by[("service", "single")]["rps"]
    bento_single = by[("bentoml", "single")]["rps"]
    service_records = by[("service", "table")]["rps"] * batch  # a table, as BentoML gets its batch
    as_records = by[("service", "batch")]["rps"] * batch
    bento_records = by[("bentoml", "batch")]["rps"] * batch
    lines = [
        f"| single records/s at least 25% of the bare endpoint's ({bare:.0f}/s) "
        f"| {single:.0f}/s = {single / bare:.1%} of it | "
        + verdict(
            single >= 0.25 * bare, f"{0.25 * bare - single:.0f}/s short of {0.25 * bare:.0f}/s"
        )
        + " |",
        f"| single records/s at least 10x BentoML's ({bento_single:.0f}/s) "
        f"| {single:.0f}/s = {single / bento_single:.1f}x | "
        + verdict(single >= 10 * bento_single, f"{10 * bento_single - single:.0f}/s short")
        + " |",
        f"| batches of {batch}: records/s at least 10x BentoML's ({bento_records:.0f}), each sent as an array"
        f" of values per record | {service_records:.0f} = {service_records / bento_records:.1f}x (as records"
        f" with their feature names: {as_records:.0f} = {as_records / bento_records:.1f}x) | "
        + verdict(
            service_records >= 10 * bento_records,
            f"{10 * bento_records - service_records:.0f} records/s short",
        )
        + " |",
        f"| 64 connections for {seconds} s, zero errors of any kind | {soak['non_2xx']} non-2xx and"
        f" {soak['socket_errors']} socket errors ({soak['socket_detail']}; 10 s timeout) of about "
        f"{soak['rps'] * seconds:.0f} ({soak['rps']:.0f}/s, p99 {soak['p99']:.1f} ms) | "
        + verdict(soak["errors"] == 0, f"{soak['errors']} failed")
        + " |",
    ]
    return lines, {"single": single}


def report(
    by: dict,
    in_process: dict[str, float],
    soak: dict[str, float],
    args: argparse.Namespace,
    project: Path,
) -> str:
    versions = package_versions(
        project,
        (
            "fastapi",
            "starlette",
            "uvicorn",
            "mlflow-skinny",
            "scikit-learn",
            "onnxruntime",
            "numpy",
        ),
        " ",
    )
    bento_version = sh(
        str(args.work / "bentoml-venv" / "bin" / "python"),
        "-c",
        "import bentoml; print(bentoml.__version__)",
        cwd=args.work,
    ).strip()
    goal_lines, figures = goals(by, in_process, soak, args.batch, args.soak)
    lines = [
        "# Serving benchmark",
        "",
        "The generated service (`make serve`: one uvicorn worker, the model compiled to ONNX and run by",
        "onnxruntime, as the gate decided for this model; docs/serving.md), the same service with",
        "scikit-learn (`MODEL_RUNTIME=sklearn`: what a model that does not compile gets), and the peers a user would pick instead, serving the same trained model on",
        "the same machine at the same load, in one run: an idiomatic BentoML 1.4 service with its defaults",
        "(`benchmarks/peers/bentoml_service.py`), `mlflow models serve --env-manager local`, and a bare",
        "endpoint of the service's own HTTP stack (FastAPI on uvicorn with httptools and uvloop) that",
        "returns a constant without reading the body: the stack's own limit. Reproduce with",
        "`make bench-serving` (it rewrites this page).",
        "",
        f"- Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs"
        f" ({platform.processor() or platform.machine()}), Python {platform.python_version()}; {versions};"
        f" bentoml {bento_version}. Load average (1 min) of the machine, from other work, at the start"
        f" of the measurements: {args.load_before:.1f}; at the end: {os.getloadavg()[0]:.1f}.",
        "- Model: the default project's classifier (StandardScaler + LogisticRegression, 30 features).",
        f"- Load: wrk, {args.threads} threads, {args.connections} connections, {args.duration} s a run after a"
        f" 1 s warm-up, 127.0.0.1 only; batch = {args.batch} records; {ROUNDS} rounds over every server,"
        " medians below (errors: the sum). The servers and wrk share the CPUs; on a shared machine compare"
        " the ratios more than the absolute figures.",
        "",
        "| request | server | requests/s | records/s | p50 (ms) | p99 (ms) | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for kind in ("single", "batch", "table"):
        size = 1 if kind == "single" else args.batch
        for name, label in SERVERS.items():
            if (name, kind) in by:
                r = by[(name, kind)]
                lines.append(
                    f"| {kind} | {label} | {r['rps']:.0f} | {r['rps'] * size:.0f} | {r['p50']:.1f} | {r['p99']:.1f}"
                    f" | {r['errors']} |"
                )
    # Throughput and latency as charts, drawn from the table just written, next to it.
    lines += ["", charts.image_links(charts.serving_charts("\n".join(lines)))]
    lines += [
        "",
        "## Goals",
        "",
        "| goal | measured | verdict |",
        "|---|---|---|",
        *goal_lines,
        "",
        "## In process, and where a single-record request's time goes",
        "",
        "One record a call (the last two rows: a batch), no HTTP, in the project's environment, the compiled"
        " path (medians of three rounds):",
        "",
        "| path | per second | microseconds |",
        "|---|---:|---:|",
        f"| scikit-learn: the pipeline's `predict_proba` on a numpy row | {in_process['estimator']:.0f}"
        f" | {1e6 / in_process['estimator']:.0f} |",
        f"| onnxruntime: the ONNX model on the same row (`OnnxScorer.scores`, one thread) | {in_process['onnx']:.0f}"
        f" | {1e6 / in_process['onnx']:.0f} |",
        f"| the service's parse and predict (`PredictPlan.parse` + `LoadedModel.score`) |"
        f" {in_process['service_path']:.0f} | {1e6 / in_process['service_path']:.0f} |",
        f"| of which parsing and validating the JSON body (orjson, the spec's plan) | | {in_process['parse_us']:.0f} |",
        f"| of which the model call (onnxruntime, finiteness check of the output) | | {in_process['predict_us']:.0f} |",
        f"| building the JSON response (ids, orjson) | | {in_process['respond_us']:.0f} |",
        f"| the whole app called in process (ASGI, no network), monitoring included | |"
        f" {in_process['asgi_service_us']:.0f} |",
        f"| the same app with the model call replaced by its answer | | {in_process['asgi_no_model_us']:.0f} |",
        f"| the bare endpoint called in process (ASGI) | | {in_process['asgi_bare_us']:.0f} |",
        f"| the HTTP stack over the network: 1/bare rate | | {1e6 / by[('bare', 'single')]['rps']:.0f} |",
        f"| measured per request, 1/service rate | | {1e6 / figures['single']:.0f} |",
        f"| a batch of {args.batch}: parsing and validating its body | | {in_process['batch_parse_us']:.0f} |",
        f"| a batch of {args.batch}: the whole app in process (ASGI), monitoring included | |"
        f" {in_process['asgi_batch_us']:.0f} |",
        f"| the same batch as a table: parsing and validating its body | | {in_process['table_parse_us']:.0f} |",
        f"| the same batch as a table: the whole app in process (ASGI), monitoring included | |"
        f" {in_process['asgi_table_us']:.0f} |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "bench-serving")
    parser.add_argument("--duration", type=int, default=8, help="seconds a wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--soak", type=int, default=30, help="seconds of the 64-connection run")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks-serving.md")
    args = parser.parse_args()
    for tool in ("wrk", "uv"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed: run `make bootstrap`")
    args.work.mkdir(parents=True, exist_ok=True)
    project = prepare_project(args.work)
    payloads = bodies(project, args.batch)
    with ExitStack() as stack:
        urls = start_servers(stack, project, args.work, args.batch)
        args.load_before = os.getloadavg()[0]
        by = measure(urls, payloads, args)
        print(f"bench: 64 connections for {args.soak} s against the service", flush=True)
        # A 10 s client timeout, as a client would have: wrk's 2 s counts queueing on busy cores as failures.
        body = args.work / "service-single.json"
        soak = wrk(urls["service"], body, args.work, args.threads, 64, args.soak, timeout=10)
    print("bench: in-process rates and the hot path", flush=True)
    package = re.search(
        r"^package_name: (\w+)$", (project / ".copier-answers.yml").read_text(), re.M
    )[1]  # type: ignore[index]
    script = IN_PROCESS.format(
        package=package,
        body=args.work / "service-single.json",
        batch_body=args.work / "service-batch.json",
        table_body=args.work / "service-table.json",
        rounds=ROUNDS,
        peers=PEERS,
    )
    in_process = json.loads(
        sh(str(project / ".venv" / "bin" / "python"), "-c", script, cwd=project)
    )
    text = report(by, in_process, soak, args, project)
    # The hand-written analysis below the marker survives a new run (it explains the figures).
    previous = args.output.read_text() if args.output.is_file() else ""
    if ANALYSIS_MARKER in previous:
        text += "\n" + ANALYSIS_MARKER + previous.split(ANALYSIS_MARKER, 1)[1]
    args.output.write_text(text)
    charts.write_charts(charts.serving_charts(text), args.output.parent)
    print(text)


if __name__ == "__main__":
    main()
