"""Holdout's data model.

Everything a participant does happens as a member of a Team (a solo team is created when they
join), so limits, leaderboards and, later, final selections are per team from the start.
"""

import secrets
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from workers.engine.registry import get_spec, metric_choices
from workers.modelrun.outputs import output_spec


def private_storage():
    """Solutions and submissions: a storage with no URL, never served by any view."""
    return storages["private"]


def _data_file_path(instance: "DataFile", filename: str) -> str:
    return f"data/{instance.competition.slug}/{uuid.uuid4().hex}"


def _solution_path(instance: "Competition", filename: str) -> str:
    return f"solutions/{instance.slug}/{uuid.uuid4().hex}.csv"


def _features_path(instance: "Competition", filename: str) -> str:
    suffix = ".npz" if filename.lower().endswith(".npz") else ".csv"
    return f"features/{instance.slug}/{uuid.uuid4().hex}{suffix}"


def _invite_code() -> str:
    return secrets.token_urlsafe(12)


def _prepared_solution_path(instance: "Competition", filename: str) -> str:
    return f"solutions/{instance.slug}/{uuid.uuid4().hex}.parquet"


def _submission_path(instance: "Submission", filename: str) -> str:
    # The learner's file name is kept in original_name; on disk it is only a random name.
    return f"submissions/{instance.competition_id}/{uuid.uuid4().hex}"


