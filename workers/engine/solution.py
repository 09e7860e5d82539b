"""Validate an organizer's solution CSV and store it as a parquet file that is fast to score.

The prepared parquet holds ``id`` (string), ``target`` (string for label metrics, float64 for
numeric ones) and ``public`` (bool), sorted by id, with the SolutionInfo and the preparation
settings in the schema metadata. Messages here go to the organizer, so unlike scoring messages
they may talk about the public and private splits.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from .errors import ScoringError, SolutionError, count, examples, show
from .metrics import Metric, get_metric
from .reader import Limits, read_csv_table

MiB = 1024 * 1024
# Solutions are uploaded by trusted organizers, but still streamed through the same safe
# reader; they may legitimately be larger than a learner's submission.
SOLUTION_LIMITS = Limits(max_bytes=2048 * MiB, max_decompressed_bytes=4096 * MiB, max_rows=50_000_000)
METADATA_KEY = b"holdout"
# qwk builds an (n x n) confusion matrix over the rating range, so keep the range sane.
MAX_ORDINAL_SPAN = 1000


@dataclass
class SolutionInfo:
    row_count: int
    public_count: int
    private_count: int
    split_source: str
    classes: list[str] | None
    class_balance: dict[str, dict[str, int]] | None
    submission_columns: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def submission_columns_for(
    metric: Metric, id_column: str, target_column: str, classes: list[str] | None
) -> list[str]:
    if metric.prediction == "class_probabilities":
        return [id_column, *(classes or [])]
    return [id_column, target_column]


def prepare_solution(
    src: str | Path,
    out: str | Path,
    *,
    id_column: str,
    target_column: str,
    metric: str,
    public_fraction: float,
    seed: int,
) -> SolutionInfo:
    """Validate ``src`` and write the prepared parquet to ``out``.

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
    split_source = "usage_column" if usage_names else "random"
    if len(usage_names) > 1:
        problems.append("There are several Usage columns: " + ", ".join(map(show, usage_names)) + ".")
    elif usage_names and ids is not None:
        public, usage_problems = _usage_split(table.column(usage_names[0]).combine_chunks(), ids)
        problems += usage_problems
    elif ids is not None and 0 < public_fraction < 1:
        if n < 2:
            problems.append(f"The solution needs at least 2 rows to split; it has {n}.")
        else:
            public = _random_split(ids, public_fraction, seed)

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
            "public": _class_counts(values_sorted.filter(pa.array(public_sorted)), classes),
            "private": _class_counts(values_sorted.filter(pa.array(~public_sorted)), classes),
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


def read_solution_info(prepared: str | Path) -> SolutionInfo:
    """The SolutionInfo stored in a prepared parquet's metadata."""
    return SolutionInfo(**read_solution_meta(prepared)["info"])


def solution_ids(prepared: str | Path) -> set[str]:
    """The ids a prepared solution scores (model challenges check their features against it)."""
    return set(pq.read_table(prepared, columns=["id"])["id"].to_pylist())


