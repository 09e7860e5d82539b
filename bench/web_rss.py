"""Resident memory of a web process after start-up: Django, the URLconf, the admin, the WSGI app.

    .venv/bin/python bench/web_rss.py [--repeat 5] [--tree PATH]

Each run is a fresh interpreter that loads what gunicorn loads before its first request, then
reports VmRSS and which heavy packages came in. --tree measures another checkout (for example
an older commit in a git worktree) with this virtualenv, so two layouts compare in one run.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
import django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns
import config.wsgi
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "scipy", "pandas", "pyarrow", "tensorflow"})
print(json.dumps({"rss_mb": rss / 1024, "heavy": heavy}))
"""


def measure(tree: Path, repeat: int) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "HOLDOUT_DEV": "1"}
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", PROBE], cwd=tree, env=env, capture_output=True, text=True, check=True
        )
        runs.append(json.loads(out.stdout.splitlines()[-1]))
    return {"rss_mb": statistics.median(r["rss_mb"] for r in runs), "heavy": runs[0]["heavy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tree", type=Path, action="append", default=[])
    args = parser.parse_args()
    trees = [Path(__file__).resolve().parents[1], *args.tree]
    for tree in trees:
        result = measure(tree, args.repeat)
        print(f"{tree}: median RSS {result['rss_mb']:.0f} MB; heavy packages: {result['heavy'] or 'none'}")


if __name__ == "__main__":
    main()
