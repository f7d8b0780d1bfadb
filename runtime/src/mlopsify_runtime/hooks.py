"""Extension points: how a team changes the runtime's behaviour without editing a copy of it.

A project names one module of its own as its hooks, in its pyproject.toml:

    [project.entry-points."mlopsify.hooks"]
    hooks = "credit_risk.hooks"

The runtime reads that module once and calls the functions it defines; a function it does not
define keeps the runtime's behaviour. The hooks, with the signature each must have:

- ``gate_metrics(y_true, y_pred, scores, task_type) -> dict[str, float]``: more metrics for the
  quality gate, judged by params.yaml ``gate.min``/``gate.max`` like the built-in ones.
- ``drift_statistic(reference, live) -> float``: replaces the drift score of a number feature
  (reference and live are sequences of floats; 0 is no drift).
- ``preprocess(record) -> record``: the service applies it to each validated record before
  the model sees it (a dict of feature name to value).
- ``postprocess(record, answer) -> answer``: the service applies it to each answer (a dict)
  before it is returned.
- ``promotion_rule(decision) -> str | None``: called before an alias moves, with the gate's
  decision (a dict); a string refuses the promotion and is the reason shown.

Entry points are the Python packaging standard for plug-ins (pytest and Kedro find theirs the
same way): they work in the editable environment of `make setup` and in the serving image,
which installs the project's package, with no setting to forget.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

GROUP = "mlopsify.hooks"
HOOK_NAMES = ("gate_metrics", "drift_statistic", "preprocess", "postprocess", "promotion_rule")


class HookError(Exception):
    """The project's hooks module is missing or does not import: the message says which."""


@cache
def hooks_module() -> ModuleType | None:
    """The project's hooks module, or None when the project declares none."""
    found = entry_points(group=GROUP)
    if not found:
        return None
    (point, *others) = sorted(found, key=lambda entry: entry.name)
    if others:
        names = ", ".join(entry.value for entry in found)
        raise HookError(f"more than one {GROUP} entry point ({names}): declare one hooks module")
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
