"""The site `bench/load.py` drives: gunicorn and a Celery worker on loopback, over a throw-away
var/ directory with a seeded challenge and learners (see load.py)."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SLUG = "load-test"
PASSWORD = "load-test-password-42"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
NEW_ID = re.compile(r"[?&]new=(\d+)")
POLL_SECONDS = 0.5
SCORE_TIMEOUT = 120.0
REQUEST_TIMEOUT = 60.0

SETUP = r"""
import json, sys
from datetime import timedelta
from django.contrib.auth.hashers import make_password
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from competitions import services
from competitions.models import Competition, Participation, Team, User

n, slug, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ids = [f"q{i:05d}" for i in range(400)]
solution = ("id,target\n" + "".join(f"{x},{i % 2}\n" for i, x in enumerate(ids))).encode()
competition = Competition.objects.filter(slug=slug).first()
if competition is None:
    now = timezone.now()
    competition = Competition.objects.create(
        slug=slug, title="Load test", metric="roc_auc", state=Competition.State.PUBLISHED,
        start_at=now - timedelta(days=1), deadline_at=now + timedelta(days=30),
        daily_limit=30000, rules="Load test.",
    )
    upload = SimpleUploadedFile("solution.csv", solution)
    prepared, info = services.solution_prepare_upload(
        upload, id_column="id", target_column="target", metric="roc_auc",
        public_fraction=0.3, seed=0,
    )
    services.competition_set_solution(
        competition, source=upload, prepared=prepared, info=info, original_name="solution.csv"
    )
hashed = make_password(password)  # hash once: PBKDF2 for each of 100 users takes a minute
existing = set(User.objects.filter(username__startswith="load").values_list("username", flat=True))
User.objects.bulk_create([
    User(username=f"load{i:04d}", email=f"load{i:04d}@example.com", password=hashed)
    for i in range(n) if f"load{i:04d}" not in existing
])
for user in User.objects.filter(username__startswith="load"):
    services.competition_join(user=user, competition=competition)
print("SETUP", json.dumps({"ids": ids}))
"""


# --- the site under test --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Site:
    """gunicorn + a Celery worker on loopback, each in its own process group."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.var = Path(tempfile.mkdtemp(prefix="holdout-load-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "HOLDOUT_VAR_DIR": str(self.var),
            "DATABASE_URL": args.database_url or f"sqlite:///{self.var / 'load.sqlite3'}",
            "ALLOWED_HOSTS": "127.0.0.1",
            # Plain HTTP on loopback: cookies must not be Secure-only.
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_HSTS_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
            # The load is the point: turn the per-user submission limit off if it is installed.
            "HOLDOUT_RATELIMIT_SUBMIT": "",
            # Every learner signs in at once from 127.0.0.1; sign-ins are counted before the
            # password check, so more than the limit in flight from one address would wait.
            "HOLDOUT_RATELIMIT_LOGIN": "",
        }
        if args.broker_url:
            self.env["CELERY_BROKER_URL"] = args.broker_url

    def manage(self, *argv: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [str(BIN / "python"), "manage.py", *argv],
            cwd=REPO,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode:
            raise SystemExit(f"manage.py {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def setup(self, learners: int) -> list[str]:
        self.manage("migrate", "--noinput")
        script = self.var / "setup.py"
        script.write_text(SETUP)
        out = subprocess.run(
            [str(BIN / "python"), "-c", _SHELL_RUNNER, str(script), str(learners), SLUG, PASSWORD],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("SETUP ")), None)
        if out.returncode or line is None:
            raise SystemExit(f"setup failed:\n{out.stdout}\n{out.stderr}")
        return json.loads(line[6:])["ids"]

    def start(self) -> None:
        log = open(self.var / "site.log", "w")  # noqa: SIM115 - lives as long as the processes
        if not self.args.broker_url:
            # The broker `make demo` runs: Redis on a unix socket in the throw-away var/.
            sys.path.insert(0, str(REPO))
            from config import embedded_redis

            redis_server = embedded_redis.command(self.var)
            self.procs.append(
                subprocess.Popen(redis_server, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            )
            embedded_redis.wait_ready(self.var)
        self._start(
            [
                str(BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.args.web_workers),
                "--threads",
                str(self.args.threads),
                "--timeout",
                "120",
            ],
            log,
        )
        self._start(
            [
                str(BIN / "celery"),
                "-A",
                "config.celery_app",
                "worker",
                "--queues",
                "scoring,default",
                "--concurrency",
                str(self.args.scoring_workers),
                "--loglevel",
                "WARNING",
            ],
            log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise SystemExit(f"the site did not come up; see {self.var / 'site.log'}")

    def counts(self) -> dict[str, int]:
        out = self.manage(
            "shell",
            "-c",
            "import json; from django.db.models import Count; "
            "from competitions.models import Submission as S; "
            "print('COUNTS', json.dumps(dict(S.objects.values_list('status').annotate(Count('pk')))))",
        )
        line = next(ln for ln in out.splitlines() if ln.startswith("COUNTS "))
        return json.loads(line[7:])

    def _start(self, argv: list[str], log) -> None:
        """A child in its own process group, logging to the run's log."""
        self.procs.append(
            subprocess.Popen(
                argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if not self.args.keep:
            shutil.rmtree(self.var, ignore_errors=True)


# Runs the setup script inside Django (manage.py shell -c cannot take arguments).
_SHELL_RUNNER = (
    "import sys, django; django.setup(); path = sys.argv[1]; sys.argv = sys.argv[1:]; "
    "exec(compile(open(path).read(), path, 'exec'))"
)
