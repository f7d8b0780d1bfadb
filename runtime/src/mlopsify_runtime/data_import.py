"""`make data-import FILE=... [TARGET=...] [ID=...] [TASK=...]`: bring a CSV or Parquet table into the pipeline.

The file is copied to data/external/ (unless it is there already) and tracked with `dvc add`;
params.yaml `data.source` (and `data.target`, `data.id_column` when given) is set to it,
keeping the file's comments; then the table is ingested and its schema inferred into
data/schema.yaml. The task follows the target (`infer_task`: text, booleans or a few distinct
integers are classes, other numbers a quantity) unless TASK names it; when it changes,
`task_type`, the model's parameters and the tuning grid change with it. The gate's thresholds
are written to fit the table: margins over the naive baseline, PR AUC and the lowest recall of
a class when one class has under 10% of the rows, tolerances on the target's scale.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import yaml

from . import ingest, schema
from .config import EXTERNAL_DATA, PARAMS_FILE, RAW_DATA, SCHEMA_FILE, TASK_TYPES, PipelineError, parse_params, run_step
from .metrics import IMBALANCED, minority_share

MAX_CLASSES = 20  # an integer target with more distinct values is a quantity, not classes
MODEL_BLOCKS = {
    "classification": "model:  # scikit-learn LogisticRegression, after imputation, scaling and one-hot encoding\n"
    "  C: 1.0\n  max_iter: 1000\n",
    "regression": "model:  # scikit-learn Ridge, after imputation, scaling and one-hot encoding\n  alpha: 1.0\n",
}
GRIDS = {"classification": 'model.C: "0.1,1,10"', "regression": 'model.alpha: "0.1,1,10"'}
# dvc.yaml's plots of the evaluate stage that depend on the task (plots.py writes them), as the
# template renders them; the project's answers, so that `mlopsify update` renders for the task.
DVC_FILE, ANSWERS_FILE = Path("dvc.yaml"), Path(".copier-answers.yml")
TASK_PLOTS = {
    "classification": "      - plots/confusion.csv:\n          cache: false\n          template: confusion\n"
    "          x: actual\n          y: predicted\n      - plots/roc.csv:\n          cache: false\n"
    "          template: simple\n          x: fpr\n          y: tpr\n",
    "regression": "      - plots/residuals.csv:\n          cache: false\n          template: scatter\n"
    "          x: predicted\n          y: residual\n",
}
TUNE_EXAMPLES = {
    "classification": '# `make tune GRID="model.C=0.1,1,10 model.max_iter=500,1000"` replaces `grid`.',
    "regression": '# `make tune GRID="model.alpha=0.1,1,10"` replaces `grid`.',
}


def infer_task(target: pd.Series) -> tuple[str, str]:
    """classification or regression for a target column, and why, in words."""
    values = target.dropna()
    distinct = values.nunique()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return (
            "classification",
            f"it holds {'booleans' if pd.api.types.is_bool_dtype(values) else 'text'}: {distinct:,} classes",
        )
    if not (values == values.round()).all():
        return "regression", "it holds fractional numbers"
    if distinct <= MAX_CLASSES:
        return "classification", f"it holds {distinct} distinct integers, at most {MAX_CLASSES}: classes"
    return "regression", f"it holds {distinct:,} distinct integers, more than {MAX_CLASSES}: a quantity"


def flow(values: dict[str, float]) -> str:
    return "{" + ", ".join(f"{name}: {value}" for name, value in values.items()) + "}"


def gate_block(task_type: str, target: pd.Series) -> str:
    """params.yaml `gate:` that fits the table: margins over the baseline, no absolute numbers yet,
    tolerances on the scale of the target."""
    if task_type == "regression":
        scale = float(pd.to_numeric(target, errors="coerce").std() or 1.0)
        step = float(f"{0.01 * scale:.2g}")  # a hundredth of the target's spread, two digits
        plus, times, tolerance = {"r2": 0.1}, {"rmse": 0.8}, {"r2": 0.01, "rmse": step, "mae": step}
    elif minority_share(target.dropna()) < IMBALANCED:
        plus, times = {"roc_auc": 0.1, "pr_auc": 0.2, "min_recall": 0.2}, {}
        tolerance = {"roc_auc": 0.01, "pr_auc": 0.02, "min_recall": 0.05}
    else:
        plus, times, tolerance = {"roc_auc": 0.1, "f1": 0.1}, {}, {"accuracy": 0.01, "f1": 0.01, "roc_auc": 0.01}
    return (
        "gate:  # written by make data-import to fit its table: set `min`/`max` once you know your numbers\n"
        f"  baseline:\n    plus: {flow(plus)}\n    times: {flow(times)}\n"
        f"  min: {{}}\n  max: {{}}\n  tolerance: {flow(tolerance)}\n"
    )


def replace_block(text: str, key: str, block: str) -> str:
    """params.yaml with the top-level `key:` and its indented lines replaced by `block`."""
    pattern = re.compile(rf"^{key}:[^\n]*\n(?:[ \t]+[^\n]*\n)*", re.M)
    if not pattern.search(text):
        raise PipelineError(f"{PARAMS_FILE} has no top-level `{key}:`: add it back (see the template's params.yaml)")
    return pattern.sub(lambda _: block, text, count=1)


def set_task(text: str, task_type: str, target: pd.Series) -> str:
    """params.yaml for `task_type`: the model and the grid switch only when the task does."""
    if yaml.safe_load(text).get("task_type") != task_type:
        text = re.sub(r"^task_type:.*$", f"task_type: {task_type}", text, count=1, flags=re.M)
        text = replace_block(text, "model", MODEL_BLOCKS[task_type])
        text = re.sub(
            r"^(  grid:\n)(?:    [^\n]*\n)*",
            lambda m: f"{m.group(1)}    {GRIDS[task_type]}\n",
            text,
            count=1,
            flags=re.M,
        )
        text = re.sub(r"^# `make tune GRID=.*$", TUNE_EXAMPLES[task_type], text, count=1, flags=re.M)
    return replace_block(text, "gate", gate_block(task_type, target))


def set_data_param(text: str, key: str, value: str) -> str:
    """params.yaml with `data.<key>` set to `value`, every other line (and comment) unchanged."""
    # group 1: `data:` and the lines up to `  key: `; group 2: the value; group 3: a comment
    pattern = re.compile(rf"^(data:\n(?:[ \t]+.*\n|\n)*?[ \t]+{key}:[ \t]*)([^#\n]*?)([ \t]*(?:#.*)?)$", re.M)
    if not pattern.search(text):
        raise PipelineError(f"{PARAMS_FILE} has no data.{key} entry: add `{key}:` under `data:`")
    return pattern.sub(lambda match: f"{match.group(1)}{value}{match.group(3)}", text, count=1)


def bring(file: Path) -> Path:
    """`file` under data/external/, tracked by DVC."""
    ingest.read_table(file)  # refuses a missing, unreadable or empty file before anything changes
    target = EXTERNAL_DATA / file.name
    if file.resolve() != target.resolve():
        EXTERNAL_DATA.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)
    completed = subprocess.run(["dvc", "add", "--quiet", str(target)], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise PipelineError(f"dvc add {target} failed: {completed.stderr.strip() or completed.stdout.strip()}")
    return target


def switch_project_task(task_type: str) -> None:
    """dvc.yaml's task plots and the answers' task_type for `task_type` (files that lack them stay)."""
    if DVC_FILE.is_file():
        text = DVC_FILE.read_text(encoding="utf-8")
        plots = re.compile(r"(^    plots:\n)(.*?)(^      - plots/gate\.csv:)", re.M | re.S)
        DVC_FILE.write_text(
            plots.sub(lambda m: m.group(1) + TASK_PLOTS[task_type] + m.group(3), text, count=1), "utf-8"
        )
    if ANSWERS_FILE.is_file():
        text = ANSWERS_FILE.read_text(encoding="utf-8")
        ANSWERS_FILE.write_text(
            re.sub(r"^task_type: .*$", f"task_type: {task_type}", text, count=1, flags=re.M), "utf-8"
        )


def import_table(tracked: Path, target: str | None, id_column: str | None, task: str | None) -> str:
    """Point params.yaml at `tracked` (a file under data/external/), set the task and the gate
    that fit it, ingest it and infer its schema; returns what it did, in words."""
    text = set_data_param(PARAMS_FILE.read_text(encoding="utf-8"), "source", str(tracked))
    for key, value in (("target", target), ("id_column", id_column)):
        if value:
            text = set_data_param(text, key, value)
    params = parse_params(yaml.safe_load(text))
    frame = ingest.select_columns(ingest.load_source(params.data), params.data)  # refuses a wrong column
    label = frame[params.data.target]
    task_type, why = (task, "TASK set it") if task else infer_task(label)
    switched = yaml.safe_load(text).get("task_type") != task_type
    text = set_task(text, task_type, label)
    params = parse_params(yaml.safe_load(text))
    PARAMS_FILE.write_text(text, encoding="utf-8")
    if switched:
        switch_project_task(task_type)
    ingest.write_dataset(frame, RAW_DATA)
    schema.infer_raw(params.data.target, params.task_type, params.data.source, params.data.id_column)
    also = f" {DVC_FILE} {ANSWERS_FILE}" if switched else ""
    return (
        f"data-import: task {task_type} for the target '{params.data.target}' ({why}; TASK=... overrides it): "
        f"params.yaml task_type, model and gate set to fit it"
        f"{f', {DVC_FILE} plots and {ANSWERS_FILE} task_type too' if switched else ''}.\n"
        f"data-import: {tracked} ({len(frame)} rows) tracked by DVC, params.yaml data.source set, "
        f"{SCHEMA_FILE} inferred.\nReview the schema, then: "
        f"git add {tracked}.dvc {EXTERNAL_DATA}/.gitignore params.yaml {SCHEMA_FILE}{also} && make pipeline"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="a CSV or Parquet file")
    parser.add_argument("--target", help="the label column (default: params.yaml data.target)")
    parser.add_argument("--id-column", help="a column that identifies rows, never a feature")
    parser.add_argument("--task", choices=TASK_TYPES, help="the task (default: inferred from the target)")
    args = parser.parse_args()
    print(import_table(bring(args.file), args.target, args.id_column, args.task))


if __name__ == "__main__":
    run_step(main)
