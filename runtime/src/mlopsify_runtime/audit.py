"""Audit trail: every registered version with its aliases, gate decision, promotions and rollbacks.

`make audit` prints it and keeps it as reports/audit.md. Each alias move shows who asked for it
and, after "as", the registry identity that made it (the tracking server's user, or `local`). Everything comes from the model
registry's tags (written by evaluate, promotion and rollback), so any clone that can reach the
tracking server sees the same history.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .config import load_params, run_step, tracking_uri
from .promotion import ENVIRONMENTS

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

AUDIT_REPORT = Path("reports/audit.md")


def as_identity(tags: dict[str, str], prefix: str) -> str:
    """ " as NAME": the registry identity that moved the alias (recorded since 0.5.0)."""
    identity = tags.get(prefix + "identity")
    return f" as {identity}" if identity else ""


def gate_cell(tags: dict[str, str]) -> str:
    if "gate.result" not in tags:  # gated before the champion comparison existed (or never)
        return tags.get("quality_gate", "not gated")
    against = tags["gate.champion_version"]
    versus = "first model" if against == "none" else f"against version {against}"
    by = tags["gate.by"] + as_identity(tags, "gate.")
    return f"{tags['gate.result']} ({versus}) by {by} at {tags['gate.at']}: {tags['gate.reasons']}"


def promotion_cells(tags: dict[str, str]) -> list[str]:
    cells = []
    for environment in ENVIRONMENTS:
        prefix = f"promotion.{environment}."
        if prefix + "at" in tags:
            cells.append(
                f"{environment} (image {tags[prefix + 'image_tag']}, replaced {tags[prefix + 'replaced']}) "
                f"by {tags[prefix + 'by']}{as_identity(tags, prefix)} at {tags[prefix + 'at']}: {tags[prefix + 'reason']}"
            )
    return cells


def rollback_cell(tags: dict[str, str]) -> str:
    if "rollback.at" not in tags:
        return ""
    moved = (
        f"rolled back to version {tags['rollback.to']}"
        if "rollback.to" in tags
        else f"restored from version {tags['rollback.restored_from']}"
    )
    by = tags["rollback.by"] + as_identity(tags, "rollback.")
    return f"{moved} by {by} at {tags['rollback.at']}: {tags['rollback.reason']}"


def audit_table(model_name: str, versions: list[ModelVersion], aliases: dict[str, str]) -> str:
    """A Markdown table, oldest version first; ``aliases`` maps each alias to its version."""
    lines = [
        f"## Audit: {model_name}",
        "",
        "| version | aliases | gate | promotions | rollback |",
        "|---|---|---|---|---|",
    ]
    for version in sorted(versions, key=lambda v: int(v.version)):
        tags = dict(version.tags)
        held = ", ".join(sorted(alias for alias, number in aliases.items() if number == str(version.version))) or "-"
        promotions = "; ".join(promotion_cells(tags)) or "-"
        cells = [str(version.version), held, gate_cell(tags), promotions, rollback_cell(tags) or "-"]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    import mlflow
    from mlflow import MlflowClient

    params = load_params()
    mlflow.set_tracking_uri(tracking_uri())
    name = params.mlflow.model_name
    client = MlflowClient()
    versions = client.search_model_versions(f"name='{name}'")
    if not versions:
        print(f"audit: model '{name}' has no registered version yet: run make pipeline first", file=sys.stderr)
        raise SystemExit(1)
    aliases = {alias: str(number) for alias, number in client.get_registered_model(name).aliases.items()}
    table = audit_table(name, list(versions), aliases)
    AUDIT_REPORT.parent.mkdir(parents=True, exist_ok=True)
    AUDIT_REPORT.write_text(table, encoding="utf-8")
    print(table, end="")


if __name__ == "__main__":
    run_step(main)
