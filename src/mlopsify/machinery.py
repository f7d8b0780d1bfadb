"""Where the machinery that releases before 0.4.0 copied into each project lives now.

From 0.4.0 the serving app, the gate, promotion, monitoring and the other generic steps are the
runtime library's (mlopsify-runtime), and a project changes them through its hooks module
(src/<package>/hooks.py), not by editing a copy. An update from an older release removes the
copies; where the team had edited one, the update keeps the team's file as a conflict and says,
in one line per file, what replaces it (docs/updating.md).
"""

from __future__ import annotations

from fnmatch import fnmatch

HOOKS = "src/{package}/hooks.py"

# Most specific first: the first pattern that matches a path gives its line.
_REPLACEMENTS: tuple[tuple[str, str], ...] = (
    (
        "serving/drift.py",
        f"mlopsify_runtime.serving: your drift score goes in drift_statistic() of {HOOKS}",
    ),
    (
        "serving/*",
        f"mlopsify_runtime.serving: change requests and answers in preprocess()/postprocess() of {HOOKS}; limits and paths are environment settings (docs/operations.md)",
    ),
    (
        "evaluate.py",
        f"mlopsify_runtime.evaluate: add your metric in gate_metrics() of {HOOKS}; thresholds stay in params.yaml gate",
    ),
    ("metrics.py", f"mlopsify_runtime.metrics: add your metric in gate_metrics() of {HOOKS}"),
    (
        "challenger.py",
        "mlopsify_runtime.challenger: the tolerance against the champion is params.yaml gate.tolerance",
    ),
    ("slices.py", "mlopsify_runtime.slices: the groups and their minimums are params.yaml slices"),
    (
        "promotion.py",
        f"mlopsify_runtime.promotion: your own promotion rule goes in promotion_rule() of {HOOKS}",
    ),
    (
        "rollback.py",
        f"mlopsify_runtime.rollback: your own promotion rule goes in promotion_rule() of {HOOKS}",
    ),
    ("ingest.py", "src/{package}/ingest.py keeps only load(): read your own source there"),
    ("train.py", "src/{package}/train.py keeps only build_pipeline(): the model is yours there"),
    ("tune.py", "mlopsify_runtime.tune: the grid is params.yaml tune.grid"),
    (
        "orchestration/*",
        "mlopsify_runtime.orchestration: images and resources are orchestration.yaml",
    ),
)
_PREFIX = "src/{package}/"
_SCRIPTS = {
    "scripts/check_template_update.py": "mlopsify_runtime.template_update_check (make template-check)",
    "scripts/template_update_branch.py": "mlopsify_runtime.template_update_branch (make template-update)",
    "scripts/check_advisory_service.py": "mlopsify_runtime.advisory_service (make audit-deps)",
}

# The pages that explained the machinery are the runtime's documentation now, versioned with it;
# what stays the project's (its names, environments, secrets) is docs/operations.md.
_RUNTIME_DOCS = (
    "the runtime's documentation, linked from docs/operations.md at the runtime's version"
)
_DOCS = {
    "docs/serving.md": _RUNTIME_DOCS,
    "docs/monitoring.md": f"{_RUNTIME_DOCS}; the dashboard and the alerts are docs/runbooks.md",
    "docs/promotion.md": _RUNTIME_DOCS,
    "docs/deployment.md": f"{_RUNTIME_DOCS}; this project's deploy and rollback are docs/operations.md",
    "docs/experiments.md": _RUNTIME_DOCS,
}


def replacement(path: str, package: str) -> str | None:
    """One line saying what replaces ``path``, a file of the project's that 0.4.0 removed; None
    for a file that was never machinery."""
    if path in _SCRIPTS:
        return f"{path} is now {_SCRIPTS[path]}"
    if path in _DOCS:
        return f"{path} is now {_DOCS[path]}"
    if path.startswith("docs/runbooks/"):
        return f"{path} is now a section of docs/runbooks.md, one per alert"
    prefix = _PREFIX.format(package=package)
    if not path.startswith(prefix) or not path.endswith(".py"):
        return None
    inner = path.removeprefix(prefix)
    for pattern, line in _REPLACEMENTS:
        if fnmatch(inner, pattern):
            return f"{path} is now {line.format(package=package)}"
    module = inner.removesuffix(".py").replace("/", ".")
    return f"{path} is now mlopsify_runtime.{module}: no hook changes it; keep your copy and call it from dvc.yaml, or open an issue"
