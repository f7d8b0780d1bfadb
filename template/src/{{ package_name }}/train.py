"""Train: the model, which is this team's to change.

``build_pipeline`` returns the scikit-learn Pipeline that is fitted on the train split: it
imputes missing values (median for numbers, most frequent category), scales numbers and one-hot
encodes categories (a category unseen in training encodes as all zeros), makes calendar features
of dates and hashes texts of many values (the runtime's ``derived_parts``), then fits a linear
model. Its columns are chosen by position, so it takes the array the service builds from a
request as well as the training matrix. The runtime does the rest of the step (fit, log to
MLflow, register, save and sign the model: ``mlopsify_runtime.training``).
"""

from __future__ import annotations

from typing import Any

from mlopsify_runtime.config import run_step
from mlopsify_runtime.kinds import derived_parts
from mlopsify_runtime.spec import Spec, category_indices, number_indices
from mlopsify_runtime.training import run_training
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def preprocessor(spec: Spec) -> ColumnTransformer:
    """Numbers: median imputation and scaling; categories: most frequent imputation and one-hot;
    dates and texts: the runtime's parts."""
    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categories = Pipeline(
        [
            ("impute", SimpleImputer(missing_values=None, strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    parts = [("numbers", numbers, number_indices(spec)), ("categories", categories, category_indices(spec))]
    return ColumnTransformer([part for part in parts if part[2]] + derived_parts(spec))


def build_pipeline(task_type: str, model_params: dict[str, Any], spec: Spec) -> Pipeline:
    """Preprocessing then a linear model: LogisticRegression (classification) or Ridge (regression)."""
    estimator = LogisticRegression(**model_params) if task_type == "classification" else Ridge(**model_params)
    return Pipeline([("prepare", preprocessor(spec)), ("model", estimator)])


def main() -> None:
    run_training(build_pipeline)


if __name__ == "__main__":
    run_step(main)
