"""The generated service against `mlflow models serve`, same model, same machine, same load.

    make bench-serving            (or: .venv/bin/python benchmarks/serving.py)

Generates a default project (build/bench-serving/project, reused when it is there), runs its
pipeline, then serves the trained model twice on 127.0.0.1: with the project's own service
(`make serve`) and with `mlflow models serve --env-manager local`. wrk sends single-record and
batch requests to each at the same concurrency for a bounded time. The in-process predict rate
(numpy, as the service predicts; and a pandas DataFrame through MLflow's pyfunc) is the ceiling.
The figures go to docs/benchmarks-serving.md.
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
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import charts  # benchmarks/ is not a package: found through sys.path

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb")
wrk.body = f:read("*a")
f:close()
"""
IN_PROCESS = """
import json, sys, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
from {package}.serving.model import load_model
from {package}.serving.settings import Settings
model = load_model(Settings())
features = model.features
row = np.ones((1, len(features)))
def rate(fn, seconds=2.0):
    fn(); n = 0; start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(); n += 1
    return n / (time.perf_counter() - start)
import mlflow.pyfunc, pandas as pd
pyfunc = mlflow.pyfunc.load_model("models/model")
frame = pd.DataFrame(row, columns=features)
print(json.dumps({{
    "numpy": rate(lambda: model.predict(row)),
    "pandas_pyfunc": rate(lambda: pyfunc.predict(frame)),
}}))
"""


@dataclass(frozen=True)
class Result:
    server: str
    kind: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


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
    copy = Path(tempfile.mkdtemp(prefix="mlopsify-template-"))
    shutil.copy2(ROOT / "copier.yml", copy / "copier.yml")
    shutil.copytree(ROOT / "template", copy / "template")
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
    url: str, body: bytes, args: argparse.Namespace, work: Path, label: tuple[str, str]
) -> Result:
    body_file = work / f"{label[0]}-{label[1]}.json"
    body_file.write_bytes(body)
    script = work / f"{label[0]}-{label[1]}.lua"
    script.write_text(WRK_SCRIPT.format(body=body_file))
    # warm up, then measure
    sh("wrk", "-t1", "-c2", "-d2s", "-s", str(script), url, cwd=work)
    out = sh(
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
        "-s",
        str(script),
        url,
        cwd=work,
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Result(
        server=label[0],
        kind=label[1],
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        p50_ms=to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1]),  # type: ignore[index]
        p99_ms=to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1]),  # type: ignore[index]
        errors=(int(non_2xx[1]) if non_2xx else 0) + socket_errors,
    )


def load_both_kinds(
    url: str, server_name: str, payloads: dict[str, dict[str, bytes]], args: argparse.Namespace
) -> list[Result]:
    """wrk against one server with its single-record and its batch payload."""
    measured = []
    for kind in ("single", "batch"):
        print(f"bench: {server_name}, {kind}", flush=True)
        measured.append(wrk(url, payloads[server_name][kind], args, args.work, (server_name, kind)))
    return measured


def bodies(project: Path, batch: int) -> dict[str, dict[str, bytes]]:
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
    return {
        "service": {
            "single": json.dumps({"record": records[0]}).encode(),
            "batch": json.dumps({"records": records}).encode(),
        },
        "mlflow": {
            "single": json.dumps(
                {"dataframe_split": {"columns": features, "data": matrix[:1]}}
            ).encode(),
            "batch": json.dumps(
                {"dataframe_split": {"columns": features, "data": matrix}}
            ).encode(),
        },
    }


