"""The sample submission: every id with one constant, valid prediction.

The constant never comes from the solution: a sample built from the hidden targets would
publish their mean or majority class, private rows included.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from .errors import ScoringError, SolutionError
from .limits import SOLUTION_LIMITS
from .metrics import Metric, get_metric
from .prepared import SolutionInfo, check_metric_fits, read_solution_meta, submission_columns_for
from .reader import read_csv_table


def sample_submission_csv(
    prepared: str | Path, out: str | Path, *, metric: str, train: str | Path | None = None
) -> str:
    """Write a submission with every id and one constant, valid prediction; return what the
    constant is, in words, for the organizer.

    The constant never comes from the solution: a sample built from the hidden targets would
    publish their mean or majority class, private rows included. It is the training data's
    prior (``train`` holds the target column) or, without training data, a neutral value.
    """
    m = get_metric(metric)
    meta = read_solution_meta(prepared)
    check_metric_fits(meta, m)
    ids = pq.read_table(prepared, columns=["id"]).column("id")
    n = len(ids)
    info = SolutionInfo(**meta["info"])
    columns = submission_columns_for(m, meta["id_column"], meta["target_column"], info.classes)
    values, how = _constant_prediction(m, info.classes, _training_target(train, meta["target_column"]))
    if m.prediction == "label":
        preds = [pa.array([values[0]] * n, type=pa.string())]
    else:
        preds = [pa.array(np.full(n, float(v))) for v in values]
    out_table = pa.Table.from_arrays([ids, *preds], names=columns)
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(columns)
    # Unquoted output reads most naturally; pyarrow refuses it when a value needs quotes, and
    # quotes every string (header included) otherwise, so the header is written separately.
    for quoting in ("none", "needed"):
        try:
            with open(out, "wb") as f:
                f.write(header.getvalue().encode())
                options = pcsv.WriteOptions(include_header=False, quoting_style=quoting)
                pcsv.write_csv(out_table, f, write_options=options)
            return how
        except pa.ArrowInvalid:
            continue
    raise SolutionError(["The sample submission could not be written as CSV."])


def _training_target(train: str | Path | None, target_column: str) -> pa.Array | None:
    """The training file's target column as strings, or None when there is none to read."""
    if train is None:
        return None
    try:
        table = read_csv_table(train, limits=SOLUTION_LIMITS)
    except ScoringError:
        return None
    if target_column not in table.column_names:
        return None
    column = table.column(target_column).combine_chunks()
    return column.filter(pc.not_equal(column, ""))


def _constant_prediction(m: Metric, classes: list[str] | None, target: pa.Array | None) -> tuple[list, str]:
    """One value per prediction column, and a description of where it comes from."""
    k = len(classes or [])
    if target is not None and len(target):
        if m.prediction == "numeric":
            numbers = pd.to_numeric(pd.Series(target.to_pylist()), errors="coerce").dropna()
            if len(numbers):
                median = m.name in ("mae", "median_ae", "mape")
                value = float(numbers.median() if median else numbers.mean())
                if m.target == "nonnegative":
                    value = max(value, 0.0)
                return [value], f"the training target's {'median' if median else 'mean'}"
        else:
            labels = _canonical_labels(m, target)
            counts = {c: 0 for c in classes or []}
            for label in labels:
                if label in counts:
                    counts[label] += 1
            total = sum(counts.values())
            if total:
                if m.prediction == "label":
                    # Ties broken by class order so the file is reproducible.
                    best = min(counts, key=lambda c: (-counts[c], (classes or []).index(c)))
                    return [best], "the training data's most frequent class"
                if m.prediction == "probability":
                    return [counts.get("1", 0) / total], "the training data's share of class 1"
                return [counts[c] / total for c in classes or []], "the training data's class shares"
    if m.prediction == "numeric":
        return [0.0], "a neutral constant (0; mark a training file to use its target's average)"
    if m.prediction == "label":
        return [(classes or [""])[0]], "the first class (mark a training file to use its most frequent class)"
    if m.prediction == "probability":
        return [0.5], "a neutral probability of 0.5"
    return [1.0 / k] * k, "uniform class probabilities"


def _canonical_labels(m: Metric, target: pa.Array) -> list[str]:
    """Training labels spelled as the solution's classes are (numeric classes as "1", not "1.0")."""
    labels = target.cast(pa.string()).to_pylist()
    if m.target not in ("binary", "ordinal"):
        return labels
    canonical = []
    for label in labels:
        try:
            number = float(label)
        except ValueError:
            canonical.append(label)
            continue
        canonical.append(str(int(number)) if number.is_integer() else label)
    return canonical
