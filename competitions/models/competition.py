"""A challenge, its settings and hidden files, and the data files participants download."""

from datetime import datetime
from functools import cached_property
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from workers.engine.registry import get_spec, metric_choices
from workers.modelrun.outputs import output_spec

from .common import (
    _data_file_path,
    _features_path,
    _invite_code,
    _prepared_solution_path,
    _solution_path,
    file_name_problem,
    private_storage,
)


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