def utc_day_start(moment: datetime) -> datetime:
    """Daily limits count per UTC day, whatever the server's or the learner's time zone."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class User(AbstractUser):
    """Custom from the first migration so that profile fields (API keys...) can be added later."""

    email = models.EmailField("email address", unique=True)
    # Set when the user opened the confirmation link sent to `email` (competitions.email_confirmation).
    # Anything that trusts the address (a challenge's allow-list) requires it.
    email_verified_at = models.DateTimeField(
        "e-mail confirmed at",
        null=True,
        blank=True,
        help_text="When the user opened the link sent to this address. Cleared when the address changes.",
    )

    def __str__(self) -> str:
        return self.username

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @classmethod
    def from_db(cls, db, field_names, values):
        user = super().from_db(db, field_names, values)
        user._loaded_email = user.__dict__.get("email")
        user._loaded_email_verified_at = user.__dict__.get("email_verified_at")
        return user

    def save(self, *args, **kwargs) -> None:
        # A new address is unproven: changing it (in the admin, say) clears the confirmation,
        # unless the same save sets the confirmation on purpose. A change of letter case only is
        # the same mailbox.
        loaded = getattr(self, "_loaded_email", None)
        if (
            loaded is not None
            and (self.email or "").strip().lower() != loaded.strip().lower()
            and self.email_verified_at == self._loaded_email_verified_at
        ):
            self.email_verified_at = None
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "email_verified_at"}
        super().save(*args, **kwargs)
        self._loaded_email, self._loaded_email_verified_at = self.email, self.email_verified_at


class CompetitionQuerySet(models.QuerySet):
    def published(self) -> "CompetitionQuerySet":
        return self.filter(state=Competition.State.PUBLISHED)

    def visible_to(self, user) -> "CompetitionQuerySet":
        """Challenges a user may open: published ones, those they organize or joined (an
        unlisted challenge is reached through its invite link, then stays visible)."""
        if user.is_authenticated and user.is_superuser:
            return self
        if user.is_authenticated:
            return self.filter(
                models.Q(state=Competition.State.PUBLISHED)
                | models.Q(organizers=user)
                | models.Q(participations__user=user)
            ).distinct()
        return self.published()


class Competition(models.Model):
    class Kind(models.TextChoices):
        PREDICTIONS = "predictions", "Prediction file (CSV)"
        MODEL = "model", "Model upload (.keras)"

    class State(models.TextChoices):
        DRAFT = "draft", "Draft (organizers only)"
        PUBLISHED = "published", "Published"
        UNLISTED = "unlisted", "Unlisted (only through the invite link)"

    slug = models.SlugField(unique=True, help_text="Used in URLs and by the Kaggle CLI (-c SLUG).")
    title = models.CharField(max_length=120)
    subtitle = models.CharField(max_length=250, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.PREDICTIONS)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)
    organizers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="organized_competitions"
    )

    overview = models.TextField(blank=True, help_text="Markdown.")
    evaluation = models.TextField(blank=True, help_text="Markdown. The metric is described below it.")
    rules = models.TextField(blank=True, help_text="Markdown. Participants accept these to join.")
    data_description = models.TextField(blank=True, help_text="Markdown, shown on the Data tab.")

    metric = models.CharField(max_length=40, choices=metric_choices)
    id_column = models.CharField(max_length=100, default="id")
    target_column = models.CharField(
        max_length=100,
        default="target",
        help_text="The solution's label column. Submissions use the same name, or one column per "
        "class for metrics scored on class probabilities.",
    )

    start_at = models.DateTimeField(default=timezone.now)
    entry_deadline_at = models.DateTimeField(
        null=True, blank=True, help_text="No new participants or teams after this; empty: the final deadline."
    )
    merger_deadline_at = models.DateTimeField(
        null=True, blank=True, help_text="No team merges after this; empty: the final deadline."
    )
    deadline_at = models.DateTimeField(help_text="Final deadline: the private leaderboard appears.")
    late_submissions = models.BooleanField(
        default=False,
        help_text="After the deadline, keep scoring submissions (shown on a separate late board, "
        "never on the official boards).",
    )

    invite_code = models.CharField(
        max_length=32,
        default=_invite_code,
        unique=True,
        editable=False,
        help_text="Unlisted challenges are reached through /join/<code>/.",
    )
    join_allowlist = models.TextField(
        blank=True,
        help_text="Optional. One e-mail address or @domain per line; only matching accounts may join.",
    )
    team_size_limit = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1)])
    final_submission_count = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1)],
        help_text="How many submissions a team may select for the private leaderboard.",
    )

    public_fraction = models.FloatField(
        default=0.3,
        validators=[MinValueValidator(0.01), MaxValueValidator(0.99)],
        help_text="Share of test rows on the public leaderboard when the solution has no Usage column.",
    )
    split_seed = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=None,
        help_text="Leave empty (recommended): the split is drawn from a secret random source. A seed "
        "makes the split reproducible from the test ids, so anyone who learns or guesses it can "
        "compute which rows are public and which private; use one only for a bundle you keep.",
    )
    daily_limit = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1)], help_text="Submissions per team per UTC day."
    )
    total_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Submissions per team over the whole challenge; empty for no limit."
    )
    max_upload_mb = models.PositiveIntegerField(default=50, validators=[MinValueValidator(1)])
    scoring_time_limit = models.PositiveIntegerField(
        default=120,
        validators=[MinValueValidator(5)],
        help_text="Seconds one submission may take to score (for model challenges: to run the model "
        "too). Slower ones fail with a message and are not charged. At most the platform's "
        "CELERY_TASK_SOFT_TIME_LIMIT.",
    )
    score_precision = models.PositiveSmallIntegerField(default=5, validators=[MaxValueValidator(12)])

    # The hidden solution. The original CSV and its prepared form both live in private storage;
    # the split is computed once, stored in the prepared file, and only changes when an
    # organizer re-uploads or explicitly re-splits.
    solution = models.FileField(storage=private_storage, upload_to=_solution_path, blank=True, editable=False)
    solution_name = models.CharField(max_length=255, blank=True, editable=False)
    prepared_solution = models.FileField(
        storage=private_storage, upload_to=_prepared_solution_path, blank=True, editable=False
    )
    solution_info = models.JSONField(null=True, blank=True, editable=False)
    split_fraction_used = models.FloatField(null=True, blank=True, editable=False)
    split_seed_used = models.PositiveIntegerField(null=True, blank=True, editable=False)
    solution_updated_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Model challenges: hidden test features the uploaded model is run on (never downloadable).
    hidden_features = models.FileField(
        storage=private_storage, upload_to=_features_path, blank=True, editable=False
    )
    hidden_features_name = models.CharField(max_length=255, blank=True, editable=False)
    features_info = models.JSONField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CompetitionQuerySet.as_manager()

    class Meta:
        ordering = ["deadline_at", "slug"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("competition_detail", args=[self.slug])

    @cached_property
    def metric_spec(self):
        return get_spec(self.metric)

    @property
    def higher_is_better(self) -> bool:
        return self.metric_spec.higher_is_better

    @property
    def submission_columns(self) -> list[str]:
        if self.solution_info:
            return list(self.solution_info["submission_columns"])
        return [self.id_column, self.target_column]

    def has_started(self, now: datetime | None = None) -> bool:
        return (now or timezone.now()) >= self.start_at

    def has_ended(self, now: datetime | None = None) -> bool:
        return (now or timezone.now()) >= self.deadline_at

    def is_open(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.has_started(now) and not self.has_ended(now)

    @property
    def effective_entry_deadline(self) -> datetime:
        return self.entry_deadline_at or self.deadline_at

    @property
    def effective_merger_deadline(self) -> datetime:
        return self.merger_deadline_at or self.deadline_at

    def entry_closed(self, now: datetime | None = None) -> bool:
        return (now or timezone.now()) >= self.effective_entry_deadline

    def merging_closed(self, now: datetime | None = None) -> bool:
        return (now or timezone.now()) >= self.effective_merger_deadline

    @property
    def restricts_by_email(self) -> bool:
        """Whether an allow-list is set: joining then needs a confirmed address on it."""
        return bool(self.join_allowlist.strip())

    def allows_email(self, email: str) -> bool:
        """The optional allow-list: exact addresses, or @domain entries. Only ever pass an address
        the user has confirmed (User.email_verified): anyone can type any address at sign-up."""
        entries = [line.strip().lower() for line in self.join_allowlist.splitlines() if line.strip()]
        if not entries:
            return True
        email = (email or "").strip().lower()
        domain = "@" + email.rpartition("@")[2]
        return email in entries or domain in entries

    @property
    def list_section(self) -> str:
        """Where the competition list shows it: closed challenges that still score late
        submissions form the practice library."""
        phase = self.phase
        return "practice" if phase == "closed" and self.late_submissions else phase

    @property
    def phase(self) -> str:
        if not self.has_started():
            return "upcoming"
        return "closed" if self.has_ended() else "active"

    @property
    def model_input_shape(self) -> str:
        """Model challenges: the per-row input shape a learner's model must accept, e.g. "(64,)"."""
        if not self.features_info:
            return ""
        dims = self.features_info["input_shape"]
        return f"({dims[0]},)" if len(dims) == 1 else "(" + ", ".join(str(d) for d in dims) + ")"

    @property
    def model_output_spec(self) -> str:
        """Model challenges: what the model must output, derived from the metric."""
        return output_spec(self.metric, (self.solution_info or {}).get("classes"))

    def clean(self) -> None:
        ceiling = settings.CELERY_TASK_SOFT_TIME_LIMIT
        if self.scoring_time_limit and self.scoring_time_limit > ceiling:
            raise ValidationError(
                {"scoring_time_limit": f"This platform allows at most {ceiling} s per submission."}
            )

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def free_failures_per_day(self) -> int:
        """Uncharged failures a team may have per UTC day before its uploads are refused until
        the next day: failures cost a learner nothing, but a worker real time."""
        return settings.HOLDOUT_FREE_FAILURES_PER_DAY or 2 * self.daily_limit

    @property
    def is_ready(self) -> bool:
        """Submissions can only be scored once a solution has been prepared."""
        return bool(self.prepared_solution)

    def is_organizer(self, user) -> bool:
        if not user.is_authenticated:
            return False
        return user.is_superuser or self.organizers.filter(pk=user.pk).exists()

    def shown_score(self, score: float | None) -> float | None:
        """The score as participants may see it: rounded to the display precision.

        Every participant-facing surface (pages, status.json, REST, the Kaggle protocol, CSV
        downloads) goes through this: more digits than the challenge shows would let a learner
        tell apart submissions the board calls equal, and probe the test set with them. A float
        rounded to n decimals prints (repr, JSON) with at most n decimals. Organizers' admin
        keeps the stored, full-precision score.
        """
        if score is None:
            return None
        return round(score, self.score_precision)

    def format_score(self, score: float | None) -> str:
        """shown_score as text with exactly score_precision decimals ("" for no score)."""
        shown = self.shown_score(score)
        if shown is None:
            return ""
        return f"{shown:.{self.score_precision}f}"


