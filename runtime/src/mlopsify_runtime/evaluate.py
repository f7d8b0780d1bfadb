"""Evaluate: test-set metrics, then the quality gate that decides whether the model is promoted.

Writes metrics/metrics.json (DVC metrics), logs the metrics to the training run, and moves
the alias (``champion``) to the newly registered version only when every threshold in
params.yaml ``gate:`` holds (``gate.baseline``: margins over the naive baseline, the prior class
or the mean of the target, fitted on the same train split and scored on the same test rows;
``gate.min``/``gate.max``: absolute numbers) and, once there is a champion, when the new model is no worse than
it by more than ``gate.tolerance`` on the same test data (challenger.py). Otherwise it exits
non-zero naming each metric, threshold and tolerance. The decision is tagged on the version and
written to reports/gate.md and reports/gate.json; the DVC plots to plots/ (plots.py).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .baseline import BASELINES, baseline_bounds, baseline_for

# Re-exported: the projects' tests/test_model_quality.py import it from here.
from .baseline import baseline_metrics as baseline_metrics
from .challenger import GATE_REPORT, Decision, comparison_failures, record, write_reports
from .compiled import CompiledParams, judge
from .compiled import record as record_serving
from .config import (
    FEATURES_FILE,
    METRICS_FILE,
    MODEL_DIR,
    REGISTRATION_FILE,
    TEST_DATA,
    GateParams,
    Params,
    PipelineError,
    experiment_name,
    load_params,
    run_step,
    tracking_uri,
)
from .metrics import Model, gate_metrics
from .plots import write_gate_plot, write_model_plots
from .provenance import actor, utc_now
from .slices import noisy_metrics, slice_failures, slice_metrics
from .spec import Spec, few, model_input, read_frame, read_spec

if TYPE_CHECKING:
    import pandas as pd

# Set to 1 for one run whose features changed on purpose: the champion cannot score its data.
SKIP_CHAMPION = "GATE_SKIP_CHAMPION"


def baseline_failures(metrics: dict[str, float], gate: GateParams, baseline: dict[str, float], named: str) -> list[str]:
    """One message per metric that does not beat the baseline by its margin (baseline_bounds)."""
    bounds = {bound.where: bound for bound in baseline_bounds(gate, baseline)}
    failures = []
    for rule, margins in (("plus", gate.plus), ("times", gate.times)):
        for name in margins:
            where = f"params.yaml gate.baseline.{rule}.{name}"
            bound = bounds.get(where)
            if bound is None or name not in metrics:
                failures.append(f"{where}: no metric '{name}' (use one of {few(sorted(metrics))})")
            elif metrics[name] > bound.value if bound.lower else metrics[name] < bound.value:
                failures.append(
                    f"{name} = {metrics[name]:.4f} is {'above' if bound.lower else 'below'} {bound.value:.4f}, "
                    f"{bound.how} (baseline: {named}; {where})"
                )
    return failures


def gate_failures(
    metrics: dict[str, float],
    gate: GateParams,
    baseline: dict[str, float] | None = None,
    named: str = "the naive baseline",
) -> list[str]:
    """One message per broken threshold: the margins over the `baseline`'s metrics (when given),
    then the absolute `min` and `max`; an empty list means the gate passes."""
    failures = baseline_failures(metrics, gate, baseline, named) if baseline is not None else []
    for bound, thresholds in (("min", gate.minimum), ("max", gate.maximum)):
        for name, threshold in thresholds.items():
            if name not in metrics:
                failures.append(
                    f"params.yaml gate.{bound}.{name}: no metric '{name}' (use one of {few(sorted(metrics))})"
                )
            elif bound == "min" and metrics[name] < threshold:
                failures.append(
                    f"{name} = {metrics[name]:.4f} is below the minimum {threshold} (params.yaml gate.min.{name})"
                )
            elif bound == "max" and metrics[name] > threshold:
                failures.append(
                    f"{name} = {metrics[name]:.4f} is above the maximum {threshold} (params.yaml gate.max.{name})"
                )
    return failures


def write_metrics(metrics: dict[str, float], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def current_alias_version(model_name: str, alias: str) -> str | None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def log_test_metrics(run_id: str, metrics: dict[str, float]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    for name, value in metrics.items():
        client.log_metric(run_id, f"test_{name}", value)


def champion_metrics(model_name: str, version: str, test: pd.DataFrame, spec: Spec, params: Params) -> dict[str, float]:
    """The champion's metrics on the challenger's test data (the same rows, the same columns)."""
    import mlflow

    model = mlflow.sklearn.load_model(f"models:/{model_name}/{version}")
    try:
        matrix = model_input(test, spec)
        return gate_metrics(model, matrix, test[params.data.target].to_numpy(), params.task_type)
    except (KeyError, ValueError) as error:
        raise PipelineError(
            f"the champion, {model_name} version {version}, cannot score this test data ({error}): "
            "when the features changed on purpose, judge this model on the thresholds alone: "
            f"{SKIP_CHAMPION}=1 make gate"
        ) from None


def decide(
    params: Params,
    model: Model,
    registration: dict[str, Any],
    metrics: dict[str, float],
    test: pd.DataFrame,
    spec: Spec,
    compare: bool,
    baseline: dict[str, float],
) -> Decision:
    """The baseline's margins, the thresholds, the comparison with the champion (when one exists
    and is another version), the slices' minimums; the robustness check is reported only."""
    name, version, alias = registration["model_name"], registration["version"], params.mlflow.alias
    named = BASELINES[params.task_type]
    failures = gate_failures(metrics, params.gate, baseline, named)
    champion = current_alias_version(name, alias) if compare else None
    if champion == version:  # the gate judging its own champion again compares it with nothing
        champion = None
    old = champion_metrics(name, champion, test, spec, params) if champion else {}
    if champion:
        failures += comparison_failures(metrics, old, params.gate.tolerance)
    target, task_type = params.data.target, params.task_type
    slices = {}
    if params.slices.column:
        slices = slice_metrics(model, test, spec, target, task_type, params.slices.column)
        failures += slice_failures(slices, params.slices.minimum)
    noise = params.robustness_noise
    robustness = noisy_metrics(model, test, spec, target, task_type, noise) if noise > 0 else {}
    return Decision(
        model_name=name,
        alias=alias,
        challenger_version=version,
        challenger_metrics=metrics,
        champion_version=champion,
        champion_metrics=old,
        tolerance=params.gate.tolerance,
        failures=failures,
        baseline=named,
        baseline_metrics=baseline,
        by=actor("GATE_BY"),
        at=utc_now(),
        slices=slices,
        robustness=robustness,
    )


