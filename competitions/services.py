"""Write operations. Views, the admin and Celery tasks call these; nothing else writes rows."""

import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from competitions.models import (
    Competition,
    DataFile,
    Participation,
    RescoreRun,
    ScoreHistory,
    Submission,
    Team,
)
from competitions.selectors import leaderboard, submission_quota
from workers.celery_app import enqueue_scoring
from workers.engine import (
    DEFAULT_LIMITS,
    Limits,
    ScoreResult,
    ScoringError,
    SolutionError,
    SolutionInfo,
    prepare_solution,
    score_submission,
)
from workers.engine.solution import sample_submission_csv, solution_ids
from workers.modelrun.features import FeaturesInfo, inspect_features
from workers.modelrun.isolation import DEFAULT_HIDDEN, Policy
from workers.modelrun.sandbox import RunnerUnavailable, SandboxLimits, configure_isolation, predict_to_csv

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
# Counts against the limits: see _score_model_predictions.
MODEL_PREDICTIONS_MESSAGE = (
    "The model's predictions on the test set could not be scored; the model must output {spec}. "
    "This submission counts against your limits."
)


# --- Participation --------------------------------------------------------------------------


@transaction.atomic
def competition_join(*, user, competition: Competition, invite_code: str | None = None) -> Participation:
    """Join a competition, accepting its rules, as a new solo team (Kaggle's model).

    Drafts admit only their organizers (for dry runs); unlisted challenges need their invite
    code; the optional allow-list filters by e-mail; nobody joins after the entry deadline,
    except into a closed challenge that keeps taking late submissions for practice.
    """
    existing = Participation.objects.filter(user=user, competition=competition).first()
    if existing:
        return existing
    organizer = competition.is_organizer(user)
    if not organizer:
        if competition.state == Competition.State.DRAFT:
            raise ValidationError("This challenge is not open to participants yet.")
        if competition.state == Competition.State.UNLISTED and invite_code != competition.invite_code:
            raise ValidationError("This challenge can only be joined through its invite link.")
        if competition.restricts_by_email and not user.email_verified:
            raise ValidationError(
                f"This challenge is limited to certain e-mail addresses, and only a confirmed address "
                f"counts: confirm your e-mail address first. We sent a link to {user.email}; open it, "
                "then join again. No e-mail? Send the link again (below, or from your profile page)."
            )
        if not competition.allows_email(user.email):
            raise ValidationError(
                "This challenge is restricted to invited e-mail addresses; yours is not on its list."
            )
        now = timezone.now()
        if competition.has_ended(now) and not competition.late_submissions:
            raise ValidationError("This challenge has ended; it can no longer be joined.")
        if competition.entry_closed(now) and not competition.has_ended(now):
            raise ValidationError(
                f"The entry deadline ({competition.effective_entry_deadline:%Y-%m-%d %H:%M} UTC) has passed."
            )
    # A double-clicked Join, or two new teams picking the same name at once, collide on a unique
    # constraint; the savepoint lets us look again instead of failing with a 500.
    for _ in range(3):
        try:
            with transaction.atomic():
                team = Team.objects.create(
                    competition=competition, name=unique_team_name(competition, user.username)
                )
                participation = Participation(
                    user=user, competition=competition, team=team, rules_accepted_at=timezone.now()
                )
                # The unique constraint is left to the database: a racing join lands below.
                participation.full_clean(validate_unique=False, validate_constraints=False)
                participation.save()
                return participation
        except IntegrityError:
            existing = Participation.objects.filter(user=user, competition=competition).first()
            if existing:
                return existing
    raise ValidationError("Joining failed because of a conflict; please try again.")


TEAM_CHANGED = "Your team changed while this was being done (a merge); reload the page and try again."


def lock_own_team(user, competition: Competition) -> tuple[Participation, Team]:
    """Lock the user's current team row and return it with their participation.

    The participation is read before the lock, so a merge that commits in between may have
    moved the user and deleted the team that was read; the team is then looked up again. Every
    write that counts or changes a team's submissions or members goes through here (or locks
    the teams it merges), which serialises them per team.
    """
    for _ in range(3):
        participation = Participation.objects.filter(user=user, competition=competition).first()
        if participation is None:
            raise ValidationError("Join the challenge (and accept its rules) first.")
        team = Team.objects.select_for_update().filter(pk=participation.team_id).first()
        if team is not None and (Participation.objects.filter(pk=participation.pk, team=team).exists()):
            participation.team = team
            return participation, team
    raise ValidationError(TEAM_CHANGED)


def unique_team_name(competition: Competition, base: str) -> str:
    # Usernames may be longer than team names; leave room for a " (n)" suffix.
    base = base[: Team._meta.get_field("name").max_length - 8]
    name, n = base, 1
    while Team.objects.filter(competition=competition, name=name).exists():
        n += 1
        name = f"{base} ({n})"
    return name


