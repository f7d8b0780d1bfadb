"""The tracking server's one rule beyond MLflow's basic-auth app: who may move a deployed alias.

MLflow's permissions are per registered model: creating a version and moving an alias both need
`update` (EDIT) on it, so the pipeline, which registers versions and moves the gate's
`champion`, could also move `staging` and `production`. This authentication function (the
basic-auth app's `authorization_function` setting, docs/runtime/security.md) checks the
credentials exactly as MLflow does, then refuses (403) to anyone who does not hold MANAGE on the
model (the promotion identity) and is not an admin: moving a protected alias, and writing the
promotion's and rollback's tags (production deploys the image tag that staging's promotion
recorded). The tracking server imports it, so it imports nothing but Flask and MLflow's server,
lazily.
"""

from __future__ import annotations

import os
from typing import Any

# The aliases deployments follow (promotion.ENVIRONMENTS); MLFLOW_PROTECTED_ALIASES overrides.
PROTECTED_ALIASES = ("staging", "production")
ALIAS_ROUTE = "/mlflow/registered-models/alias"
TAG_ROUTES = ("/mlflow/model-versions/set-tag", "/mlflow/model-versions/delete-tag")
PROTECTED_TAGS = ("promotion.", "rollback.")  # prefixes: promotion.py and rollback.py write them


def protected_aliases() -> frozenset[str]:
    raw = os.environ.get("MLFLOW_PROTECTED_ALIASES", "")
    return frozenset(part.strip() for part in raw.split(",") if part.strip()) or frozenset(PROTECTED_ALIASES)


def protected_change() -> tuple[str, str] | None:
    """(model name, what) when the request moves a protected alias or writes a protected tag."""
    from flask import request  # type: ignore[import-not-found]  # the server's, not the client's

    if request.method not in ("POST", "DELETE"):
        return None
    body = request.get_json(silent=True)
    fields = body if isinstance(body, dict) else request.args
    name, alias, key = (str(fields.get(field, "")) for field in ("name", "alias", "key"))
    if request.path.endswith(ALIAS_ROUTE) and alias in protected_aliases():
        return name, f"alias '{alias}'"
    if request.path.endswith(TAG_ROUTES) and key.startswith(PROTECTED_TAGS):
        return name, f"tag '{key}'"
    return None


def may_promote(username: str, model_name: str) -> bool:
    """Admins, and users with MANAGE on the model (MLflow resolves the grant as for any request)."""
    from mlflow.server import auth
    from mlflow.server.auth.requirements import Requirement

    if auth.store.get_user(username).is_admin:
        return True
    anchor = ("registered_model", model_name)
    return bool(auth.authorize(username, anchor, [Requirement("registered_model", model_name, "manage")]))


def authenticate() -> Any:
    """MLflow's basic-auth check (a werkzeug Authorization, or its 401), then the promotion rule (403)."""
    from flask import Response
    from mlflow.server import auth

    result = auth.authenticate_request_basic_auth()
    change = protected_change()
    if isinstance(result, Response) or change is None or may_promote(str(result.username), change[0]):
        return result
    response = auth.make_forbidden_response()
    response.set_data(
        f"Permission denied: {change[1]} of '{change[0]}' changes only by promotion (MANAGE on the model): docs/security.md"
    )
    return response
