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
    from .limits import DEFAULT_LIMITS, Limits
    from .metrics import METRICS, Metric, get_metric, metric_choices
    from .prepared import SolutionInfo, read_solution_info
    from .reader import read_submission
    from .sample import sample_submission_csv
    from .scoring import ScoreResult, score_submission
    from .solution import prepare_solution

_EXPORTS = {
    "ScoringError": "errors",
    "SolutionError": "errors",
    "METRICS": "metrics",
    "Metric": "metrics",
    "get_metric": "metrics",
    "metric_choices": "registry",
    "DEFAULT_LIMITS": "limits",
    "Limits": "limits",
    "read_submission": "reader",
    "ScoreResult": "scoring",
    "score_submission": "scoring",
    "SolutionInfo": "prepared",
    "prepare_solution": "solution",
    "read_solution_info": "prepared",
    "sample_submission_csv": "sample",
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
