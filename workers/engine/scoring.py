"""Score a submission against a prepared solution.

Messages here go to learners. They name counts and a few example ids, and never say which rows
count towards which leaderboard.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import ScoringError, SolutionError, count, examples, id_examples, row_numbers, show
from .limits import DEFAULT_LIMITS, Limits
from .metrics import Metric, get_metric
from .prepared import check_metric_fits, read_solution_meta, submission_columns_for
from .reader import read_submission
from .solution import MAX_ABS_VALUE
from .splits import split_problems

MAX_LISTED_CLASSES = 20
PROBABILITY_SUM_TOLERANCE = 1e-3
METRIC_FAILED_MESSAGE = (
    "The file passed every check, but the metric could not be computed on it. This counts "
    "against your limits like a scored submission."
)


@dataclass(frozen=True)
class ScoreResult:
    public_score: float
    private_score: float
    row_count: int


def score_submission(
    submission: str | Path,
    solution: str | Path,
    *,
    metric: str,
    limits: Limits = DEFAULT_LIMITS,
) -> ScoreResult:
    """Validate ``submission`` against the prepared ``solution`` and score both splits.

    Raises ScoringError for an invalid submission and SolutionError when the prepared solution
    cannot serve ``metric``.
    """
    m = get_metric(metric)
    meta = read_solution_meta(solution)
    check_metric_fits(meta, m)
    classes: list[str] | None = meta["info"]["classes"]
    columns = submission_columns_for(m, meta["id_column"], meta["target_column"], classes)
    y_true, y_pred, public = _aligned_arrays(m, meta, submission, solution, columns, limits)
    # The Arrow tables are gone by now; give their memory back to the OS before the metric
    # allocates its own, so peak memory is the larger of the two phases, not their sum.
    pa.default_memory_pool().release_unused()
    # Both splits are always computed, and either failing gives the same charged outcome and
    # message: a failure that depended on which split a row is in would tell the learner so.
    scores = [_score(m, y_true[mask], y_pred[mask]) for mask in (public, ~public)]
    if None in scores:
        raise ScoringError(METRIC_FAILED_MESSAGE, charged=True)
    public_score, private_score = scores
    return ScoreResult(public_score, private_score, row_count=len(y_true))


def _aligned_arrays(
    m: Metric,
    meta: dict,
    submission: str | Path,
    solution: str | Path,
    columns: list[str],
    limits: Limits,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (true values, predictions in solution order, public mask) as numpy arrays."""
    classes: list[str] | None = meta["info"]["classes"]
    prediction_columns = columns[1:]
    numeric = prediction_columns if m.prediction != "label" else []
    try:
        # Label targets come back dictionary-encoded, so mapping them to class codes is a
        # lookup on the few distinct values instead of a hash of every row.
        sol = pq.read_table(solution, read_dictionary=["target"] if classes else None)
    except (OSError, pa.ArrowException):
        raise SolutionError(
            ["The prepared solution file is unreadable; upload the solution again."]
        ) from None
    # index_in needs a plain Array; the parquet holds one row group, so this rarely copies.
    sol_ids = sol.column("id").combine_chunks()
    public = sol.column("public").to_numpy()
    if meta["metric"] != m.name:
        # Preparation checked that the prepared metric is defined on both splits; a different
        # metric with the same target type may need more (e.g. every class in each split).
        target = sol.column("target").combine_chunks()
        if classes:
            target = target.cast(pa.string())
        problems = split_problems(m, target, public, classes)
        if problems:
            raise SolutionError(problems)
    y_true = _true_values(m, sol.column("target"), classes)
    del sol

    # A valid file has one row per solution id: refuse far more rows while they stream in,
    # before a table (and its memory) is built for them.
    limits = replace(limits, expected_rows=len(sol_ids))
    table = read_submission(submission, columns=columns, numeric_columns=numeric, limits=limits)
    ids = table.column(columns[0])
    position = _align(ids, sol_ids)
    del sol_ids
    y_pred = _predictions(m, table, prediction_columns, ids, classes)
    del table, ids
    aligned = np.empty_like(y_pred)
    aligned[position] = y_pred
    return y_true, aligned, public


