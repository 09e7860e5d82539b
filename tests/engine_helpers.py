"""Small builders shared by the engine tests (beside tests/factories.py, which builds database rows)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from workers.engine import ScoringError, prepare_solution


def write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_solution(
    tmp_path: Path,
    metric: str,
    ids: Sequence[str],
    targets: Sequence[object],
    *,
    usage: Sequence[str] | None = None,
    public_fraction: float = 0.5,
    seed: int | None = 0,
    name: str = "solution",
) -> Path:
    """Prepare a solution with columns ``id`` and ``target`` and return the parquet path."""
    header = ["id", "target"] + (["Usage"] if usage is not None else [])
    rows = [
        [i, t] + ([usage[k]] if usage is not None else [])
        for k, (i, t) in enumerate(zip(ids, targets, strict=True))
    ]
    src = write_rows(tmp_path / f"{name}.csv", header, rows)
    out = tmp_path / f"{name}.parquet"
    prepare_solution(
        src,
        out,
        id_column="id",
        target_column="target",
        metric=metric,
        public_fraction=public_fraction,
        seed=seed,
    )
    return out


def learner_error(excinfo: pytest.ExceptionInfo[ScoringError]) -> str:
    """The message a learner would see, checked for leaks about the leaderboard split."""
    message = str(excinfo.value)
    assert message, "error messages must not be empty"
    lowered = message.lower()
    assert "public" not in lowered and "private" not in lowered, message
    assert "Traceback" not in message
    return message
