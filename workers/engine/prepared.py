"""The prepared solution file: what it holds, and reading it back.

The prepared parquet holds ``id`` (string), ``target`` (string for label metrics, float64 for
numeric ones) and ``public`` (bool), sorted by id, with the SolutionInfo and the preparation
settings in the schema metadata (under METADATA_KEY). solution.py writes it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import SolutionError, show
from .metrics import Metric

METADATA_KEY = b"holdout"


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