def main() -> None:
    import mlflow

    params = load_params()
    mlflow.set_tracking_uri(tracking_uri())
    spec = read_spec(FEATURES_FILE)
    registration = json.loads(REGISTRATION_FILE.read_text(encoding="utf-8"))
    model = mlflow.sklearn.load_model(str(MODEL_DIR))
    test = read_frame(TEST_DATA)
    matrix, actual = model_input(test, spec), test[params.data.target].to_numpy()
    metrics = gate_metrics(model, matrix, actual, params.task_type)
    baseline = baseline_for(params, test=test)
    write_metrics(metrics, METRICS_FILE)
    write_model_plots(model, matrix, actual, params.task_type)
    log_test_metrics(registration["run_id"], metrics)
    if tuning := experiment_name():
        # One point of `make tune`'s grid: metrics and plots only. The registry is left alone;
        # the best experiment, once applied, goes through this gate as the challenger (tune.py).
        write_gate_plot(decide(params, model, registration, metrics, test, spec, False, baseline))
        judge(model, test, spec, registration, MODEL_DIR, CompiledParams.from_file()).write()  # the stage's out
        summary = ", ".join(f"{key} = {value:.4f}" for key, value in sorted(metrics.items()))
        print(f"experiment {tuning}: {summary} (the gate judges the best of the grid once applied)")
        return
    decision = decide(params, model, registration, metrics, test, spec, os.environ.get(SKIP_CHAMPION) != "1", baseline)
    write_reports(decision)
    write_gate_plot(decision)
    record(decision)
    # Compiled serving (compiled.py): which runtime serves this version, one line of the report.
    serving = judge(model, test, spec, registration, MODEL_DIR, CompiledParams.from_file())
    record_serving(serving, decision.model_name, GATE_REPORT)
    print(serving.line().removeprefix("- "))
    alias, name, version = decision.alias, decision.model_name, decision.challenger_version
    if not decision.passed:
        kept = current_alias_version(name, alias)
        where = f"stays on version {kept}" if kept else "is not set on any version"
        lines = "\n".join(f"  - {failure}" for failure in decision.failures)
        print(f"quality gate failed for {name} version {version}:\n{lines}\nalias '{alias}' {where}", file=sys.stderr)
        raise SystemExit(1)
    summary = ", ".join(f"{key} = {value:.4f}" for key, value in sorted(metrics.items()))
    naive = ", ".join(f"{key} = {baseline[key]:.4f}" for key in sorted({*params.gate.plus, *params.gate.times}))
    against = f" against version {decision.champion_version}" if decision.champion_version else ", the first model"
    beside = f"; baseline ({decision.baseline}): {naive}" if naive else ""
    print(f"quality gate passed ({summary}{beside}){against}: alias '{alias}' -> {name} version {version}")


if __name__ == "__main__":
    run_step(main)
