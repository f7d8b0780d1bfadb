"""Compiled serving: the trained pipeline as ONNX, run by onnxruntime, and its parity with scikit-learn.

Training converts the fitted Pipeline with skl2onnx (`convert`): one named input per feature
(float32 for a number, a string for a category), probabilities as a plain tensor (no ZipMap).
The gate scores the test split with both models (`parity`) and marks the version for compiled
serving only when they agree within params.yaml `compiled.tolerance`; models/serving.json
carries that decision to the service and to the image build (`ServingDecision`).

`OnnxScorer` is what the service runs: it feeds the matrix the service builds from a request
(records x features, in feature order) to onnxruntime in one call. This module imports neither
scikit-learn nor pandas at the top (the compiled serving image has neither): skl2onnx is
imported inside `convert`, onnxruntime inside `OnnxScorer`.
"""

from __future__ import annotations

import copy
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # serving imports this module: importing serving here would be circular
    from .serving.spec import FeatureSpec

ONNX_FILE = "model.onnx"  # beside the scikit-learn model, in the registered version's directory
SERVING_FILE = Path("models/serving.json")  # the gate's decision: which runtime serves the model
TARGET_OPSET = 17
# A missing category reaches the ONNX model as this string: ONNX has no null string, and
# `convert` makes the pipeline's imputers of missing categories (missing_values=None) look for it.
MISSING_CATEGORY = "\u2400"
Runtime = Literal["onnx", "sklearn"]


class ConversionError(ValueError):
    """skl2onnx cannot convert the pipeline (an estimator or transformer it does not support)."""


def _onnx_imputers(pipeline: Any) -> Any:
    """A copy of `pipeline` whose imputers of missing categories (None) look for MISSING_CATEGORY.

    skl2onnx converts a SimpleImputer on strings only when its missing value is a string; the
    fitted statistics are unchanged, so the copy predicts exactly as the original does.
    """
    from sklearn.impute import SimpleImputer

    converted = copy.deepcopy(pipeline)
    stack = [converted]
    while stack:
        part = stack.pop()
        if isinstance(part, SimpleImputer) and part.missing_values is None:
            part.missing_values = MISSING_CATEGORY
        children = [*getattr(part, "steps", []), *getattr(part, "transformers_", [])]
        stack.extend(child[1] for child in children if not isinstance(child[1], str))
    return converted


def convert(pipeline: Any, spec: FeatureSpec) -> bytes:
    """The fitted `pipeline` as a serialized ONNX model, or ConversionError saying why not."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    inputs = [
        (column.name, FloatTensorType([None, 1]) if column.kind == "number" else StringTensorType([None, 1]))
        for column in spec.columns
    ]
    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    options = {type(final): {"zipmap": False}} if spec.task_type == "classification" else None
    try:
        model = convert_sklearn(
            _onnx_imputers(pipeline), initial_types=inputs, options=options, target_opset=TARGET_OPSET
        )
    except Exception as error:  # skl2onnx raises many kinds (RuntimeError, NotImplementedError, ...)
        # The first sentence says what is not supported; skl2onnx's further lines say where to report it.
        reason = (
            str(error).strip().splitlines()[0].split(". ")[0].rstrip(".") if str(error).strip() else "no reason given"
        )
        raise ConversionError(f"{type(error).__name__}: {reason}") from None
    serialized: bytes = model.SerializeToString()
    return serialized


class OnnxScorer:
    """An ONNX model in onnxruntime: probabilities (classifier) or values (regressor) for a matrix."""

    runtime: Runtime = "onnx"

    def __init__(self, model: Path | bytes, spec: FeatureSpec) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One request at a time per worker: more threads only add hand-offs for small batches.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        source = str(model) if isinstance(model, Path) else model
        self.session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        # One input per feature, in the features' order; skl2onnx makes each name a legal
        # identifier ("mean radius" becomes "mean_radius"), so inputs are fed by position.
        self.names = [node.name for node in self.session.get_inputs()]
        if len(self.names) != len(spec.names):
            raise ValueError(f"the ONNX model's inputs {self.names} are not the features {spec.names}")
        self.spec = spec
        self.proba = spec.task_type == "classification"
        outputs = [node.name for node in self.session.get_outputs()]
        # A classifier's outputs are (label, probabilities); a regressor's, its one prediction.
        self._output = [outputs[-1]] if self.proba else [outputs[0]]
        # The session's own run: the public one first checks that every input is fed by searching a
        # list per input (quadratic: 60 us a call for 30 features), and `feeds` always feeds them all.
        self.run = getattr(self.session, "_sess", self.session).run
        self._numbers = [i for i, column in enumerate(spec.columns) if column.kind == "number"]
        self._categories = [i for i, column in enumerate(spec.columns) if column.kind == "category"]
        self._bound: dict[int, _Bound] = {}  # by number of rows: the session bound to fixed buffers
        self._bindable = _bindable_output(self.session, self._output[0]) if not self._categories else None
        self._lock = threading.Lock()  # a binding's buffers serve one call at a time

    def feeds(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        """The matrix as one [rows, 1] array per feature (float32 numbers, NaN when missing; strings)."""
        names, rows = self.names, len(matrix)
        if matrix.dtype != object:  # every feature a number: one conversion, then a [rows, 1] view per column
            return dict(zip(names, np.ascontiguousarray(matrix.T, dtype=np.float32)[:, :, None], strict=True))
        feeds: dict[str, np.ndarray] = {}
        for i in self._numbers:
            column = [math.nan if value is None else value for value in matrix[:, i].tolist()]
            feeds[names[i]] = np.array(column, dtype=np.float32).reshape(rows, 1)
        for i in self._categories:
            column = [MISSING_CATEGORY if value is None else value for value in matrix[:, i].tolist()]
            feeds[names[i]] = np.array(column, dtype=object).reshape(rows, 1)
        return feeds

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities (rows x classes) or predictions (rows), as float64, in one onnxruntime call."""
        if self._bindable is not None and matrix.dtype != object and self._lock.acquire(blocking=False):
            try:
                result = self._bound_for(len(matrix)).run(self.session, matrix)
            finally:
                self._lock.release()
        else:
            (result,) = self.run(self._output, self.feeds(matrix), None)
        scores = np.array(result, dtype=np.float64)  # a copy (even of doubles): a binding's buffer is reused
        return scores if self.proba else scores.reshape(len(matrix))

    def _bound_for(self, rows: int) -> _Bound:
        bound = self._bound.get(rows)
        if bound is None:
            if len(self._bound) >= BOUND_SIZES:  # the oldest size goes: a service sees few batch sizes often
                del self._bound[next(iter(self._bound))]
            assert self._bindable is not None
            bound = self._bound[rows] = _Bound(self.session, self.names, self._output[0], self._bindable, rows)
        return bound


