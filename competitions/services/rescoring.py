"""Scoring challenges again, and the reaper that recovers work a lost worker left behind."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from competitions.models import Competition, RescoreRun, ScoreHistory, Submission
from competitions.selectors import leaderboard
from competitions.services.results import submission_fail
from competitions.services.submissions import submission_enqueue


@transaction.atomic
def competition_rescore(competition: Competition, *, started_by=None) -> RescoreRun:
    """Score every submission of a challenge again, keeping the old results and board positions.

    The run records each team's public and private rank before it starts; every submission's
    previous result goes into ScoreHistory. If workers die half-way, the reaper re-queues what
    is left and `rescore_run_resume` sends the rest again, so a re-score can always finish.
    """
    ranks = {
        board: {
            str(r.team_id): r.rank
            for r in leaderboard(competition, board=board, reveal_private=True) or []
            if r.team_id
        }
        for board in ("public", "private")
    }
    run = RescoreRun.objects.create(competition=competition, started_by=started_by, ranks_before=ranks)
    ids = list(
        Submission.objects.filter(
            competition=competition, status__in=[Submission.Status.SCORED, Submission.Status.FAILED]
        ).values_list("pk", flat=True)
    )
    submissions_rescore(ids, run=run)
    return run


def rescore_run_resume(run: RescoreRun) -> int:
    """Re-send whatever a re-score left unscored (a lost message, a crashed worker)."""
    pending = Submission.objects.filter(
        competition=run.competition, status__in=[Submission.Status.QUEUED, Submission.Status.SCORING]
    ).values_list("pk", flat=True)
    for pk in pending:
        submission_enqueue(pk)
    return len(pending)


def submissions_rescore(submission_ids: list[int], *, run: RescoreRun | None = None) -> int:
    """Queue finished submissions to be scored again, keeping each previous result in history."""
    count = 0
    for pk in submission_ids:
        with transaction.atomic():
            sub = (
                Submission.objects.select_for_update()
                .filter(pk=pk, status__in=[Submission.Status.SCORED, Submission.Status.FAILED])
                .first()
            )
            if sub is None:
                continue
            ScoreHistory.objects.create(
                submission=sub,
                rescore_run=run,
                status=sub.status,
                public_score=sub.public_score,
                private_score=sub.private_score,
                error_message=sub.error_message,
                scored_at=sub.scored_at,
            )
            # A re-score starts with a fresh rescue budget: the reaper's count from the first
            # scoring says nothing about this run.
            Submission.objects.filter(pk=pk).update(
                status=Submission.Status.QUEUED,
                started_at=None,
                scored_at=None,
                queued_at=timezone.now(),
                requeues=0,
            )
            count += 1
            transaction.on_commit(lambda pk=pk: submission_enqueue(pk))
    return count


def reap_stuck_submissions(now: datetime | None = None) -> dict[str, int]:
    """Recover submissions that a lost worker or a lost broker message left behind.

    The database is the source of truth, and only the age of a *claim* says a worker was lost:
    a submission scoring for longer than HOLDOUT_STUCK_AFTER_SECONDS is queued again and that
    counts as a rescue; after HOLDOUT_MAX_SCORING_ATTEMPTS rescues it fails with a message (or,
    when a re-score was replacing a score, keeps that score). A submission that is merely
    queued is never failed and never counted, however long the queue: its message is only sent
    again, at most once per HOLDOUT_STUCK_AFTER_SECONDS, in case the broker lost it (or was
    down when it was submitted). A duplicate message is harmless: the conditional claim lets
    one delivery score it and the others do nothing.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.HOLDOUT_STUCK_AFTER_SECONDS)
    resent = requeued = failed = 0
    # Each update is conditional on what was read, so a worker claiming or finishing the row at
    # the same moment wins and the reaper leaves it alone.
    waiting = Submission.objects.filter(status=Submission.Status.QUEUED, queued_at__lt=cutoff)
    for pk, queued_at in waiting.values_list("pk", "queued_at"):
        if Submission.objects.filter(pk=pk, status=Submission.Status.QUEUED, queued_at=queued_at).update(
            queued_at=now
        ):
            resent += submission_enqueue(pk)
    lost = Submission.objects.filter(status=Submission.Status.SCORING, started_at__lt=cutoff)
    for pk, attempt, requeues in lost.values_list("pk", "attempts", "requeues"):
        if requeues >= settings.HOLDOUT_MAX_SCORING_ATTEMPTS:
            failed += submission_fail(pk, GAVE_UP_MESSAGE, attempt, platform=True)
        elif Submission.objects.filter(pk=pk, status=Submission.Status.SCORING, attempts=attempt).update(
            status=Submission.Status.QUEUED, started_at=None, queued_at=now, requeues=F("requeues") + 1
        ):
            requeued += 1
            submission_enqueue(pk)
    return {"resent": resent, "requeued": requeued, "failed": failed}


GAVE_UP_MESSAGE = (
    "Scoring did not finish after several attempts. This submission does not "
    "count against your limits; please submit it again."
)
