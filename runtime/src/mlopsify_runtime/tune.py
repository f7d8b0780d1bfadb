"""Tune: a parameter grid as DVC experiments, the best applied and judged by the gate (`make tune`).

Each point of the grid is queued (`dvc exp run --queue -S ...`) and the queue runs in parallel
workers (`dvc exp run --run-all --jobs N`), each in a copy of the project under .dvc/tmp/exps
whose training run logs to the project's MLflow with the experiment's name as a tag (config.py).
The experiment with the best ``tune.metric`` in metrics/metrics.json is applied to the workspace
(`dvc exp apply`) and evaluated again as the challenger: a best of the grid that is worse than
the champion is refused like any other model (docs/runtime/experiments.md).

The grid is params.yaml ``tune.grid`` (``model.C: "0.1,1,10"``: a string, which `dvc exp run -S`
keeps as written when it rewrites params.yaml) or ``--grid "model.C=0.1,1,10 model.max_iter=500,1000"``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from typing import Any

import yaml

from .challenger import LOWER_IS_BETTER
from .config import METRICS_FILE, PARAMS_FILE, PipelineError, run_step

GRID_EXAMPLE = 'make tune GRID="model.C=0.1,1,10"'
Grid = dict[str, list[Any]]


def grid_example(params: dict[str, Any]) -> str:
    """A grid over the model's first parameter (C, or alpha for regression), for the error lines."""
    first = next(iter(params.get("model") or {}), "C")
    return f'make tune GRID="model.{first}=0.1,1,10"'


def parse_grid(text: str, example: str = GRID_EXAMPLE) -> Grid:
    """``"model.C=0.1,1,10 model.max_iter=500,1000"``: each parameter with its values (YAML scalars)."""
    grid: Grid = {}
    for part in text.split():
        name, sep, values = part.partition("=")
        items = [yaml.safe_load(value) for value in values.split(",")] if values else []
        if not sep or not name or not items or any(item is None or isinstance(item, (dict, list)) for item in items):
            raise PipelineError(f"bad grid {part!r}: write each parameter as name=value,value (e.g. {example})")
        grid[name] = items
    return grid


def check_grid(grid: Grid, params: dict[str, Any], example: str = GRID_EXAMPLE) -> Grid:
    """The grid, once each of its parameters is known to params.yaml and has values."""
    if not grid:
        raise PipelineError(f"the grid is empty: set params.yaml tune.grid or give one (e.g. {example})")
    for name in grid:
        node: Any = params
        for key in name.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if node is None or isinstance(node, dict):
            raise PipelineError(f"grid parameter {name!r} is not a value in params.yaml (e.g. {example})")
    return grid


def combinations(grid: Grid) -> list[dict[str, Any]]:
    """Every point of the grid, in the order the values are listed."""
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def dvc(*args: str, capture: bool = False) -> str:
    """Run dvc; a failure stops the tuning with dvc's own message above."""
    result = subprocess.run(["dvc", *args], check=False, text=True, capture_output=capture)
    if result.returncode != 0:
        if capture:
            sys.stderr.write(result.stderr)
        raise PipelineError(f"dvc {args[0]} {args[1] if len(args) > 1 else ''} failed (above)")
    return result.stdout if capture else ""


def experiment_results(names: set[str]) -> dict[str, dict[str, Any]]:
    """Each named experiment's params.yaml values and metrics/metrics.json, from `dvc exp show --json`."""
    results: dict[str, dict[str, Any]] = {}
    for baseline in json.loads(dvc("exp", "show", "--json", capture=True)):
        for experiment in baseline.get("experiments") or []:
            for rev in experiment.get("revs") or []:
                data = rev.get("data") or {}
                if rev.get("name") in names:
                    results[rev["name"]] = {
                        "params": ((data.get("params") or {}).get(str(PARAMS_FILE)) or {}).get("data") or {},
                        "metrics": ((data.get("metrics") or {}).get(str(METRICS_FILE)) or {}).get("data") or {},
                    }
    return results


