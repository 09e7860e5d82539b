"""Model challenges: run a learner's Keras model on hidden test features in a sandbox.

``features`` validates the organizer's hidden features (no TensorFlow); ``sandbox`` runs the
model in a child process and writes its predictions as a submission CSV that the scoring engine
scores like any upload (no TensorFlow in this process either); ``child`` is that child process's
entry point and the only module that imports TensorFlow.

Names are re-exported lazily, so ``python -m workers.modelrun.child`` does not import pandas and
pyarrow into the child just to reach its own module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.lazy import lazy_getattr

if TYPE_CHECKING:
    from .features import FeaturesInfo, inspect_features
    from .outputs import output_spec
    from .sandbox import (
        ModelRejected,
        RunnerUnavailable,
        SandboxLimits,
        WarmPool,
        check_model_file,
        predict_to_csv,
        warm_pool,
    )

_EXPORTS = {
    "FeaturesInfo": "features",
    "inspect_features": "features",
    "output_spec": "outputs",
    "ModelRejected": "sandbox",
    "RunnerUnavailable": "sandbox",
    "SandboxLimits": "sandbox",
    "WarmPool": "sandbox",
    "check_model_file": "sandbox",
    "predict_to_csv": "sandbox",
    "warm_pool": "sandbox",
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
