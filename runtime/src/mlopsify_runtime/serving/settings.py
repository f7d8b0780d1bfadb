"""Serving settings, read once from environment variables (a Kubernetes ConfigMap and Secret)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# The served model's name comes from models/registration.json; this names a model without one.
DEFAULT_MODEL_NAME = "model"
DEFAULT_REGRESSION_BUCKETS = (50.0, 100.0, 150.0, 200.0, 250.0, 300.0)
# Monitoring is on when this file exists (the `reference` step writes it) or MONITORING_FILE
# names one; MONITORING_FILE="" turns it off.
MONITORING_FILE = Path("models/monitoring.json")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return value


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"{name}={raw!r} must be a positive finite number")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise ValueError(f"{name}={raw!r} must be true or false")
    return raw == "true"


def _path(name: str, default: Path) -> Path:
    return Path(os.environ.get(name, "") or default)


def _optional_path(name: str, default: Path) -> Path | None:
    """The path in ``name``; unset: ``default`` when it exists; empty: None (turned off)."""
    raw = os.environ.get(name)
    if raw is None:
        return default if default.exists() else None
    return Path(raw) if raw.strip() else None


def _runtime(raw: str) -> Literal["", "onnx", "sklearn"]:
    value = raw.strip().lower()
    if value == "onnx" or value == "sklearn" or not value:
        return value  # type: ignore[return-value]  # checked above
    raise ValueError(f"MODEL_RUNTIME={raw!r} must be onnx, sklearn or empty (the gate's decision)")


def _buckets(raw: str, default: tuple[float, ...]) -> tuple[float, ...]:
    if not raw.strip():
        return default
    try:
        edges = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise ValueError(f"PREDICTION_BUCKETS={raw!r} is not a comma-separated list of numbers") from None
    if list(edges) != sorted(set(edges)):
        raise ValueError(f"PREDICTION_BUCKETS={raw!r} must be strictly increasing")
    return edges


def _api_token(value: str, path: str) -> str:
    """API_TOKEN, or the content of API_TOKEN_FILE (a mounted Kubernetes Secret) when it exists."""
    if value or not path:
        return value.strip()
    token_file = Path(path)
    return token_file.read_text(encoding="utf-8").strip() if token_file.is_file() else ""


@dataclass(frozen=True)
class Settings:
    """What the service reads from its environment (production uses `from_env`).

    Each default is written here once; `from_env` reads the variable of the same name in
    upper case (MODEL_DIR for model_dir, ...) and falls back to it.
    """

    model_dir: Path = Path("models/model")
    features_path: Path = Path("models/features.json")
    registration_path: Path = Path("models/registration.json")
    # The gate's decision (compiled.py): onnxruntime or scikit-learn; MODEL_RUNTIME overrides it.
    serving_path: Path = Path("models/serving.json")
    model_runtime: Literal["", "onnx", "sklearn"] = ""
    # With this key the model must carry a valid signature (serving/signature.py, docs/runtime/security.md).
    signing_public_key: Path = Path("keys/model-signing.pub")
    # Staging and production (their overlays) refuse a model they cannot verify, even without a key.
    require_signature: bool = False
    model_uri: str = ""
    model_name: str = DEFAULT_MODEL_NAME
    model_version: str = ""
    git_commit: str = "unknown"
    api_token: str = field(default="", repr=False)
    max_body_bytes: int = 1_048_576
    max_batch_size: int = 1000
    # Numbers beyond this are refused (422): a scaler divides by small spreads, so values near
    # 1e306 overflowed to infinity. 1e15 is beyond any measured feature and far from overflow.
    max_abs_value: float = 1e15
    max_string_length: int = 256  # a category value
    prediction_buckets: tuple[float, ...] = DEFAULT_REGRESSION_BUCKETS
    # models/monitoring.json (drift reference and thresholds); None: no drift, live quality or /feedback
    monitoring_file: Path | None = None

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from `MODEL_DIR`, `MODEL_URI`, `API_TOKEN`, ... (docs/runtime/serving.md)."""
        env, default = os.environ, cls()
        return cls(
            model_dir=_path("MODEL_DIR", default.model_dir),
            features_path=_path("FEATURES_PATH", default.features_path),
            registration_path=_path("REGISTRATION_PATH", default.registration_path),
            serving_path=_path("SERVING_PATH", default.serving_path),
            model_runtime=_runtime(env.get("MODEL_RUNTIME", "")),
            signing_public_key=_path("MODEL_SIGNING_PUBLIC_KEY", default.signing_public_key),
            require_signature=_bool("REQUIRE_MODEL_SIGNATURE", default.require_signature),
            model_uri=env.get("MODEL_URI", default.model_uri),
            model_name=env.get("MODEL_NAME", "") or default.model_name,
            model_version=env.get("MODEL_VERSION", default.model_version),
            git_commit=env.get("GIT_COMMIT", "") or default.git_commit,
            api_token=_api_token(env.get("API_TOKEN", ""), env.get("API_TOKEN_FILE", "")),
            max_body_bytes=_int("MAX_BODY_BYTES", default.max_body_bytes),
            max_batch_size=_int("MAX_BATCH_SIZE", default.max_batch_size),
            max_abs_value=_float("MAX_ABS_VALUE", default.max_abs_value),
            max_string_length=_int("MAX_STRING_LENGTH", default.max_string_length),
            prediction_buckets=_buckets(env.get("PREDICTION_BUCKETS", ""), default.prediction_buckets),
            monitoring_file=_optional_path("MONITORING_FILE", MONITORING_FILE),
        )
