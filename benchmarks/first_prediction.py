"""`make serve` in a generated project until it is ready, then its first prediction.

    python benchmarks/first_prediction.py PROJECT RESULT.json

Starts `make serve` on a free 127.0.0.1 port, polls `/health/ready` every 10 ms, then sends
one record of the held-out set (data/processed/test.csv, in models/features.json's order) to
`/predict` and stops the server (its process group). RESULT.json gets the seconds from start
to ready and of the first prediction. benchmarks/generator.py times it as two stages of the
time to first prediction.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT = 120  # seconds; a service that takes longer has failed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def first_record(project: Path) -> dict[str, float | str | None]:
    """The first held-out row, as the service takes it (numbers as numbers, blanks as null)."""
    spec = json.loads((project / "models" / "features.json").read_text(encoding="utf-8"))
    with (project / "data" / "processed" / "test.csv").open(encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    columns = spec.get("columns", {})
    record: dict[str, float | str | None] = {}
    for name in spec["features"]:
        value = row[name]
        if value == "":
            record[name] = None
        elif columns.get(name, {}).get("type") == "category":
            record[name] = value
        else:
            record[name] = float(value)
    return record


def ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/health/ready", timeout=1) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def main(project: Path, result: Path) -> None:
    body = json.dumps({"record": first_record(project)}).encode()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    server = subprocess.Popen(
        ["make", "serve", f"PORT={port}"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while not ready(base):
            if server.poll() is not None or time.perf_counter() - start > TIMEOUT:
                raise SystemExit(f"`make serve` in {project} was not ready within {TIMEOUT} s")
            time.sleep(0.01)
        up = time.perf_counter()
        request = urllib.request.Request(
            f"{base}/predict", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        done = time.perf_counter()
        if "prediction" not in answer:
            raise SystemExit(f"/predict answered without a prediction: {answer}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # make and the uvicorn it started
        server.wait(timeout=30)
    result.write_text(json.dumps({"ready": up - start, "predict": done - up}), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
