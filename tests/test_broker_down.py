"""The broker is down when a learner submits: the upload is accepted and scored later.

Enqueueing happens after the row commits (`transaction.on_commit`), inside the learner's
request. The tests point the Celery app at a closed port, so kombu really fails to connect;
the rows commit for real (transactional tests), as they do in production, so the on-commit
send runs inside the request, where an exception would be a 500.
"""

import socket
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from competitions import services
from competitions.api_keys import api_key_create
from competitions.models import Submission
from tests.factories import perfect_submission
from tests.test_api import basic, put, rpc, start_upload, token

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def broker_down(settings, monkeypatch):
    """The test process's Celery app publishes to a Redis URL where nothing listens."""
    from config.celery_app import app

    url = f"redis://127.0.0.1:{closed_port()}/0"
    keys = ("broker_url", "broker_transport_options", "task_always_eager")
    saved = {key: app.conf.get(key) for key in keys}
    monkeypatch.setenv("CELERY_BROKER_URL", url)  # Celery prefers it to its configuration
    settings.CELERY_BROKER_URL = url
    app.close()
    app.amqp._producer_pool = None  # close() keeps the producers bound to the previous URL
    app.conf.update(broker_url=url, broker_transport_options={}, task_always_eager=False)
    try:
        yield url
    finally:
        app.close()
        app.amqp._producer_pool = None  # close() keeps the producers bound to the closed port
        app.conf.update(saved)


@pytest.fixture
def learner_key(learner) -> str:
    return api_key_create(learner)


def submit_by_form(client, learner, competition) -> int:
    client.force_login(learner)
    response = client.post(
        reverse("competition_submit", args=[competition.slug]),
        {"file": SimpleUploadedFile("preds.csv", perfect_submission(competition))},
    )
    assert response.status_code == 302, response.content
    return Submission.objects.latest("pk").pk


def submit_by_rest(client, learner_key, competition) -> int:
    response = client.post(
        reverse("api_submission_list", args=[competition.slug]),
        {"file": SimpleUploadedFile("preds.csv", perfect_submission(competition))},
        **token(learner_key),
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "queued"
    return response.json()["id"]


def submit_by_kaggle_cli(client, learner_key, competition) -> int:
    started = start_upload(client, learner_key)
    assert put(client, started["createUrl"], perfect_submission(competition)).status_code == 201
    body = {"competitionName": competition.slug, "blobFileTokens": started["token"]}
    created = rpc(client, "CreateSubmission", body, **basic("lena", learner_key))
    assert created.status_code == 200, created.content
    return created.json()["ref"]


@pytest.mark.parametrize("path", [submit_by_form, submit_by_rest, submit_by_kaggle_cli])
def test_a_submission_made_while_the_broker_is_down_is_queued_and_scored_when_it_returns(
    path, client, learner, learner_key, competition, joined, broker_down, settings, eager_celery
):
    from config.celery_app import app

    app.conf.task_always_eager = False  # eager_celery is only for when the broker is back
    settings.HOLDOUT_STUCK_AFTER_SECONDS = 600
    pk = path(client, learner if path is submit_by_form else learner_key, competition)

    submission = Submission.objects.get(pk=pk)
    assert (submission.status, submission.charged) == (Submission.Status.QUEUED, True)
    # Marked as never sent: the reaper's next pass sends it, not one ten minutes later.
    assert submission.queued_at < timezone.now() - timedelta(seconds=settings.HOLDOUT_STUCK_AFTER_SECONDS)
    # The learner's page shows it waiting, like any queued submission.
    status = client.get(reverse("api_submission_detail", args=[competition.slug, pk]), **token(learner_key))
    assert status.json()["status"] == "queued"

    # The broker is back (here: scoring runs in-process) and the reaper runs on its schedule.
    app.conf.task_always_eager = True
    assert services.reap_stuck_submissions()["resent"] == 1
    submission.refresh_from_db()
    assert (submission.status, submission.public_score) == (Submission.Status.SCORED, 1.0)


def test_the_reaper_keeps_a_row_for_later_while_the_broker_is_still_down(
    learner, competition, joined, broker_down
):
    with_file = SimpleUploadedFile("preds.csv", perfect_submission(competition))
    sub = services.submission_create(user=learner, competition=competition, uploaded=with_file)
    assert services.reap_stuck_submissions() == {"resent": 0, "requeued": 0, "failed": 0}
    sub.refresh_from_db()
    assert sub.status == Submission.Status.QUEUED
    assert services.reap_stuck_submissions()["resent"] == 0  # tried again on every pass