BOUND_SIZES = 8  # bindings kept, one per batch size


def _bindable_output(session: Any, output: str) -> tuple[tuple[int, ...], Any] | None:
    """The shape of one row of `output` and its type, when every input takes floats and that shape is fixed."""
    if any(node.type != "tensor(float)" for node in session.get_inputs()):
        return None
    node = next(node for node in session.get_outputs() if node.name == output)
    dtype = {"tensor(float)": np.float32, "tensor(double)": np.float64}.get(node.type)
    row = tuple(node.shape[1:])
    if dtype is None or not all(isinstance(size, int) for size in row):
        return None
    return row, dtype


class _Bound:
    """The session bound (onnxruntime's IOBinding) to fixed buffers for a number of rows.

    Feeding 30 one-feature inputs to `run` converts 30 arrays a call (25 us for one record);
    bound, a call copies the matrix into the input buffers in one numpy assignment (7 us).
    """

    def __init__(
        self, session: Any, names: list[str], output: str, row: tuple[tuple[int, ...], Any], rows: int
    ) -> None:
        shape, dtype = row
        self.inputs = np.empty((len(names), rows, 1), dtype=np.float32)  # one [rows, 1] buffer per feature
        self.output = np.empty((rows, *shape), dtype=dtype)
        self.binding = session.io_binding()
        for name, column in zip(names, self.inputs, strict=True):
            self.binding.bind_input(name, "cpu", 0, np.float32, [rows, 1], column.ctypes.data)
        self.binding.bind_output(output, "cpu", 0, dtype, list(self.output.shape), self.output.ctypes.data)

    def run(self, session: Any, matrix: np.ndarray) -> np.ndarray:
        self.inputs[:, :, 0] = matrix.T
        session.run_with_iobinding(self.binding)
        return self.output


@dataclass(frozen=True)
class Parity:
    """How the ONNX model's answers on the test split compare with scikit-learn's.

    Only the largest difference decides: when no probability moves by more than the tolerance, a
    label can change only where scikit-learn's two most likely classes were within twice the
    tolerance of each other (a tie that float32 rounding breaks either way). The share of equal
    labels is reported beside it.
    """

    rows: int
    max_difference: float  # the largest difference of a probability or prediction (relative past 1)
    labels_equal: float | None = None  # the share of equal labels (classifier), None for a regressor

    def within(self, tolerance: float) -> bool:
        return self.max_difference <= tolerance

    def describe(self) -> str:
        labels = "" if self.labels_equal is None else f"{self.labels_equal:.2%} of labels equal, "
        kind = "probability" if self.labels_equal is not None else "prediction"
        return f"{labels}largest {kind} difference {self.max_difference:.2g} on {self.rows} test rows"