MAX_FILE_NAME_LENGTH = 100


def file_name_problem(name: str) -> str | None:
    """Why `name` is not a plain file name for a download, or None.

    Data-file names appear in URLs (/data/<name>), in Content-Disposition headers, as zip
    members and on pages, so they are single, printable path segments without markup.
    """
    if not name or not name.strip():
        return "A file name is required."
    if len(name) > MAX_FILE_NAME_LENGTH:
        return f"A file name may have at most {MAX_FILE_NAME_LENGTH} characters."
    if name != name.strip():
        return "A file name may not start or end with spaces."
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        return "A file name may not contain line breaks or other control characters."
    if "/" in name or "\\" in name:
        return "A file name may not contain / or \\; use a plain name such as train.csv."
    if ".." in name or name.startswith("."):
        return "A file name may not start with a dot or contain “..”."
    if any(ch in name for ch in '<>"'):
        return "A file name may not contain <, > or quotes."
    return None


class DataFile(models.Model):
    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="data_files")
    name = models.CharField(
        max_length=200, blank=True, help_text="Download name, e.g. train.csv; defaults to the uploaded name."
    )
    file = models.FileField(upload_to=_data_file_path)
    description = models.CharField(max_length=300, blank=True)
    is_training = models.BooleanField(
        "training data",
        default=False,
        help_text="The training CSV, with the id and target columns. The sample submission predicts "
        "its target's average or most frequent class (never anything from the hidden solution).",
    )
    size = models.BigIntegerField(default=0, editable=False)
    uploaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["competition", "name"], name="unique_data_file_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if self.file and not self.file._committed:
            # A fresh upload: its name is still the organizer's file name, the default download
            # name; on disk it is stored under a random one.
            self.name = self.name or Path(self.file.name).name
        if self.file:
            self.size = self.file.size
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if not self.name and self.file and not self.file._committed:
            self.name = Path(self.file.name).name  # what save() would use
        problem = file_name_problem(self.name)
        if problem:
            raise ValidationError({"name" if self.name else "file": problem})


