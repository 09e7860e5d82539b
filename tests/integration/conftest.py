"""A real Celery worker process, a real Redis broker and PostgreSQL, for the integration tests.

The worker runs as a separate process (`python -m celery -A config.celery_app worker`) and sees
what the test process sees: the same test database, the same storage folders, and a dedicated
Redis database as broker, flushed before and after each test. Without Redis or PostgreSQL these
tests skip with the reason; in CI (HOLDOUT_REQUIRE_SERVICES=1) they fail instead.

Only fixtures live here; what they are built from (CeleryWorker, waiting with a deadline, the
service checks) is in tests/integration/helpers.py, where test modules import it from.

Run them locally with:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/holdout \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 .venv/bin/python -m pytest tests/integration
"""

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from kombu import Connection

from tests.factories import require_service
from tests.integration.helpers import (
    VISIBILITY_TIMEOUT,
    CeleryWorker,
    postgres_problem,
    redis_problem,
    redis_test_url,
)


@pytest.fixture(scope="session", autouse=True)
def integration_services() -> str:
    """Check both services once, before any test database is created; returns the Redis URL.

    Session-scoped so that it runs before pytest-django sets up the database: with SQLite the
    tests skip with a reason instead of running against the wrong engine.
    """
    problem = postgres_problem()
    require_service(problem is None, problem or "")
    url = redis_test_url()
    problem = redis_problem(url)
    require_service(problem is None, problem or "")
    return url


# --- The broker -------------------------------------------------------------------------------


def _forget_connections(app) -> None:
    """Drop pooled connections to the previous broker. app.close() keeps the producer pool, which
    an eager apply_async (the unit tests' eager_celery) creates bound to the broker of that time."""
    app.close()
    app.amqp._producer_pool = None


@pytest.fixture
def celery_broker(integration_services: str, settings, monkeypatch) -> Iterator[redis.Redis]:
    """Point the test process's Celery app at the worker's Redis database; yields a client to it.

    The test process only publishes (through enqueue_scoring), never runs a task itself.
    """
    from config.celery_app import app

    url = integration_services
    client = redis.Redis.from_url(url)
    client.flushdb()
    # The stored values: app.conf.broker_url would answer with $CELERY_BROKER_URL instead.
    keys = ("broker_url", "broker_transport_options", "task_always_eager")
    saved = {key: app.conf.get(key) for key in keys}
    # Celery reads these variables in preference to its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    monkeypatch.delenv("CELERY_BROKER_READ_URL", raising=False)
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
    options = {"visibility_timeout": VISIBILITY_TIMEOUT}
    settings.CELERY_BROKER_URL = url
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
    settings.CELERY_TASK_ALWAYS_EAGER = False
    _forget_connections(app)
    app.conf.update(broker_url=url, broker_transport_options=options, task_always_eager=False)
    assert app.connection_for_write().as_uri(True) == Connection(url).as_uri(True)
    try:
        yield client
    finally:
        _forget_connections(app)
        app.conf.update(saved)
        client.flushdb()
        client.close()


# --- The worker -------------------------------------------------------------------------------


def _database_url(db: dict) -> str:
    """A postgres:// URL for the database the test process is using (test_<name>)."""
    user = quote(db["USER"] or "", safe="")
    password = quote(db["PASSWORD"] or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = quote(db["HOST"] or "", safe="")  # a socket directory is percent-encoded
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}{host}{port}/{quote(db['NAME'], safe='')}"


@pytest.fixture
def stopped_celery_worker(
    request, transactional_db, _isolated_storage, celery_broker, settings, tmp_path
) -> Iterator[CeleryWorker]:
    """A worker configured like the test process but not started yet (tests call start())."""
    from django.db import connection

    marker = request.node.get_closest_marker("django_db")
    if marker is None or not (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        pytest.fail("a test with a worker needs @pytest.mark.django_db(transaction=True): "
                    "the worker only sees committed rows")  # fmt: skip
    media = Path(settings.STORAGES["default"]["OPTIONS"]["location"])
    private = Path(settings.STORAGES["private"]["OPTIONS"]["location"])
    for folder in (media, private, tmp_path / "worker-var"):
        folder.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CELERY_", "HOLDOUT_", "DATABASE_URL"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        # As in production: DEBUG off needs a SECRET_KEY and a DATABASE_URL.
        DEBUG="false",
        SECRET_KEY="integration-tests-only",
        DATABASE_URL=_database_url(connection.settings_dict),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
        MEDIA_ROOT=str(media),
        PRIVATE_ROOT=str(private),
        HOLDOUT_WORKER_CACHE=str(settings.HOLDOUT_WORKER_CACHE),
        HOLDOUT_VAR_DIR=str(tmp_path / "worker-var"),
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    worker = CeleryWorker(env, tmp_path / "worker-logs")
    try:
        yield worker
    finally:
        # Before pytest-django truncates the tables: nothing may still be writing to them.
        worker.stop()
        # Shown by pytest only when the test failed.
        print(worker.log())


@pytest.fixture
def celery_worker_process(stopped_celery_worker: CeleryWorker) -> CeleryWorker:
    """A running worker (see CeleryWorker for kill, restart and the log)."""
    stopped_celery_worker.start()
    return stopped_celery_worker
