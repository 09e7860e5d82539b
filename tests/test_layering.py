"""The layering holds: a web process never loads the scoring stack, and imports run one way.

Each check runs in a fresh interpreter, since this test process has long since imported
everything.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("sklearn", "scipy", "pandas", "pyarrow", "tensorflow", "keras")


def loaded_after(code: str) -> list[str]:
    """The heavy top-level packages present in sys.modules after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "HOLDOUT_DEV": "1"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [m for m in json.loads(result.stdout.splitlines()[-1]) if m in HEAVY]


WEB_PROCESS = """
import django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns
import config.wsgi
"""


def test_a_web_process_loads_no_scoring_stack():
    """Django, the URLconf (views, the admin, the API) and the WSGI app: ~38 MB instead of ~210."""
    assert loaded_after(WEB_PROCESS) == []


def test_the_probe_can_see_a_heavy_import():
    """The check above can fail: loading the scoring pipeline does bring the engine in."""
    assert "pyarrow" in loaded_after(WEB_PROCESS + "from competitions.services import scoring\n")


@pytest.mark.parametrize(
    "module",
    [
        "workers.engine.registry",
        "workers.engine.errors",
        "workers.modelrun.outputs",
        "competitions.tasks",
        "config.celery_app",
    ],
)
def test_light_modules_stay_light(module):
    code = "import django\ndjango.setup()\n" if not module.startswith("workers") else ""
    assert loaded_after(code + f"import {module}\n") == []


def test_the_engine_imports_no_django():
    """workers/engine runs without Django; nothing in it may import it."""
    sources = sorted((REPO / "workers" / "engine").glob("*.py"))
    assert sources
    offenders = [p.name for p in sources if "django" in p.read_text()]
    assert offenders == []
