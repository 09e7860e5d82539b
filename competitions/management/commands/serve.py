"""Run the whole demo in one terminal (what `make demo` uses): Redis, a Celery worker (and
beat), the web server, and a model worker when TensorFlow is installed.

One process supervises the children. A child that exits unexpectedly is started again, with a
log line naming it and its exit status, after a short backoff that doubles while it keeps
crashing; a child that crashes more than MAX_RESTARTS times within a minute stops everything
with an error, so a crash loop is seen rather than hidden. Ctrl-C or SIGTERM stops every child.
"""

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config import embedded_redis

log = logging.getLogger("holdout.serve")

MAX_RESTARTS = 5  # per child, within RESTART_WINDOW seconds
RESTART_WINDOW = 60.0
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 10.0


@dataclass
class Child:
    """One supervised process: how to start it, and when it last crashed."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    ready: Callable[[], None] | None = None  # blocks until the child can serve
    is_broker: bool = False
    process: subprocess.Popen | None = None
    crashes: deque = field(default_factory=deque)
    restart_at: float | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env)
        if self.ready is not None:
            self.ready()


class CrashLoop(Exception):
    pass


class Supervisor:
    """Starts children in order and keeps them running; `stop()` ends them all."""

    def __init__(self, children: list[Child], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.children = children
        self.clock = clock

    def start(self) -> None:
        for child in self.children:
            child.start()

    def check(self) -> None:
        """Restart children that have exited, once their backoff has passed (call repeatedly)."""
        now = self.clock()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restart_at = None
                    log.warning("restarting %s", child.name)
                    child.start()
                continue
            code = child.process.poll()
            if code is None:
                continue
            while child.crashes and now - child.crashes[0] > RESTART_WINDOW:
                child.crashes.popleft()
            child.crashes.append(now)
            if len(child.crashes) > MAX_RESTARTS:
                raise CrashLoop(
                    f"{child.name} exited {len(child.crashes)} times within {RESTART_WINDOW:.0f} s "
                    f"(last exit status {code}); stopping everything. Its output above says why."
                )
            backoff = min(FIRST_BACKOFF * 2 ** (len(child.crashes) - 1), MAX_BACKOFF)
            log.error(
                "%s exited unexpectedly (status %s); restarting it in %.1f s", child.name, code, backoff
            )
            child.restart_at = now + backoff

    def stop(self, timeout: float = 15) -> None:
        """Terminate every child, the broker last: workers finishing a task still need it."""
        users, broker = (
            [c for c in self.children if not c.is_broker],
            [c for c in self.children if c.is_broker],
        )
        for group in (users, broker):
            running = [c.process for c in group if c.process and c.process.poll() is None]
            for process in running:
                process.terminate()
            deadline = time.monotonic() + timeout
            for process in running:
                try:
                    process.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


class Command(BaseCommand):
    help = "Serve the site on 127.0.0.1:PORT with Redis and a Celery worker (and beat) beside it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--concurrency", type=int, default=2)

    def children(self, port: int, concurrency: int) -> list[Child]:
        python = sys.executable
        var = Path(settings.VAR_DIR)
        children = []
        if settings.CELERY_BROKER_URL == settings.HOLDOUT_EMBEDDED_BROKER_URL:
            try:
                argv = embedded_redis.command(var)
            except embedded_redis.RedisServerMissing as exc:
                raise CommandError(str(exc)) from None
            ready = lambda: embedded_redis.wait_ready(var)  # noqa: E731
            children.append(Child("redis", argv, ready=ready, is_broker=True))
        celery = [python, "-m", "celery", "-A", "config.celery_app", "worker", "--loglevel", "INFO"]
        beat = ["--beat", "--schedule", str(var / "celerybeat-schedule")]
        queues = ["--queues", "scoring,default", "--concurrency", str(concurrency)]
        children.append(Child("scoring worker", celery + beat + queues))
        web = [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        children.append(Child("web server", web))
        if importlib.util.find_spec("tensorflow") is not None:
            # Keras models are scored by a worker of their own: one job at a time (solo pool),
            # with a pre-started TensorFlow child kept warm (HOLDOUT_MODEL_WORKER).
            models = ["--pool", "solo", "--queues", "models", "--hostname", "models@%h"]
            env = {**os.environ, "HOLDOUT_MODEL_WORKER": "1"}
            children.append(Child("model worker", celery + models, env=env))
        else:
            self.stdout.write("TensorFlow is not installed: model challenges will wait for a model worker.")
        return children

    def handle(self, *args, port: int, concurrency: int, **options) -> None:
        supervisor = Supervisor(self.children(port, concurrency))

        def stop(*_: object) -> None:
            supervisor.stop()
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        supervisor.start()
        self.stdout.write(self.style.SUCCESS(f"Holdout is on http://127.0.0.1:{port}/ — Ctrl-C stops it."))
        try:
            while True:
                time.sleep(0.5)
                supervisor.check()
        except CrashLoop as exc:
            supervisor.stop()
            raise CommandError(str(exc)) from None
