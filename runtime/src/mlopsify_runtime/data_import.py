"""`make data-import FILE=... [TARGET=...] [ID=...]`: bring a CSV or Parquet table into the pipeline.

The file is copied to data/external/ (unless it is there already) and tracked with `dvc add`;
params.yaml `data.source` (and `data.target`, `data.id_column` when given) is set to it,
keeping the file's comments; then the table is ingested and its schema inferred into
data/schema.yaml.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from . import ingest, schema
from .config import EXTERNAL_DATA, PARAMS_FILE, RAW_DATA, SCHEMA_FILE, PipelineError, parse_params, run_step


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="a CSV or Parquet file")
    parser.add_argument("--target", help="the label column (default: params.yaml data.target)")
    parser.add_argument("--id-column", help="a column that identifies rows, never a feature")
    args = parser.parse_args()
    tracked = bring(args.file)
    text = set_data_param(PARAMS_FILE.read_text(encoding="utf-8"), "source", str(tracked))
    for key, value in (("target", args.target), ("id_column", args.id_column)):
        if value:
            text = set_data_param(text, key, value)
    params = parse_params(yaml.safe_load(text))
    frame = ingest.select_columns(ingest.load_source(params.data), params.data)  # refuses a wrong column
    PARAMS_FILE.write_text(text, encoding="utf-8")
    ingest.write_dataset(frame, RAW_DATA)
    schema.infer_raw(params.data.target, params.task_type, params.data.source)
    print(
        f"data-import: {tracked} ({len(frame)} rows) tracked by DVC, params.yaml data.source set, "
        f"{SCHEMA_FILE} inferred.\nReview the schema, then: "
        f"git add {tracked}.dvc {EXTERNAL_DATA}/.gitignore params.yaml {SCHEMA_FILE} && make pipeline"
    )


if __name__ == "__main__":
    run_step(main)
