"""Run a learner's Keras model on the hidden test features and write its predictions as a CSV.

predict_to_csv is the model challenge's whole job in the parent: check the model file
(checks.py), hand the model and the bare features to a sandboxed child (pool.py), refuse
outputs that cannot be a valid submission, and write the rest as a submission CSV that the
scoring engine scores like any upload. It never imports TensorFlow: TensorFlow must stay out of
the web process and the CSV scoring worker, and must not be imported before a prefork pool
forks. It never accepts the solution or its path, so nothing about it can reach the child.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from workers.engine import get_metric
from workers.engine.metrics import Metric
from workers.engine.scoring import PROBABILITY_SUM_TOLERANCE

from .checks import check_model_file
from .features import output_spec, read_features
from .limits import SandboxLimits
from .pool import child_for
from .refusals import RunnerUnavailable, refusal, reply_refusal

logger = logging.getLogger(__name__)


def predict_to_csv(
    model_path: str | Path,
    features_path: str | Path,
    out_csv: str | Path,
    *,
    id_column: str,
    submission_columns: list[str],
    metric: str,
    classes: list[str] | None,
    limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen, so sharing it is safe
) -> None:
    """Run the model on the features and write a submission CSV with ``submission_columns``.

    Raises ModelRejected (a ScoringError) with a learner-facing message for every refusal,
    SolutionError if the features are invalid, and RunnerUnavailable if the sandbox fails.
    """
    m = get_metric(metric)
    check_model_file(model_path, max_model_bytes=limits.max_model_bytes)
    ids, x = _cached_features(features_path, id_column)
    widths = output_widths(m, classes)
    spec = output_spec(m.name, classes)

    child = child_for(limits.memory_bytes)
    try:
        # A copy, not a link: the child cannot see (or, as nobody, read) where uploads live.
        shutil.copyfile(model_path, child.workdir / "model.keras")
        np.save(child.workdir / "x.npy", x, allow_pickle=False)
        for name in ("model.keras", "x.npy"):  # readable by the child's user, whatever the umask
            os.chmod(child.workdir / name, 0o644)
        job = {
            "model": str(child.workdir / "model.keras"),
            "features": str(child.workdir / "x.npy"),
            "out": str(child.workdir / "out.npy"),
            "batch_size": int(limits.batch_size),
            "cpu_seconds": int(limits.cpu_seconds),
            "widths": widths,
        }
        reply = child.run(job, limits, rows=len(ids))
        if not reply.get("ok"):
            logger.info("model refused: %s", {k: v for k, v in reply.items() if k != "log"})
            raise reply_refusal(reply, limits, spec)
        logger.info("model run: %s", reply)
        predictions = np.load(child.workdir / "out.npy", allow_pickle=False)
    finally:
        child.discard()
    if predictions.ndim != 2 or predictions.shape[0] != len(ids) or predictions.shape[1] not in widths:
        raise RunnerUnavailable(f"the child returned predictions of shape {predictions.shape}")
    write_predictions_csv(
        out_csv, ids, predictions, submission_columns=submission_columns, metric=m, classes=classes
    )


def output_widths(m: Metric, classes: list[str] | None) -> list[int]:
    """The numbers of outputs per row a model may have for ``m``."""
    k = len(classes or [])
    if m.prediction == "class_probabilities":
        return [k]
    if m.prediction == "label":
        return [k, 1] if k == 2 or m.target == "ordinal" else [k]
    if m.prediction == "probability":
        return [1, 2]  # a sigmoid, or a 2-class softmax whose second column is class 1
    return [1]


_features_lock = threading.Lock()
_features_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _cached_features(path: str | Path, id_column: str) -> tuple[np.ndarray, np.ndarray]:
    """read_features, remembering the last file: every job of a challenge reads the same one."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, id_column)
    with _features_lock:
        if key in _features_cache:
            return _features_cache[key]
    value = read_features(path, id_column=id_column)
    with _features_lock:
        _features_cache.clear()
        _features_cache[key] = value
    return value


# -- predictions to CSV --------------------------------------------------------------------------


def write_predictions_csv(
    out_csv: str | Path,
    ids: np.ndarray,
    predictions: np.ndarray,
    *,
    submission_columns: list[str],
    metric: Metric,
    classes: list[str] | None,
) -> None:
    """Turn model outputs into a submission the engine scores like any uploaded CSV."""
    id_name, *value_names = submission_columns
    values = _prediction_columns(predictions, metric, classes)
    if len(values) != len(value_names):
        raise ValueError(f"{len(values)} prediction columns for the submission columns {submission_columns}")
    table = pa.Table.from_arrays([pa.array(ids, type=pa.string()), *values], names=[id_name, *value_names])
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(submission_columns)
    with open(out_csv, "wb") as f:
        f.write(header.getvalue().encode())
        pcsv.write_csv(
            table, f, write_options=pcsv.WriteOptions(include_header=False, quoting_style="needed")
        )


def _prediction_columns(p: np.ndarray, m: Metric, classes: list[str] | None) -> list[pa.Array]:
    k = p.shape[1]
    if m.prediction == "class_probabilities":
        _check_probabilities(p, "softmax")
        return [pa.array(p[:, j]) for j in range(k)]
    if m.prediction == "probability":
        if k == 2:
            _check_probabilities(p, "softmax")
            return [pa.array(p[:, 1])]
        _check_probabilities(p, "sigmoid")
        return [pa.array(p[:, 0])]
    if m.prediction == "numeric":
        if m.target == "nonnegative":
            _refuse_rows(p[:, 0] <= -1, "log_of_negative", metric=m.name)
        return [pa.array(p[:, 0])]
    assert classes is not None
    labels = np.asarray(classes, dtype=object)
    if k == len(classes):
        chosen = labels[np.argmax(p, axis=1)]
    elif len(classes) == 2:
        chosen = labels[(p[:, 0] >= 0.5).astype(np.int64)]
    else:  # ordinal ratings from one number: the nearest rating
        ratings = np.asarray([int(c) for c in classes], dtype=np.float64)
        chosen = labels[np.abs(p[:, :1] - ratings[None, :]).argmin(axis=1)]
    return [pa.array(chosen.tolist(), type=pa.string())]


def _check_probabilities(p: np.ndarray, activation: str) -> None:
    outside = ((p < 0) | (p > 1)).any(axis=1)
    off = np.abs(p.sum(axis=1) - 1) > PROBABILITY_SUM_TOLERANCE if p.shape[1] > 1 else np.zeros(len(p), bool)
    summed = " that sum to 1 on each row" if p.shape[1] > 1 else ""
    _refuse_rows(outside | off, "not_probabilities", summed=summed, activation=activation)


def _refuse_rows(bad: np.ndarray, kind: str, **fields: object) -> None:
    """Refuse outputs that break a requirement on some rows: a charged refusal that counts the
    rows but never names one or shows a value (outputs can copy hidden features)."""
    if bad.any():
        raise refusal(kind, bad=int(bad.sum()), total=len(bad), **fields)
