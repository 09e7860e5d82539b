"""The Celery application shared by the web process (which only enqueues) and the workers.

It imports no task modules eagerly and nothing heavy (no pandas, no TensorFlow): importing
TensorFlow before a prefork pool forks deadlocks the children, so model code stays in the
model worker's tasks and is imported lazily there.
"""

import logging
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger(__name__)
app = Celery("holdout")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"], related_name="tasks")

SCORE_SUBMISSION = "holdout.score_submission"


def enqueue_scoring(submission_id: int, *, queue: str = "scoring", time_limit: int | None = None) -> None:
    """Send a submission to a scoring queue by task name, so callers need not import tasks.

    Prediction files go to "scoring"; Keras models to "models", whose worker has TensorFlow.
    `time_limit` is the challenge's soft limit in seconds; the hard limit follows 30 s later.
    Both stay under the platform-wide limits, which the Redis visibility timeout exceeds.
    """
    limits = {} if time_limit is None else {"soft_time_limit": time_limit, "time_limit": time_limit + 30}
    if app.conf.task_always_eager:
        # send_task never runs eagerly; tests and one-process set-ups run the task in-process.
        from workers import tasks

        tasks.score_submission.apply(args=[submission_id], **limits)
        return
    app.send_task(SCORE_SUBMISSION, args=[submission_id], queue=queue, **limits)


@worker_ready.connect
def _warm_model_runner(**_: object) -> None:
    """The model worker (HOLDOUT_MODEL_WORKER=1, solo pool) keeps one TensorFlow child ready.

    The child is a separate process started after the worker is up: TensorFlow is never
    imported into the worker itself, let alone before a pool forks.
    """
    if os.environ.get("HOLDOUT_MODEL_WORKER", "").lower() in {"1", "true", "yes"}:
        from competitions.services import sandbox_policy
        from workers.modelrun.isolation import protect_parent
        from workers.modelrun.sandbox import configure_isolation, isolation_report, warm_pool

        policy = sandbox_policy()
        report = isolation_report(policy)
        if "error" in report:
            # HOLDOUT_SANDBOX_REQUIRE names a layer this host cannot provide: refuse to serve.
            logger.critical("model sandbox: %s; the model worker stops", report["error"])
            raise SystemExit(f"model sandbox: {report['error']}")
        logger.info("model sandbox layers active: %s", ", ".join(report["active"]) or "none")
        for layer, why in report["missing"].items():
            logger.warning("model sandbox layer %s is NOT active: %s", layer, why)
        protect_parent()
        configure_isolation(policy)
        warm_pool()
