"""Production settings: Django's deployment checks pass, and bad configuration refuses to start."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse

from competitions.models import User

REPO_ROOT = Path(__file__).resolve().parents[1]


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # Start from a clean slate: nothing from the developer's shell may loosen the check.
        if not key.startswith(("DJANGO_", "SECURE_", "SESSION_", "CSRF_", "HOLDOUT_", "CELERY_"))
        and key not in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=f"sqlite:///{tmp_path / 'check.sqlite3'}",
        ALLOWED_HOSTS="holdout.example.org",
        CSRF_TRUSTED_ORIGINS="https://holdout.example.org",
        SECURE_SSL_REDIRECT="true",
        SECURE_PROXY_SSL_HEADER="true",
        HOLDOUT_VAR_DIR=str(tmp_path / "var"),
    )
    env.update(overrides)
    return env


def manage(
    tmp_path: Path, *args: str, unset: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess:
    environment = production_env(tmp_path, **env)
    for name in unset:
        environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_checks_pass_with_production_settings(tmp_path):
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_deploy_checks_do_catch_a_weak_production_setup(tmp_path):
    # Shows the check above can fail: plain-HTTP cookies and no HSTS are reported.
    result = manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SESSION_COOKIE_SECURE="false",
        SECURE_HSTS_SECONDS="0",
    )
    assert result.returncode != 0
    assert "security.W012" in result.stderr + result.stdout  # SESSION_COOKIE_SECURE
    assert "security.W004" in result.stderr + result.stdout  # SECURE_HSTS_SECONDS


def test_debug_off_without_a_secret_key_refuses_to_start(tmp_path):
    result = manage(tmp_path, "check", SECRET_KEY="")
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_debug_off_without_a_database_refuses_to_start(tmp_path):
    result = manage(tmp_path, "check", DATABASE_URL="")
    assert result.returncode != 0
    assert "DATABASE_URL must be set when DEBUG is off" in result.stderr


PRINT_DEBUG = ("shell", "-c", "from django.conf import settings; print('DEBUG', settings.DEBUG)")


def test_debug_is_off_unless_asked_for(tmp_path):
    # gunicorn with SECRET_KEY and DATABASE_URL but no DEBUG: no traceback pages.
    result = manage(tmp_path, *PRINT_DEBUG, unset=("DEBUG",))
    assert result.returncode == 0, result.stderr
    assert "DEBUG False" in result.stdout


def test_an_empty_environment_refuses_to_start_instead_of_running_in_debug(tmp_path):
    result = manage(tmp_path, "check", unset=("DEBUG", "SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS"))
    assert result.returncode != 0
    assert (
        "SECRET_KEY must be set when DEBUG is off (for local development set HOLDOUT_DEV=1)" in result.stderr
    )


def test_local_development_mode_runs_on_the_embedded_defaults(tmp_path):
    # What `make demo` and the test suite use: no secret key or database to configure.
    result = manage(
        tmp_path,
        *PRINT_DEBUG,
        unset=("DEBUG", "SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS"),
        HOLDOUT_DEV="1",
    )
    assert result.returncode == 0, result.stderr
    assert "DEBUG True" in result.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "flase"),
        ("HOLDOUT_DEV", "yes please"),
        ("SECURE_SSL_REDIRECT", "maybe"),
        ("SESSION_COOKIE_SECURE", "2"),
    ],
)
def test_a_malformed_boolean_refuses_to_start(tmp_path, name, value):
    result = manage(tmp_path, "check", **{name: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name} must be a boolean" in result.stderr


def test_a_malformed_number_refuses_to_start(tmp_path):
    result = manage(tmp_path, "check", HOLDOUT_MAX_UPLOAD_MB="200MB")
    assert result.returncode != 0
    assert "HOLDOUT_MAX_UPLOAD_MB must be an integer" in result.stderr


@pytest.mark.parametrize(
    "password", ["password123", "12345678901", "qwertyuiop", "short1", "lena@example.com"]
)
def test_weak_passwords_are_rejected(db, password):
    user = User(username="lena", email="lena@example.com")
    with pytest.raises(ValidationError):
        validate_password(password, user)


def test_signup_rejects_a_common_password(client, db):
    response = client.post(
        reverse("signup"),
        {
            "username": "newbie",
            "email": "newbie@example.com",
            "password1": "password123",
            "password2": "password123",
        },
    )
    assert response.status_code == 200
    assert "This password is too common." in response.content.decode()
    assert not User.objects.filter(username="newbie").exists()


def test_scoring_children_are_replaced_past_the_memory_bound(settings):
    from config.celery_app import app

    assert app.conf.worker_max_memory_per_child == settings.HOLDOUT_WORKER_MAX_MEMORY_MB * 1024
