"""Settings for the test suite (pyproject's DJANGO_SETTINGS_MODULE): the embedded defaults of
local development, so that `pytest` runs on a fresh machine with no environment at all.

Set in the environment rather than here, so that the processes a test starts (manage.py,
workers) inherit it; tests that want production settings build their environment explicitly.
"""

import os

os.environ.setdefault("HOLDOUT_DEV", "1")

from config.settings import *  # noqa: E402, F403
