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
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from .errors import ScoringError, SolutionError, count, examples, id_examples, row_numbers, show
from .metrics import Metric, get_metric
from .reader import Limits, read_csv_table

MiB = 1024 * 1024
# Solutions are uploaded by trusted organizers, but still streamed through the same safe
# reader; they may legitimately be larger than a learner's submission.
SOLUTION_LIMITS = Limits(max_bytes=2048 * MiB, max_decompressed_bytes=4096 * MiB, max_rows=50_000_000)
METADATA_KEY = b"holdout"
# qwk builds an (n x n) confusion matrix over the rating range, so keep the range sane.
MAX_ORDINAL_SPAN = 1000
# Numeric targets and predictions must lie within ±MAX_ABS_VALUE. Squared errors of such values
# summed over the largest solution stay far below float64's limit (1e308), so no metric can
# overflow, and so fail, on one split and not the other.
MAX_ABS_VALUE = 1e15
# A random split on which the metric is undefined is drawn again, at most this many times.
SPLIT_DRAWS = 20


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
        public, usage_problems = _usage_split(table.column(usage_names[0]).combine_chunks(), ids)
        problems += usage_problems
    elif ids is not None and 0 < public_fraction < 1:
        if n < 2:
            problems.append(f"The solution needs at least 2 rows to split; it has {n}.")
        else:
            kept = _kept_split(keep_split, ids, public_fraction) if keep_split else None
            if kept is not None:
                public, split_source = kept
            else:
                public = _random_split(ids, public_fraction, seed, m, values, classes)

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


def _usage_split(usage: pa.Array, ids: pa.Array) -> tuple[np.ndarray | None, list[str]]:
    lowered = pc.utf8_lower(usage)
    public = pc.equal(lowered, "public").to_numpy(zero_copy_only=False)
    private = pc.equal(lowered, "private").to_numpy(zero_copy_only=False)
    bad = ~(public | private)
    if bad.any():
        return None, [f"The Usage column may only contain Public or Private; {_bad_values(ids, usage, bad)}."]
    return public, []


def public_count_for(n: int, fraction: float) -> int:
    """How many of ``n`` rows a random split makes public: at least one row on each side."""
    return min(max(round(n * fraction), 1), n - 1)


def _random_split(
    ids: pa.Array,
    fraction: float,
    seed: int | None,
    m: Metric,
    values: pa.Array | None,
    classes: list[str] | None,
) -> np.ndarray:
    """A uniformly random split; ``seed=None`` draws it from 128 secret bits.

    A draw on which the metric is undefined (one split without both classes, say) is replaced
    by the next one, a few times, so small solutions do not fail by bad luck. With a seed, the
    id-sorted rows are permuted so the split depends only on (ids, seed, fraction), never on the
    order of rows in the uploaded file: reproducible, and so derivable by anyone who learns the
    seed.
    """
    n = len(ids)
    order = pc.sort_indices(ids).to_numpy()
    rng = np.random.default_rng(secrets.randbits(128) if seed is None else seed)
    for _ in range(SPLIT_DRAWS):
        public = np.zeros(n, dtype=bool)
        public[order[rng.permutation(n)[: public_count_for(n, fraction)]]] = True
        if values is None or not split_problems(m, values, public, classes):
            break
    return public


def _kept_split(previous: str | Path, ids: pa.Array, fraction: float) -> tuple[np.ndarray, str] | None:
    """The public mask of an earlier split, in ``ids``' order, when it still fits these ids.

    It fits when it assigns exactly the same ids and the public share still rounds to the same
    count; otherwise (new ids, a changed fraction) the caller draws a new split.
    """
    try:
        table = pq.read_table(previous, columns=["id", "public"])
        source = json.loads((pq.read_schema(previous).metadata or {}).get(METADATA_KEY, b"{}"))
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None
    old_ids = table.column("id").combine_chunks().cast(pa.string())
    if len(old_ids) != len(ids) or table.column("public").null_count:
        return None
    position = pc.index_in(ids, value_set=old_ids)
    if position.null_count:
        return None
    old_public = table.column("public").to_numpy()
    public = old_public[position.to_numpy(zero_copy_only=False).astype(np.int64)]
    if int(public.sum()) != public_count_for(len(ids), fraction):
        return None
    split_source = source.get("info", {}).get("split_source", "random")
    return public, split_source


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
