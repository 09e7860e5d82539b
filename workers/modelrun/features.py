"""Validate and read the organizer's hidden test features for a model challenge.

Two formats are accepted:

- CSV: an id column plus numeric feature columns, every cell a finite number; each row is a
  flat vector, so the per-row input shape is ``[number of feature columns]``.
- NPZ (``numpy.savez``): an array ``ids`` (strings or integers) and an array ``x`` (numbers,
  shape ``(rows, ...)``), so images keep their shape, e.g. ``[28, 28, 1]``.

Nothing here imports TensorFlow: this runs in the web process and in the scoring worker.
Messages go to the organizer (SolutionError lists every problem found).
"""

from __future__ import annotations

import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workers.engine import ScoringError, SolutionError
from workers.engine.errors import examples, id_examples, row_numbers, show
from workers.engine.limits import SOLUTION_LIMITS
from workers.engine.reader import read_csv_table
from workers.modelrun.outputs import class_order, output_spec  # noqa: F401 - re-exported

_NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class FeaturesInfo:
    row_count: int
    input_shape: list[int]  # per-row shape, e.g. [64] or [28, 28, 1]

    def to_dict(self) -> dict:
        return asdict(self)


def inspect_features(
    path: str | Path, *, id_column: str, solution_ids: set[str] | None = None
) -> FeaturesInfo:
    """Validate the hidden test features; raise SolutionError listing every problem.

    With ``solution_ids`` the feature ids must be exactly the solution's ids, so every row a
    model predicts can be scored and every scored row has a prediction.
    """
    ids, x = read_features(path, id_column=id_column)
    if solution_ids is not None:
        problems = _id_match_problems(ids, solution_ids)
        if problems:
            raise SolutionError(problems)
    return FeaturesInfo(row_count=len(ids), input_shape=[int(d) for d in x.shape[1:]])


