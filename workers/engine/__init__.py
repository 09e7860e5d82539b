"""The Django-free scoring engine: read uploads safely, prepare solutions, score submissions.

Names are re-exported lazily: the web process imports ``workers.engine.registry`` (metric names
and directions) and ``workers.engine.errors`` without loading pyarrow, pandas or scikit-learn,
which only scoring and solution preparation need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.lazy import lazy_getattr

if TYPE_CHECKING:
    from .errors import ScoringError, SolutionError
    from .metrics import METRICS, Metric, get_metric, metric_choices
    from .reader import DEFAULT_LIMITS, Limits, read_submission
    from .scoring import ScoreResult, score_submission
    from .solution import SolutionInfo, prepare_solution, read_solution_info, sample_submission_csv

_EXPORTS = {
    "ScoringError": "errors",
    "SolutionError": "errors",
    "METRICS": "metrics",
    "Metric": "metrics",
    "get_metric": "metrics",
    "metric_choices": "registry",
    "DEFAULT_LIMITS": "reader",
    "Limits": "reader",
    "read_submission": "reader",
    "ScoreResult": "scoring",
    "score_submission": "scoring",
    "SolutionInfo": "solution",
    "prepare_solution": "solution",
    "read_solution_info": "solution",
    "sample_submission_csv": "solution",
}

__all__ = [
    "DEFAULT_LIMITS",
    "METRICS",
    "Limits",
    "Metric",
    "ScoreResult",
    "ScoringError",
    "SolutionError",
    "SolutionInfo",
    "get_metric",
    "metric_choices",
    "prepare_solution",
    "read_solution_info",
    "read_submission",
    "sample_submission_csv",
    "score_submission",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
