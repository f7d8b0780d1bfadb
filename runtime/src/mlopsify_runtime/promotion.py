"""Promotion between environments: each one follows its own registry alias.

``staging`` takes the version the gate made champion, with the image CI built from it;
``production`` takes exactly the version and the image tag that staging runs, never a rebuilt
one: the staging promotion records the tag on the model version and production reads it back.
`make promote ENV=...` deploys that tag, then moves the alias; who, when, why and which image
are tags on the version (promotion.<env>.*), which `make audit` lists. A project's
``promotion_rule`` hook (hooks.py) may refuse a promotion: it is asked before the deployment
(``image-tag``) and again before the alias moves (``move``). Both steps also verify the version's
signature against the project's public key (signing.py): an unsigned or changed model is never
deployed nor aliased, whatever the hook says. Each move records the registry identity that made
it (``promotion.<env>.identity``: the tracking server's user, docs/runtime/security.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .config import PipelineError, load_params, run_step, tracking_uri
from .hooks import HookError, call_hook, hook_label
from .provenance import actor, ci_run, utc_now
from .signing import SignatureError, public_key_path, verify_registered_version
from .tracking_users import current_identity

# Each environment and the alias it is promoted from: the gate's alias for staging.
ENVIRONMENTS = ("staging", "production")


def source_alias(environment: str, champion_alias: str) -> str:
    return champion_alias if environment == "staging" else "staging"


def aliased_version(model_name: str, alias: str) -> str:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        raise PipelineError(
            f"model '{model_name}' has no alias '{alias}': "
            + ("run the gate first (make gate)" if alias != "staging" else "promote to staging first")
        ) from None


def image_tag(model_name: str, environment: str, built: str) -> str:
    """The image to deploy: staging's is the one this pipeline built; production's is staging's."""
    if environment == "staging":
        if not built or built == "unknown":
            raise PipelineError("IMAGE_TAG is not set: give the tag that make push pushed")
        return built
    from mlflow import MlflowClient

    version = aliased_version(model_name, "staging")
    tag: str | None = MlflowClient().get_model_version(model_name, version).tags.get("promotion.staging.image_tag")
    if not tag:
        raise PipelineError(
            f"version {version} of '{model_name}' has no staging image tag: promote it to staging first"
        )
    return tag


def gate_decision(tags: dict[str, str]) -> dict[str, Any]:
    """The gate's decision on a version from its ``gate.*`` tags (challenger.py), JSON values parsed."""
    decision: dict[str, Any] = {}
    for key, value in tags.items():
        if key.startswith("gate."):
            try:
                parsed = json.loads(value) if value[:1] in "{[" else value
            except json.JSONDecodeError:  # a value cut at the registry's limit stays text
                parsed = value
            decision[key.removeprefix("gate.")] = parsed
    return decision


def promotion_decision(
    model_name: str, environment: str, champion_alias: str, tag: str, reason: str, by: str
) -> dict[str, Any]:
    """What the ``promotion_rule`` hook decides from (hooks.py documents the keys)."""
    from mlflow import MlflowClient

    source = source_alias(environment, champion_alias)
    version = aliased_version(model_name, source)
    tags = dict(MlflowClient().get_model_version(model_name, version).tags)
    return {
        "model_name": model_name,
        "version": version,
        "environment": environment,
        "from_alias": source,
        "image_tag": tag,
        "reason": reason,
        "by": by,
        "gate": gate_decision(tags),
    }


def check_rule(decision: dict[str, Any]) -> None:
    """Raise a `PipelineError` with the reason when the project's ``promotion_rule`` refuses."""
    refusal = call_hook("promotion_rule", decision)
    if refusal is None:
        return
    if not isinstance(refusal, str) or not refusal.strip():
        raise HookError(
            f"the project's hook {hook_label('promotion_rule')} returned {refusal!r}: "
            "return None to allow the promotion, or the reason to refuse it"
        )
    where = f"{decision['model_name']} version {decision['version']} to {decision['environment']}"
    raise PipelineError(f"promotion of {where} refused by the project's promotion_rule: {' '.join(refusal.split())}")


def check_signature(model_name: str, version: str) -> None:
    """Raise a `PipelineError` unless ``version`` matches the signature the pipeline published."""
    try:
        verify_registered_version(model_name, version, public_key_path())
    except SignatureError as error:
        raise PipelineError(f"promotion refused: {error}") from None


def promote(model_name: str, champion_alias: str, environment: str, tag: str, reason: str, by: str) -> str:
    """Move ``environment``'s alias to the version its source alias holds; returns that version."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    version = aliased_version(model_name, source_alias(environment, champion_alias))
    try:
        replaced = str(client.get_model_version_by_alias(model_name, environment).version)
    except MlflowException:  # the first promotion replaces nothing
        replaced = "none"
    check_signature(model_name, version)
    record = {
        "by": by,
        "identity": current_identity(),
        "at": utc_now(),
        "reason": reason,
        "image_tag": tag,
        "replaced": replaced,
    }
    # The alias first: an identity the server refuses (403) leaves no record of a move it did not make.
    client.set_registered_model_alias(model_name, environment, version)
    for key, value in record.items():
        client.set_model_version_tag(model_name, version, f"promotion.{environment}.{key}", value)
    return version


def main(argv: list[str] | None = None) -> None:
    import mlflow

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("image-tag", "move"), help="print the tag to deploy, or move the alias")
    parser.add_argument("environment", choices=ENVIRONMENTS)
    parser.add_argument("--image-tag", default="", help="staging: the tag this pipeline built; move: the tag deployed")
    parser.add_argument("--reason", default="", help="why, recorded on the version")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    params = load_params()
    mlflow.set_tracking_uri(tracking_uri())
    name = params.mlflow.model_name
    run = ci_run()
    reason = args.reason.strip() or (f"CI run {run}" if run else "no reason given")
    by = actor("PROMOTE_BY")
    if args.action == "image-tag":
        tag = image_tag(name, args.environment, args.image_tag)
        decision = promotion_decision(name, args.environment, params.mlflow.alias, tag, reason, by)
        check_rule(decision)
        check_signature(name, decision["version"])  # before the deployment, not only before the alias
        print(tag)
        return
    check_rule(promotion_decision(name, args.environment, params.mlflow.alias, args.image_tag, reason, by))
    version = promote(name, params.mlflow.alias, args.environment, args.image_tag, reason, by)
    moved = f"alias '{args.environment}' of {name} -> version {version}, image {args.image_tag}"
    print(f"promote: {moved} (by {by}: {reason})")


if __name__ == "__main__":
    run_step(main)
