"""Sign the model directory with OpenSSF model-signing, so that the service can refuse a model
that anyone changed after training (docs/runtime/security.md).

The private key comes from `MODEL_SIGNING_KEY` (the PEM text, or a file's path: a CI secret) or from
`keys/model-signing.key` (`make keys`, a development key that git ignores). Without a key the
model stays unsigned and this says so: a service that has the public key will not serve it.
The signature is `model.sig` inside the model directory, which the hash leaves out; the pipeline
also keeps it in the registry, as an artifact of the version's run (`publish_signature`), where
promotion checks it before an alias moves (`verify_registered_version`). The check itself
(`verify_model_signature`) is the service's at start-up too (serving/signature.py).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model_signing import hashing

SIGNATURE_NAME = "model.sig"
# The run's artifact folder that keeps the signature of the model it registered.
SIGNATURE_ARTIFACT_DIR = "model-signature"
KEY_FILE = Path("keys/model-signing.key")
PUBLIC_KEY_FILE = Path("keys/model-signing.pub")

logger = logging.getLogger(__name__)


class SignatureError(RuntimeError):
    """The model is unsigned, or its files do not match its signature."""


def hashing_config() -> hashing.Config:
    """What is hashed: every file of the model directory but its signature (a path in it)."""
    from model_signing import hashing

    return hashing.Config().set_ignored_paths(paths=[SIGNATURE_NAME])


def sign_model(model_dir: Path, private_key: Path) -> Path:
    """Sign ``model_dir`` with the EC private key in ``private_key``; returns the signature file."""
    from model_signing import signing

    signature = model_dir / SIGNATURE_NAME
    config = signing.Config().use_elliptic_key_signer(private_key=private_key)
    config.set_hashing_config(hashing_config()).sign(model_dir, signature)
    return signature


def sign_if_configured(model_dir: Path) -> Path | None:
    """Sign with the configured key; None (and one line on stderr) when there is no key."""
    pem = os.environ.get("MODEL_SIGNING_KEY", "").strip()
    if pem and "-----BEGIN" not in pem:  # a path: a CI file variable (GitLab) or secret file
        return sign_model(model_dir, Path(pem))
    if pem:
        with tempfile.TemporaryDirectory() as scratch:
            key = Path(scratch) / "key.pem"
            key.write_text(pem + "\n", encoding="utf-8")
            return sign_model(model_dir, key)
    if KEY_FILE.is_file():
        return sign_model(model_dir, KEY_FILE)
    print(
        f"sign: no signing key (MODEL_SIGNING_KEY or {KEY_FILE}): {model_dir} is not signed; run make keys",
        file=sys.stderr,
    )
    return None


def publish_signature(signature: Path, run_id: str) -> None:
    """Keep ``signature`` in the registry, as an artifact of the run that registered the model."""
    from mlflow import MlflowClient

    MlflowClient().log_artifact(run_id, str(signature), SIGNATURE_ARTIFACT_DIR)


def public_key_path() -> Path:
    return Path(os.environ.get("MODEL_SIGNING_PUBLIC_KEY", "") or PUBLIC_KEY_FILE)


def missing_key(public_key: Path) -> SignatureError:
    return SignatureError(
        f"signatures are required here and there is no public key at {public_key}: "
        "commit keys/model-signing.pub (make keys) or set MODEL_SIGNING_PUBLIC_KEY (docs/security.md)"
    )


def verify_model_signature(model_dir: Path, public_key: Path, *, required: bool = False) -> bool:
    """True when ``model_dir`` matches its signature; False when no public key is configured.

    Raises SignatureError when the model is unsigned or was changed after signing, and, when
    ``required``, when there is no public key to check it with. model-signing is imported only
    when there is a key: it costs about a second.
    """
    if not public_key.is_file():
        if required:
            raise missing_key(public_key)
        logger.warning("model signature not checked: no public key at %s (make keys)", public_key)
        return False
    signature = model_dir / SIGNATURE_NAME
    if not signature.is_file():
        raise SignatureError(f"the model in {model_dir} is not signed: {signature} is missing")
    from model_signing import verifying

    config = verifying.Config().use_elliptic_key_verifier(public_key=public_key)  # model-signing is not followed: Any
    config.set_hashing_config(hashing_config())
    try:
        config.verify(model_dir, signature)
    except ValueError as error:  # model-signing's verdict: which file changed, or a bad signature
        changed = changed_files(str(error))
        what = f"{', '.join(changed)} changed after signing" if changed else str(error).split(":", 1)[0]
        raise SignatureError(
            f"the model in {model_dir} does not match its signature ({what}): "
            "deploy a model that the pipeline signed, or check the public key (docs/security.md)"
        ) from None
    return True


def changed_files(verdict: str) -> list[str]:
    """The files model-signing's verdict names as changed. The verdict holds a list's repr: a
    digest whose bytes hold a quote makes it escape the quotes around each file's name."""
    return re.findall(r"Hash mismatch for \\?'([^'\\]+)", verdict)


def verify_registered_version(model_name: str, version: str, public_key: Path) -> None:
    """Download version ``version`` of ``model_name`` with its published signature and verify it.

    Raises SignatureError when there is no public key, no signature, or the files do not match.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    label = f"version {version} of '{model_name}'"
    if not public_key.is_file():  # before any download
        raise missing_key(public_key)
    run_id = MlflowClient().get_model_version(model_name, version).run_id
    with tempfile.TemporaryDirectory(prefix="verify-") as scratch:
        model_dir = Path(scratch) / "model"
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_name}/{version}", dst_path=str(model_dir))
        (model_dir / SIGNATURE_NAME).unlink(missing_ok=True)  # only the published signature counts
        try:
            published = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"{SIGNATURE_ARTIFACT_DIR}/{SIGNATURE_NAME}", dst_path=scratch
            )
        except (MlflowException, OSError):
            raise SignatureError(
                f"{label} is not signed: its run {run_id} has no {SIGNATURE_ARTIFACT_DIR}/{SIGNATURE_NAME} "
                "(train with MODEL_SIGNING_KEY set, docs/security.md)"
            ) from None
        shutil.copyfile(published, model_dir / SIGNATURE_NAME)
        try:
            verify_model_signature(model_dir, public_key, required=True)
        except SignatureError as error:
            raise SignatureError(str(error).replace(f"the model in {model_dir}", label)) from None
