"""Shared fixtures: personas (organizer, learner, outsider), a ready-to-score competition,
per-test storage and rate-limit counters, eager Celery.

Only fixtures live here. The builders the fixtures use, and that test modules import
(make_user, make_competition, perfect_submission, require_service, ...), are in
tests/factories.py.
"""

import pytest

from competitions import services
from competitions.models import Competition, User
from tests.factories import make_competition, make_user


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


@pytest.fixture
def organizer(db) -> User:
    return make_user("olga", is_staff=True, is_superuser=True)


@pytest.fixture
def learner(db) -> User:
    return make_user("lena")


@pytest.fixture
def outsider(db) -> User:
    return make_user("otto")


@pytest.fixture
def competition(organizer) -> Competition:
    return make_competition(organizer)


@pytest.fixture
def joined(learner, competition):
    return services.competition_join(user=learner, competition=competition)


@pytest.fixture
def eager_celery(settings):
    """Run scoring in-process when the transaction commits (unit tests of the web side)."""
    from config.celery_app import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False
