"""Extension points: how a team changes the runtime's behaviour without editing a copy of it.

A project names one module of its own as its hooks, in its pyproject.toml:

    [project.entry-points."mlopsify.hooks"]
    hooks = "credit_risk.hooks"

The runtime reads that module once and calls the functions it defines; a function it does not
define keeps the runtime's behaviour. The hooks, with the signature each must have:

- ``gate_metrics(y_true, y_pred, scores, task_type) -> dict[str, float]``: more metrics for the
  quality gate, judged by params.yaml ``gate.min``/``gate.max``/``gate.tolerance`` like the
  built-in ones and written to metrics/metrics.json. ``y_true`` and ``y_pred`` are arrays of the
  test labels or numbers; ``scores`` is a classifier's probabilities (one row per test row, one
  column per class in sorted order), None for a regressor or a classifier without them. A name
  must not be a built-in metric's, and each value must be a finite number.
- ``drift_statistic(reference, live) -> float``: replaces the drift score of a number feature
  (reference and live are sequences of floats; 0 is no drift).
- ``preprocess(record) -> record``: the service applies it to each validated record before
  the model sees it (a dict of feature name to value).
- ``postprocess(record, answer) -> answer``: the service applies it to each answer (a dict)
  before it is returned.
- ``promotion_rule(decision) -> str | None``: called by `make promote` before it deploys and again
  before it moves an environment's alias, with a dict: ``model_name``, ``version``,
  ``environment`` (staging or production), ``from_alias``, ``image_tag``, ``reason``, ``by`` and
  ``gate``, the gate's decision on that version (its ``gate.*`` tags: ``result``,
  ``challenger_metrics``, ``champion_version``...). A string refuses the promotion and is the
  reason shown; None lets it go on.

A hook that raises, or returns something else than its signature says, stops the step with one
line naming the hook (a ``HookError``, which the pipeline's steps print like any ``PipelineError``).

Entry points are the Python packaging standard for plug-ins (pytest and Kedro find theirs the
same way): they work in the editable environment of `make setup` and in the serving image,
which installs the project's package, with no setting to forget.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from .config import PipelineError

GROUP = "mlopsify.hooks"
HOOK_NAMES = ("gate_metrics", "drift_statistic", "preprocess", "postprocess", "promotion_rule")


class HookError(PipelineError):
    """The project's hooks module does not import, or one of its hooks fails: the message says which."""


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_name(pyproject: Path) -> str | None:
    """``[project] name`` of a pyproject.toml, normalized; None without one."""
    if not pyproject.is_file():
        return None
    found = re.search(
        r'^\[project\]\s*$(?:\n(?!\[).*)*?^name\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"), re.M
    )
    return _normal(found[1]) if found else None


@cache
def hooks_module() -> ModuleType | None:
    """The project's hooks module, or None when the project declares none."""
    found = list(entry_points(group=GROUP))
    if len(found) > 1:
        # One environment shared by several projects: the hooks are those of the project that
        # runs (the pyproject.toml of the working directory, where every step runs).
        here = _project_name(Path("pyproject.toml"))
        found = [entry for entry in found if entry.dist is not None and _normal(entry.dist.name) == here]
        if len(found) != 1:
            names = ", ".join(entry.value for entry in entry_points(group=GROUP))
            raise HookError(
                f"more than one {GROUP} entry point ({names}) and none of the project in this directory: "
                "run from the project's root, or give each project an environment of its own"
            )
    if not found:
        return None
    point = found[0]
    try:
        return importlib.import_module(point.value)
    except ImportError as error:
        raise HookError(f"the hooks module {point.value} (entry point {GROUP}) does not import: {error}") from error


def hook(name: str) -> Callable[..., Any] | None:
    """The project's function for hook ``name``, or None when it does not define one."""
    if name not in HOOK_NAMES:
        raise ValueError(f"unknown hook {name!r}: one of {HOOK_NAMES}")
    module = hooks_module()
    found = getattr(module, name, None) if module is not None else None
    if found is not None and not callable(found):
        raise HookError(f"{module.__name__ if module else ''}.{name} is not a function: define it with def")
    return found


def hook_label(name: str) -> str:
    """How messages name a hook: ``gate_metrics (credit_risk.hooks.gate_metrics)``."""
    module = hooks_module()
    return f"{name} ({module.__name__}.{name})" if module is not None else name


def call_hook(name: str, *args: object) -> object:
    """The result of the project's hook ``name`` called with ``args``; None when it defines none.

    Anything the hook raises becomes a one-line ``HookError`` naming it: the team's code broke,
    not the runtime, and the message says where to look.
    """
    function = hook(name)
    if function is None:
        return None
    try:
        return function(*args)
    except Exception as error:
        detail = " ".join(str(error).split()) or "no message"
        raise HookError(f"the project's hook {hook_label(name)} failed: {type(error).__name__}: {detail}") from error