def read_solution_meta(prepared: str | Path) -> dict:
    try:
        metadata = pq.read_schema(prepared).metadata or {}
        return json.loads(metadata[METADATA_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        raise SolutionError(
            ["The prepared solution file is missing or unreadable; upload the solution again."]
        ) from None


def check_metric_fits(meta: dict, metric: Metric) -> None:
    """Raise SolutionError when a solution prepared for one metric is scored with another
    whose targets it cannot serve."""
    if meta["target_kind"] != metric.target:
        raise SolutionError(
            [
                f"The solution was prepared for the metric {show(meta['metric'])}, whose targets "
                f"are {meta['target_kind']}; {show(metric.name)} needs {metric.target} targets. "
                "Upload the solution again for this metric."
            ]
        )


def sample_submission_csv(prepared: str | Path, out: str | Path, *, metric: str) -> None:
    """Write a submission with every id and a constant, valid prediction."""
    m = get_metric(metric)
    meta = read_solution_meta(prepared)
    check_metric_fits(meta, m)
    table = pq.read_table(prepared)
    info = SolutionInfo(**meta["info"])
    ids = table.column("id")
    n = table.num_rows
    columns = submission_columns_for(m, meta["id_column"], meta["target_column"], info.classes)
    if m.prediction == "class_probabilities":
        k = len(info.classes or [])
        preds = [pa.array(np.full(n, 1.0 / k)) for _ in range(k)]
    elif m.prediction == "probability":
        preds = [pa.array(np.full(n, 0.5))]
    elif m.prediction == "numeric":
        mean = float(pc.mean(table.column("target")).as_py())
        preds = [pa.array(np.full(n, mean))]
    else:
        counts = pc.value_counts(table.column("target")).to_pylist()
        # Ties broken by class order so the file is reproducible.
        best = min(counts, key=lambda c: (-c["counts"], c["values"]))["values"]
        preds = [pa.array([best] * n, type=pa.string())]
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
            return
        except pa.ArrowInvalid:
            continue


# -- validation helpers ------------------------------------------------------------------------


def _row_examples(mask: np.ndarray, limit: int = 5) -> str:
    rows = np.flatnonzero(mask)
    return ", ".join(f"row {r + 1:,}" for r in rows[:limit]) + (
        f", … ({len(rows):,} in all)" if len(rows) > limit else ""
    )


def _id_problems(ids: pa.Array) -> list[str]:
    problems = []
    empty = pc.equal(ids, "").to_numpy(zero_copy_only=False)
    if empty.any():
        problems.append(
            f"{count(int(empty.sum()), 'row has', 'rows have')} an empty id ({_row_examples(empty)})."
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


def _bad_values(ids: pa.Array, raw: pa.Array, mask: np.ndarray, limit: int = 5) -> str:
    idx = pa.array(np.flatnonzero(mask)[:limit])
    pairs = zip(ids.take(idx).to_pylist(), raw.take(idx).to_pylist(), strict=True)
    shown = ", ".join(f"id {show(i)} has {show(v)}" for i, v in pairs)
    total = int(mask.sum())
    return shown + (f", … ({total:,} in all)" if total > limit else "")


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


def _usage_split(usage: pa.Array, ids: pa.Array) -> tuple[np.ndarray | None, list[str]]:
    lowered = pc.utf8_lower(usage)
    public = pc.equal(lowered, "public").to_numpy(zero_copy_only=False)
    private = pc.equal(lowered, "private").to_numpy(zero_copy_only=False)
    bad = ~(public | private)
    if bad.any():
        return None, [f"The Usage column may only contain Public or Private; {_bad_values(ids, usage, bad)}."]
    return public, []


def _random_split(ids: pa.Array, fraction: float, seed: int) -> np.ndarray:
    # Permute the id-sorted rows so the split depends only on (ids, seed, fraction), never on
    # the order of rows in the uploaded file.
    n = len(ids)
    order = pc.sort_indices(ids).to_numpy()
    n_public = min(max(round(n * fraction), 1), n - 1)
    chosen = np.random.default_rng(seed).permutation(n)[:n_public]
    public = np.zeros(n, dtype=bool)
    public[order[chosen]] = True
    return public


def split_problems(m: Metric, values: pa.Array, public: np.ndarray, classes: list[str] | None) -> list[str]:
    """Problems that make ``m`` undefined on either split (organizer-facing)."""
    problems = []
    for name, mask in (("public", public), ("private", ~public)):
        rows = int(mask.sum())
        if rows == 0:
            problems.append(f"The {name} split has no rows.")
            continue
        part = values.filter(pa.array(mask))
        if classes is not None:
            present = sorted(set(pc.unique(part).to_pylist()))
            if m.name == "roc_auc_ovr" and len(present) < len(classes):
                absent = [c for c in classes if c not in present]
                problems.append(
                    f"The {name} split lacks the class(es) {examples(absent, len(absent))}; "
                    f"{m.name} needs every class in each split."
                )
            elif m.target == "binary" and len(present) < 2:
                problems.append(
                    f"The {name} split holds only the class {show(present[0])}; {m.name} needs "
                    "both 0 and 1 in each split."
                )
            elif len(present) < 2:
                problems.append(
                    f"The {name} split holds only the class {show(present[0])}; {m.name} needs "
                    "at least 2 classes in each split."
                )
        elif m.name == "r2":
            arr = part.to_numpy()
            if rows < 2 or arr.min() == arr.max():
                problems.append(f"The {name} split's target is constant, so {m.name} is undefined there.")
    return problems


def _class_counts(values: pa.Array, classes: list[str]) -> dict[str, int]:
    counts = {c: 0 for c in classes}
    for item in pc.value_counts(values).to_pylist():
        counts[item["values"]] = int(item["counts"])
    return counts
