"""The parent side of the model sandbox, in one import, for the code that drives it.

The work is split by job: checks.py (the model file, before anything runs), predictions.py (the
run and its outputs, written as a submission CSV), pool.py (the child processes and the warm
pool), refusals.py (every refusal's message and charging rule), limits.py (what a run may use).
The scoring service and the model worker's start-up (config/celery_app.py) import from here.
"""

from .checks import check_model_file
from .limits import SandboxLimits
from .pool import WarmPool, configure_isolation, isolation_report, warm_pool
from .predictions import predict_to_csv
from .refusals import ModelRejected, RunnerUnavailable

__all__ = [
    "ModelRejected",
    "RunnerUnavailable",
    "SandboxLimits",
    "WarmPool",
    "check_model_file",
    "configure_isolation",
    "isolation_report",
    "predict_to_csv",
    "warm_pool",
]
