"""A real model worker (`-Q models --pool solo`, HOLDOUT_MODEL_WORKER=1, so it keeps a warm
TensorFlow child) scores Keras models over Redis, with PostgreSQL. No CSV worker runs: model
submissions must not need one, and the model worker must not take CSV work."""

import importlib.util

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from competitions import selectors, services
from competitions.models import Competition, Submission
from tests import modelrun_helpers as mh
from tests.factories import make_competition, perfect_submission
from tests.integration.helpers import CeleryWorker, wait_for_status
from workers.modelrun import ModelRejected, check_model_file

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed"),
]

N, FEATURES, CLASSES = 30, 4, 3
# The first job may wait for the warm child to import TensorFlow (seconds, more on a busy box).
MODEL_SCORING_TIMEOUT = 240


@pytest.fixture
def model_worker(stopped_celery_worker: CeleryWorker) -> CeleryWorker:
    """The production model worker's shape: the models queue only, one job at a time."""
    worker = stopped_celery_worker
    worker.queues = "models"
    worker.pool = "solo"
    worker.concurrency = 1
    worker.env["HOLDOUT_MODEL_WORKER"] = "1"
    # As in production: every model runs inside all four sandbox layers, or not at all.
    worker.env["HOLDOUT_SANDBOX_REQUIRE"] = "user,net,mount,seccomp"
    # The shared 5 s visibility timeout exists to test redelivery after a kill; a model run can
    # outlast it, and nothing here kills the worker.
    worker.env["CELERY_VISIBILITY_TIMEOUT"] = "600"
    worker.start()
    return worker


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(N, FEATURES)).astype("float32")


def truth() -> np.ndarray:
    return np.array([i % CLASSES for i in range(N)])


@pytest.fixture
def model_competition(organizer, x, tmp_path) -> Competition:
    ids = mh.ids_for(N)
    # An explicit split (even rows public, odd private), so each board's score can be computed here.
    rows = zip(ids, truth(), mh.usage_for(N), strict=True)
    solution = "id,target,Usage\n" + "".join(f"{i},{y},{u}\n" for i, y, u in rows)
    return mh.model_competition_with(organizer, solution, ids, x, tmp_path)


def submit(user, competition, name: str, body: bytes) -> Submission:
    upload = SimpleUploadedFile(name, body)
    return services.submission_create(user=user, competition=competition, uploaded=upload)


def test_a_good_model_is_scored_by_the_model_worker_alone(
    model_worker, celery_broker, model_competition, organizer, learner, x, tmp_path
):
    # A prediction file for a CSV challenge, sent first: it goes to "scoring", which nobody serves.
    csv_challenge = make_competition(organizer, slug="churn")
    services.competition_join(user=learner, competition=csv_challenge)
    waiting = submit(learner, csv_challenge, "preds.csv", perfect_submission(csv_challenge))
    services.competition_join(user=learner, competition=model_competition)
    model = mh.save_dense(tmp_path / "model.keras", inputs=FEATURES, outputs=CLASSES)

    submission = submit(learner, model_competition, "model.keras", model.read_bytes())
    wait_for_status(submission, timeout=MODEL_SCORING_TIMEOUT)

    assert submission.status == Submission.Status.SCORED, submission.error_message
    right = mh.predict_locally(model, x).argmax(axis=1) == truth()
    assert submission.public_score == pytest.approx(right[0::2].mean())
    assert submission.private_score == pytest.approx(right[1::2].mean())
    assert submission.attempts == 1
    assert model_worker.task_results() == ["'scored'"]
    assert "model run: {'ok': True" in model_worker.log()  # it ran in the sandbox's child
    assert "model sandbox layers active: mount, net, user, seccomp" in model_worker.log()
    assert "NOT active" not in model_worker.log()
    # The model worker left the CSV work alone: still queued, its message still in Redis.
    waiting.refresh_from_db()
    assert waiting.status == Submission.Status.QUEUED
    assert celery_broker.llen("scoring") == 1
    assert celery_broker.llen("models") == 0


def test_a_lambda_layer_model_fails_with_its_reason_through_the_worker(
    model_worker, model_competition, learner, tmp_path
):
    team = services.competition_join(user=learner, competition=model_competition).team
    model = mh.save_lambda_model(tmp_path / "lambda.keras")
    with pytest.raises(ModelRejected) as refused:
        check_model_file(model)

    submission = wait_for_status(
        submit(learner, model_competition, "lambda.keras", model.read_bytes()), timeout=MODEL_SCORING_TIMEOUT
    )

    assert submission.status == Submission.Status.FAILED
    assert submission.error_message == str(refused.value)
    assert "Lambda" in submission.error_message
    assert (submission.public_score, submission.private_score) == (None, None)
    assert model_worker.task_results() == ["'failed'"]
    quota = selectors.submission_quota(team)
    assert (quota.used_today, quota.used_total) == (0, 0)