def _align(ids: pa.Array, sol_ids: pa.Array) -> np.ndarray:
    """Return, for each submission row, its row in the (id-sorted) solution, or raise."""
    n_expected = len(sol_ids)
    # Learners usually keep the sample submission's order, so try the cheap comparison first.
    if len(ids) == n_expected and pc.all(pc.equal(ids, sol_ids)).as_py():
        return np.arange(n_expected)

    problems: list[str] = []
    if len(ids) != n_expected:
        problems.append(f"The submission has {len(ids):,} rows; expected {n_expected:,}, one per id")
    index = pc.index_in(ids, value_set=sol_ids)
    unknown = index.is_null().to_numpy(zero_copy_only=False)
    if unknown.any():
        empty = pc.equal(ids, "").to_numpy(zero_copy_only=False)
        if empty.any():
            rows = np.flatnonzero(empty)
            problems.append(
                f"{count(len(rows), 'row has', 'rows have')} an empty id "
                f"(data row {row_numbers(rows, tally=False)})"
            )
        unknown &= ~empty
    if unknown.any():
        bad = ids.filter(pa.array(unknown))
        sample = bad.slice(0, 5).to_pylist()
        problems.append(
            f"{count(len(bad), 'id is', 'ids are')} not in the solution: "
            f"{examples(sample, len(bad))}" + _id_hint(bad.slice(0, 50), sol_ids)
        )
    position = index.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    known = position[position >= 0]
    counts = np.bincount(known, minlength=n_expected)
    duplicated = np.flatnonzero(counts > 1)
    if len(duplicated):
        names = sol_ids.take(pa.array(duplicated[:5])).to_pylist()
        problems.append(
            f"{count(len(duplicated), 'id appears', 'ids appear')} more than once: "
            f"{examples(names, len(duplicated))}"
        )
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        names = sol_ids.take(pa.array(missing[:5])).to_pylist()
        problems.append(f"{count(len(missing), 'id is', 'ids are')} missing: {examples(names, len(missing))}")
    if problems:
        raise ScoringError("; ".join(problems) + ".")
    return position


def _id_hint(bad: pa.Array, sol_ids: pa.Array) -> str:
    """Explain near-misses, which are the usual cause of unknown ids."""
    for transform, what in (
        (pc.utf8_trim_whitespace, "whitespace"),
        (pc.utf8_lower, "letter case"),
        (lambda a: pc.utf8_lower(pc.utf8_trim_whitespace(a)), "whitespace and letter case"),
    ):
        if what == "whitespace":
            candidates, fixed = sol_ids, transform(bad)
        else:
            # Lower-casing the whole solution is only needed on this error path.
            candidates, fixed = pc.utf8_lower(sol_ids), transform(bad)
        hit = pc.index_in(fixed, value_set=candidates).to_numpy(zero_copy_only=False)
        found = np.flatnonzero(~np.isnan(hit.astype(float)))
        if len(found):
            i = int(found[0])
            original = sol_ids[int(hit[i])].as_py()
            return (
                f" (ids must match exactly; {show(bad[i].as_py())} differs from {show(original)} by {what})"
            )
    return ""


def _true_values(m: Metric, target: pa.ChunkedArray, classes: list[str] | None) -> np.ndarray:
    if classes is None:
        return target.to_numpy()
    lookup = {c: i for i, c in enumerate(classes)}
    parts = []
    for chunk in target.chunks:
        if pa.types.is_dictionary(chunk.type):
            mapping = np.array([lookup[v] for v in chunk.dictionary.to_pylist()], dtype=np.int64)
            parts.append(mapping[chunk.indices.to_numpy()])
        else:
            codes = pc.index_in(chunk, value_set=pa.array(classes))
            parts.append(codes.to_numpy().astype(np.int64))
    codes = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    if m.target == "ordinal":
        return np.array([int(c) for c in classes], dtype=np.int64)[codes]
    return codes


