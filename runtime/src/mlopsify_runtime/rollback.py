"""Rollback of the model registry: move the alias back to the previous version that passed the gate.

The ``production`` alias (docs/runtime/promotion.md) moves back with it when it was on the same version.

`make rollback` runs it after `kubectl rollout undo` (docs/runtime/deployment.md), with the promotion
identity where the registry is a tracking server (it moves production). Who, as which registry
identity, when and why are recorded as tags on both versions, so the registry keeps the history: the version rolled
back from is tagged ``rollback.status = rolled back`` and is skipped by the next rollback.

The version moved back to must verify against the project's public key, as promotion's do
(signing.verify_registered_version), where the environment's service requires signatures (its
overlay's ``REQUIRE_MODEL_SIGNATURE``: staging and prod; always without Kubernetes, as promotion):
an unsigned or changed target moves nothing. `make rollback` runs ``--check`` before `kubectl
rollout undo`, so that a refused rollback leaves the Deployment alone too, and checks again at the move.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from .config import load_params, tracking_uri
from .provenance import actor, utc_now
from .signing import SignatureError, public_key_path, verify_registered_version
from .tracking_users import current_identity

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

PRODUCTION_ALIAS = "production"
OVERLAYS = Path("deploy/k8s/overlays")
# The ConfigMap literal of an overlay whose service serves an unsigned model (dev's).
NOT_REQUIRED = "REQUIRE_MODEL_SIGNATURE=false"


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


def signatures_required(environment: str) -> bool:
    """Whether ``environment``'s service refuses a model it cannot verify: not where its overlay's
    ConfigMap says REQUIRE_MODEL_SIGNATURE=false (dev); else yes, as the base says, and without an
    environment (a project without Kubernetes), as promotion always does."""
    if not environment:
        return True
    overlay = OVERLAYS / environment / "kustomization.yaml"
    try:
        kustomization = yaml.safe_load(overlay.read_text(encoding="utf-8")) or {}
    except OSError:
        raise SystemExit(f"rollback: {overlay} is missing: give an environment of {OVERLAYS}") from None
    generators = kustomization.get("configMapGenerator") or []
    return not any(NOT_REQUIRED in (generator.get("literals") or []) for generator in generators)


def rollback_target(model_name: str, alias: str, required: bool) -> tuple[int, ModelVersion]:
    """The version ``alias`` holds and the one it goes back to, whose signature verified (required
    too when production moves with it). Exits with one line when there is none, or when the target
    is unsigned or changed."""
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
    # Production goes back with the champion (roll_back), and production's service requires signatures.
    production = str(client.get_registered_model(model_name).aliases.get(PRODUCTION_ALIAS, "")) == str(current)
    try:
        verify_registered_version(model_name, target.version, public_key_path(), required=required or production)
    except SignatureError as error:
        raise SystemExit(f"rollback refused, nothing moved: {error}") from None
    return current, target


def roll_back(model_name: str, alias: str, reason: str, by: str, *, required: bool = True) -> tuple[int, int]:
    """Move ``alias`` to the previous version; returns (from, to). Exits with one line when it cannot."""
    from mlflow import MlflowClient

    client = MlflowClient()
    current, target = rollback_target(model_name, alias, required)
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
    parser.add_argument("--environment", default="", help="the overlay whose service's signature rule applies")
    parser.add_argument("--check", action="store_true", help="find and verify the target; move nothing")
    args = parser.parse_args(argv)
    if not args.reason.strip():
        parser.error("--reason is empty: say why the model is rolled back")
    params = load_params()
    mlflow.set_tracking_uri(tracking_uri())
    name, alias, required = params.mlflow.model_name, params.mlflow.alias, signatures_required(args.environment)
    if args.check:
        current, target = rollback_target(name, alias, required)
        print(f"rollback: alias '{alias}' of {name} can go back from version {current} to version {target.version}")
        return
    by = actor("ROLLBACK_BY")
    old, new = roll_back(name, alias, args.reason, by, required=required)
    print(f"rollback: alias '{alias}' of {name} moved from version {old} to version {new} (by {by}: {args.reason})")


if __name__ == "__main__":
    main()
