"""The scikit-learn function behind each metric of the registry (``registry.py``).

What ``func`` receives depends on the metric's ``target``:

- ``labels``: integer class codes (the index of each label in the solution's sorted classes);
- ``binary``: 0/1 integers, so ``pos_label=1`` means the class "1";
- ``ordinal``: the integer labels themselves, because quadratic weights need real distances;
- ``numeric`` / ``nonnegative``: float64 values.

and on its ``prediction``: codes or integers as above for ``label``, a 1-D float array for
``probability``, an ``(n, n_classes)`` float array in sorted class order for
``class_probabilities``, and a float array for ``numeric``. The engine validates inputs before
calling ``func``, so these wrappers stay thin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from .registry import PREDICTIONS, SPECS, TARGETS, MetricSpec, get_spec, metric_choices

__all__ = ["METRICS", "PREDICTIONS", "TARGETS", "Metric", "get_metric", "metric_choices"]


@dataclass(frozen=True)
class Metric(MetricSpec):
    """A registry entry with the function that computes it."""

    func: Callable[[np.ndarray, np.ndarray], float]


def _f1(average: str) -> Callable[[np.ndarray, np.ndarray], float]:
    # zero_division=0 keeps an all-negative prediction from emitting warnings in worker logs.
    return lambda y, p: skm.f1_score(y, p, average=average, zero_division=0)


def _log_loss_binary(y: np.ndarray, p: np.ndarray) -> float:
    # labels= keeps the score defined even if a subset happens to hold one class.
    return skm.log_loss(y, p, labels=[0, 1])


def _log_loss_multiclass(y: np.ndarray, p: np.ndarray) -> float:
    return skm.log_loss(y, _normalise_rows(p), labels=np.arange(p.shape[1]))


def _roc_auc_ovr(y: np.ndarray, p: np.ndarray) -> float:
    if p.shape[1] == 2:
        # scikit-learn treats two classes as a binary problem and wants one score column; both
        # one-vs-rest AUCs equal the binary AUC, so their macro mean does too.
        return skm.roc_auc_score(y, p[:, 1])
    return skm.roc_auc_score(
        y, _normalise_rows(p), multi_class="ovr", average="macro", labels=np.arange(p.shape[1])
    )


def _normalise_rows(p: np.ndarray) -> np.ndarray:
    # The engine accepts rows summing to 1 within 1e-3 (CSV round-off); scikit-learn either
    # warns (log_loss) or refuses (roc_auc ovr) unless rows sum to 1 almost exactly.
    return p / p.sum(axis=1, keepdims=True)


def _qwk(y: np.ndarray, p: np.ndarray) -> float:
    # cohen_kappa_score weights by position in the label list, not by value; passing the full
    # integer range makes the quadratic weight the true squared distance between ratings.
    lo = int(min(y.min(), p.min()))
    hi = int(max(y.max(), p.max()))
    return skm.cohen_kappa_score(y, p, weights="quadratic", labels=np.arange(lo, hi + 1))


_FUNCS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": skm.accuracy_score,
    "balanced_accuracy": skm.balanced_accuracy_score,
    "f1": lambda y, p: skm.f1_score(y, p, pos_label=1, zero_division=0),
    "f1_macro": _f1("macro"),
    "f1_micro": _f1("micro"),
    "f1_weighted": _f1("weighted"),
    "precision": lambda y, p: skm.precision_score(y, p, pos_label=1, zero_division=0),
    "recall": lambda y, p: skm.recall_score(y, p, pos_label=1, zero_division=0),
    "log_loss": _log_loss_binary,
    "log_loss_multiclass": _log_loss_multiclass,
    "roc_auc": skm.roc_auc_score,
    "roc_auc_ovr": _roc_auc_ovr,
    "average_precision": skm.average_precision_score,
    "mcc": skm.matthews_corrcoef,
    "qwk": _qwk,
    "rmse": skm.root_mean_squared_error,
    "mse": skm.mean_squared_error,
    "mae": skm.mean_absolute_error,
    "rmsle": skm.root_mean_squared_log_error,
    "r2": skm.r2_score,
    "mape": skm.mean_absolute_percentage_error,
    "median_ae": skm.median_absolute_error,
}

METRICS: dict[str, Metric] = {name: Metric(**vars(spec), func=_FUNCS[name]) for name, spec in SPECS.items()}


def get_metric(name: str) -> Metric:
    """Return the metric called ``name``, or raise ValueError listing the known names."""
    return METRICS[get_spec(name).name]
