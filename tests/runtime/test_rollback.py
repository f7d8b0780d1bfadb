"""Rollback of the registry alias (rollback.py): back to the previous version that passed the gate,
and only to one whose published signature verifies where the environment's service requires
signatures (its overlay's REQUIRE_MODEL_SIGNATURE, as the rendered overlays set it).

In-process on the session's MLflow SQLite registry, with versions the runtime trains and gates.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import signing_key_pair

from mlopsify_runtime import evaluate, rollback
from mlopsify_runtime.config import load_params

# The registry's part is the same for each task: one is enough.
pytestmark = pytest.mark.parametrize("task_type", ["classification"])

Release = Callable[[bool], str]


@pytest.fixture
def overlays(project: Path, rendered_project: Path) -> Path:
    """The project's rendered overlays (dev, staging, prod), where rollback reads its environment's rule."""
    return Path(shutil.copytree(rendered_project / rollback.OVERLAYS, project / rollback.OVERLAYS))


@pytest.fixture
def release(
    project: Path,
    overlays: Path,
    train: Callable[[], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Release:
    """Train and gate a version, signed with the project's key or not; returns its number.

    The project has its public key (keys/model-signing.pub) and its rendered overlays.
    """
    private, public = signing_key_pair(tmp_path / "pair")
    (project / "keys").mkdir()
    shutil.copy(public, project / "keys" / "model-signing.pub")
    monkeypatch.setenv("ROLLBACK_BY", "alice")

    def make(signed: bool) -> str:
        if signed:
            monkeypatch.setenv("MODEL_SIGNING_KEY", str(private))
        else:
            monkeypatch.delenv("MODEL_SIGNING_KEY", raising=False)
        train()
        evaluate.main()
        return aliases()["champion"]

    return make


def aliases() -> dict[str, str]:
    from mlflow import MlflowClient

    model = MlflowClient().get_registered_model(load_params().mlflow.model_name)
    return {alias: str(version) for alias, version in model.aliases.items()}


def rollback_tags() -> dict[str, dict[str, str]]:
    """Each version's rollback.* tags (the rollback's record)."""
    from mlflow import MlflowClient

    versions = MlflowClient().search_model_versions(f"name='{load_params().mlflow.model_name}'")
    return {
        str(version.version): {k: v for k, v in version.tags.items() if k.startswith("rollback.")}
        for version in versions
    }


def refusal(*args: str) -> str:
    with pytest.raises(SystemExit) as refused:
        rollback.main(["--reason", "error rate doubled", *args])
    return str(refused.value.code)


def set_production(version: str) -> None:
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(
        load_params().mlflow.model_name, "production", version
    )


def test_signatures_are_required_where_the_overlay_does_not_say_false(overlays: Path) -> None:
    """dev's ConfigMap says REQUIRE_MODEL_SIGNATURE=false; staging and prod keep the base's true;
    a project without Kubernetes (no environment) requires them, as promotion does."""
    required = {env: rollback.signatures_required(env) for env in ("dev", "staging", "prod", "")}
    assert required == {"dev": False, "staging": True, "prod": True, "": True}
    with pytest.raises(SystemExit) as unknown:
        rollback.signatures_required("qa")
    assert str(unknown.value.code) == (
        "rollback: deploy/k8s/overlays/qa/kustomization.yaml is missing: give an environment of deploy/k8s/overlays"
    )


def test_a_signed_target_moves_back_and_an_unsigned_one_moves_nothing(
    release: Release, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    name = load_params().mlflow.model_name
    unsigned, first, second = release(False), release(True), release(True)
    assert (unsigned, first, second) == ("1", "2", "3")
    set_production(second)
    capsys.readouterr()

    rollback.main(["--reason", "error rate doubled", "--environment", "prod", "--check"])
    assert (
        capsys.readouterr().out
        == f"rollback: alias 'champion' of {name} can go back from version 3 to version 2\n"
    )
    assert aliases() == {"champion": "3", "production": "3"}  # --check moves nothing

    rollback.main(["--reason", "error rate doubled", "--environment", "prod"])
    assert capsys.readouterr().out == (
        f"rollback: alias 'champion' of {name} moved from version 3 to version 2 (by alice: error rate doubled)\n"
    )
    assert aliases() == {"champion": "2", "production": "2"}
    recorded = rollback_tags()

    # The next older version that passed the gate is unsigned: refused, with or without --check.
    run_id = MlflowClient().get_model_version(name, unsigned).run_id
    expected = (
        f"rollback refused, nothing moved: version 1 of '{name}' is not signed: its run {run_id} has no "
        "model-signature/model.sig (train with MODEL_SIGNING_KEY set, docs/security.md)"
    )
    for check in ([], ["--check"]):
        assert refusal("--environment", "prod", *check) == expected
    assert aliases() == {"champion": "2", "production": "2"}
    assert rollback_tags() == recorded
    assert recorded["1"] == {}


def test_a_signature_that_does_not_verify_is_refused(release: Release, project: Path) -> None:
    name = load_params().mlflow.model_name
    assert (release(True), release(True)) == ("1", "2")
    # The version's files are the signed ones; the key they were signed with is not the project's.
    _, other = signing_key_pair(project / "other")
    shutil.copy(other, project / "keys" / "model-signing.pub")
    assert refusal("--environment", "staging") == (
        f"rollback refused, nothing moved: version 1 of '{name}' does not match its signature (Key mismatch): "
        "deploy a model that the pipeline signed, or check the public key (docs/security.md)"
    )
    assert aliases() == {"champion": "2"}
    assert rollback_tags() == {"1": {}, "2": {}}


def test_without_a_public_key_only_an_environment_that_does_not_require_signatures_moves(
    release: Release,
    project: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = load_params().mlflow.model_name
    assert (release(False), release(False)) == ("1", "2")
    (project / "keys" / "model-signing.pub").unlink()
    missing = (
        "rollback refused, nothing moved: signatures are required here and there is no public key at "
        "keys/model-signing.pub: commit keys/model-signing.pub (make keys) or set MODEL_SIGNING_PUBLIC_KEY "
        "(docs/security.md)"
    )
    # prod, and a project without Kubernetes (no environment), require signatures.
    for environment in (["--environment", "prod"], []):
        assert refusal(*environment) == missing
    # dev would move production with the champion: production's service requires signatures.
    set_production("2")
    assert refusal("--environment", "dev") == missing
    assert aliases() == {"champion": "2", "production": "2"}

    from mlflow import MlflowClient

    MlflowClient().delete_registered_model_alias(name, "production")
    caplog.set_level(logging.WARNING, logger="mlopsify_runtime.signing")
    capsys.readouterr()
    rollback.main(["--reason", "error rate doubled", "--environment", "dev"])
    assert "moved from version 2 to version 1" in capsys.readouterr().out
    assert (
        f"signature of version 1 of '{name}' not checked: no public key at keys/model-signing.pub (make keys)"
        in (caplog.text)
    )
    assert aliases() == {"champion": "1"}
    # Nothing older passed the gate: nothing to roll back to.
    assert refusal("--environment", "dev") == (
        f"rollback: no version of '{name}' older than 1 passed the quality gate: nothing to roll back to "
        "(train and gate a model instead)"
    )
