"""Every way the sandbox refuses a model: the learner's message and whether it is charged.

REFUSALS is the one table of them. The model-file checks, the output checks and the child's
failure replies all raise ``refusal(kind, ...)``, so each message and its charging rule are
written once, here. Refusals of the model file itself (not a zip, unsafe layers, wrong input
shape) are free; refusals of what the model computed on the hidden features are charged: a free
failure would answer a question about hidden rows at no cost. Either way a message gives shapes
and counts only, never an id, a feature or a predicted value.
"""

from __future__ import annotations

import signal
from typing import NamedTuple

from workers.engine.errors import ScoringError

from .limits import MiB, SandboxLimits

_H5_HINT = "save it with model.save('model.keras')"
_BUILT_IN_ONLY = "which Holdout does not run (safe_mode); use built-in Keras layers only."


class Refusal(NamedTuple):
    message: str  # a str.format template; its fields are the refusal's details
    charged: bool = False


REFUSALS: dict[str, Refusal] = {
    # -- the model file, checked in the parent before any TensorFlow starts -------------------
    "unreadable": Refusal("The model file could not be read; upload it again."),
    "too_large": Refusal("The model file is {size:,.1f} MB; at most {limit:,.0f} MB are allowed."),
    "empty": Refusal(f"The model file is empty; {_H5_HINT}."),
    "hdf5": Refusal(f"HDF5 (.h5) models are not accepted; {_H5_HINT}."),
    "pickle": Refusal(
        f"This is a Python pickle, not a Keras model; Holdout never unpickles uploads — {_H5_HINT}."
    ),
    "not_zip": Refusal(f"This is not a .keras file (a Keras 3 model is a zip archive); {_H5_HINT}."),
    "expands_too_far": Refusal(
        "The model archive expands to {expanded:,.0f} MB; at most {limit:,.0f} MB are allowed."
    ),
    "saved_model": Refusal(f"This is a zipped TensorFlow SavedModel, not a .keras file; {_H5_HINT}."),
    "no_config": Refusal(f"This zip archive is not a .keras file (it has no config.json); {_H5_HINT}."),
    "no_weights": Refusal(f"This .keras file has no weights (model.weights.h5); {_H5_HINT}."),
    "config_too_large": Refusal("The model's config.json is implausibly large."),
    "damaged_zip": Refusal(f"The .keras file is damaged (its zip archive cannot be read); {_H5_HINT}."),
    "config_not_json": Refusal("The .keras file is damaged (its config.json is not valid JSON)."),
    "config_not_model": Refusal("The .keras file is damaged (its config.json does not describe a model)."),
    "code_layer": Refusal("The model uses a {layer} layer or custom code, " + _BUILT_IN_ONLY),
    "custom_code": Refusal("The model uses custom code ({name}), " + _BUILT_IN_ONLY),
    # -- the child's failure replies (see child.py); the kind is the reply's category ---------
    "unsafe": Refusal("The model uses a Lambda layer or custom code, " + _BUILT_IN_ONLY),
    "unknown_object": Refusal(
        "The model uses a layer or function this Keras version does not know (custom code is not "
        "run); use built-in Keras layers only."
    ),
    "corrupt": Refusal(
        f"The .keras file could not be loaded: it is damaged or not a Keras 3 model; {_H5_HINT}."
    ),
    "input_shape": Refusal(
        "The model expects inputs of shape {model_shape} per row, but the test features "
        "have shape {features_shape} per row."
    ),
    "inputs": Refusal("The model has {count} inputs; it must take one array of test features."),
    "outputs": Refusal("The model has {count} outputs; it must produce one: {spec}.", charged=True),
    "output_shape": Refusal(
        "The model outputs shape {per_row} per row; this challenge needs {spec}.", charged=True
    ),
    "output_dtype": Refusal("The model outputs {dtype} values; it must output numbers.", charged=True),
    "nonfinite": Refusal(
        "The model predicted NaN or infinite values on {rows:,} of {total:,} test rows; check its "
        "weights for NaN.",
        charged=True,
    ),
    "memory": Refusal(
        "The model needed more than {memory} of memory (the limit for a model run, TensorFlow included)."
    ),
    "cpu": Refusal("The model took longer than {cpu_seconds:,} s of CPU time to predict the test set."),
    "wall": Refusal("The model took longer than {wall_seconds:g} s to predict the test set."),
    "crash": Refusal(
        "The model run stopped abruptly, most likely because it needed more than {memory} of memory."
    ),
    "predict": Refusal(
        "The model failed on the test features, whose shape is {features_shape} per row; check the "
        "model's input shape."
    ),
    "error": Refusal(
        "The model failed while predicting the test features; check it runs with model.predict locally."
    ),
    # -- its outputs, checked in the parent before they become a submission -------------------
    "not_probabilities": Refusal(
        "The model's outputs must be probabilities between 0 and 1{summed} (end the model with a "
        "{activation}); {bad:,} of {total:,} test rows are not.",
        charged=True,
    ),
    "log_of_negative": Refusal(
        "The model's outputs must be greater than -1 ({metric} takes log(1 + prediction)); "
        "{bad:,} of {total:,} test rows are not.",
        charged=True,
    ),
}


class ModelRejected(ScoringError):
    """The model could not be run; ``str()`` is for the learner, ``log`` for the operator.
    Raised through ``refusal()``, which takes the message and ``charged`` from REFUSALS."""

    def __init__(self, message: str, log: str = "", *, charged: bool = False) -> None:
        super().__init__(message, charged=charged)
        self.log = log


class RunnerUnavailable(RuntimeError):
    """The sandbox itself failed (e.g. TensorFlow did not start): retry, don't blame the model."""


def refusal(kind: str, *, log: str = "", **fields: object) -> ModelRejected:
    """The ModelRejected for ``kind`` (an unknown kind is the generic "error"), its message
    filled in with ``fields``."""
    message, charged = REFUSALS.get(kind, REFUSALS["error"])
    return ModelRejected(message.format(**fields), log, charged=charged)


def reply_refusal(reply: dict, limits: SandboxLimits, spec: str) -> ModelRejected:
    """The refusal for a child's failure reply (``{"ok": false, "category": ..., "detail": ...}``)."""
    detail = reply.get("detail") or {}
    return refusal(
        str(reply.get("category")),
        log=reply.get("log", ""),
        model_shape=_shape(detail.get("model")),
        features_shape=_shape(detail.get("features")),
        per_row=_shape(detail.get("per_row")),
        count=detail.get("count"),
        dtype=detail.get("dtype"),
        rows=_whole(detail.get("rows")),
        total=_whole(detail.get("total")),
        spec=spec,
        memory=f"{limits.memory_bytes / MiB:,.0f} MB",
        cpu_seconds=limits.cpu_seconds,
        wall_seconds=limits.wall_seconds,
    )


def exit_category(returncode: int) -> str:
    """The reply category for a child that died without replying."""
    if returncode == -signal.SIGXCPU:
        return "cpu"
    if returncode in (-signal.SIGKILL, -signal.SIGABRT, -signal.SIGSEGV, -signal.SIGBUS):
        # Under RLIMIT_AS, TensorFlow aborts when it cannot allocate or start a thread; a SIGKILL
        # we did not send is the kernel's OOM killer.
        return "crash"
    return "error"


def _shape(dims: object) -> str:
    if not isinstance(dims, list):
        return "(unknown)"
    return (
        "(" + ", ".join("any" if d is None else str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"
    )


def _whole(value: object) -> int:
    try:
        return int(value or 0)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0
