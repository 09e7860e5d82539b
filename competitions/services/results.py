"""Claiming a submission for scoring and storing its outcome: the worker's database writes."""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from competitions.models import Competition, ScoreHistory, Submission

log = logging.getLogger(__name__)


INTERNAL_ERROR_MESSAGE = (
    "Holdout could not score this submission because of a problem on our side. "
    "It does not count against your limits; please submit it again later."
)


TIME_LIMIT_MESSAGE = (
    "Scoring took longer than this challenge's {limit} s limit and was stopped. "
    "This submission does not count against your limits."
)


MISCONFIGURED_MESSAGE = (
    "This challenge's solution is being updated by its organizers, so the submission could not "
    "be scored. It does not count against your limits."
)


def submission_claim(submission_id: int) -> int | None:
    """Move a queued submission to scoring and return this attempt's number; None when another
    worker has it or it is done.

    The conditional update is the lock: of two deliveries of the same message only one changes
    a row, which is what makes acks_late (and the reaper's re-enqueueing) safe. A row left in
    "scoring" for longer than the hard time limit belongs to a run that cannot be alive any
    more (the limit kills it), so a redelivered message may take it over at once instead of
    waiting for the reaper.
    """
    now = timezone.now()
    dead_before = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    claimable = Q(status=Submission.Status.QUEUED) | Q(
        status=Submission.Status.SCORING, started_at__lt=dead_before
    )
    with transaction.atomic():
        claimed = Submission.objects.filter(claimable, pk=submission_id).update(
            status=Submission.Status.SCORING, started_at=now, attempts=F("attempts") + 1
        )
        if not claimed:
            return None
        return Submission.objects.filter(pk=submission_id).values_list("attempts", flat=True).get()


# Storing a result survives the database being away for a few seconds: the score took real
# work to compute, so it is retried here before the task gives the row back.
STORE_RETRY_DELAYS = (0.5, 1, 2, 4)


def _finish(submission_id: int, attempt: int | None = None, **fields) -> bool:
    """Store a result only while the row is still ours: scoring, and (when the caller knows
    its attempt) not taken over since by a newer attempt."""
    mine = Submission.objects.filter(pk=submission_id, status=Submission.Status.SCORING)
    if attempt is not None:
        mine = mine.filter(attempts=attempt)
    for delay in (*STORE_RETRY_DELAYS, None):
        try:
            return mine.update(scored_at=timezone.now(), **fields) == 1
        except (OperationalError, InterfaceError):
            if delay is None or not transaction.get_autocommit():
                raise
            log.warning("database unavailable storing submission %s; retrying in %s s", submission_id, delay)
            connection.close()  # the next query opens a fresh connection
            time.sleep(delay)
    return False


def submission_fail(
    submission_id: int,
    message: str,
    attempt: int | None = None,
    *,
    charged: bool = False,
    platform: bool = False,
) -> bool:
    """End a scoring run as FAILED with a message the learner sees.

    ``platform`` marks a failure that was ours, not the file's: it is free and does not use up
    the team's daily allowance of free failures either, so an outage never locks a team out.

    A re-score never turns a scored submission into a failure: when the result this run was
    meant to replace was a score, that score comes back and the failure is recorded in the
    submission's history for the organizer (`_keep_previous_score`).
    """
    previous = _previous_score(submission_id)
    if previous is not None:
        return _keep_previous_score(submission_id, attempt, previous, message)
    return _finish(
        submission_id,
        attempt,
        status=Submission.Status.FAILED,
        error_message=message,
        public_score=None,
        private_score=None,
        charged=charged,
        platform_failure=platform,
    )


RESCORE_KEPT_NOTE = "The re-score did not produce a score, so the previous score was kept. Reason: {}"


def _previous_score(submission_id: int) -> ScoreHistory | None:
    """The score that the re-score now running was meant to replace, if it was a score.

    Only `submissions_rescore` writes history, just before it queues the row again (and a
    failed re-score's note is a FAILED entry), so for a row being scored the newest entry is
    the result it had before this re-score; a first scoring has no history at all.
    """
    latest = ScoreHistory.objects.filter(submission_id=submission_id).order_by("-recorded_at", "-pk").first()
    return latest if latest is not None and latest.status == Submission.Status.SCORED else None


def _keep_previous_score(
    submission_id: int, attempt: int | None, previous: ScoreHistory, reason: str
) -> bool:
    """Put a re-scored submission back to its previous score and note why in its history.

    The learner sees their old score, as if the re-score had not happened; the organizer sees
    the failed attempt, with the message the learner would have got, in the admin.
    """
    mine = Submission.objects.filter(pk=submission_id, status=Submission.Status.SCORING)
    if attempt is not None:
        mine = mine.filter(attempts=attempt)
    with transaction.atomic():
        kept = mine.update(
            status=Submission.Status.SCORED,
            error_message="",
            public_score=previous.public_score,
            private_score=previous.private_score,
            scored_at=previous.scored_at or timezone.now(),
        )
        if kept:
            ScoreHistory.objects.create(
                submission_id=submission_id,
                rescore_run=previous.rescore_run,
                status=Submission.Status.FAILED,
                error_message=RESCORE_KEPT_NOTE.format(reason),
                scored_at=timezone.now(),
            )
    if kept:
        log.warning("re-score of submission %s failed, previous score kept: %s", submission_id, reason)
    return kept == 1


def submission_fail_over_time(submission_id: int, attempt: int | None = None) -> bool:
    """The challenge's scoring time limit ran out (Celery's soft limit fired in the task)."""
    limit = (
        Competition.objects.filter(submissions__pk=submission_id)
        .values_list("scoring_time_limit", flat=True)
        .first()
    )
    return submission_fail(
        submission_id,
        TIME_LIMIT_MESSAGE.format(limit=limit),
        attempt,
    )


def submission_release(submission_id: int) -> None:
    """Hand a claimed submission back to the queue after a transient failure."""
    Submission.objects.filter(pk=submission_id, status=Submission.Status.SCORING).update(
        status=Submission.Status.QUEUED, started_at=None
    )