def report(
    results: list[Result], in_process: dict[str, float], args: argparse.Namespace, project: Path
) -> str:
    by = {(r.server, r.kind): r for r in results}
    versions = sh(
        str(project / ".venv" / "bin" / "python"),
        "-c",
        "import importlib.metadata as m; print(' '.join(f'{p} {m.version(p)}' for p in "
        "('mlflow', 'fastapi', 'uvicorn', 'scikit-learn', 'numpy')))",
        cwd=project,
    ).strip()
    lines = [
        "# Serving benchmark",
        "",
        "The generated service (`make serve`: FastAPI on one uvicorn worker, numpy predict path) against",
        "`mlflow models serve --env-manager local` for the same trained model, on the same machine, at the",
        "same concurrency. Reproduce with `make bench-serving` (it rewrites this page).",
        "",
        f"- Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}),"
        f" Python {platform.python_version()}; {versions}.",
        "- Model: the default project's classifier (StandardScaler + LogisticRegression, 30 features).",
        f"- Load: wrk, {args.threads} threads, {args.connections} connections, {args.duration} s per run after a 2 s"
        f" warm-up, 127.0.0.1 only; batch = {args.batch} records. Both servers share the CPUs with wrk,"
        " one after the other; on a shared machine compare the ratios more than the absolute figures.",
        "",
        "| request | server | requests/s | p50 (ms) | p99 (ms) | errors |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for kind in ("single", "batch"):
        for name, label in (("service", "generated service"), ("mlflow", "mlflow models serve")):
            r = by[(name, kind)]
            lines.append(
                f"| {kind} | {label} | {r.requests_per_second:.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} |"
            )
    single = (
        by[("service", "single")].requests_per_second / by[("mlflow", "single")].requests_per_second
    )
    batch = (
        by[("service", "batch")].requests_per_second / by[("mlflow", "batch")].requests_per_second
    )
    # Throughput and latency as charts, drawn from the table just written, next to it.
    lines += ["", charts.image_links(charts.serving_charts("\n".join(lines)))]
    lines += [
        "",
        f"Speed-up of the generated service: {single:.1f}x for single records, {batch:.1f}x for batches of"
        f" {args.batch} (records/s: {by[('service', 'batch')].requests_per_second * args.batch:.0f} against"
        f" {by[('mlflow', 'batch')].requests_per_second * args.batch:.0f}).",
        "",
        "In-process ceiling, one record per call, no HTTP:",
        "",
        "| path | predictions/s |",
        "|---|---:|",
        f"| service loader, numpy array in feature order | {in_process['numpy']:.0f} |",
        f"| MLflow pyfunc, pandas DataFrame | {in_process['pandas_pyfunc']:.0f} |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "bench-serving")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks-serving.md")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: run `make bootstrap` (Debian package wrk)")
    args.work.mkdir(parents=True, exist_ok=True)
    project = prepare_project(args.work)
    venv_bin = project / ".venv" / "bin"
    path_env = {
        "PATH": f"{venv_bin}:{os.environ['PATH']}"
    }  # mlflow models serve runs uvicorn from PATH
    payloads = bodies(project, args.batch)
    results: list[Result] = []

    port = free_port()
    serve_env = {**path_env, "MAX_BATCH_SIZE": str(max(args.batch, 1000))}
    with server(
        ["make", "serve", f"PORT={port}"],
        project,
        serve_env,
        f"http://127.0.0.1:{port}/health/ready",
        args.work / "service.log",
    ):
        results += load_both_kinds(f"http://127.0.0.1:{port}/predict", "service", payloads, args)

    port = free_port()
    mlflow_cmd = [
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
        str(port),
    ]
    with server(
        mlflow_cmd, project, path_env, f"http://127.0.0.1:{port}/ping", args.work / "mlflow.log"
    ):
        results += load_both_kinds(f"http://127.0.0.1:{port}/invocations", "mlflow", payloads, args)

    print("bench: in-process predict rate", flush=True)
    package = re.search(
        r"^package_name: (\w+)$", (project / ".copier-answers.yml").read_text(), re.M
    )[1]  # type: ignore[index]
    in_process = json.loads(
        sh(str(venv_bin / "python"), "-c", IN_PROCESS.format(package=package), cwd=project)
    )
    text = report(results, in_process, args, project)
    args.output.write_text(text)
    charts.write_charts(charts.serving_charts(text), args.output.parent)
    print(text)


if __name__ == "__main__":
    main()
