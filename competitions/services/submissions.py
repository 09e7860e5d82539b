"""Accepting uploads within limits, queueing them for scoring, final selections."""

import logging
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from competitions.models import Competition, Participation, Submission
from competitions.selectors import submission_quota
from competitions.services.participation import TEAM_CHANGED, lock_own_team
from competitions.tasks import score_submission

log = logging.getLogger(__name__)


@transaction.atomic
def submission_create(
    *, user, competition: Competition, uploaded: UploadedFile, description: str = ""
) -> Submission:
    """Store an upload and queue it for scoring, enforcing the team's limits atomically.

    The team row is locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite runs the transaction
    IMMEDIATE, which serialises writers), so parallel uploads see each other's rows and can never
    push a team past its daily or total limit.
    """
    if not Participation.objects.filter(user=user, competition=competition).exists():
        raise ValidationError("Join the challenge (and accept its rules) before submitting.")
    is_organizer = competition.is_organizer(user)
    now = timezone.now()
    if not competition.has_started(now) and not is_organizer:
        raise ValidationError(f"This challenge opens at {competition.start_at:%Y-%m-%d %H:%M} UTC.")
    is_late = competition.has_ended(now)
    if is_late and not competition.late_submissions:
        raise ValidationError(f"This challenge closed at {competition.deadline_at:%Y-%m-%d %H:%M} UTC.")
    if not competition.is_ready:
        raise ValidationError("This challenge is not accepting submissions yet: it has no solution.")
    if uploaded.size is not None and uploaded.size > competition.max_upload_bytes:
        raise ValidationError(
            f"The file is {uploaded.size / 1024 / 1024:.1f} MB; this challenge accepts at most "
            f"{competition.max_upload_mb} MB."
        )
    if uploaded.size == 0:
        raise ValidationError("The file is empty.")

    _, team = lock_own_team(user, competition)
    quota = submission_quota(team, now)
    if quota.daily_left <= 0:
        raise ValidationError(
            f"Your team has used all {competition.daily_limit} submissions for today (UTC). "
            f"The count resets at {quota.resets_at:%H:%M} UTC."
        )
    if quota.total_left is not None and quota.total_left <= 0:
        raise ValidationError(
            f"Your team has used all {competition.total_limit} submissions allowed in this challenge."
        )
    if quota.free_failures_left <= 0:
        # Failures are free so that a learner can fix a file, but each one takes a worker's
        # time (a bomb, minutes): past the day's allowance the team waits for the next day.
        raise ValidationError(
            f"{quota.free_failures_today} of your team's submissions failed today (UTC) without "
            f"counting against your limits; {quota.free_failures_limit} a day is the most allowed. "
            f"You can submit again from {quota.resets_at:%H:%M} UTC. Before that, check your file: "
            f"the header {','.join(competition.submission_columns)} and one row per id."
        )

    submission = Submission(
        competition=competition,
        team=team,
        submitted_by=user,
        original_name=Path(uploaded.name or "submission.csv").name[:255],
        size=uploaded.size,
        is_late=is_late,
        description=description.strip()[:500],
        created_at=now,
        queued_at=now,
    )
    submission.file.save("upload", uploaded, save=False)
    try:
        submission.full_clean()
        submission.save()
    except Exception:
        submission.file.delete(save=False)
        raise
    # Enqueue only once the row is committed, or a fast worker would find nothing to score.
    transaction.on_commit(lambda: submission_enqueue(submission.pk))
    return submission


def scoring_queue(competition: Competition) -> str:
    return "models" if competition.kind == Competition.Kind.MODEL else "scoring"


def enqueue_scoring(submission_id: int, *, queue: str, time_limit: int) -> None:
    """Send a submission to a scoring queue with the challenge's soft time limit (the hard one
    follows 30 s later; both stay under the platform's, which the Redis visibility timeout
    exceeds). Prediction files go to "scoring"; Keras models to "models", whose worker has
    TensorFlow. In eager mode (tests) apply_async runs the task right here."""
    score_submission.apply_async(
        args=[submission_id], queue=queue, soft_time_limit=time_limit, time_limit=time_limit + 30
    )


def submission_enqueue(submission_id: int) -> bool:
    """Send a submission to its workers; False (logged) when the broker cannot take it now.

    The committed row is the source of truth and the message only a wake-up call, so a broker
    that is down must not turn an accepted upload into an error page: the row stays queued, is
    marked as not sent, and the reaper sends it on its next pass once the broker is back.
    Publishing gives up after about a second (CELERY_TASK_PUBLISH_RETRY_POLICY), so the
    learner's request is not held for long either.
    """
    competition = (
        Competition.objects.filter(submissions__pk=submission_id).only("kind", "scoring_time_limit").first()
    )
    if competition is None:
        return False
    try:
        enqueue_scoring(
            submission_id, queue=scoring_queue(competition), time_limit=competition.scoring_time_limit
        )
    except Exception:
        # kombu's OperationalError, redis' ConnectionError, a broker out of memory...: whatever
        # the transport raises, the reaper is the way back.
        log.exception("could not send submission %s to the broker; the reaper will send it", submission_id)
        unsent = timezone.now() - timedelta(seconds=settings.HOLDOUT_STUCK_AFTER_SECONDS + 1)
        Submission.objects.filter(pk=submission_id, status=Submission.Status.QUEUED).update(queued_at=unsent)
        return False
    return True


@transaction.atomic
def submission_set_final(*, user, submission: Submission, selected: bool) -> Submission:
    """Select (or unselect) a submission for the private leaderboard, until the deadline."""
    competition = submission.competition
    if not Participation.objects.filter(
        user=user, competition=competition, team_id=submission.team_id
    ).exists():
        raise ValidationError("Only members of the team can select its submissions.")
    _, team = lock_own_team(user, competition)
    if not Submission.objects.filter(pk=submission.pk, team=team).exists():
        raise ValidationError(TEAM_CHANGED)
    if competition.has_ended():
        raise ValidationError("Final submissions cannot change after the deadline.")
    submission = Submission.objects.get(pk=submission.pk)
    if selected:
        if submission.status != Submission.Status.SCORED or submission.is_late:
            raise ValidationError("Only scored submissions made before the deadline can be selected.")
        chosen = Submission.objects.filter(team=team, is_final=True).exclude(pk=submission.pk).count()
        if chosen >= competition.final_submission_count:
            raise ValidationError(
                f"Your team has already selected {competition.final_submission_count} submissions; "
                "unselect one first."
            )
    submission.is_final = selected
    submission.save(update_fields=["is_final"])
    return submission


def submissions_mark(queryset, **fields) -> int:
    """Organizer actions on submissions (baseline flag, disqualification): one UPDATE."""
    return queryset.update(**fields)
