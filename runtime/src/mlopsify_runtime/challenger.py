"""Challenger against champion: the part of the gate that compares the new model with the current one.

Evaluate scores the champion (the version the alias points at) on the same held-out data as
the new model, the challenger. Each metric in params.yaml ``gate.tolerance`` may be worse than
the champion's by at most its tolerance; the first model, with no champion, is judged on the
thresholds alone. The decision is kept twice: as tags on the challenger's model version (what
`make audit` reads back) and as reports/gate.md and reports/gate.json (what CI shows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .spec import few

GATE_REPORT = Path("reports/gate.md")
GATE_JSON = Path("reports/gate.json")
# Metrics where a smaller value is the better model; every other metric is better when larger.
LOWER_IS_BETTER = frozenset({"rmse", "mae"})
TAG_VALUE_LIMIT = 5000  # characters in an MLflow model version tag value


def comparison_failures(
    challenger: dict[str, float], champion: dict[str, float], tolerance: dict[str, float]
) -> list[str]:
    """One message per metric where the challenger is worse than the champion by more than its tolerance."""
    failures = []
    for name, allowed in tolerance.items():
        if name not in challenger or name not in champion:
            failures.append(
                f"params.yaml gate.tolerance.{name}: no metric '{name}' (use one of {few(sorted(challenger))})"
            )
            continue
        worse_by = challenger[name] - champion[name] if name in LOWER_IS_BETTER else champion[name] - challenger[name]
        if worse_by > allowed:
            failures.append(
                f"{name} = {challenger[name]:.4f} is worse than the champion's {champion[name]:.4f} "
                f"by {worse_by:.4f}, more than the tolerance {allowed} (params.yaml gate.tolerance.{name})"
            )
    return failures


@dataclass(frozen=True)
class Decision:
    """What the gate decided about one challenger, and everything it decided from."""

    model_name: str
    alias: str
    challenger_version: str
    challenger_metrics: dict[str, float]
    champion_version: str | None  # None: the first model, judged on the thresholds alone
    champion_metrics: dict[str, float]
    tolerance: dict[str, float]
    failures: list[str] = field(default_factory=list)
    by: str = ""
    at: str = ""
    slices: dict[str, dict[str, float]] = field(default_factory=dict)  # slices.py: metrics per group
    robustness: dict[str, float] = field(default_factory=dict)  # the metrics after input noise
    baseline: str = ""  # the naive model the margins of gate.baseline are measured from
    baseline_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def result(self) -> str:
        return "promoted" if self.passed else "rejected"

    def tags(self) -> dict[str, str]:
        """The decision as model version tags (strings; the metrics as compact JSON), each cut to
        the registry's limit on a tag value (reports/gate.json keeps everything)."""
        tags = {
            "quality_gate": "passed" if self.passed else "failed",
            "gate.result": self.result,
            "gate.champion_version": self.champion_version or "none",
            "gate.challenger_metrics": json.dumps(self.challenger_metrics, sort_keys=True),
            "gate.champion_metrics": json.dumps(self.champion_metrics, sort_keys=True),
            "gate.tolerance": json.dumps(self.tolerance, sort_keys=True),
            "gate.reasons": "; ".join(self.failures) or "every threshold and tolerance holds",
            "gate.by": self.by,
            "gate.at": self.at,
            "gate.slices": json.dumps(self.slices, sort_keys=True),
            "gate.robustness": json.dumps(self.robustness, sort_keys=True),
            "gate.baseline_metrics": json.dumps(self.baseline_metrics, sort_keys=True),
        }
        return {key: value[:TAG_VALUE_LIMIT] for key, value in tags.items()}

    def as_json(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "alias": self.alias,
            "result": self.result,
            "challenger": {"version": self.challenger_version, "metrics": self.challenger_metrics},
            "champion": {"version": self.champion_version, "metrics": self.champion_metrics},
            "tolerance": self.tolerance,
            "failures": self.failures,
            "by": self.by,
            "at": self.at,
            "slices": self.slices,
            "robustness": self.robustness,
            "baseline": {"model": self.baseline, "metrics": self.baseline_metrics},
        }

    def markdown(self) -> str:
        """The report CI shows in its job summary: one table of both models' metrics, then the verdict."""
        champion = f"version {self.champion_version}" if self.champion_version else "none (first model)"
        lines = [
            f"## Quality gate: {self.model_name} version {self.challenger_version} {self.result}",
            "",
            f"Champion (alias `{self.alias}`): {champion}. Baseline: {self.baseline or 'none'}. "
            f"Decided by {self.by} at {self.at}.",
            "",
            "| metric | challenger | baseline | champion | tolerance |",
            "|---|---|---|---|---|",
        ]
        for name, value in sorted(self.challenger_metrics.items()):
            naive, old, allowed = (
                self.baseline_metrics.get(name),
                self.champion_metrics.get(name),
                self.tolerance.get(name),
            )
            shown = ["-" if number is None else f"{number:.4f}" for number in (naive, old)]
            lines.append(f"| {name} | {value:.4f} | {shown[0]} | {shown[1]} | {'-' if allowed is None else allowed} |")
        if self.slices:
            lines += ["", "| slice | rows | " + " | ".join(sorted(self.challenger_metrics)) + " |"]
            lines.append("|---" * (len(self.challenger_metrics) + 2) + "|")
            for name, metrics in sorted(self.slices.items()):
                values = [f"{metrics[m]:.4f}" if m in metrics else "-" for m in sorted(self.challenger_metrics)]
                lines.append(f"| {name} | {int(metrics['rows'])} | " + " | ".join(values) + " |")
        if self.robustness:
            noisy = ", ".join(f"{name} = {value:.4f}" for name, value in sorted(self.robustness.items()))
            lines += ["", f"Robustness (Gaussian noise on the numeric features): {noisy}."]
        lines.append("")
        lines.extend(f"- {failure}" for failure in self.failures)
        if self.passed:
            lines.append(f"- every threshold and tolerance holds: `{self.alias}` -> version {self.challenger_version}")
        return "\n".join(lines) + "\n"


def write_reports(decision: Decision, markdown: Path = GATE_REPORT, data: Path = GATE_JSON) -> None:
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(decision.markdown(), encoding="utf-8")
    data.write_text(json.dumps(decision.as_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def record(decision: Decision) -> None:
    """Tag the challenger's version with the decision and move the alias to it when it passed."""
    from mlflow import MlflowClient

    from .tracking_users import current_identity

    client = MlflowClient()
    # the registry identity too (tracking_users.py): who moved the alias, as the server knows it
    for key, value in {**decision.tags(), "gate.identity": current_identity()}.items():
        client.set_model_version_tag(decision.model_name, decision.challenger_version, key, value)
    if decision.passed:
        client.set_registered_model_alias(decision.model_name, decision.alias, decision.challenger_version)
