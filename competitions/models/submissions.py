"""Submissions and their scores, and re-scoring runs with the results they replaced."""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from .common import _submission_path, private_storage, utc_day_start
from .competition import Competition
from .teams import Team


class SubmissionQuerySet(models.QuerySet):
    def charged(self) -> "SubmissionQuerySet":
        """Submissions that count against limits: all but those that failed uncharged."""
        return self.filter(charged=True)

    def free_failures(self) -> "SubmissionQuerySet":
        """Failures that did not count against limits (see Competition.free_failures_per_day)."""
        return self.filter(status=Submission.Status.FAILED, charged=False, platform_failure=False)

    def on_utc_day(self, moment: datetime) -> "SubmissionQuerySet":
        start = utc_day_start(moment)
        return self.filter(created_at__gte=start, created_at__lt=start + timedelta(days=1))


class Submission(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SCORING = "scoring", "Scoring"
        SCORED = "scored", "Scored"
        FAILED = "failed", "Failed"

    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="submissions")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="submissions")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="submissions"
    )
    file = models.FileField(storage=private_storage, upload_to=_submission_path, max_length=255)
    original_name = models.CharField(max_length=255)
    size = models.BigIntegerField(default=0)
    description = models.CharField(max_length=500, blank=True)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error_message = models.TextField(blank=True)
    public_score = models.FloatField(null=True, blank=True)
    private_score = models.FloatField(null=True, blank=True)

    is_late = models.BooleanField(
        default=False, help_text="Made after the deadline: never on official boards."
    )
    is_final = models.BooleanField(
        default=False, help_text="Selected by the team for the private leaderboard."
    )
    is_baseline = models.BooleanField(
        default=False, help_text="Shown on the boards as an unranked reference row."
    )
    disqualified_reason = models.TextField(blank=True)
    charged = models.BooleanField(
        default=True,
        help_text="Counts against the team's limits. Cleared when a submission fails because of its "
        "file's format or a problem on the platform's side; kept when it fails at metric time.",
    )
    platform_failure = models.BooleanField(
        default=False,
        help_text="Failed because of the platform (an internal error, a misconfigured solution, "
        "lost workers), not the file: never counted against the team's free failures.",
    )

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    # attempts: times a worker claimed it; requeues: times the reaper found it stuck.
    attempts = models.PositiveSmallIntegerField(default=0)
    requeues = models.PositiveSmallIntegerField(default=0)

    objects = SubmissionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["competition", "team", "created_at"]),
            models.Index(fields=["status", "queued_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.original_name}"

    def clean(self) -> None:
        if self.team_id and self.competition_id and self.team.competition_id != self.competition_id:
            raise ValidationError({"team": "This team belongs to another challenge."})

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SCORED, self.Status.FAILED)

    @property
    def scoring_seconds(self) -> float | None:
        if self.started_at and self.scored_at:
            return (self.scored_at - self.started_at).total_seconds()
        return None

    def private_score_visible(self, now: datetime | None = None) -> bool:
        return self.competition.has_ended(now)


class RescoreRun(models.Model):
    """One re-scoring of a whole challenge, with the boards as they were before it."""

    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="rescore_runs")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # {"public": {team_id: rank}, "private": {team_id: rank}} before the run.
    ranks_before = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"Re-score of {self.competition} at {self.created_at:%Y-%m-%d %H:%M}"


class ScoreHistory(models.Model):
    """A submission's previous result, kept whenever it is scored again."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="history")
    rescore_run = models.ForeignKey(RescoreRun, on_delete=models.SET_NULL, null=True, blank=True)
    status = models.CharField(max_length=20, choices=Submission.Status.choices)
    public_score = models.FloatField(null=True, blank=True)
    private_score = models.FloatField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-recorded_at"]

    def __str__(self) -> str:
        return f"{self.submission} before {self.recorded_at:%Y-%m-%d %H:%M}"
