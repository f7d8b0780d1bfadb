"""What `make tracking-users` refuses before it calls a server (tests/test_tracking_server.py runs
it against a real one)."""

from __future__ import annotations

import pytest

from mlopsify_runtime import tracking_users
from mlopsify_runtime.config import PipelineError
from mlopsify_runtime.tracking_auth import PROTECTED_ALIASES, protected_aliases


def test_every_role_needs_both_variables_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for role in tracking_users.ROLES:
        for variable in role.variables:
            monkeypatch.setenv(variable, "set")
    monkeypatch.delenv("MLFLOW_PROMOTION_PASSWORD")
    monkeypatch.setenv("MLFLOW_READER_USERNAME", " ")
    with pytest.raises(PipelineError) as error:
        tracking_users.ensure_identities("experiment", "model")
    assert str(error.value) == (
        "tracking-users: MLFLOW_PROMOTION_PASSWORD not set: give the promotion identity's "
        "credentials (its secret, docs/security.md)"
    )


def test_it_needs_a_tracking_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    with pytest.raises(
        PipelineError,
        match=r"^tracking-users: MLFLOW_TRACKING_URI is not a tracking server: set it",
    ):
        tracking_users.main()


def test_the_protected_aliases_are_the_promotion_environments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlopsify_runtime.promotion import ENVIRONMENTS

    assert PROTECTED_ALIASES == ENVIRONMENTS  # what tracking_auth guards is what promotion moves
    assert protected_aliases() == {"staging", "production"}
    monkeypatch.setenv("MLFLOW_PROTECTED_ALIASES", "production, canary,")
    assert protected_aliases() == {"production", "canary"}