def parity(expected: np.ndarray, compiled: np.ndarray) -> Parity:
    """Compare scikit-learn's probabilities (or predictions) with the ONNX model's, row by row."""
    expected, compiled = np.asarray(expected, dtype=np.float64), np.asarray(compiled, dtype=np.float64)
    classifier = expected.ndim == 2
    if expected.shape != compiled.shape or not np.isfinite(compiled).all():
        return Parity(len(expected), math.inf, 0.0 if classifier else None)
    scale = np.maximum(1.0, np.abs(expected))  # a regression value of 300 is compared relatively
    largest = float((np.abs(compiled - expected) / scale).max()) if expected.size else 0.0
    if not classifier:
        return Parity(len(expected), largest)
    equal = float(np.mean(expected.argmax(axis=1) == compiled.argmax(axis=1))) if len(expected) else 1.0
    return Parity(len(expected), largest, equal)


@dataclass(frozen=True)
class ServingDecision:
    """models/serving.json: which runtime serves a model version, and why (one line)."""

    model_version: str
    runtime: Runtime
    reason: str

    def line(self) -> str:
        """The line of reports/gate.md."""
        if self.runtime == "onnx":
            return f"- compiled serving: version {self.model_version} is served by onnxruntime ({self.reason})"
        return f"- compiled serving: none, version {self.model_version} is served by scikit-learn ({self.reason})"

    def write(self, path: Path = SERVING_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"model_version": self.model_version, "runtime": self.runtime, "reason": self.reason}
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path = SERVING_FILE) -> ServingDecision | None:
        """The decision in `path`; None when there is none (a model from before compiled serving)."""
        if not path.is_file():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        runtime = raw.get("runtime")
        if runtime not in ("onnx", "sklearn"):
            raise ValueError(f"{path}: 'runtime' must be onnx or sklearn, not {runtime!r}")
        return cls(str(raw.get("model_version", "")), runtime, str(raw.get("reason", "")))


@dataclass(frozen=True)
class CompiledParams:
    """params.yaml `compiled:`: whether the gate may mark a version for compiled serving, and how close it must be."""

    enabled: bool = True
    tolerance: float = 1e-4

    @classmethod
    def from_file(cls, path: Path | None = None) -> CompiledParams:
        """The section of params.yaml (a project from before 0.5.0 has none: the defaults)."""
        import yaml

        from .config import PARAMS_FILE, PipelineError

        raw = yaml.safe_load((path or PARAMS_FILE).read_text(encoding="utf-8")) or {}
        section = raw.get("compiled") or {}
        default = cls()
        enabled, tolerance = section.get("enabled", default.enabled), section.get("tolerance", default.tolerance)
        if not isinstance(enabled, bool):
            raise PipelineError(f"params.yaml compiled.enabled must be true or false, not {enabled!r}")
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance < math.inf:
            raise PipelineError(f"params.yaml compiled.tolerance must be a number of 0 or more, not {tolerance!r}")
        return cls(enabled, float(tolerance))


def judge(
    pipeline: Any,
    test: Any,
    spec: dict[str, Any],
    registration: dict[str, Any],
    model_dir: Path,
    params: CompiledParams,
) -> ServingDecision:
    """The gate's decision: onnxruntime when the version's ONNX model matches `pipeline` on `test`
    (a frame of the test split) within the tolerance, else scikit-learn, with the reason."""
    from .serving.spec import FeatureSpec
    from .spec import model_input, to_matrix  # pandas: the gate's environment has it

    version = str(registration["version"])

    def sklearn(reason: str) -> ServingDecision:
        return ServingDecision(version, "sklearn", reason)

    if not params.enabled:
        return sklearn("params.yaml compiled.enabled is false")
    onnx = model_dir / ONNX_FILE
    if not onnx.is_file():
        if error := registration.get("onnx_error"):
            return sklearn(f"skl2onnx cannot convert the pipeline: {error}")
        return sklearn(f"{onnx} is missing: train again to convert the model")
    classifier = spec["task_type"] == "classification"
    if classifier and not hasattr(pipeline, "predict_proba"):
        return sklearn("the classifier has no predict_proba")
    frame = model_input(test, spec)
    expected = pipeline.predict_proba(frame) if classifier else pipeline.predict(frame)
    found = OnnxScorer(onnx, FeatureSpec.from_dict(spec)).scores(to_matrix(test, spec))
    result = parity(expected, found)
    if result.within(params.tolerance):
        return ServingDecision(
            version, "onnx", f"{result.describe()}: within params.yaml compiled.tolerance {params.tolerance:g}"
        )
    return sklearn(f"{result.describe()}: outside params.yaml compiled.tolerance {params.tolerance:g}")


def record(decision: ServingDecision, model_name: str, report: Path) -> None:
    """The decision as a tag on the model version, a line of the gate's report, and models/serving.json."""
    from mlflow import MlflowClient

    client = MlflowClient()
    client.set_model_version_tag(model_name, decision.model_version, "serving.runtime", decision.runtime)
    client.set_model_version_tag(model_name, decision.model_version, "serving.reason", decision.reason[:5000])
    with report.open("a", encoding="utf-8") as handle:
        handle.write(decision.line() + "\n")
    decision.write()