# --- Submissions ----------------------------------------------------------------------------


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
    transaction.on_commit(lambda: _enqueue(submission.pk))
    return submission


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


def _local_copy(field_file, directory: Path, name: str) -> Path:
    """Copy a stored file to the worker's disk: storages may be remote (S3)."""
    target = directory / name
    with field_file.storage.open(field_file.name, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, length=1024 * 1024)
    return target


def _cached(field_file) -> Path:
    """A hidden file (prepared solution, model features) on this worker's disk, fetched once per
    version: stored names are random and never reused, so the name is the cache key."""
    cache_dir = Path(settings.HOLDOUT_WORKER_CACHE)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / Path(field_file.name).name
    if not cached.exists():
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".part")
        with open(fd, "wb") as dst, field_file.storage.open(field_file.name, "rb") as src:
            shutil.copyfileobj(src, dst, length=1024 * 1024)
        Path(tmp).replace(cached)  # atomic: concurrent workers never read half a file
    return cached


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
        _cached(competition.hidden_features),
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


def scoring_queue(competition: Competition) -> str:
    return "models" if competition.kind == Competition.Kind.MODEL else "scoring"


def _enqueue(submission_id: int) -> bool:
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
        solution_path = _cached(competition.prepared_solution)
        with tempfile.TemporaryDirectory(prefix="holdout-score-") as tmp:
            upload = _local_copy(submission.file, Path(tmp), "submission")
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
        _enqueue(pk)
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
            transaction.on_commit(lambda pk=pk: _enqueue(pk))
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
            resent += _enqueue(pk)
    lost = Submission.objects.filter(status=Submission.Status.SCORING, started_at__lt=cutoff)
    for pk, attempt, requeues in lost.values_list("pk", "attempts", "requeues"):
        if requeues >= settings.HOLDOUT_MAX_SCORING_ATTEMPTS:
            failed += submission_fail(pk, GAVE_UP_MESSAGE, attempt, platform=True)
        elif Submission.objects.filter(pk=pk, status=Submission.Status.SCORING, attempts=attempt).update(
            status=Submission.Status.QUEUED, started_at=None, queued_at=now, requeues=F("requeues") + 1
        ):
            requeued += 1
            _enqueue(pk)
    return {"resent": resent, "requeued": requeued, "failed": failed}


GAVE_UP_MESSAGE = (
    "Scoring did not finish after several attempts. This submission does not "
    "count against your limits; please submit it again."
)


# --- Organizer operations --------------------------------------------------------------------


@contextmanager
def _spooled(uploaded, filename: str) -> Iterator[Path]:
    """Write an upload into a fresh temporary directory and yield its path there.

    Engine errors inside become a ValidationError listing every problem, and the directory is
    removed; on success the caller owns the directory (the parent of what it returns) and must
    remove it.
    """
    tmp = Path(tempfile.mkdtemp(prefix="holdout-upload-"))
    local = tmp / filename
    with open(local, "wb") as dst:
        for chunk in uploaded.chunks():
            dst.write(chunk)
    if hasattr(uploaded, "seek"):
        uploaded.seek(0)
    try:
        yield local
    except SolutionError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValidationError([ValidationError(p) for p in exc.problems]) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def solution_prepare_upload(
    uploaded,
    *,
    id_column: str,
    target_column: str,
    metric: str,
    public_fraction: float,
    seed: int | None = None,
    keep_split: Path | None = None,
) -> tuple[Path, SolutionInfo]:
    """Validate an uploaded solution and build its prepared form in a temporary directory.

    The split is kept from ``keep_split`` (a prepared solution) when it still fits, else drawn
    anew: from ``seed`` if one is given, otherwise from a secret random source.

    Raises ValidationError listing every problem (for the admin form). The caller owns the
    returned directory (the parent of the returned path) and must remove it.
    """
    with _spooled(uploaded, "solution.csv") as src:
        out = src.parent / "prepared.parquet"
        info = prepare_solution(
            src,
            out,
            id_column=id_column,
            target_column=target_column,
            metric=metric,
            public_fraction=public_fraction,
            seed=seed,
            keep_split=keep_split,
        )
    return out, info


def stored_split(competition: Competition) -> Path | None:
    """The competition's current prepared solution on local disk, whose split a re-preparation
    keeps unless the organizer explicitly re-splits."""
    return _cached(competition.prepared_solution) if competition.prepared_solution else None


