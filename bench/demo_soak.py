"""Soak test of the demo: thousands of uploads in a row through `manage.py serve`.

The "done when" of the embedded default: `make demo` takes 2,000 uploads in a row from 4
parallel clients, every submission ends scored or failed-with-message within two minutes of
its upload, and the site still serves afterwards.

It runs the demo's own stack, exactly what `make demo` starts (embedded Redis on a unix socket,
a Celery worker with beat, Django's server, SQLite), on a free loopback port over a throw-away
HOLDOUT_VAR_DIR: migrate, seed_demo, then a dedicated challenge with a limit high enough for
the soak (the demo's challenges keep their limits). The submission rate limit is switched off
for the run, since one API key sends everything. Every 20th upload is a broken file, so the
failure path is exercised too. 4 clients upload through the REST API with an API key; the
script then waits, reads the rows from the SQLite file, and reports counts, upload and
upload→finished latencies, any row not finished in time, and whether `serve` restarted a child.

    .venv/bin/python bench/demo_soak.py                     # 2,000 uploads, 4 clients
    .venv/bin/python bench/demo_soak.py --uploads 100       # the quick version the tests run

Standard library only. Exit status 1 when any requirement is not met.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SLUG = "soak"
BROKEN_EVERY = 20

SETUP = r"""
import json
from datetime import timedelta
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from competitions import services
from competitions.api_keys import api_key_create
from competitions.models import Competition, User