def _predictions(
    m: Metric, table: pa.Table, columns: list[str], ids: pa.Array, classes: list[str] | None
) -> np.ndarray:
    if m.prediction == "label":
        assert classes is not None
        (name,) = columns
        raw = table.column(name)
        empty = pc.equal(raw, "").to_numpy(zero_copy_only=False)
        _raise_if(empty, ids, f"have an empty value in column {show(name)}")
        codes = pc.index_in(raw, value_set=pa.array(classes))
        unknown = codes.is_null().to_numpy(zero_copy_only=False)
        if unknown.any():
            listed = (
                "; the known classes are " + ", ".join(show(c) for c in classes)
                if len(classes) <= MAX_LISTED_CLASSES
                else f"; there are {len(classes):,} known classes"
            )
            _raise_if(
                unknown,
                ids,
                f"have a label in column {show(name)} that is not a known class",
                raw,
                listed + _spelling_hint(m, raw.filter(pa.array(unknown)).slice(0, 20), classes),
            )
        codes_np = codes.to_numpy(zero_copy_only=False).astype(np.int64)
        if m.target == "ordinal":
            return np.array([int(c) for c in classes], dtype=np.int64)[codes_np]
        return codes_np

    matrix = []
    for name in columns:
        col = table.column(name)
        _raise_if(
            col.is_null().to_numpy(zero_copy_only=False), ids, f"have an empty value in column {show(name)}"
        )
        values = col.to_numpy()
        bad = ~np.isfinite(values)
        _raise_if(bad, ids, f"have a value in column {show(name)} that is not a finite number", col)
        if m.prediction in ("probability", "class_probabilities"):
            outside = (values < 0) | (values > 1)
            _raise_if(outside, ids, f"have a probability in column {show(name)} outside [0, 1]", col)
        if m.prediction == "numeric":
            # Checked on every row before any split is scored: with |values| bounded, squares and
            # sums stay finite, so no metric can overflow on one split and not the other.
            _raise_if(
                np.abs(values) > MAX_ABS_VALUE,
                ids,
                f"have a prediction in column {show(name)} outside ±{MAX_ABS_VALUE:g}, the range "
                "Holdout scores",
                col,
            )
        if m.target == "nonnegative":
            _raise_if(
                values <= -1,
                ids,
                f"have a prediction in column {show(name)} of -1 or less, which {m.name} "
                "cannot score (it takes log(1 + prediction))",
                col,
            )
        matrix.append(values)
    if m.prediction != "class_probabilities":
        return matrix[0]
    probabilities = np.column_stack(matrix)
    sums = probabilities.sum(axis=1)
    off = np.abs(sums - 1) > PROBABILITY_SUM_TOLERANCE
    _raise_if(
        off,
        ids,
        f"have probabilities that do not sum to 1 (±{PROBABILITY_SUM_TOLERANCE:g})",
        pa.array(sums),
        verb="sums to",
    )
    return probabilities


def _spelling_hint(m: Metric, bad: pa.Array, classes: list[str]) -> str:
    """Numeric classes are matched as text, so '1.0' is not '1'; say so when that's the cause."""
    if m.target not in ("binary", "ordinal"):
        return ""
    for value in bad.to_pylist():
        try:
            number = float(value)
        except ValueError:
            continue
        if number.is_integer() and str(int(number)) in classes:
            return f" (write {show(str(int(number)))}, not {show(value)})"
    return ""


def _raise_if(
    mask: np.ndarray,
    ids: pa.Array,
    what: str,
    values: pa.Array | pa.ChunkedArray | None = None,
    suffix: str = "",
    verb: str = "has",
) -> None:
    if not mask.any():
        return
    rows = np.flatnonzero(mask)
    noun = "row" if len(rows) == 1 else "rows"
    what = what.replace("have ", "has ", 1) if len(rows) == 1 else what
    raise ScoringError(f"{len(rows):,} {noun} {what}: {id_examples(ids, rows, values, verb=verb)}{suffix}.")


def _score(m: Metric, y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    """The metric on one split, or None when it cannot be computed. The reason is not passed
    on: scikit-learn's messages describe the rows of the split (one class present, ...)."""
    try:
        with warnings.catch_warnings():
            # Degenerate but valid predictions (e.g. all one class) make scikit-learn warn; the
            # score it returns is still the documented one.
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                value = float(m.func(y_true, y_pred))
    except (ValueError, FloatingPointError, OverflowError, ZeroDivisionError):
        return None
    return value if np.isfinite(value) else None