class Team(models.Model):
    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    invite_token = models.CharField(max_length=32, default=_invite_code, unique=True, editable=False)
    disqualified_reason = models.TextField(
        blank=True, help_text="Non-empty removes the team from the boards; the team sees the reason."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["competition", "name"], name="unique_team_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Participation(models.Model):
    """A user joined a competition (accepting its rules) and competes as a member of a team."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="participations"
    )
    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="participations")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="memberships")
    joined_at = models.DateTimeField(auto_now_add=True)
    rules_accepted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "competition"], name="unique_participation"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.competition}"

    def clean(self) -> None:
        # A membership in one challenge pointing at another challenge's team would show that
        # team's submissions (private scores included) under the wrong deadline.
        if self.team_id and self.competition_id and self.team.competition_id != self.competition_id:
            raise ValidationError({"team": "This team belongs to another challenge."})


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


class ApiKey(models.Model):
    """A user's key for the REST API and the Kaggle CLI (sent as the HTTP Basic password).

    Only a SHA-256 of the key is stored, like a password: the key is shown once when it is
    created (with a kaggle.json download) and can be regenerated at any time.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_key")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="The key's first characters, to recognise it.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.prefix}…)"


class TeamInvitation(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        CANCELLED = "cancelled", "Cancelled"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    invitee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_invitations"
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "invitee"], condition=models.Q(status="pending"), name="one_pending_invite"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invitee} to {self.team} ({self.status})"

    def clean(self) -> None:
        # An invitation is made by a member of the team, to someone who is not one yet.
        if not (self.team_id and self.invitee_id):
            return
        members = Participation.objects.filter(team_id=self.team_id)
        if self.status == self.Status.PENDING and members.filter(user_id=self.invitee_id).exists():
            raise ValidationError({"invitee": "This user is already in the team."})
        if self.invited_by_id and not members.filter(user_id=self.invited_by_id).exists():
            raise ValidationError({"invited_by": "Only members of a team can invite to it."})


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
