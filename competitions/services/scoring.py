"""The worker-side scoring pipeline: fetch the files, run a model if needed, call the engine.

Only workers import this module (the package re-exports its names lazily): it loads the
engine (pyarrow, scikit-learn) and the model sandbox.
"""

import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from competitions.models import Competition, Submission
from competitions.services.files import cached_copy, local_copy
from competitions.services.results import (
    INTERNAL_ERROR_MESSAGE,
    MISCONFIGURED_MESSAGE,
    _finish,
    submission_claim,
    submission_fail,
    submission_fail_over_time,
    submission_release,
)
from workers.engine import DEFAULT_LIMITS, Limits, ScoreResult, ScoringError, SolutionError, score_submission
from workers.modelrun.isolation import DEFAULT_HIDDEN, Policy
from workers.modelrun.sandbox import RunnerUnavailable, SandboxLimits, configure_isolation, predict_to_csv

log = logging.getLogger(__name__)


# Counts against the limits: see _score_model_predictions.
MODEL_PREDICTIONS_MESSAGE = (
    "The model's predictions on the test set could not be scored; the model must output {spec}. "
    "This submission counts against your limits."
)


def sandbox_policy() -> Policy:
    """What a model child hides (every place hidden or private data lives) and must enforce."""
    hidden = [*DEFAULT_HIDDEN, settings.VAR_DIR, settings.MEDIA_ROOT, settings.PRIVATE_ROOT]
    hidden.append(settings.HOLDOUT_WORKER_CACHE)
    hidden += [
        s["OPTIONS"]["location"] for s in settings.STORAGES.values() if "location" in s.get("OPTIONS", {})
    ]
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        hidden.append(Path(database["NAME"]).parent)
    return Policy(
        hidden=tuple(dict.fromkeys(str(p) for p in hidden)),
        require=frozenset(settings.HOLDOUT_SANDBOX_REQUIRE),
        user=settings.HOLDOUT_SANDBOX_USER,
    )


def _predictions_from_model(competition: Competition, model: Path, workdir: Path) -> Path:
    """Run a learner's Keras model on the hidden features (in the sandbox) into a CSV."""
    if not competition.hidden_features:
        raise SolutionError(["The model challenge has no hidden test features."])
    configure_isolation(sandbox_policy())
    out = workdir / "predictions.csv"
    # The model's own run gets most of the challenge's time; reading and scoring need the rest.
    wall = max(competition.scoring_time_limit - 15, 5)
    limits = replace(SandboxLimits(), wall_seconds=wall, cpu_seconds=max(int(wall * 2), 10))
    predict_to_csv(
        model,
        cached_copy(competition.hidden_features),
        out,
        id_column=competition.id_column,
        submission_columns=competition.submission_columns,
        metric=competition.metric,
        classes=(competition.solution_info or {}).get("classes"),
        limits=limits,
    )
    return out


def _score_model_predictions(
    competition: Competition, predictions: Path, solution_path: Path, submission_id: int
) -> ScoreResult:
    """Score the CSV the sandbox wrote, never showing the engine's message to the learner.

    The engine's messages name ids and echo values, which here are hidden test ids and the
    model's outputs (a model can copy hidden features into them). The sandbox checks outputs
    first, so reaching this is a gap in its checks: the operator's log gets the detail, the
    learner a message without it, charged like the sandbox's own refusals of outputs.
    """
    try:
        return score_submission(predictions, solution_path, metric=competition.metric, limits=_limits())
    except ScoringError as exc:
        log.warning("model predictions of submission %s failed scoring: %s", submission_id, exc)
        raise ScoringError(
            MODEL_PREDICTIONS_MESSAGE.format(spec=competition.model_output_spec), charged=True
        ) from None


def _limits() -> Limits:
    return replace(DEFAULT_LIMITS, max_decompressed_bytes=settings.HOLDOUT_MAX_DECOMPRESSED_BYTES)


@dataclass(frozen=True)
class ScoringOutcome:
    status: str
    message: str = ""


def submission_score(submission_id: int) -> ScoringOutcome | None:
    """Score one submission end to end. Returns None when there was nothing to do.

    Learner mistakes (ScoringError) and organizer mistakes (SolutionError) end as FAILED with a
    message that never mentions the split; an unexpected bug also ends as FAILED with a generic
    message, so no row is left "scoring". A failure is charged only when the engine says so
    (``ScoringError.charged``: the file was valid but its score could not be computed).
    Transient infrastructure errors propagate so the task can retry.
    """
    attempt = submission_claim(submission_id)
    if attempt is None:
        return None
    submission = Submission.objects.select_related("competition").get(pk=submission_id)
    competition = submission.competition
    try:
        solution_path = cached_copy(competition.prepared_solution)
        with tempfile.TemporaryDirectory(prefix="holdout-score-") as tmp:
            upload = local_copy(submission.file, Path(tmp), "submission")
            if competition.kind == Competition.Kind.MODEL:
                upload = _predictions_from_model(competition, upload, Path(tmp))
                result = _score_model_predictions(competition, upload, solution_path, submission_id)
            else:
                result = score_submission(upload, solution_path, metric=competition.metric, limits=_limits())
    except ScoringError as exc:
        submission_fail(submission_id, str(exc), attempt, charged=exc.charged)
        return ScoringOutcome(Submission.Status.FAILED, str(exc))
    except SolutionError:
        log.exception("solution of %s cannot score submission %s", competition.slug, submission_id)
        submission_fail(submission_id, MISCONFIGURED_MESSAGE, attempt, platform=True)
        return ScoringOutcome(Submission.Status.FAILED, MISCONFIGURED_MESSAGE)
    except (OSError, MemoryError, RunnerUnavailable):
        # Storage, disk or sandbox trouble is usually passing: give the row back and let the
        # task retry (the reaper fails it with a message if it never succeeds).
        submission_release(submission_id)
        raise
    except SoftTimeLimitExceeded:
        # The challenge's own time limit (Celery's soft limit raised inside this run): a
        # promised message, not "a problem on our side".
        submission_fail_over_time(submission_id, attempt)
        return ScoringOutcome(Submission.Status.FAILED, "time limit")
    except Exception:
        log.exception("unexpected error scoring submission %s", submission_id)
        submission_fail(submission_id, INTERNAL_ERROR_MESSAGE, attempt, platform=True)
        return ScoringOutcome(Submission.Status.FAILED, INTERNAL_ERROR_MESSAGE)
    _finish(
        submission_id,
        attempt,
        status=Submission.Status.SCORED,
        error_message="",
        public_score=result.public_score,
        private_score=result.private_score,
    )
    return ScoringOutcome(Submission.Status.SCORED)