def best_experiment(results: dict[str, dict[str, Any]], metric: str) -> str:
    """The experiment with the best ``metric`` (the smallest for rmse and mae, else the largest)."""
    scored = {name: result["metrics"][metric] for name, result in results.items() if metric in result["metrics"]}
    if not scored:
        raise PipelineError(f"no experiment reported the metric {metric!r} in {METRICS_FILE}: see dvc exp show")
    pick = min if metric in LOWER_IS_BETTER else max
    return pick(sorted(scored), key=lambda name: scored[name])


def table(points: dict[str, dict[str, Any]], results: dict[str, dict[str, Any]], metric: str) -> str:
    """The grid's comparison: one line per experiment with its parameters and metric."""
    lines = [f"| experiment | {' | '.join(next(iter(points.values())))} | {metric} |"]
    lines.append("|---" * (len(next(iter(points.values()))) + 2) + "|")
    for name, point in points.items():
        value = results.get(name, {}).get("metrics", {}).get(metric)
        shown = "failed" if value is None else f"{value:.4f}"
        lines.append(f"| {name} | {' | '.join(str(v) for v in point.values())} | {shown} |")
    return "\n".join(lines)


def apply_experiment(name: str) -> None:
    """`dvc exp apply` for the training pipeline's outputs: the command would also check out
    inference/dvc.yaml's predictions, which no experiment makes, and fail when they were never made."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo() as repo:
            repo.experiments.apply(name, targets=["dvc.yaml"])
    except DvcException as error:
        raise PipelineError(f"dvc exp apply {name} failed: {error}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="make tune", description=__doc__)
    parser.add_argument("--grid", default="", help=f"the grid instead of params.yaml tune.grid ({GRID_EXAMPLE})")
    parser.add_argument("--jobs", type=int, default=0, help="parallel workers (default params.yaml tune.jobs)")
    args = parser.parse_args(argv)
    params = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))
    tune = params.get("tune") or {}
    text = args.grid.strip() or " ".join(f"{name}={values}" for name, values in (tune.get("grid") or {}).items())
    example = grid_example(params)
    grid = check_grid(parse_grid(text, example), params, example)
    gate = params.get("gate") or {}
    margins = {**((gate.get("baseline") or {}).get("plus") or {}), **((gate.get("baseline") or {}).get("times") or {})}
    metric = tune.get("metric") or next(iter({**(gate.get("min") or {}), **margins}), None)
    if not metric:
        raise PipelineError("params.yaml tune.metric is not set and the gate names no metric: name the metric to tune")
    jobs = args.jobs or int(tune.get("jobs") or 1)

    batch = time.strftime("tune-%Y%m%d-%H%M%S", time.gmtime())
    points = {f"{batch}-{index}": point for index, point in enumerate(combinations(grid), start=1)}
    for name, point in points.items():
        dvc("exp", "run", "--queue", "--quiet", "--name", name, *(f"-S{key}={value}" for key, value in point.items()))
    print(f"tune: {len(points)} experiments queued, running {jobs} at a time", flush=True)
    dvc("exp", "run", "--run-all", "--jobs", str(jobs))

    results = experiment_results(set(points))
    print(table(points, results, metric))
    best = best_experiment(results, metric)
    print(f"tune: the best experiment is {best} ({metric} = {results[best]['metrics'][metric]:.4f}): applying it")
    apply_experiment(best)
    # The applied outputs are those of the experiment, so DVC calls evaluate up to date: force it,
    # and the gate judges the best of the grid against the champion like any new model.
    print("tune: the gate judges it as the challenger", flush=True)
    gate = subprocess.run(["dvc", "repro", "--force", "--single-item", "evaluate"], check=False)
    raise SystemExit(gate.returncode)


if __name__ == "__main__":
    run_step(main)
