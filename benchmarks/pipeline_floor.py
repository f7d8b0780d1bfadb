"""The stages of a generated project's dvc.yaml run in this one Python process: the floor.

    .venv/bin/python benchmarks/pipeline_floor.py RESULT.json   # in the project's root

Each stage's `python -m MODULE` command runs as `runpy.run_module(MODULE, run_name="__main__")`,
in dvc.yaml's order, so every library is imported once and nothing else runs: what is left of a
cold `dvc repro` once DVC and the fresh processes are gone. RESULT.json gets each stage's
seconds. benchmarks/generator.py times it beside a cold `dvc repro` of the same project.
"""

from __future__ import annotations

import json
import runpy
import sys
import time
from pathlib import Path

import yaml


def stage_modules(dvc_file: Path) -> list[tuple[str, str]]:
    """(stage, module) of every `python -m MODULE` stage, in dvc.yaml's order."""
    stages = yaml.safe_load(dvc_file.read_text(encoding="utf-8"))["stages"]
    found = []
    for name, stage in stages.items():
        words = str(stage["cmd"]).split()
        if words[:2] != ["python", "-m"] or len(words) != 3:
            raise SystemExit(f"stage {name}: `{stage['cmd']}` is not `python -m MODULE`")
        found.append((name, words[2]))
    return found


def main(result: Path) -> None:
    took: dict[str, float] = {}
    del sys.argv[1:]  # as `python -m MODULE` sees it: no arguments
    for name, module in stage_modules(Path("dvc.yaml")):
        start = time.perf_counter()
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        took[name] = time.perf_counter() - start
    result.write_text(json.dumps(took), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