def read_features(path: str | Path, *, id_column: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(ids, x)``: ids as a numpy array of str, x as float32 of shape (rows, ...).

    Raises SolutionError listing every problem found.
    """
    path = Path(path)
    if _is_npz(path):
        ids, x, problems = _read_npz(path)
    else:
        ids, x, problems = _read_csv(path, id_column)
    if ids is not None and x is not None and not problems:
        problems += _id_problems(ids)
        problems += _value_problems(ids, x)
    if problems:
        raise SolutionError(problems)
    assert ids is not None and x is not None
    return ids, x


# -- readers -----------------------------------------------------------------------------------


def _is_npz(path: Path) -> bool:
    """An NPZ is a zip of .npy members; a zip holding a CSV is read as CSV."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return bool(names) and all(n.endswith(".npy") for n in names)


def _read_npz(path: Path) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    problems: list[str] = []
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = sorted(npz.files)
            arrays = {}
            for name in ("ids", "x"):
                if name not in names:
                    found = ", ".join(show(n) for n in names) or "none"
                    problems.append(f"The NPZ file has no array {show(name)}; the arrays found are {found}.")
                    continue
                try:
                    arrays[name] = npz[name]
                except ValueError:
                    # allow_pickle=False refuses object arrays, which would need unpickling.
                    problems.append(
                        f"The array {show(name)} holds Python objects, which Holdout never unpickles; "
                        f"save it with a plain dtype (e.g. {name}.astype(str) for ids, float32 for x)."
                    )
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None, None, ["The NPZ file could not be read; save it with numpy.savez(path, ids=..., x=...)."]
    if problems:
        return None, None, problems

    raw_ids, raw_x = arrays["ids"], arrays["x"]
    ids = None
    if raw_ids.ndim != 1:
        problems.append(f"The array 'ids' must be one-dimensional; its shape is {list(raw_ids.shape)}.")
    elif raw_ids.dtype.kind in "iu" or raw_ids.dtype.kind in "US":
        ids = raw_ids.astype(str)
    else:
        problems.append(f"The array 'ids' must hold strings or integers; its dtype is {raw_ids.dtype}.")

    x = None
    if raw_x.dtype.kind not in "iufb":
        problems.append(f"The array 'x' must hold numbers; its dtype is {raw_x.dtype}.")
    elif raw_x.ndim < 2:
        problems.append(
            f"The array 'x' must have shape (rows, ...) with at least one feature per row; "
            f"its shape is {list(raw_x.shape)} (use x.reshape(-1, 1) for a single feature)."
        )
    elif 0 in raw_x.shape[1:]:
        problems.append(f"The array 'x' has no features per row; its shape is {list(raw_x.shape)}.")
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            x = raw_x.astype(np.float32)
    if ids is not None and x is not None and len(ids) != len(x):
        problems.append(
            f"The array 'ids' has {len(ids):,} entries but 'x' has {len(x):,} rows; they must match."
        )
    if ids is not None and x is not None and len(ids) == 0:
        problems.append("The NPZ file has no rows.")
    return ids, x, problems


def _read_csv(path: Path, id_column: str) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    try:
        table = read_csv_table(path, limits=SOLUTION_LIMITS)
    except ScoringError as exc:
        return None, None, [f"The features file could not be read: {exc}"]
    header = table.column_names
    if id_column not in header:
        found = ", ".join(show(n) for n in header[:20])
        return None, None, [f"The id column {show(id_column)} is missing; the columns found are {found}."]
    feature_names = [n for n in header if n != id_column]
    if not feature_names:
        return (
            None,
            None,
            [f"The features file has only the id column {show(id_column)}; it needs feature columns."],
        )
    ids = np.asarray(table.column(id_column).to_pylist(), dtype=str)
    x = np.empty((table.num_rows, len(feature_names)), dtype=np.float32)
    problems: list[str] = []
    for j, name in enumerate(feature_names):
        col = table.column(name)
        try:
            x[:, j] = pc.cast(col, pa.float64()).to_numpy()
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        numbers = pd.to_numeric(
            pd.Series(col.to_numpy(zero_copy_only=False), dtype=object), errors="coerce"
        ).to_numpy(dtype=float)
        bad = np.isnan(numbers)
        problems.append(f"The feature column {show(name)} must hold numbers; {_bad_cells(ids, col, bad)}.")
    return ids, x, problems


# -- checks ------------------------------------------------------------------------------------


def _id_problems(ids: np.ndarray) -> list[str]:
    problems = []
    empty = np.char.str_len(ids) == 0
    if empty.any():
        rows = np.flatnonzero(empty)
        problems.append(f"{len(rows):,} rows have an empty id (row {row_numbers(rows, tally=False)}).")
    padded = (np.char.strip(ids) != ids) & ~empty
    if padded.any():
        bad = ids[padded].tolist()
        problems.append(f"{len(bad):,} ids have leading or trailing whitespace: {examples(bad, len(bad))}.")
    unique, counts = np.unique(ids, return_counts=True)
    duplicated = unique[counts > 1].tolist()
    if duplicated:
        problems.append(
            f"{len(duplicated):,} ids appear more than once: {examples(duplicated, len(duplicated))}."
        )
    return problems


def _value_problems(ids: np.ndarray, x: np.ndarray) -> list[str]:
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if finite.all():
        return []
    rows = np.flatnonzero(~finite)
    names = ids[rows[:5]].tolist()
    return [
        f"{len(rows):,} rows have a feature that is empty, not finite, or too large for float32: "
        f"{examples(names, len(rows))}."
    ]


def _id_match_problems(ids: np.ndarray, solution_ids: set[str]) -> list[str]:
    problems = []
    present = set(ids.tolist())
    extra = sorted(present - solution_ids)
    missing = sorted(solution_ids - present)
    if extra:
        problems.append(f"{len(extra):,} feature ids are not in the solution: {examples(extra, len(extra))}.")
    if missing:
        problems.append(
            f"{len(missing):,} solution ids have no feature row: {examples(missing, len(missing))}."
        )
    return problems


def _bad_cells(ids: np.ndarray, col: pa.ChunkedArray, bad: np.ndarray) -> str:
    return id_examples(pa.array(ids, type=pa.string()), np.flatnonzero(bad), col)
