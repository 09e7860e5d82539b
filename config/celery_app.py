"""The Celery application, beside the settings it reads (cookiecutter-django's place for it).

The web process only enqueues (`score_submission.apply_async` in the services); workers run
`celery -A config.celery_app worker`. Tasks are found in each installed app's `tasks` module
(competitions/tasks.py). Nothing heavy is imported here (no pandas, no TensorFlow): importing
TensorFlow before a prefork pool forks deadlocks the children, so model code is imported
lazily by the model worker.
"""

import logging
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger(__name__)
app = Celery("holdout")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
