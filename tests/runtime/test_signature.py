"""The model's signature (OpenSSF model-signing): signed at training, checked before serving."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import signing_key_pair
from serving_models import TestClient, save_model, wait_ready

from mlopsify_runtime.serving import Settings, create_app
from mlopsify_runtime.serving.signature import (
    SignatureError,
    check_served_model,
    verify_model_signature,
)
from mlopsify_runtime.signing import SIGNATURE_NAME, sign_model


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    """An EC P-256 key pair in PEM files, as `make keys` writes them."""
    return signing_key_pair(tmp_path)


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
    _, other = signing_key_pair(tmp_path / "other")
    with pytest.raises(SignatureError, match="does not match its signature"):
        verify_model_signature(model_dir, other)


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


def edit_bundle(model_dir: Path, change: Callable[[dict[str, Any]], None]) -> None:
    bundle = json.loads((model_dir / SIGNATURE_NAME).read_text())
    change(bundle)
    (model_dir / SIGNATURE_NAME).write_text(json.dumps(bundle))


def change_a_file(model_dir: Path, keys: tuple[Path, Path], tmp_path: Path) -> Path:
    (model_dir / "model.skops").write_bytes(b"other weights")
    return keys[1]


def add_a_file(model_dir: Path, keys: tuple[Path, Path], tmp_path: Path) -> Path:
    (model_dir / "extra").mkdir()
    (model_dir / "extra" / "loader.py").write_text("import os\n")
    return keys[1]


def remove_a_file(model_dir: Path, keys: tuple[Path, Path], tmp_path: Path) -> Path:
    (model_dir / "MLmodel").unlink()
    return keys[1]


def use_another_key(model_dir: Path, keys: tuple[Path, Path], tmp_path: Path) -> Path:
    return signing_key_pair(tmp_path / "other")[1]


def tamper_the_payload(model_dir: Path, keys: tuple[Path, Path], tmp_path: Path) -> Path:
    """A statement that lists the changed file's new digest, under the old signature."""
    (model_dir / "model.skops").write_bytes(b"other weights")

    def list_new_digest(bundle: dict[str, Any]) -> None:
        envelope = bundle["dsseEnvelope"]
        text = base64.b64decode(envelope["payload"]).decode()
        new = hashlib.sha256(b"other weights").hexdigest()
        old = hashlib.sha256(bytes(range(256))).hexdigest()
        envelope["payload"] = base64.b64encode(text.replace(old, new).encode()).decode()

    edit_bundle(model_dir, list_new_digest)
    return keys[1]


def tamper_the_signature(model_dir: Path, keys: tuple[Path, Path], tmp_path: Path) -> Path:
    def flip_a_bit(bundle: dict[str, Any]) -> None:
        signature = bundle["dsseEnvelope"]["signatures"][0]
        raw = bytearray(base64.b64decode(signature["sig"]))
        raw[-1] ^= 1
        signature["sig"] = base64.b64encode(bytes(raw)).decode()

    edit_bundle(model_dir, flip_a_bit)
    return keys[1]


@pytest.mark.parametrize(
    ("tamper", "what"),
    [
        (change_a_file, "model.skops changed after signing"),
        (add_a_file, "extra/loader.py added after signing"),
        (remove_a_file, "MLmodel removed after signing"),
        (use_another_key, "Key mismatch"),
        (tamper_the_payload, "bad signature"),
        (tamper_the_signature, "bad signature"),
    ],
)
def test_every_change_after_signing_is_refused_in_one_line(
    keys: tuple[Path, Path],
    model_dir: Path,
    tmp_path: Path,
    tamper: Callable[[Path, tuple[Path, Path], Path], Path],
    what: str,
) -> None:
    """model-signing signs; the runtime's own check (cryptography alone) refuses each change."""
    sign_model(model_dir, keys[0])
    public_key = tamper(model_dir, keys, tmp_path)
    with pytest.raises(SignatureError) as refused:
        verify_model_signature(model_dir, public_key)
    assert str(refused.value) == (
        f"the model in {model_dir} does not match its signature ({what}): "
        "deploy a model that the pipeline signed, or check the public key (docs/security.md)"
    )


def test_a_bundle_that_is_not_model_signings_is_refused(
    keys: tuple[Path, Path], model_dir: Path
) -> None:
    (model_dir / SIGNATURE_NAME).write_text("not a bundle\n")
    with pytest.raises(SignatureError, match=r"\(model\.sig is not a model-signing bundle\)"):
        verify_model_signature(model_dir, keys[1])


def test_a_public_key_that_is_not_pem_is_refused(
    keys: tuple[Path, Path], model_dir: Path, tmp_path: Path
) -> None:
    sign_model(model_dir, keys[0])
    (tmp_path / "garbled.pub").write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n")
    with pytest.raises(
        SignatureError,
        match=rf"\({tmp_path / 'garbled.pub'} is not an EC P-256 public key in PEM\): deploy",
    ):
        verify_model_signature(model_dir, tmp_path / "garbled.pub")


def test_the_check_imports_neither_model_signing_nor_sigstore(
    keys: tuple[Path, Path], model_dir: Path
) -> None:
    """The serving image has neither: the service's check must not need them."""
    sign_model(model_dir, keys[0])
    code = (
        "import sys; from pathlib import Path; "
        "from mlopsify_runtime.serving.signature import verify_model_signature; "
        "assert verify_model_signature(Path(sys.argv[1]), Path(sys.argv[2])); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('model_signing', 'sigstore', 'OpenSSL', 'sklearn')))"
    )
    checked = subprocess.run(
        [sys.executable, "-c", code, str(model_dir), str(keys[1])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert checked.stdout == "[]\n"
