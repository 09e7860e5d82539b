"""The Django-free scoring engine: read uploads safely, prepare solutions, score submissions."""

from .errors import ScoringError, SolutionError
from .metrics import METRICS, Metric, get_metric, metric_choices
from .reader import DEFAULT_LIMITS, Limits, read_submission
from .scoring import ScoreResult, score_submission
from .solution import SolutionInfo, prepare_solution, read_solution_info, sample_submission_csv

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
