"""Rollback of the model registry: move the alias back to the previous version that passed the gate.

The ``production`` alias (docs/runtime/promotion.md) moves back with it when it was on the same version.

`make rollback` runs it after `kubectl rollout undo` (docs/runtime/deployment.md), with the promotion
identity where the registry is a tracking server (it moves production). Who, as which registry
identity, when and why are recorded as tags on both versions, so the registry keeps the history: the version rolled
back from is tagged ``rollback.status = rolled back`` and is skipped by the next rollback.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .config import load_params, tracking_uri
from .provenance import actor, utc_now
from .tracking_users import current_identity

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

PRODUCTION_ALIAS = "production"


def previous_version(versions: list[ModelVersion], current: int) -> ModelVersion | None:
    """The newest version older than ``current`` that passed the gate and was never rolled back."""
    candidates = [
        version
        for version in versions
        if int(version.version) < current
        and version.tags.get("quality_gate") == "passed"
        and "rollback.status" not in version.tags
    ]
    return max(candidates, key=lambda version: int(version.version), default=None)


def roll_back(model_name: str, alias: str, reason: str, by: str) -> tuple[int, int]:
    """Move ``alias`` to the previous version; returns (from, to). Exits with one line when it cannot."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        current = int(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        raise SystemExit(f"rollback: model '{model_name}' has no alias '{alias}': nothing to roll back") from None
    versions = client.search_model_versions(f"name='{model_name}'")
    target = previous_version(versions, current)
    if target is None:
        raise SystemExit(
            f"rollback: no version of '{model_name}' older than {current} passed the quality gate: "
            "nothing to roll back to (train and gate a model instead)"
        )
    at = utc_now()
    record = {"rollback.by": by, "rollback.identity": current_identity(), "rollback.at": at, "rollback.reason": reason}
    for key, value in {**record, "rollback.status": "rolled back", "rollback.to": target.version}.items():
        client.set_model_version_tag(model_name, str(current), key, value)
    for key, value in {**record, "rollback.restored_from": str(current)}.items():
        client.set_model_version_tag(model_name, target.version, key, value)
    client.set_registered_model_alias(model_name, alias, target.version)
    # Production runs what it was promoted to (promotion.py): it goes back with the champion.
    aliases = client.get_registered_model(model_name).aliases
    if str(aliases.get(PRODUCTION_ALIAS, "")) == str(current):
        client.set_registered_model_alias(model_name, PRODUCTION_ALIAS, target.version)
    return current, int(target.version)


def main(argv: list[str] | None = None) -> None:
    import mlflow

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reason", required=True, help="why, recorded on both versions")
    args = parser.parse_args(argv)
    if not args.reason.strip():
        parser.error("--reason is empty: say why the model is rolled back")
    params = load_params()
    mlflow.set_tracking_uri(tracking_uri())
    by = actor("ROLLBACK_BY")
    old, new = roll_back(params.mlflow.model_name, params.mlflow.alias, args.reason, by)
    print(
        f"rollback: alias '{params.mlflow.alias}' of {params.mlflow.model_name} moved from version {old} "
        f"to version {new} (by {by}: {args.reason})"
    )


if __name__ == "__main__":
    main()
