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
from tests.conftest import require_service

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
