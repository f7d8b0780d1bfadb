"""Sign the model directory with OpenSSF model-signing, so that the service can refuse a model
that anyone changed after training (docs/runtime/security.md).

The private key comes from `MODEL_SIGNING_KEY` (the PEM text, or a file's path: a CI secret) or from
`keys/model-signing.key` (`make keys`, a development key that git ignores). Without a key the
model stays unsigned and this says so: a service that has the public key will not serve it.
The signature is `model.sig` inside the model directory, which the hash leaves out; the pipeline
also keeps it in the registry, as an artifact of the version's run (`publish_signature`), where
promotion and rollback check it before an alias moves (`verify_registered_version`). The check itself
(`verify_model_signature`) is the service's at start-up too (serving/signature.py): it reads
model-signing's bundle with `cryptography` alone, so that the serving image carries no sigstore.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

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
    ``required``, when there is no public key to check it with. The check needs `cryptography`
    alone (check_signed_files), not model-signing's sigstore stack: the serving image has none.
    """
    if not public_key.is_file():
        if required:
            raise missing_key(public_key)
        logger.warning("model signature not checked: no public key at %s (make keys)", public_key)
        return False
    signature = model_dir / SIGNATURE_NAME
    if not signature.is_file():
        raise SignatureError(f"the model in {model_dir} is not signed: {signature} is missing")
    try:
        check_signed_files(model_dir, signed_digests(signature, public_key))
    except BundleMismatch as error:
        raise SignatureError(
            f"the model in {model_dir} does not match its signature ({error}): "
            "deploy a model that the pipeline signed, or check the public key (docs/security.md)"
        ) from None
    return True


class BundleMismatch(ValueError):
    """What does not match in a model-signing bundle: the words inside the refusal's brackets."""


# model-signing's key-signed bundle (its _signing/sign_ec_key.py): a sigstore bundle whose DSSE
# envelope carries an in-toto statement listing each file's SHA-256, signed with the EC key.
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
# What model-signing's hashing leaves out besides the paths the statement lists (hashing_config).
ALWAYS_IGNORED = (SIGNATURE_NAME, ".git", ".github", ".gitattributes", ".gitignore")


def signed_digests(signature: Path, public_key: Path) -> tuple[dict[str, str], list[str]]:
    """Each signed file's SHA-256 (hex) and the paths the signature leaves out, once the
    envelope's signature is checked against ``public_key``. Raises BundleMismatch."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_public_key(public_key.read_bytes())
    except ValueError:
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise BundleMismatch(f"{public_key} is not an EC P-256 public key in PEM")
    try:
        bundle = json.loads(signature.read_text(encoding="utf-8"))
        envelope = bundle["dsseEnvelope"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [base64.b64decode(item["sig"], validate=True) for item in envelope["signatures"]]
        hint = bundle["verificationMaterial"]["publicKey"].get("hint")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BundleMismatch(f"{SIGNATURE_NAME} is not a model-signing bundle") from None
    if bundle.get("mediaType") != BUNDLE_MEDIA_TYPE or envelope.get("payloadType") != PAYLOAD_TYPE:
        raise BundleMismatch(f"{SIGNATURE_NAME} is not a model-signing bundle")
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if hint and hint != hashlib.sha256(pem).hexdigest():
        raise BundleMismatch("Key mismatch")  # model-signing's word for a bundle of another key
    # DSSE's pre-authentication encoding, which is what the key signed.
    signed = b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)
    if len(signatures) != 1:
        raise BundleMismatch("bad signature")
    try:
        key.verify(signatures[0], signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BundleMismatch("bad signature") from None
    return statement_digests(json.loads(payload))


def statement_digests(statement: Any) -> tuple[dict[str, str], list[str]]:
    """The signed in-toto statement's files and ignored paths (model-signing's v1.0 predicate)."""
    not_a_statement = BundleMismatch(f"{SIGNATURE_NAME} is not a model-signing v1.0 statement")
    try:
        kind = (statement["_type"], statement["predicateType"])
        serialization = statement["predicate"]["serialization"]
        method = (serialization["method"], serialization["hash_type"])
        resources = statement["predicate"]["resources"]
        digests = {str(item["name"]): str(item["digest"]) for item in resources if item["algorithm"] == "sha256"}
        (subject,) = statement["subject"]  # one subject: the model, with the digest over all files
        signed_root = subject["digest"]["sha256"]
        root = hashlib.sha256(b"".join(bytes.fromhex(item["digest"]) for item in resources)).hexdigest()
        ignored = [str(path) for path in serialization.get("ignore_paths", [])]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise not_a_statement from None
    if kind != (STATEMENT_TYPE, PREDICATE_TYPE) or len(digests) != len(resources):
        raise not_a_statement
    if method != ("files", "sha256"):
        raise BundleMismatch(f"{SIGNATURE_NAME} hashes {method[0]} with {method[1]}, not files with sha256")
    if signed_root != root:
        raise not_a_statement
    return digests, ignored


def check_signed_files(model_dir: Path, signed: tuple[dict[str, str], list[str]]) -> None:
    """Every file of ``model_dir`` (but the ignored paths) has the signed SHA-256, none is
    missing and none was added. Raises BundleMismatch naming the files."""
    expected, ignored_paths = signed
    ignored = [PurePosixPath(path) for path in (*ALWAYS_IGNORED, *ignored_paths)]
    actual: dict[str, str] = {}
    for folder, dirs, files in os.walk(model_dir):
        for name in sorted([*dirs, *files]):
            path = Path(folder) / name
            relative = PurePosixPath(path.relative_to(model_dir).as_posix())
            if any(relative.is_relative_to(ignore) for ignore in ignored):
                if name in dirs:
                    dirs.remove(name)
                continue
            if path.is_symlink():  # model-signing refuses them too (allow_symlinks false)
                raise BundleMismatch(f"{relative} is a symbolic link")
            if name in files:
                actual[str(relative)] = file_sha256(path)
    changes = [
        (sorted(name for name in expected.keys() & actual.keys() if expected[name] != actual[name]), "changed"),
        (sorted(actual.keys() - expected.keys()), "added"),
        (sorted(expected.keys() - actual.keys()), "removed"),
    ]
    found = [f"{', '.join(names)} {what} after signing" for names, what in changes if names]
    if found:
        raise BundleMismatch("; ".join(found))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_registered_version(model_name: str, version: str, public_key: Path, *, required: bool = True) -> bool:
    """Download version ``version`` of ``model_name`` with its published signature and verify it.

    True when it verified. Raises SignatureError when there is no signature or the files do not
    match, and, when ``required`` (promotion always; a rollback where the environment's service
    requires signatures), when there is no public key; without one and not required, as the
    service does, nothing is checked: a warning, and False.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    label = f"version {version} of '{model_name}'"
    if not public_key.is_file():  # before any download
        if required:
            raise missing_key(public_key)
        logger.warning("signature of %s not checked: no public key at %s (make keys)", label, public_key)
        return False
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
            return verify_model_signature(model_dir, public_key, required=True)
        except SignatureError as error:
            raise SignatureError(str(error).replace(f"the model in {model_dir}", label)) from None
