#!/bin/sh
# Container entry point. The first argument picks the role:
#   web          apply migrations, then serve with gunicorn on 0.0.0.0:8000 (the default)
#   worker       a Celery worker on the scoring and default queues
#   model-worker a Celery worker for Keras model challenges (the models queue; image built
#                with REQUIREMENTS=requirements-models.txt, which adds TensorFlow)
#   beat         the Celery scheduler (runs the reaper every minute); run exactly one
#   migrate      apply migrations and exit (a one-off step when several web containers start)
#   healthcheck  exit 0 if the web role answers /healthz (used by docker-compose.yml)
# Anything else is run as given, e.g. `celery -A config.celery_app worker ...` or
# `python manage.py createsuperuser`. Extra arguments after a role are passed on.
set -eu

role="${1:-web}"
if [ "$#" -gt 0 ]; then shift; fi

case "$role" in
web)
    python manage.py migrate --noinput
    exec gunicorn config.wsgi:application \
        --bind 0.0.0.0:8000 \
        --workers "${GUNICORN_WORKERS:-3}" \
        --access-logfile - \
        --no-control-socket \
        "$@"
    ;;
worker)
    exec celery -A config.celery_app worker -Q scoring,default \
        --concurrency "${CELERY_CONCURRENCY:-2}" --loglevel "${LOG_LEVEL:-INFO}" "$@"
    ;;
model-worker)
    # One job at a time (solo pool); each model runs in its own sandboxed child process, and
    # HOLDOUT_MODEL_WORKER keeps one TensorFlow child started ahead of the next job.
    export HOLDOUT_MODEL_WORKER=1
    exec celery -A config.celery_app worker -Q models --pool solo \
        --hostname "models@%h" --loglevel "${LOG_LEVEL:-INFO}" "$@"
    ;;
beat)
    exec celery -A config.celery_app beat --loglevel "${LOG_LEVEL:-INFO}" \
        --schedule "${HOLDOUT_VAR_DIR:-/var/lib/holdout}/celerybeat-schedule" "$@"
    ;;
migrate)
    exec python manage.py migrate --noinput "$@"
    ;;
healthcheck)
    # The Host header must be one Django accepts: the first plain name in ALLOWED_HOSTS.
    # X-Forwarded-Proto keeps SECURE_SSL_REDIRECT (behind SECURE_PROXY_SSL_HEADER) from
    # answering this plain-HTTP probe with a redirect.
    exec python -c '
import os, sys, urllib.request
hosts = [h for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip() and h.strip()[0] not in ".*"]
request = urllib.request.Request(
    "http://127.0.0.1:8000/healthz",
    headers={"Host": hosts[0].strip() if hosts else "localhost", "X-Forwarded-Proto": "https"},
)
with urllib.request.urlopen(request, timeout=5) as response:
    sys.exit(0 if response.status == 200 else 1)
'
    ;;
*)
    exec "$role" "$@"
    ;;
esac