ids = [f"s{i:04d}" for i in range(300)]
solution = ("id,target\n" + "".join(f"{x},{i % 2}\n" for i, x in enumerate(ids))).encode()
now = timezone.now()
competition = Competition.objects.create(
    slug="soak", title="Soak test", metric="roc_auc", state=Competition.State.PUBLISHED,
    start_at=now - timedelta(days=1), deadline_at=now + timedelta(days=30),
    daily_limit=100000, rules="Soak test.",
)
upload = SimpleUploadedFile("solution.csv", solution)
prepared, info = services.solution_prepare_for(competition, upload)
services.competition_set_solution(
    competition, source=upload, prepared=prepared, info=info, original_name="solution.csv"
)
user = User.objects.create_user(username="soak", email="soak@example.com", password=None)
services.competition_join(user=user, competition=competition)
print("SETUP", json.dumps({"key": api_key_create(user), "ids": ids}))
"""
_SHELL_RUNNER = "import sys, django; django.setup(); exec(compile(open(sys.argv[1]).read(), 'setup', 'exec'))"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


class Demo:
    """`manage.py serve` on a free port over a throw-away var/ directory."""

    def __init__(self, keep: bool) -> None:
        self.var = Path(tempfile.mkdtemp(prefix="holdout-soak-"))
        self.keep = keep
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        own = ("CELERY_", "HOLDOUT_", "DATABASE_URL")  # the demo's defaults, not the caller's
        env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
        self.env = {
            **env,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "HOLDOUT_DEV": "1",  # what `make demo` sets: the embedded defaults
            "HOLDOUT_VAR_DIR": str(self.var),
            "HOLDOUT_RATELIMIT_SUBMIT": "",
            "HOLDOUT_RATELIMIT_API": "",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
        }
        self.serve: subprocess.Popen | None = None
        self.log_path = self.var / "serve.log"

    def run(self, *argv: str) -> str:
        done = subprocess.run(
            [PYTHON, *argv], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=900
        )
        if done.returncode:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def setup(self) -> dict:
        self.run("manage.py", "migrate", "--noinput")
        self.run("manage.py", "seed_demo")
        script = self.var / "setup.py"
        script.write_text(SETUP)
        out = self.run("-c", _SHELL_RUNNER, str(script))
        line = next(ln for ln in out.splitlines() if ln.startswith("SETUP "))
        return json.loads(line[6:])

    def start(self, timeout: float = 300) -> None:
        log = open(self.log_path, "w")  # noqa: SIM115 - lives as long as the process
        self.serve = subprocess.Popen(
            [PYTHON, "manage.py", "serve", "--port", str(self.port)],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.serve.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the demo did not come up; see {self.log_path}")
            time.sleep(0.5)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=10) as response:
                return response.status == 200
        except OSError:
            return False

    def rows(self) -> list[tuple]:
        db = sqlite3.connect(f"file:{self.var / 'holdout.sqlite3'}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute(
                "SELECT s.id, s.status, s.error_message, s.created_at, s.scored_at "
                "FROM competitions_submission s JOIN competitions_competition c ON c.id = s.competition_id "
                "WHERE c.slug = ?",
                (SLUG,),
            ).fetchall()
        finally:
            db.close()

    def stop(self) -> None:
        if self.serve is not None and self.serve.poll() is None:
            self.serve.send_signal(signal.SIGTERM)  # serve stops its children
            try:
                self.serve.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.serve.pid, signal.SIGKILL)
                self.serve.wait()
        if not self.keep:
            shutil.rmtree(self.var, ignore_errors=True)


def multipart(body: bytes) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    data = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="preds.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + body
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return data, f"multipart/form-data; boundary={boundary}"


def upload_all(demo: Demo, key: str, ids: list[str], uploads: int, clients: int) -> tuple[list, list]:
    """`clients` threads share `uploads` uploads; returns (upload seconds, errors)."""
    good = ("id,target\n" + "".join(f"{x},{(i * 7919) % 100 / 100}\n" for i, x in enumerate(ids))).encode()
    broken = b"id,wrong\ns0000,1\n"
    url = f"{demo.url}/api/competitions/{SLUG}/submissions/"
    counter = iter(range(uploads))
    lock = threading.Lock()
    seconds, errors = [], []

    def client() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            data, content_type = multipart(broken if n % BROKEN_EVERY == BROKEN_EVERY - 1 else good)
            request = urllib.request.Request(
                url, data=data, method="POST",
                headers={"Authorization": f"Token {key}", "Content-Type": content_type},
            )  # fmt: skip
            started = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    if response.status != 201:
                        errors.append(f"upload {n}: HTTP {response.status}")
            except urllib.error.HTTPError as exc:
                errors.append(f"upload {n}: HTTP {exc.code} {exc.read()[:200]!r}")
            except OSError as exc:
                errors.append(f"upload {n}: {exc}")
            with lock:
                seconds.append(time.monotonic() - started)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seconds, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds from upload to a result")
    parser.add_argument("--keep", action="store_true", help="keep the throw-away var/ directory")
    args = parser.parse_args()

    demo = Demo(args.keep)
    problems: list[str] = []
    try:
        setup = demo.setup()
        demo.start()
        began = time.monotonic()
        upload_seconds, errors = upload_all(demo, setup["key"], setup["ids"], args.uploads, args.clients)
        upload_wall = time.monotonic() - began
        problems += errors[:20]
        if len(errors) > 20:
            problems.append(f"... and {len(errors) - 20} more upload errors")

        deadline = time.monotonic() + args.deadline + 10
        while time.monotonic() < deadline:
            rows = demo.rows()
            if all(status in ("scored", "failed") for _, status, *_ in rows):
                break
            time.sleep(1)
        rows = demo.rows()
        counts: dict[str, int] = {}
        latencies = []
        for pk, status, message, created, scored in rows:
            counts[status] = counts.get(status, 0) + 1
            if status not in ("scored", "failed"):
                problems.append(f"submission {pk} still {status}")
                continue
            if status == "failed" and not message:
                problems.append(f"submission {pk} failed without a message")
            took = (datetime.fromisoformat(scored) - datetime.fromisoformat(created)).total_seconds()
            latencies.append(took)
            if took > args.deadline:
                problems.append(f"submission {pk} took {took:.0f} s to finish")
        if len(rows) != args.uploads - len(errors):
            problems.append(f"{len(rows)} rows for {args.uploads - len(errors)} accepted uploads")
        serving = demo.healthy() and demo.serve.poll() is None
        if not serving:
            problems.append("the site is not serving after the run")
        restarts = demo.log_path.read_text(errors="replace").count("exited unexpectedly")

        print(f"uploads: {args.uploads} from {args.clients} clients in {upload_wall:.0f} s")
        print(f"rows: {json.dumps(counts, sort_keys=True)}; upload errors: {len(errors)}")
        print(
            f"upload p50/p95: {percentile(upload_seconds, 0.5) * 1000:.0f} / "
            f"{percentile(upload_seconds, 0.95) * 1000:.0f} ms"
        )
        if latencies:
            print(
                f"upload→finished p50/p95/max: {statistics.median(latencies):.1f} / "
                f"{percentile(latencies, 0.95):.1f} / {max(latencies):.1f} s"
            )
        print(f"site serving afterwards: {serving}; children restarted by serve: {restarts}")
    finally:
        demo.stop()
    for problem in problems[:50]:
        print("PROBLEM:", problem)
    print("OK" if not problems else f"FAILED ({len(problems)} problems)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
