"""Celery tasks: thin wrappers that own the retry policy and call a service.

Each imports its service inside the body (Read the Docs' way): the services import this module
to enqueue, and the scoring service loads the engine, which only a worker should.
"""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

# Only errors that a later attempt can cure are retried: the database or the storage being
# briefly unreachable. A bad file is not transient and ends as FAILED inside the service.
TRANSIENT = (OperationalError, InterfaceError, OSError)


@shared_task(
    name="holdout.score_submission",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
)
def score_submission(self, submission_id: int) -> str | None:
    from competitions.services import results, scoring

    try:
        outcome = scoring.submission_score(submission_id)
    except SoftTimeLimitExceeded:
        results.submission_fail_over_time(submission_id)
        return "failed"
    except DatabaseError:
        # The claim may have succeeded before the database went away: hand the row back so the
        # retry can claim it again (if that fails too, the reaper re-queues it later).
        try:
            results.submission_release(submission_id)
        except DatabaseError:
            log.warning("could not release submission %s; the reaper will", submission_id)
        raise
    return outcome.status if outcome else None


@shared_task(name="holdout.reap_stuck_submissions", acks_late=True)
def reap_stuck_submissions() -> dict[str, int]:
    from competitions.services import rescoring

    return rescoring.reap_stuck_submissions()


@shared_task(name="holdout.delete_stale_uploads", acks_late=True)
def delete_stale_uploads() -> int:
    """Kaggle-CLI uploads that never became a submission (the CLI died between its two calls)."""
    from competitions.api.blobs import stale_blobs_delete

    return stale_blobs_delete()
