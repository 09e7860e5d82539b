"""The demo's stack under a stream of uploads: bench/demo_soak.py, small.

`manage.py serve` (embedded Redis, a worker with beat, Django's server, SQLite) on a free port
takes 100 uploads from 4 parallel clients through the REST API; every submission must end
scored or failed with a message within two minutes, and the site must still serve. The full
2,000-upload run is in bench/README.md. Marked integration: it starts real processes and takes
a minute or two.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from config import embedded_redis
from tests.factories import require_service

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]


def test_the_demo_takes_100_uploads_from_4_clients_and_finishes_every_one():
    try:
        embedded_redis.server_binary()
        found = True
    except embedded_redis.RedisServerMissing:
        found = False
    require_service(found, "no redis-server for the demo (install requirements.txt)")
    done = subprocess.run(
        [sys.executable, "bench/demo_soak.py", "--uploads", "100", "--clients", "4"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"scored": 95' in done.stdout and '"failed": 5' in done.stdout
    assert "children restarted by serve: 0" in done.stdout


def _load_soak_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_soak", REPO / "bench" / "demo_soak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _children_of(pid: int) -> dict[int, str]:
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            found[int(stat.parent.name)] = cmdline
    return found


def test_serve_restarts_a_killed_worker_names_it_and_keeps_serving():
    import os
    import signal
    import time

    demo = _load_soak_module().Demo(keep=False)
    try:
        demo.run("manage.py", "migrate", "--noinput")
        demo.start()
        workers = [pid for pid, cmd in _children_of(demo.serve.pid).items() if "scoring,default" in cmd]
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGKILL)  # as the JSONDecodeError crash or the OOM killer would
        deadline = time.monotonic() + 60
        while True:
            log = demo.log_path.read_text(errors="replace")
            restarted = [
                pid
                for pid, cmd in _children_of(demo.serve.pid).items()
                if "scoring,default" in cmd and pid != workers[0]
            ]
            if "restarting scoring worker" in log and restarted:
                break
            assert time.monotonic() < deadline, log[-3000:]
            time.sleep(0.2)
        assert "scoring worker exited unexpectedly (status -9)" in log
        assert demo.healthy() and demo.serve.poll() is None
    finally:
        demo.stop()
