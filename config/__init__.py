"""Holdout's project package: settings, URLs, WSGI/ASGI and the Celery app.

The Celery app is loaded with Django (cookiecutter-django's way) so that `shared_task`s bind to
it in every process, web included.
"""

from .celery_app import app as celery_app

__all__ = ("celery_app",)
