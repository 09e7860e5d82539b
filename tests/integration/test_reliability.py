"""Lost work is recovered exactly once: a worker killed mid-scoring, a broker that lost its queue.

The database is the source of truth. A redelivered message finds its row already claimed and
does nothing; the reaper puts rows stuck in "queued" or "scoring" back on the queue.
"""

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from competitions import services
from competitions.models import Submission
from tests.factories import make_competition, perfect_submission
from tests.integration.helpers import VISIBILITY_TIMEOUT, wait_for_status, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def submit(user, competition, body: bytes) -> Submission:
    upload = SimpleUploadedFile("preds.csv", body)
    return services.submission_create(user=user, competition=competition, uploaded=upload)


def reap_as_if_stuck(settings) -> dict[str, int]:
    """Run the reaper as it would run once HOLDOUT_STUCK_AFTER_SECONDS have passed."""
    later = timezone.now() + timedelta(seconds=settings.HOLDOUT_STUCK_AFTER_SECONDS + 1)
    return services.reap_stuck_submissions(now=later)


def submission_blocked_mid_scoring(organizer, learner) -> tuple[Submission, Path, bytes]:
    """A submission whose stored upload is replaced by a FIFO: a worker claims the row, then
    blocks reading the file, so a fault lands mid-scoring every time without any test hook in
    production code. Returns the submission, the FIFO's path and the upload's real bytes."""
    competition = make_competition(organizer)
    services.competition_join(user=learner, competition=competition)
    submission = submit(learner, competition, perfect_submission(competition))
    stored = Path(submission.file.path)
    body = stored.read_bytes()
    stored.unlink()
    os.mkfifo(stored)
    return submission, stored, body


def oldest_unacked_age(broker) -> float | None:
    """Seconds since the oldest message still unacknowledged in Redis was delivered."""
    oldest = broker.zrange("unacked_index", 0, 0, withscores=True)
    return time.time() - oldest[0][1] if oldest else None


@pytest.mark.parametrize("victim", ["pool processes", "whole worker"])
def test_worker_killed_while_scoring_ends_scored_exactly_once(
    victim, stopped_celery_worker, celery_broker, organizer, learner, settings
):
    worker = stopped_celery_worker
    submission, stored, body = submission_blocked_mid_scoring(organizer, learner)
    worker.start()
    wait_for_status(submission, {Submission.Status.SCORING})

    if victim == "pool processes":
        # As the OOM killer would: the parent sees the child die and, because of
        # reject_on_worker_lost, puts the message straight back on the queue.
        worker.kill_pool_processes(signal.SIGKILL)
    else:
        # As a crashed host or container would: the message stays unacknowledged in Redis, and
        # a worker that starts after the visibility timeout has passed takes it back.
        worker.kill(signal.SIGKILL)
        assert celery_broker.zcard("unacked_index") == 1
        wait_until(
            lambda: oldest_unacked_age(celery_broker) > VISIBILITY_TIMEOUT + 1,
            timeout=VISIBILITY_TIMEOUT + 30,
            what="the unacknowledged message to outlive the visibility timeout",
        )
        worker.start()
    # The message was delivered again, found the row claimed, and left it alone.
    assert worker.wait_for_task_results(1) == ["None"]
    submission.refresh_from_db()
    assert (submission.status, submission.attempts) == (Submission.Status.SCORING, 1)

    stored.unlink()
    stored.write_bytes(body)
    assert reap_as_if_stuck(settings) == {"resent": 0, "requeued": 1, "failed": 0}

    submission = wait_for_status(submission)
    assert submission.status == Submission.Status.SCORED, submission.error_message
    assert submission.public_score == pytest.approx(1.0)
    assert (submission.attempts, submission.requeues) == (2, 1)
    assert worker.wait_for_task_results(2) == ["None", "'scored'"]


