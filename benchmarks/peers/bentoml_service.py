"""The same trained model as an idiomatic BentoML 1.4 service (its defaults), for benchmarks/serving.py.

    MODEL_DIR=.../models/model bentoml serve bentoml_service:Classifier --host 127.0.0.1 --port PORT

The request is BentoML's JSON form of the typed argument: {"data": [[feature values], ...]}.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import bentoml
import numpy as np
import yaml


def load_estimator(model_dir: Path) -> object:
    """The scikit-learn estimator of an MLflow model directory (skops or pickle), as the service loads it."""
    flavor = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]["sklearn"]
    artifact = model_dir / flavor["pickled_model"]
    if flavor.get("serialization_format") == "skops":
        import skops.io

        return skops.io.load(artifact, trusted=flavor.get("skops_trusted_types"))
    with artifact.open("rb") as handle:
        return pickle.load(handle)


@bentoml.service
class Classifier:
    def __init__(self) -> None:
        self.model = load_estimator(Path(os.environ["MODEL_DIR"]))

    @bentoml.api
    def predict(self, data: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(data)