def solution_prepare_for(
    competition: Competition, uploaded, *, resplit: bool = False, keep_split: Path | None = None
) -> tuple[Path, SolutionInfo]:
    """solution_prepare_upload with a competition's own columns, metric and split settings,
    keeping its stored split (or ``keep_split``) unless ``resplit``."""
    return solution_prepare_upload(
        uploaded,
        id_column=competition.id_column,
        target_column=competition.target_column,
        metric=competition.metric,
        public_fraction=competition.public_fraction,
        seed=competition.split_seed,
        keep_split=None if resplit else (keep_split or stored_split(competition)),
    )


@transaction.atomic
def competition_set_solution(
    competition: Competition, *, source, prepared: Path, info: SolutionInfo, original_name: str
) -> None:
    """Store a validated solution (source CSV and prepared form) and its split on a competition."""
    old = [f.name for f in (competition.solution, competition.prepared_solution) if f]
    if source is not None:
        competition.solution.save(original_name, source, save=False)
        competition.solution_name = Path(original_name).name
    with open(prepared, "rb") as fh:
        competition.prepared_solution.save("prepared.parquet", File(fh), save=False)
    competition.solution_info = info.to_dict()
    competition.split_fraction_used = competition.public_fraction
    competition.split_seed_used = competition.split_seed
    competition.solution_updated_at = timezone.now()
    competition.save()
    keep = {competition.solution.name, competition.prepared_solution.name}
    storage = competition.prepared_solution.storage
    transaction.on_commit(lambda: [storage.delete(n) for n in old if n not in keep])


def competition_reprepare_solution(competition: Competition, *, resplit: bool = False) -> SolutionInfo:
    """Re-derive the prepared solution from the stored CSV with the competition's current settings.

    Used after a metric or column change, which keeps the stored split, and for an explicit
    re-split (``resplit=True``), which draws a new one.
    """
    if not competition.solution:
        raise ValidationError("This challenge has no solution file yet.")
    with competition.solution.open("rb") as fh:
        prepared, info = solution_prepare_for(competition, File(fh), resplit=resplit)
    try:
        competition_set_solution(
            competition, source=None, prepared=prepared, info=info, original_name=competition.solution_name
        )
    finally:
        shutil.rmtree(prepared.parent, ignore_errors=True)
    return info


def features_validate(
    uploaded, *, competition: Competition, prepared: Path | None = None
) -> tuple[Path, FeaturesInfo]:
    """Check a model challenge's hidden test features against its solution's ids.

    Returns a temporary copy (the caller removes its parent directory) and what the Data tab
    shows: the per-row input shape. Raises ValidationError listing every problem.
    """
    suffix = ".npz" if (uploaded.name or "").lower().endswith(".npz") else ".csv"
    with _spooled(uploaded, f"features{suffix}") as local:
        if prepared is None and not competition.prepared_solution:
            raise SolutionError(["Upload the solution first: the features must cover exactly its ids."])
        ids = solution_ids(prepared or _cached(competition.prepared_solution))
        info = inspect_features(local, id_column=competition.id_column, solution_ids=ids)
    return local, info


@transaction.atomic
def competition_set_features(
    competition: Competition, *, local: Path, info: FeaturesInfo, original_name: str
) -> None:
    old = competition.hidden_features.name if competition.hidden_features else None
    with open(local, "rb") as fh:
        competition.hidden_features.save(original_name, File(fh), save=False)
    competition.hidden_features_name = Path(original_name).name
    competition.features_info = info.to_dict()
    competition.save()
    if old:
        storage = competition.hidden_features.storage
        transaction.on_commit(lambda: storage.delete(old))


@transaction.atomic
def competition_generate_sample_submission(competition: Competition) -> DataFile:
    """Create (or replace) sample_submission.csv: the solution's ids with one constant prediction.

    The constant comes from the data file marked as training data (its target's average or
    most frequent class), else a neutral value; never from the hidden targets.
    """
    if not competition.is_ready:
        raise ValidationError("Upload a solution first: the sample submission is built from its ids.")
    train = competition.data_files.filter(is_training=True).first()
    with tempfile.TemporaryDirectory(prefix="holdout-sample-") as tmp:
        prepared = _local_copy(competition.prepared_solution, Path(tmp), "prepared.parquet")
        train_path = _local_copy(train.file, Path(tmp), "train.csv") if train else None
        out = Path(tmp) / "sample_submission.csv"
        how = sample_submission_csv(prepared, out, metric=competition.metric, train=train_path)
        data_file = DataFile.objects.filter(competition=competition, name="sample_submission.csv").first()
        data_file = data_file or DataFile(competition=competition, name="sample_submission.csv")
        if data_file.file:
            data_file.file.delete(save=False)
        with open(out, "rb") as fh:
            data_file.file.save("sample_submission.csv", File(fh), save=False)
        data_file.size = data_file.file.size
        data_file.description = f"A valid submission in the expected format; it predicts {how}."[:300]
        data_file.save()
    return data_file