def test_submission_lost_with_the_broker_is_recovered_by_the_reaper(
    stopped_celery_worker, celery_broker, organizer, learner, settings
):
    competition = make_competition(organizer)
    services.competition_join(user=learner, competition=competition)
    submission = submit(learner, competition, perfect_submission(competition))
    assert celery_broker.llen("scoring") == 1
    # Redis restarted without persistence: the queued message is gone, only the row remains.
    celery_broker.flushdb()
    stopped_celery_worker.start()
    submission.refresh_from_db()
    assert submission.status == Submission.Status.QUEUED

    # Only sent again: a lost message is no lost worker, so it uses none of the rescue budget.
    assert reap_as_if_stuck(settings) == {"resent": 1, "requeued": 0, "failed": 0}

    submission = wait_for_status(submission)
    assert submission.status == Submission.Status.SCORED, submission.error_message
    assert (submission.attempts, submission.requeues) == (1, 0)
    assert stopped_celery_worker.wait_for_task_results(1) == ["'scored'"]


def test_database_connection_lost_while_scoring_is_survived_without_rescoring(
    stopped_celery_worker, celery_broker, organizer, learner
):
    """PostgreSQL drops the worker's connection while it scores: the result is still stored,
    by the same run (the store is retried on a fresh connection), not by a retry or the reaper."""
    from django.db import connection

    worker = stopped_celery_worker
    submission, stored, body = submission_blocked_mid_scoring(organizer, learner)
    worker.start()
    wait_for_status(submission, {Submission.Status.SCORING})

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (terminated,) = cursor.fetchone()
    assert terminated >= 1  # the scoring process's connection, at least
    with open(stored, "wb") as fifo:  # let the worker read the upload and finish scoring
        fifo.write(body)

    submission = wait_for_status(submission)
    assert submission.status == Submission.Status.SCORED, submission.error_message
    assert (submission.public_score, submission.attempts, submission.requeues) == (1.0, 1, 0)
    assert worker.wait_for_task_results(1) == ["'scored'"]
    assert "database unavailable storing submission" in worker.log()


def test_a_challenges_time_limit_firing_in_a_real_worker_gives_the_promised_message(
    stopped_celery_worker, celery_broker, organizer, learner
):
    """Celery's soft limit really fires (the upload is a FIFO nobody writes, so the run blocks)
    and the learner reads the time-limit message, not "a problem on our side"."""
    competition = make_competition(organizer, scoring_time_limit=5)
    services.competition_join(user=learner, competition=competition)
    submission = submit(learner, competition, perfect_submission(competition))
    stored = Path(submission.file.path)
    stored.unlink()
    os.mkfifo(stored)
    stopped_celery_worker.start()

    submission = wait_for_status(submission)
    assert submission.status == Submission.Status.FAILED
    assert "this challenge's 5 s limit" in submission.error_message
    assert not submission.charged
    assert stopped_celery_worker.wait_for_task_results(1) == ["'failed'"]


def test_submissions_made_while_the_broker_was_down_are_scored_by_a_real_worker_when_it_returns(
    celery_worker_process, celery_broker, organizer, learner, client, settings
):
    """The broker refuses the learner's upload's message (a 302 to the submissions page, not a
    500); once it is back, the reaper's next pass sends the row and a real worker scores it."""
    from config.celery_app import app

    competition = make_competition(organizer)
    services.competition_join(user=learner, competition=competition)
    client.force_login(learner)
    broker_url = settings.CELERY_BROKER_URL
    down = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    # Celery prefers the variable to its configuration.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CELERY_BROKER_URL", down)
        app.close()
        app.amqp._producer_pool = None  # close() keeps the producers bound to the old URL
        app.conf.broker_url = down
        try:
            response = client.post(
                f"/c/{competition.slug}/submit/",
                {"file": SimpleUploadedFile("preds.csv", perfect_submission(competition))},
            )
        finally:
            app.close()
            app.amqp._producer_pool = None  # close() keeps the producers bound to the old URL
            app.conf.broker_url = broker_url
    assert response.status_code == 302
    submission = Submission.objects.get(competition=competition)
    assert submission.status == Submission.Status.QUEUED
    assert celery_broker.llen("scoring") == 0  # nothing reached the real broker

    assert services.reap_stuck_submissions() == {"resent": 1, "requeued": 0, "failed": 0}
    submission = wait_for_status(submission)
    assert (submission.status, submission.public_score) == (Submission.Status.SCORED, 1.0)
