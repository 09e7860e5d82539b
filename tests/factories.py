"""Builders shared by the tests: users, competitions with a solution, submissions, and
`require_service` for tests that need a real service.

Test modules import these from here; tests/conftest.py keeps only fixtures (pytest loads a
conftest by itself, and importing one as a module is not what it is for).

`require_service`: on a laptop without the service (Redis, PostgreSQL, a Celery worker,
Chromium) a test skips with the reason; in CI (HOLDOUT_REQUIRE_SERVICES=1) the same condition
is a failure, so nothing is silently skipped.
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


PASSWORD = "a-long-test-password-42"


def make_user(username: str, **extra) -> User:
    extra.setdefault("email", f"{username}@example.com")
    return User.objects.create_user(username=username, password=PASSWORD, **extra)


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


def perfect_submission(competition: Competition) -> bytes:
    labels = solution_labels(competition)
    out = io.StringIO()
    out.write(",".join(competition.submission_columns) + "\n")
    for key, label in labels.items():
        out.write(f"{key},{label}\n")
    return out.getvalue().encode()


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
