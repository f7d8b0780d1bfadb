"""Sign the model directory with OpenSSF model-signing, so that the service can refuse a model
that anyone changed after training (docs/runtime/security.md).

The private key comes from `MODEL_SIGNING_KEY` (the PEM text, or a file's path: a CI secret) or from
`keys/model-signing.key` (`make keys`, a development key that git ignores). Without a key the
model stays unsigned and this says so: a service that has the public key will not serve it.
The signature is `model.sig` inside the model directory, which the hash leaves out.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model_signing import hashing

SIGNATURE_NAME = "model.sig"
KEY_FILE = Path("keys/model-signing.key")
PUBLIC_KEY_FILE = Path("keys/model-signing.pub")


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
