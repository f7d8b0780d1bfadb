"""The model's signature (OpenSSF model-signing): signed at training, checked before serving."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from serving_models import TestClient, save_model, wait_ready

from mlopsify_runtime.serving import Settings, create_app
from mlopsify_runtime.serving.signature import (
    SignatureError,
    check_served_model,
    verify_model_signature,
)
from mlopsify_runtime.signing import SIGNATURE_NAME, changed_files, sign_model


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    """An EC P-256 key pair in PEM files, as `make keys` writes them."""
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = tmp_path / "model-signing.key", tmp_path / "model-signing.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "model.skops").write_bytes(bytes(range(256)))
    return model


def test_a_signed_model_passes(keys: tuple[Path, Path], model_dir: Path) -> None:
    assert sign_model(model_dir, keys[0]) == model_dir / SIGNATURE_NAME
    assert verify_model_signature(model_dir, keys[1]) is True


def test_one_flipped_byte_is_refused(keys: tuple[Path, Path], model_dir: Path) -> None:
    sign_model(model_dir, keys[0])
    data = bytearray((model_dir / "model.skops").read_bytes())
    data[100] ^= 1
    (model_dir / "model.skops").write_bytes(bytes(data))
    with pytest.raises(SignatureError, match=r"\(model.skops changed after signing\)"):
        verify_model_signature(model_dir, keys[1])


def test_an_unsigned_model_is_refused(keys: tuple[Path, Path], model_dir: Path) -> None:
    with pytest.raises(SignatureError, match=r"is not signed: .*model\.sig is missing"):
        verify_model_signature(model_dir, keys[1])


def test_another_key_is_refused(keys: tuple[Path, Path], model_dir: Path, tmp_path: Path) -> None:
    sign_model(model_dir, keys[0])
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    (tmp_path / "other.pub").write_bytes(
        other.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(SignatureError, match="does not match its signature"):
        verify_model_signature(model_dir, tmp_path / "other.pub")


def test_without_a_public_key_nothing_is_checked(model_dir: Path, tmp_path: Path) -> None:
    assert verify_model_signature(model_dir, tmp_path / "missing.pub") is False


def test_the_service_refuses_a_changed_model_before_it_is_ready(
    keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """The service checks the signature at start-up: a changed model fails liveness, counted in the metrics."""
    settings = replace(save_model(tmp_path, "classification"), signing_public_key=keys[1])
    sign_model(settings.model_dir, keys[0])
    with TestClient(create_app(settings)) as client:
        wait_ready(client)  # signed and unchanged: served
    pickled = settings.model_dir / "model.pkl"
    pickled.write_bytes(pickled.read_bytes().replace(b"LogisticRegression", b"LogisticRegressiom"))
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 30
        while client.get("/health/live").status_code == 200:
            assert time.monotonic() < deadline, "the changed model was not refused within 30 s"
            time.sleep(0.02)
        live = client.get("/health/live").json()
        text = client.get("/metrics").text
    assert live["status"] == "failed"
    assert live["detail"] == (
        f"SignatureError: the model in {settings.model_dir} does not match its signature (model.pkl changed after "
        "signing): deploy a model that the pipeline signed, or check the public key (docs/security.md)"
    )
    assert "model_signature_failures_total 1.0" in text


def refusal(client: TestClient) -> str:
    """The reason the service gave for not loading its model (it fails liveness within 30 s)."""
    deadline = time.monotonic() + 30
    while client.get("/health/live").status_code == 200:
        assert time.monotonic() < deadline, "the model was not refused within 30 s"
        time.sleep(0.02)
    detail: str = client.get("/health/live").json()["detail"]
    return detail


@pytest.mark.parametrize("with_public_key", [False, True])
def test_staging_settings_refuse_an_unsigned_model_that_dev_serves_with_a_warning(
    keys: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    with_public_key: bool,
) -> None:
    """REQUIRE_MODEL_SIGNATURE=true is what the staging and prod overlays set (their rendered
    ConfigMaps: tests/test_container_k8s.py); dev sets nothing. Without a public key dev keeps
    today's warning; staging refuses, key or no key."""
    public_key = keys[1] if with_public_key else tmp_path / "no-such.pub"
    unsigned = replace(save_model(tmp_path, "classification"), signing_public_key=public_key)
    environments = {"dev": {}, "staging": {"REQUIRE_MODEL_SIGNATURE": "true"}}
    required = {}
    for environment, variables in environments.items():
        monkeypatch.delenv("REQUIRE_MODEL_SIGNATURE", raising=False)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        required[environment] = Settings.from_env().require_signature
    assert required == {"dev": False, "staging": True}

    with TestClient(create_app(replace(unsigned, require_signature=required["staging"]))) as client:
        detail = refusal(client)
    if with_public_key:
        assert detail == (
            f"SignatureError: the model in {unsigned.model_dir} is not signed: "
            f"{unsigned.model_dir / SIGNATURE_NAME} is missing"
        )
    else:
        assert detail == (
            f"SignatureError: signatures are required here and there is no public key at {public_key}: "
            "commit keys/model-signing.pub (make keys) or set MODEL_SIGNING_PUBLIC_KEY (docs/security.md)"
        )

    caplog.set_level(logging.WARNING, logger="mlopsify_runtime.signing")
    with TestClient(create_app(replace(unsigned, require_signature=required["dev"]))) as client:
        if with_public_key:  # a committed key is enforced everywhere, as before
            assert "is not signed" in refusal(client)
            return
        wait_ready(client)
        assert client.get("/health/ready").status_code == 200
    assert f"model signature not checked: no public key at {public_key} (make keys)" in caplog.text


def test_required_signatures_refuse_a_registry_model(tmp_path: Path) -> None:
    settings = Settings(model_uri="models:/credit-risk@production", require_signature=True)
    with pytest.raises(
        SignatureError,
        match=r"^signatures are required here and MODEL_URI=models:/credit-risk@production is not checked: unset MODEL_URI",
    ):
        check_served_model(settings)
    assert check_served_model(replace(settings, require_signature=False)) is False


def test_require_model_signature_takes_true_or_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUIRE_MODEL_SIGNATURE", "yes")
    with pytest.raises(ValueError, match=r"^REQUIRE_MODEL_SIGNATURE='yes' must be true or false$"):
        Settings.from_env()


def test_the_changed_file_is_named_however_the_verdict_quotes_it() -> None:
    """model-signing's verdict is a list's repr; a digest with a quote in its bytes escapes the
    quotes around the file's name (seen as a message without the name, half of the time)."""
    plain = str(["Hash mismatch for 'model.onnx': Expected 'b1', Actual 'b2'"])
    escaped = str(["Hash mismatch for 'model.onnx': Expected 'b\"\\'\"', Actual 'b2'"])
    assert "\\'model.onnx\\'" in escaped
    assert changed_files(plain) == changed_files(escaped) == ["model.onnx"]
