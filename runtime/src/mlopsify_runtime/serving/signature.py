"""Check the model's signature at start-up, before the service reports ready (docs/runtime/security.md).

With a public key (`MODEL_SIGNING_PUBLIC_KEY`, default keys/model-signing.pub) the model
directory must carry a valid `model.sig`: an unsigned or changed model never becomes ready.
Without one there is nothing to check against: local and dev log a warning and serve; where
signatures are required (`REQUIRE_MODEL_SIGNATURE=true`: the staging and prod overlays, and
every promotion) the model is refused. model-signing is imported
here, inside the check, and only when there is a key: it costs about a second of start-up.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..signing import SIGNATURE_NAME, hashing_config
from .settings import Settings

logger = logging.getLogger(__name__)


class SignatureError(RuntimeError):
    """The model is unsigned, or its files do not match its signature."""


def verify_model_signature(model_dir: Path, public_key: Path, *, required: bool = False) -> bool:
    """True when ``model_dir`` matches its signature; False when no public key is configured.

    Raises SignatureError when the model is unsigned or was changed after signing, and, when
    ``required``, when there is no public key to check it with.
    """
    if not public_key.is_file():
        if required:
            raise SignatureError(
                f"signatures are required here and there is no public key at {public_key}: "
                "commit keys/model-signing.pub (make keys) or set MODEL_SIGNING_PUBLIC_KEY (docs/security.md)"
            )
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
        changed = re.findall(r"Hash mismatch for '([^']+)'", str(error))
        what = f"{', '.join(changed)} changed after signing" if changed else str(error).split(":", 1)[0]
        raise SignatureError(
            f"the model in {model_dir} does not match its signature ({what}): "
            "deploy a model that the pipeline signed, or check the public key (docs/security.md)"
        ) from None
    return True


def check_served_model(settings: Settings) -> bool:
    """The start-up check of the model the service will load (True: its signature verified).

    A registry model (MODEL_URI, development) has no signed directory: refused where signatures
    are required, not checked elsewhere.
    """
    if settings.model_uri:
        if settings.require_signature:
            raise SignatureError(
                f"signatures are required here and MODEL_URI={settings.model_uri} is not checked: "
                "unset MODEL_URI to serve the image's signed model (docs/security.md)"
            )
        return False
    return verify_model_signature(settings.model_dir, settings.signing_public_key, required=settings.require_signature)
