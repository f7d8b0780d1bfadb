"""The model's signature (OpenSSF model-signing): signed at training, checked before serving."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from serving_models import TestClient, save_model, wait_ready

from mlopsify_runtime.serving import create_app
from mlopsify_runtime.serving.signature import SignatureError, verify_model_signature
from mlopsify_runtime.signing import SIGNATURE_NAME, sign_model


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
