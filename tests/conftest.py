"""Shared fixtures: personas (organizer, learner, outsider) and a ready-to-score competition.

Integration tests that need a real service (Redis, PostgreSQL, a Celery worker, Chromium) use
`require_service`: on a laptop without the service they skip with the reason; in CI
(HOLDOUT_REQUIRE_SERVICES=1) the same condition is a failure, so nothing is silently skipped.
"""

import io
import os
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from competitions import services
from competitions.models import Competition, User

REQUIRE_SERVICES = os.environ.get("HOLDOUT_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}


def require_service(available: bool, reason: str) -> None:
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing (HOLDOUT_REQUIRE_SERVICES is set): {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    """Each test gets its own media, private and worker-cache folders.

    Changing STORAGES resets Django's storage registry, but a FileField given a callable storage
    (`storage=private_storage`) called it once, when the model class was created; point those
    fields at the per-test storages too, so that the test process and any worker it starts
    agree on where solutions and submissions live.
    """
    from django.apps import apps
    from django.db.models import FileField

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**settings.STORAGES["default"], "OPTIONS": {"location": str(tmp_path / "media")}},
        "private": {**settings.STORAGES["private"], "OPTIONS": {"location": str(tmp_path / "private")}},
    }
    settings.HOLDOUT_WORKER_CACHE = tmp_path / "worker-cache"
    fields = [
        field
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, FileField) and hasattr(field, "_storage_callable")
    ]
    saved = [(field, field.storage) for field in fields]
    for field in fields:
        field.storage = field._storage_callable()
    yield
    for field, storage in saved:
        field.storage = storage


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Every test client comes from 127.0.0.1: start each test with empty rate-limit counters."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


PASSWORD = "a-long-test-password-42"


def make_user(username: str, **extra) -> User:
    extra.setdefault("email", f"{username}@example.com")
    return User.objects.create_user(username=username, password=PASSWORD, **extra)


@pytest.fixture
def organizer(db) -> User:
    return make_user("olga", is_staff=True, is_superuser=True)


@pytest.fixture
def learner(db) -> User:
    return make_user("lena")


@pytest.fixture
def outsider(db) -> User:
    return make_user("otto")


def binary_solution_csv(n: int = 40, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    labels[-2:] = [0, 1]
    rows = "".join(f"r{i:03d},{y}\n" for i, y in enumerate(labels))
    return ("id,target\n" + rows).encode()


def solution_labels(competition: Competition) -> dict[str, str]:
    with competition.solution.open("rb") as fh:
        text = fh.read().decode()
    return dict(line.split(",")[:2] for line in text.splitlines()[1:])


def make_competition(
    organizer: User | None = None,
    *,
    slug: str = "churn",
    metric: str = "roc_auc",
    solution: bytes | None = None,
    deadline_in: timedelta = timedelta(days=30),
    **fields,
) -> Competition:
    now = timezone.now()
    competition = Competition.objects.create(
        slug=slug,
        title=fields.pop("title", slug.title()),
        metric=metric,
        state=fields.pop("state", Competition.State.PUBLISHED),
        start_at=fields.pop("start_at", now - timedelta(days=1)),
        deadline_at=now + deadline_in,
        rules="Be kind. One account per person.",
        **fields,
    )
    if organizer is not None:
        competition.organizers.add(organizer)
    data = solution if solution is not None else binary_solution_csv()
    upload = SimpleUploadedFile("solution.csv", data)
    prepared, info = services.solution_prepare_for(competition, upload)
    services.competition_set_solution(
        competition, source=upload, prepared=prepared, info=info, original_name="solution.csv"
    )
    return competition


@pytest.fixture
def competition(organizer) -> Competition:
    return make_competition(organizer)


@pytest.fixture
def joined(learner, competition):
    return services.competition_join(user=learner, competition=competition)


def perfect_submission(competition: Competition) -> bytes:
    labels = solution_labels(competition)
    out = io.StringIO()
    out.write(",".join(competition.submission_columns) + "\n")
    for key, label in labels.items():
        out.write(f"{key},{label}\n")
    return out.getvalue().encode()


@pytest.fixture
def eager_celery(settings):
    """Run scoring in-process when the transaction commits (unit tests of the web side)."""
    from config.celery_app import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def make_submission(
    competition: Competition, team, user, public=None, private=None, *, hours_ago: float = 1, **extra
):
    """A submission row written directly (no file, no worker), scored unless `status` says
    otherwise, dated `hours_ago` hours back so that it stays before a deadline a test moves to now."""
    from competitions.models import Submission

    extra.setdefault("status", Submission.Status.SCORED)
    # A failure written directly is the common, uncharged kind (a bad file).
    extra.setdefault("charged", extra["status"] != Submission.Status.FAILED)
    return Submission.objects.create(
        competition=competition,
        team=team,
        submitted_by=user,
        file="submissions/x",
        original_name=extra.pop("original_name", "p.csv"),
        public_score=public,
        private_score=private,
        created_at=extra.pop("created_at", timezone.now() - timedelta(hours=hours_ago)),
        **extra,
    )
