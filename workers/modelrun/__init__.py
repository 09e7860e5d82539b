"""Model challenges: run a learner's Keras model on hidden test features in a sandbox.

``features`` validates the organizer's hidden features (no TensorFlow); ``checks`` refuses
unusable model files before anything runs; ``predictions`` runs the model in a child process
(``pool`` starts those, and keeps one warm) and writes its predictions as a submission CSV that
the scoring engine scores like any upload (no TensorFlow in this process either); ``refusals``
holds every refusal's message and charging rule; ``child`` is the child process's entry point
and the only module that imports TensorFlow; ``isolation`` is what the child enters first.

Names are re-exported lazily, so ``python -m workers.modelrun.child`` does not import pandas and
pyarrow into the child just to reach its own module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.lazy import lazy_getattr

if TYPE_CHECKING:
    from .checks import check_model_file
    from .features import FeaturesInfo, inspect_features
    from .limits import SandboxLimits
    from .outputs import output_spec
    from .pool import WarmPool, warm_pool
    from .predictions import predict_to_csv
    from .refusals import ModelRejected, RunnerUnavailable

_EXPORTS = {
    "FeaturesInfo": "features",
    "inspect_features": "features",
    "output_spec": "outputs",
    "ModelRejected": "refusals",
    "RunnerUnavailable": "refusals",
    "SandboxLimits": "limits",
    "WarmPool": "pool",
    "check_model_file": "checks",
    "predict_to_csv": "predictions",
    "warm_pool": "pool",
}

__all__ = [
    "FeaturesInfo",
    "ModelRejected",
    "RunnerUnavailable",
    "SandboxLimits",
    "WarmPool",
    "check_model_file",
    "inspect_features",
    "output_spec",
    "predict_to_csv",
    "warm_pool",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
