"""What the integration tests share besides fixtures: waiting with a deadline, checks for the
services (Redis, PostgreSQL), and CeleryWorker, a worker process a test can start, kill and
restart. tests/integration/conftest.py builds its fixtures from these; test modules import them
from here.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings as django_settings

from competitions.models import Submission

REPO_ROOT = Path(__file__).resolve().parents[2]
# The worker's broker: a Redis database of its own on the configured server, flushed freely.
REDIS_TEST_DB = int(os.environ.get("HOLDOUT_TEST_REDIS_DB", "15"))
# Short, so that a message left unacknowledged by a killed worker is taken back by a restarted one
# within seconds instead of an hour. Every scoring run in these tests takes well under a second.
VISIBILITY_TIMEOUT = 5
WORKER_READY_TIMEOUT = 60
SCORING_TIMEOUT = 60
POLL_INTERVAL = 0.2

FINISHED = frozenset({Submission.Status.SCORED, Submission.Status.FAILED})
# Celery logs one such line per task run that returned; the group is the task's return value
# (the outcome's status, or None when the claim found the row already taken).
TASK_RETURNED = re.compile(r"Task holdout\.score_submission\[[^\]]+\] succeeded in [\d.]+s: (.*)")


# --- Waiting ----------------------------------------------------------------------------------


def wait_until(condition: Callable[[], object], *, timeout: float, what: str) -> object:
    """Poll `condition` until it returns something truthy; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_INTERVAL)


def wait_for_status(
    submission: Submission, statuses=FINISHED, *, timeout: float = SCORING_TIMEOUT
) -> Submission:
    """Reload `submission` until its status is one of `statuses`."""

    def reached() -> bool:
        submission.refresh_from_db()
        return submission.status in statuses

    wanted = " or ".join(sorted(statuses))
    wait_until(reached, timeout=timeout, what=f"submission {submission.pk} to be {wanted}")
    return submission


# --- Service checks ---------------------------------------------------------------------------


def redis_test_url() -> str:
    """The Redis server from CELERY_BROKER_URL (or the local default), database REDIS_TEST_DB."""
    configured = os.environ.get("CELERY_BROKER_URL", "")
    base = configured if configured.startswith("redis://") else "redis://127.0.0.1:6379/0"
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{REDIS_TEST_DB}", "", ""))


def redis_problem(url: str) -> str | None:
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"Redis at {url} is not reachable ({exc}); set CELERY_BROKER_URL=redis://HOST:PORT/0"
    finally:
        client.close()
    return None


def postgres_problem() -> str | None:
    db = django_settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        return (
            f"integration tests need PostgreSQL, the database engine is {db['ENGINE']}; "
            "set DATABASE_URL=postgres://USER@HOST:5432/holdout"
        )
    import psycopg

    try:
        psycopg.connect(
            host=db["HOST"] or None,
            port=db["PORT"] or None,
            user=db["USER"] or None,
            password=db["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {db['HOST'] or 'the local socket'} is not reachable ({exc})"
    return None


# --- The worker process -----------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        # The command name, in parentheses, may hold spaces; the parent pid follows it.
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class CeleryWorker:
    """A worker process that a test can start, stop, kill and restart, and whose log it can read.

    Each start writes a new log file; `log()` returns them all, so lines from before a restart are
    still there.
    """

    def __init__(
        self,
        env: dict[str, str],
        log_dir: Path,
        *,
        queues: str = "scoring,default",
        pool: str | None = None,
        concurrency: int = 2,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        # queues, pool, concurrency and env may also be changed on a stopped worker before start():
        # the model worker is `-Q models --pool solo` with HOLDOUT_MODEL_WORKER=1.
        self.env = {**env, **(extra_env or {})}
        self.log_dir = log_dir
        self.queues = queues
        self.pool = pool
        self.concurrency = concurrency
        self.name = f"holdout-integration-{uuid.uuid4().hex[:8]}@%h"
        self.process: subprocess.Popen | None = None
        self.log_files: list[Path] = []

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = WORKER_READY_TIMEOUT) -> None:
        assert not self.running, "the worker is already running"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.log_dir / f"worker-{len(self.log_files) + 1}.log"
        self.log_files.append(log_file)
        command = [
            sys.executable, "-m", "celery", "-A", "config.celery_app", "worker",
            "-Q", self.queues, "--concurrency", str(self.concurrency), "--loglevel", "INFO",
            "--hostname", self.name,
            # No cluster chatter: nothing here needs it, and mingle waits for replies at start.
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        if self.pool:
            command += ["--pool", self.pool]
        with open(log_file, "wb") as out:
            # A session of its own, so that kill() can take down the pool processes with it.
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while " ready." not in log_file.read_text(errors="replace"):
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited ({self.process.returncode}) before it was ready")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"the worker was not ready after {timeout:.0f} s")
            time.sleep(0.1)

    def stop(self, timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM): finish running tasks and exit; SIGKILL after `timeout`."""
        if not self.running:
            return
        self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)
        self.kill()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the worker and its pool processes, as when a container is killed."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(20)

    def kill_pool_processes(self, sig: int = signal.SIGKILL) -> list[int]:
        """Send `sig` to the pool processes only, as the kernel's OOM killer would."""
        assert self.running, "the worker is not running"
        pids = _children(self.process.pid)
        assert pids, "the worker has no pool processes"
        for pid in pids:
            os.kill(pid, sig)
        return pids

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return "\n".join(
            f"----- {path.name} -----\n{path.read_text(errors='replace')}" for path in self.log_files
        )

    def task_results(self) -> list[str]:
        """Return values of the scoring runs that finished, in the order the log shows them."""
        return TASK_RETURNED.findall(self.log())

    def wait_for_task_results(self, count: int, timeout: float = SCORING_TIMEOUT) -> list[str]:
        wait_until(
            lambda: len(self.task_results()) >= count,
            timeout=timeout,
            what=f"{count} finished scoring run(s) in the worker log",
        )
        return self.task_results()
