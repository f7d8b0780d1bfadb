"""Signing the model directory at training: with the configured key, or one line saying it is not signed."""

from pathlib import Path

import pytest
from helpers import signing_key_pair

from mlopsify_runtime.signing import SIGNATURE_NAME, hashing_config, sign_if_configured


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODEL_SIGNING_KEY", raising=False)
    directory = tmp_path / "models" / "model"
    directory.mkdir(parents=True)
    (directory / "model.pkl").write_bytes(b"weights")
    (directory / "MLmodel").write_text("flavors: {}\n")
    return directory


def verify(model_dir: Path, public_key: Path) -> None:
    from model_signing import verifying

    config = verifying.Config().use_elliptic_key_verifier(public_key=public_key)
    config.set_hashing_config(hashing_config()).verify(model_dir, model_dir / SIGNATURE_NAME)


def test_without_a_key_the_model_stays_unsigned_and_it_says_so(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sign_if_configured(Path("models/model")) is None
    assert capsys.readouterr().err == (
        "sign: no signing key (MODEL_SIGNING_KEY or keys/model-signing.key): models/model is not "
        "signed; run make keys\n"
    )
    assert not (model_dir / SIGNATURE_NAME).exists()


@pytest.mark.parametrize("given_as", ["pem", "path", "keys file"])
def test_a_signed_model_verifies_until_a_file_changes(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given_as: str
) -> None:
    private, public = signing_key_pair(tmp_path / "pair")
    pem = private.read_text()
    if given_as == "pem":
        monkeypatch.setenv("MODEL_SIGNING_KEY", pem)
    else:
        key = tmp_path / ("keys/model-signing.key" if given_as == "keys file" else "ci-secret.pem")
        key.parent.mkdir(exist_ok=True)
        key.write_text(pem)
        if given_as == "path":
            monkeypatch.setenv("MODEL_SIGNING_KEY", str(key))
    assert sign_if_configured(model_dir) == model_dir / SIGNATURE_NAME
    verify(model_dir, public)
    (model_dir / "model.pkl").write_bytes(b"other weights")
    with pytest.raises(ValueError, match=r"^Signature mismatch: \[\"Hash mismatch for 'model.pkl'"):
        verify(model_dir, public)
