"""Validate an organizer's solution CSV and store it as a parquet file that is fast to score.

The file's format and reading it back are in prepared.py, the public/private split in
splits.py, the sample submission in sample.py. Messages here go to the organizer, so unlike
scoring messages they may talk about the public and private splits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import ScoringError, SolutionError, count, examples, id_examples, row_numbers, show
from .limits import SOLUTION_LIMITS
from .metrics import Metric, get_metric
from .prepared import METADATA_KEY, SolutionInfo, submission_columns_for
from .reader import read_csv_table
from .splits import class_counts, kept_split, random_split, split_problems, usage_split

# qwk builds an (n x n) confusion matrix over the rating range, so keep the range sane.
MAX_ORDINAL_SPAN = 1000
# Numeric targets and predictions must lie within ±MAX_ABS_VALUE. Squared errors of such values
# summed over the largest solution stay far below float64's limit (1e308), so no metric can
# overflow, and so fail, on one split and not the other.
MAX_ABS_VALUE = 1e15


def prepare_solution(
    src: str | Path,
    out: str | Path,
    *,
    id_column: str,
    target_column: str,
    metric: str,
    public_fraction: float,
    seed: int | None = None,
    keep_split: str | Path | None = None,
) -> SolutionInfo:
    """Validate ``src`` and write the prepared parquet to ``out``.

    The public/private split comes, in this order, from a Usage column; from ``keep_split`` (a
    parquet with ``id`` and ``public`` columns, such as an earlier prepared solution) when it
    covers exactly these ids with the same public share; from ``seed`` when an organizer asked
    for a reproducible split; otherwise from the operating system's secret random source, so
    that nothing a participant can see (ids, fraction, a guessable seed) determines it.

    Raises SolutionError listing every problem found (not just the first).
    """
    problems: list[str] = []
    try:
        m = get_metric(metric)
    except ValueError as exc:
        raise SolutionError([str(exc)]) from None
    if not (isinstance(public_fraction, (int, float)) and 0 < public_fraction < 1):
        problems.append(f"The public fraction must be between 0 and 1 (exclusive); got {public_fraction!r}.")
    try:
        table = read_csv_table(src, limits=SOLUTION_LIMITS)
    except ScoringError as exc:
        raise SolutionError([*problems, f"The solution file could not be read: {exc}"]) from None

    header = table.column_names
    found = ", ".join(show(n) for n in header[:20])
    ids = target = None
    if id_column in header:
        ids = table.column(id_column).combine_chunks()
    else:
        problems.append(f"The id column {show(id_column)} is missing; the columns found are {found}.")
    if target_column in header:
        target = table.column(target_column).combine_chunks()
    else:
        problems.append(f"The target column {show(target_column)} is missing; the columns found are {found}.")
    if id_column == target_column:
        problems.append("The id column and the target column must be different columns.")
    usage_names = [n for n in header if n.strip().lower() == "usage" and n not in (id_column, target_column)]
    n = table.num_rows

    if ids is not None:
        problems += _id_problems(ids)
    if target is not None and ids is not None:
        values, classes, target_problems = _parse_target(m, target, ids)
        problems += target_problems
    else:
        values, classes = None, None

    public: np.ndarray | None = None
    split_source = "usage_column" if usage_names else ("seeded" if seed is not None else "random")
    if len(usage_names) > 1:
        problems.append("There are several Usage columns: " + ", ".join(map(show, usage_names)) + ".")
    elif usage_names and ids is not None:
        public, usage_problems = usage_split(table.column(usage_names[0]).combine_chunks(), ids)
        problems += usage_problems
    elif ids is not None and 0 < public_fraction < 1:
        if n < 2:
            problems.append(f"The solution needs at least 2 rows to split; it has {n}.")
        else:
            kept = kept_split(keep_split, ids, public_fraction) if keep_split else None
            if kept is not None:
                public, split_source = kept
            else:
                public = random_split(ids, public_fraction, seed, m, values, classes)

    if public is not None and values is not None and not problems:
        problems += split_problems(m, values, public, classes)
    if m.prediction == "class_probabilities" and classes:
        if id_column in classes:
            problems.append(
                f"A class is named {show(id_column)} like the id column; submissions would have "
                "two columns with that name."
            )
        if len(classes) + 1 > SOLUTION_LIMITS.max_columns:
            problems.append(
                f"There are {len(classes):,} classes; class-probability metrics support at most "
                f"{SOLUTION_LIMITS.max_columns - 1}."
            )
    if problems:
        raise SolutionError(problems)
    assert ids is not None and values is not None and public is not None

    order = pc.sort_indices(ids)
    ids_sorted = ids.take(order)
    values_sorted = values.take(order)
    public_sorted = public[order.to_numpy()]
    n_public = int(public_sorted.sum())
    balance = None
    if classes is not None:
        balance = {
            "public": class_counts(values_sorted.filter(pa.array(public_sorted)), classes),
            "private": class_counts(values_sorted.filter(pa.array(~public_sorted)), classes),
        }
    info = SolutionInfo(
        row_count=n,
        public_count=n_public,
        private_count=n - n_public,
        split_source=split_source,
        classes=classes,
        class_balance=balance,
        submission_columns=submission_columns_for(m, id_column, target_column, classes),
    )
    meta = {
        "info": info.to_dict(),
        "id_column": id_column,
        "target_column": target_column,
        "metric": m.name,
        "target_kind": m.target,
        "format": 1,
    }
    schema = pa.schema(
        [("id", pa.string()), ("target", values_sorted.type), ("public", pa.bool_())],
        metadata={METADATA_KEY: json.dumps(meta).encode()},
    )
    out_table = pa.Table.from_arrays([ids_sorted, values_sorted, pa.array(public_sorted)], schema=schema)
    # Unique ids gain nothing from parquet's dictionary encoding and read ~3x slower with it;
    # label targets gain a lot (scoring reads them back as dictionary codes). One row group,
    # because scoring always reads the whole file.
    pq.write_table(
        out_table,
        out,
        row_group_size=max(n, 1),
        use_dictionary=["target"] if classes is not None else False,
        compression="zstd",
    )
    return info


# -- validation helpers ------------------------------------------------------------------------


def _id_problems(ids: pa.Array) -> list[str]:
    problems = []
    empty = pc.equal(ids, "").to_numpy(zero_copy_only=False)
    if empty.any():
        problems.append(
            f"{count(int(empty.sum()), 'row has', 'rows have')} an empty id "
            f"({row_numbers(np.flatnonzero(empty), 'row ')})."
        )
    padded = pc.not_equal(pc.utf8_trim_whitespace(ids), ids).to_numpy(zero_copy_only=False) & ~empty
    if padded.any():
        bad = ids.filter(pa.array(padded)).to_pylist()
        problems.append(
            f"{count(len(bad), 'id has', 'ids have')} leading or trailing whitespace, which "
            f"submissions could not reliably match: {examples(bad, len(bad))}."
        )
    counts = pc.value_counts(ids)
    dup = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(dup):
        names = dup.field("values").to_pylist()
        problems.append(
            f"{count(len(names), 'id appears', 'ids appear')} more than once: {examples(names, len(names))}."
        )
    return problems


def _bad_values(ids: pa.Array, raw: pa.Array, mask: np.ndarray) -> str:
    return id_examples(ids, np.flatnonzero(mask), raw)


def _parse_target(
    m: Metric, raw: pa.Array, ids: pa.Array
) -> tuple[pa.Array | None, list[str] | None, list[str]]:
    """Return (stored target values, sorted classes or None, problems)."""
    col = "The target column"
    if m.target == "labels":
        empty = pc.equal(raw, "").to_numpy(zero_copy_only=False)
        problems = []
        if empty.any():
            problems.append(
                f"{col} has {count(int(empty.sum()), 'empty value')}: {_bad_values(ids, raw, empty)}."
            )
        classes = sorted(pc.unique(raw.filter(pa.array(~empty))).to_pylist())
        if len(classes) < 2:
            problems.append(
                f"{col} must hold at least 2 different labels for {m.name}; found {len(classes)}."
            )
        return raw, classes, problems

    numbers = pd.to_numeric(
        pd.Series(raw.to_numpy(zero_copy_only=False), dtype=object), errors="coerce"
    ).to_numpy(dtype=float)
    finite = np.isfinite(numbers)
    if m.target in ("numeric", "nonnegative"):
        problems = []
        if not finite.all():
            problems.append(f"{col} must hold finite numbers for {m.name}; {_bad_values(ids, raw, ~finite)}.")
        huge = finite & (np.abs(numbers) > MAX_ABS_VALUE)
        if huge.any():
            problems.append(
                f"{col} must lie within ±{MAX_ABS_VALUE:g} for {m.name}; {_bad_values(ids, raw, huge)}."
            )
        if m.target == "nonnegative":
            negative = finite & (numbers < 0)
            if negative.any():
                problems.append(
                    f"{col} must not be negative for {m.name}; {_bad_values(ids, raw, negative)}."
                )
        if m.name == "mape":
            zero = finite & (numbers == 0)
            if zero.any():
                problems.append(
                    f"{col} must not contain 0 for mape (percentage errors divide by the target); "
                    f"{_bad_values(ids, raw, zero)}."
                )
        return pa.array(numbers, type=pa.float64()), None, problems

    if m.target == "binary":
        ok = finite & ((numbers == 0) | (numbers == 1))
        if not ok.all():
            return None, None, [f"{col} must hold only 0 or 1 for {m.name}; {_bad_values(ids, raw, ~ok)}."]
        ints = numbers.astype(np.int64)
    else:  # ordinal
        ok = finite & (numbers == np.round(numbers))
        if not ok.all():
            return None, None, [f"{col} must hold whole numbers for {m.name}; {_bad_values(ids, raw, ~ok)}."]
        ints = numbers.astype(np.int64)
        if ints.max() - ints.min() > MAX_ORDINAL_SPAN:
            return (
                None,
                None,
                [
                    f"{col} spans {int(ints.min())} to {int(ints.max())}; ratings for {m.name} "
                    f"may span at most {MAX_ORDINAL_SPAN}."
                ],
            )
    present = np.unique(ints)
    if len(present) < 2:
        return (
            None,
            None,
            [f"{col} must hold at least 2 different values for {m.name}; found only {present.tolist()}."],
        )
    # Canonical strings ("1.0" -> "1") so submissions are matched against one spelling; the
    # classes are listed in numeric order, which is the order that matters for ratings.
    classes = [str(v) for v in present.tolist()]
    return pa.array(ints.astype(str).astype(object), type=pa.string()), classes, []
