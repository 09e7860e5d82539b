"""A real Celery worker process scores submissions made through the site, over Redis, with PostgreSQL."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from competitions import selectors, services
from competitions.models import Submission
from tests.factories import PASSWORD, make_competition, perfect_submission
from tests.integration.helpers import wait_for_status
from workers.engine import ScoringError, score_submission

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# make_competition uses ROC AUC, whose best value is 1.0: what a perfect submission must get.
BEST_ROC_AUC = 1.0
BROKEN = b"id,wrong\nr000,1\n"


def submit(user, competition, body: bytes) -> Submission:
    upload = SimpleUploadedFile("preds.csv", body)
    return services.submission_create(user=user, competition=competition, uploaded=upload)


def test_submission_posted_over_http_is_scored_by_the_worker(
    celery_worker_process, client, organizer, learner
):
    competition = make_competition(organizer)
    services.competition_join(user=learner, competition=competition)
    assert client.login(username=learner.username, password=PASSWORD)

    upload = SimpleUploadedFile("preds.csv", perfect_submission(competition))
    response = client.post(
        reverse("competition_submit", args=[competition.slug]), {"file": upload, "description": "all right"}
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    submission_id = int(re.search(r"[?&]new=(\d+)", response["Location"]).group(1))
    submission = wait_for_status(Submission.objects.get(pk=submission_id))
    assert submission.status == Submission.Status.SCORED, submission.error_message
    assert submission.public_score == pytest.approx(BEST_ROC_AUC)
    assert submission.private_score == pytest.approx(BEST_ROC_AUC)
    assert submission.description == "all right"
    assert submission.attempts == 1


def test_submission_from_the_service_is_scored_by_the_worker(celery_worker_process, organizer, learner):
    competition = make_competition(organizer)
    services.competition_join(user=learner, competition=competition)

    submission = wait_for_status(submit(learner, competition, perfect_submission(competition)))

    assert submission.status == Submission.Status.SCORED, submission.error_message
    assert submission.public_score == pytest.approx(BEST_ROC_AUC)
    assert submission.started_at <= submission.scored_at


def test_broken_file_fails_with_the_engine_message_and_is_not_charged(
    celery_worker_process, organizer, learner, tmp_path
):
    competition = make_competition(organizer)
    team = services.competition_join(user=learner, competition=competition).team
    broken = tmp_path / "broken.csv"
    broken.write_bytes(BROKEN)
    with pytest.raises(ScoringError) as engine:
        score_submission(broken, competition.prepared_solution.path, metric=competition.metric)

    submission = wait_for_status(submit(learner, competition, BROKEN))

    assert submission.status == Submission.Status.FAILED
    assert submission.error_message == str(engine.value)
    quota = selectors.submission_quota(team)
    assert (quota.used_today, quota.used_total) == (0, 0)


def test_a_row_bomb_is_refused_by_the_worker_at_the_row_cap_and_not_charged(
    celery_worker_process, organizer, learner
):
    import zlib

    competition = make_competition(organizer)  # 40 ids
    team = services.competition_join(user=learner, competition=competition).team
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip
    chunks = [packer.compress(b"id,target\n")]
    chunks += [packer.compress(b"r000,0.5\n" * 1_000_000) for _ in range(20)]  # 20M rows, 180 MB
    bomb = b"".join(chunks) + packer.flush()
    assert len(bomb) < 1024 * 1024

    upload = SimpleUploadedFile("preds.csv.gz", bomb)
    submission = services.submission_create(user=learner, competition=competition, uploaded=upload)
    submission = wait_for_status(submission)

    assert submission.status == Submission.Status.FAILED
    assert submission.error_message == "The file has more than 140 rows; expected 40, one per id."
    assert selectors.submission_quota(team).used_today == 0
    assert selectors.submission_quota(team).free_failures_today == 1


def test_a_submission_delivered_twice_is_scored_once(
    stopped_celery_worker, celery_broker, organizer, learner
):
    competition = make_competition(organizer)
    services.competition_join(user=learner, competition=competition)
    # Both messages wait in Redis, so the worker's two pool processes race for the same row.
    submission = submit(learner, competition, perfect_submission(competition))
    services.submission_enqueue(submission.pk)
    assert celery_broker.llen("scoring") == 2

    stopped_celery_worker.start()
    results = stopped_celery_worker.wait_for_task_results(2)

    submission.refresh_from_db()
    assert submission.status == Submission.Status.SCORED, submission.error_message
    assert submission.attempts == 1
    # One run scored it; the other found it claimed and did nothing.
    assert sorted(results) == ["'scored'", "None"]
