"""The tracking server's identities: one user per role, each with the least it needs (`make tracking-users`).

Run by the server's admin (MLFLOW_TRACKING_USERNAME/PASSWORD) against the basic-auth app of
deploy/k8s/components/tracking. It creates the project's experiment and registered model (as the
admin, so that no pipeline becomes their owner), each role's user with the password of its
secret, and exactly the grants below, idempotently: a second run changes nothing, and a changed
secret resets that user's password. docs/runtime/security.md lists the grants and the secrets.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from .config import PipelineError, load_params, run_step, tracking_uri


@dataclass(frozen=True)
class Role:
    """A role's MLflow user (its secret's variables) and its permissions on the project's resources."""

    name: str
    experiment: str  # READ or EDIT on the project's experiment
    registered_model: str  # READ, EDIT or MANAGE on the project's registered model
    purpose: str

    @property
    def variables(self) -> tuple[str, str]:
        prefix = f"MLFLOW_{self.name.upper()}"
        return f"{prefix}_USERNAME", f"{prefix}_PASSWORD"


# MANAGE on the model is what tracking_auth.py requires to move a protected alias (staging,
# production); EDIT lets the pipeline create runs, register versions and move `champion` only.
ROLES = (
    Role("pipeline", "EDIT", "EDIT", "trains, registers versions, gates (moves champion)"),
    Role("promotion", "READ", "MANAGE", "verifies signatures, moves staging and production"),
    Role("reader", "READ", "READ", "the service and batch scoring: read the model"),
)
ADMIN_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
LOCAL_IDENTITY = "local"  # no tracking server: the SQLite registry has no users


def call(method: str, endpoint: str, **body: Any) -> tuple[int, dict[str, Any]]:
    """One request to the tracking server with the client's credentials: (status, JSON body)."""
    import mlflow
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    payload = {"params": body} if method == "GET" else {"json": body}
    creds = get_default_host_creds(mlflow.get_tracking_uri())
    response = http_request(creds, endpoint, method, max_retries=0, **payload)
    try:
        data = response.json()
    except ValueError:
        data = {"message": response.text}
    return response.status_code, data if isinstance(data, dict) else {}


def current_identity() -> str:
    """The tracking server's name for this client (recorded with each alias move), or `local`."""
    import mlflow

    if not mlflow.get_tracking_uri().startswith(("http://", "https://")):
        return LOCAL_IDENTITY
    status, data = call("GET", "/api/2.0/mlflow/users/current")
    if status == 200:
        return str(data["user"]["username"])
    return "anonymous"  # a server without the basic-auth app


def credentials(role: Role) -> tuple[str, str]:
    values = tuple(os.environ.get(variable, "").strip() for variable in role.variables)
    missing = [variable for variable, value in zip(role.variables, values, strict=True) if not value]
    if missing:
        raise PipelineError(
            f"tracking-users: {' and '.join(missing)} not set: give the {role.name} identity's "
            "credentials (its secret, docs/security.md)"
        )
    return values[0], values[1]


def check(status: int, data: dict[str, Any], doing: str) -> None:
    if status != 200:
        raise PipelineError(f"tracking-users: {doing} failed ({status}): {data.get('message', data)}")


def ensure_user(username: str, password: str) -> str:
    status, data = call("POST", "/api/2.0/mlflow/users/create", username=username, password=password)
    if status == 200:
        return "created"
    if data.get("error_code") != "RESOURCE_ALREADY_EXISTS":
        check(status, data, f"creating user '{username}'")
    status, data = call("PATCH", "/api/2.0/mlflow/users/update-password", username=username, password=password)
    check(status, data, f"setting the password of '{username}'")
    return "exists, password set"


def ensure_grant(username: str, resource_type: str, resource_id: str, permission: str) -> bool:
    """Give ``username`` exactly ``permission`` on the resource; False when it already had it."""
    grant = {"username": username, "resource_type": resource_type, "resource_id": resource_id}
    status, data = call("GET", "/api/3.0/mlflow/users/permissions/get", **grant)
    check(status, data, f"reading the permission of '{username}'")
    if data.get("permission") == permission:
        return False
    call("POST", "/api/3.0/mlflow/users/permissions/revoke", **grant)  # none to revoke: 404, fine
    status, data = call("POST", "/api/3.0/mlflow/users/permissions/grant", **grant, permission=permission)
    check(status, data, f"granting {permission} on {resource_type} '{resource_id}' to '{username}'")
    return True


def ensure_resources(experiment: str, model_name: str) -> str:
    """The experiment (its id) and the registered model, created by the admin when missing."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(model_name)
    return str(experiment_id)


def ensure_identities(experiment: str, model_name: str) -> list[str]:
    """Every role's user and grants; one line per role saying what changed."""
    identities = {role: credentials(role) for role in ROLES}  # all or nothing: check every secret first
    status, data = call("GET", "/api/2.0/mlflow/users/current")
    if status != 200 or not data["user"]["is_admin"]:
        raise PipelineError(
            f"tracking-users: the tracking server did not accept {ADMIN_VARIABLES[0]} as an admin ({status}): "
            "set MLFLOW_TRACKING_USERNAME/PASSWORD to the server's admin (the mlflow-auth Secret)"
        )
    experiment_id = ensure_resources(experiment, model_name)
    lines = []
    for role, (username, password) in identities.items():
        state = ensure_user(username, password)
        changed = [
            ensure_grant(username, "experiment", experiment_id, role.experiment),
            ensure_grant(username, "registered_model", model_name, role.registered_model),
        ]
        grants = f"{role.experiment} on experiment '{experiment}', {role.registered_model} on model '{model_name}'"
        lines.append(
            f"tracking-users: {role.name} '{username}' {state}; {grants} ({'granted' if any(changed) else 'unchanged'})"
        )
    return lines


def main() -> None:
    import mlflow

    uri = tracking_uri()
    if not uri.startswith(("http://", "https://")):
        raise PipelineError("tracking-users: MLFLOW_TRACKING_URI is not a tracking server: set it to the server's URL")
    mlflow.set_tracking_uri(uri)
    params = load_params()
    for line in ensure_identities(params.mlflow.experiment, params.mlflow.model_name):
        print(line, file=sys.stdout)


if __name__ == "__main__":
    run_step(main)
