"""The pipeline graph as DVC defines it: each stage, its command and the stages it waits for.

Kubeflow and Airflow read the graph here instead of declaring the steps a second time: a
stage added to dvc.yaml becomes a task at the next compile (Kubeflow) or parse (Airflow).
A stage waits for another when one of its dependencies is (or lies inside) the other's output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

# The training pipeline (`dvc repro`) and the batch-inference pipeline (`dvc repro inference/dvc.yaml`).
PIPELINE_FILES = ("dvc.yaml", "inference/dvc.yaml")
OUTPUT_KEYS = ("outs", "metrics", "plots")


@dataclass(frozen=True)
class Stage:
    """One DVC stage; paths are relative to the project root."""

    name: str
    dvcfile: str
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    uncached: tuple[str, ...]
    upstream: tuple[str, ...]

    @property
    def address(self) -> str:
        """What `dvc repro`, `dvc pull` and `dvc push` accept: `dvc.yaml:train`."""
        return f"{self.dvcfile}:{self.name}"

    @property
    def lockfile(self) -> str:
        return str(PurePosixPath(self.dvcfile).with_suffix(".lock"))


def _entries(items: list[Any]) -> list[tuple[str, bool]]:
    """(path, cached) for DVC's list of outputs: `path` or `{path: {cache: false}}`."""
    found = []
    for item in items or []:
        if isinstance(item, dict):
            for path, options in item.items():
                found.append((str(path), (options or {}).get("cache", True) is not False))
        else:
            found.append((str(item), True))
    return found


def _normal(base: PurePosixPath, path: str) -> str:
    """``path`` relative to the project root, for a stage that runs in ``base``."""
    parts: list[str] = []
    for part in (base / path).parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def _overlaps(dep: str, out: str) -> bool:
    return dep == out or dep.startswith(out + "/") or out.startswith(dep + "/")


def read_stages(root: Path, dvcfile: str) -> list[Stage]:
    """The stages of one dvc.yaml, in file order, without their upstream stages yet."""
    raw = yaml.safe_load((root / dvcfile).read_text(encoding="utf-8")) or {}
    stages = []
    for name, spec in (raw.get("stages") or {}).items():
        if "foreach" in spec or "matrix" in spec:
            raise ValueError(f"{dvcfile}:{name}: foreach and matrix stages are not supported as tasks yet")
        base = PurePosixPath(dvcfile).parent / str(spec.get("wdir", "."))
        outputs = [(_normal(base, path), cached) for key in OUTPUT_KEYS for path, cached in _entries(spec.get(key))]
        stages.append(
            Stage(
                name=str(name),
                dvcfile=dvcfile,
                cmd=str(spec["cmd"]),
                deps=tuple(_normal(base, str(dep)) for dep in spec.get("deps") or []),
                outs=tuple(path for path, _ in outputs),
                uncached=tuple(path for path, cached in outputs if not cached),
                upstream=(),
            )
        )
    return stages


def load_graph(root: Path = Path()) -> list[Stage]:
    """Every stage of the project's pipelines, upstream stages first (file order among equals)."""
    stages = [stage for dvcfile in PIPELINE_FILES if (root / dvcfile).is_file() for stage in read_stages(root, dvcfile)]
    names = [stage.name for stage in stages]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"stage names must be unique across {', '.join(PIPELINE_FILES)}: {', '.join(duplicates)}")
    linked = {
        stage.name: Stage(
            **{
                **vars(stage),
                "upstream": tuple(
                    other.name
                    for other in stages
                    if other is not stage and any(_overlaps(dep, out) for dep in stage.deps for out in other.outs)
                ),
            }
        )
        for stage in stages
    }
    ordered: list[Stage] = []
    while len(ordered) < len(linked):
        done = {stage.name for stage in ordered}
        ready = [s for s in linked.values() if s.name not in done and set(s.upstream) <= done]
        if not ready:
            raise ValueError(f"the stages {sorted(set(linked) - done)} depend on each other in a cycle")
        ordered.append(ready[0])
    return ordered


def ancestors(graph: list[Stage], name: str) -> list[Stage]:
    """The stages ``name`` waits for, directly or not, upstream first."""
    by_name = {stage.name: stage for stage in graph}
    wanted: set[str] = set()
    pending = list(by_name[name].upstream)
    while pending:
        current = pending.pop()
        if current not in wanted:
            wanted.add(current)
            pending.extend(by_name[current].upstream)
    return [stage for stage in graph if stage.name in wanted]


def task_id(name: str) -> str:
    """A stage name as a task id both orchestrators accept (letters, digits, '-', '_')."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


@dataclass(frozen=True)
class ClusterSettings:
    """orchestration.yaml: the image every task runs in, its environment, and resources per task."""

    image: str
    env: dict[str, str]
    default: dict[str, str]
    stages: dict[str, dict[str, str]]

    def resources(self, stage: str) -> dict[str, str]:
        """``cpu`` and ``memory`` (Kubernetes quantities) for ``stage``: its own entry over the default."""
        return {**self.default, **self.stages.get(stage, {})}


def cluster_settings(root: Path = Path()) -> ClusterSettings:
    raw = yaml.safe_load((root / "orchestration.yaml").read_text(encoding="utf-8")) or {}
    return ClusterSettings(
        image=str(raw["image"]),
        env={str(k): str(v) for k, v in (raw.get("env") or {}).items()},
        default={str(k): str(v) for k, v in (raw.get("default") or {}).items()},
        stages={str(s): {str(k): str(v) for k, v in (r or {}).items()} for s, r in (raw.get("stages") or {}).items()},
    )
