"""Check the model's signature at start-up, before the service reports ready (docs/runtime/security.md).

With a public key (`MODEL_SIGNING_PUBLIC_KEY`, default keys/model-signing.pub) the model
directory must carry a valid `model.sig`: an unsigned or changed model never becomes ready.
Without one there is nothing to check against: local and dev log a warning and serve; where
signatures are required (`REQUIRE_MODEL_SIGNATURE=true`: the staging and prod overlays, and
every promotion) the model is refused. The check is signing.verify_model_signature.
"""

from __future__ import annotations

from ..signing import SignatureError, verify_model_signature
from .settings import Settings

__all__ = ["SignatureError", "check_served_model", "verify_model_signature"]


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
