"""Registry of leaderboard metrics, each backed by scikit-learn.

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

TARGETS = ("labels", "binary", "numeric", "nonnegative", "ordinal")
PREDICTIONS = ("label", "probability", "class_probabilities", "numeric")


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    higher_is_better: bool
    target: str
    prediction: str
    func: Callable[[np.ndarray, np.ndarray], float]
    description: str


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


def _m(
    name: str,
    label: str,
    higher: bool,
    target: str,
    prediction: str,
    func: Callable[[np.ndarray, np.ndarray], float],
    description: str,
) -> Metric:
    return Metric(name, label, higher, target, prediction, func, description)


_ALL = [
    _m(
        "accuracy",
        "Accuracy",
        True,
        "labels",
        "label",
        skm.accuracy_score,
        "The fraction of rows whose predicted label equals the true label.",
    ),
    _m(
        "balanced_accuracy",
        "Balanced accuracy",
        True,
        "labels",
        "label",
        skm.balanced_accuracy_score,
        "The average, over classes, of the fraction of that class's rows predicted correctly.",
    ),
    _m(
        "f1",
        "F1 score",
        True,
        "binary",
        "label",
        lambda y, p: skm.f1_score(y, p, pos_label=1, zero_division=0),
        "The harmonic mean of precision and recall for the positive class 1.",
    ),
    _m(
        "f1_macro",
        "F1 score (macro)",
        True,
        "labels",
        "label",
        _f1("macro"),
        "The unweighted mean of the per-class F1 scores.",
    ),
    _m(
        "f1_micro",
        "F1 score (micro)",
        True,
        "labels",
        "label",
        _f1("micro"),
        "F1 computed from the total true positives, false negatives and false positives.",
    ),
    _m(
        "f1_weighted",
        "F1 score (weighted)",
        True,
        "labels",
        "label",
        _f1("weighted"),
        "The mean of the per-class F1 scores weighted by each class's number of rows.",
    ),
    _m(
        "precision",
        "Precision",
        True,
        "binary",
        "label",
        lambda y, p: skm.precision_score(y, p, pos_label=1, zero_division=0),
        "The fraction of rows predicted as 1 that truly are 1.",
    ),
    _m(
        "recall",
        "Recall",
        True,
        "binary",
        "label",
        lambda y, p: skm.recall_score(y, p, pos_label=1, zero_division=0),
        "The fraction of rows that truly are 1 which are predicted as 1.",
    ),
    _m(
        "log_loss",
        "Log loss",
        False,
        "binary",
        "probability",
        _log_loss_binary,
        "The mean negative log-likelihood of the true 0/1 label under the predicted probability of 1.",
    ),
    _m(
        "log_loss_multiclass",
        "Log loss (multiclass)",
        False,
        "labels",
        "class_probabilities",
        _log_loss_multiclass,
        "The mean negative log-likelihood of the true class under the predicted class "
        "probabilities, which must sum to 1 on each row.",
    ),
    _m(
        "roc_auc",
        "ROC AUC",
        True,
        "binary",
        "probability",
        skm.roc_auc_score,
        "The area under the ROC curve of the predicted probability of 1.",
    ),
    _m(
        "roc_auc_ovr",
        "ROC AUC (one-vs-rest)",
        True,
        "labels",
        "class_probabilities",
        _roc_auc_ovr,
        "The unweighted mean over classes of the one-vs-rest ROC AUC of each class's predicted probability.",
    ),
    _m(
        "average_precision",
        "Average precision",
        True,
        "binary",
        "probability",
        skm.average_precision_score,
        "The area under the precision-recall curve of the predicted probability of 1.",
    ),
    _m(
        "mcc",
        "Matthews correlation coefficient",
        True,
        "labels",
        "label",
        skm.matthews_corrcoef,
        "The correlation between predicted and true labels, from -1 to 1, robust to class imbalance.",
    ),
    _m(
        "qwk",
        "Quadratic weighted kappa",
        True,
        "ordinal",
        "label",
        _qwk,
        "Agreement between predicted and true integer ratings, penalising disagreements by "
        "the square of their distance.",
    ),
    _m(
        "rmse",
        "Root mean squared error",
        False,
        "numeric",
        "numeric",
        skm.root_mean_squared_error,
        "The square root of the mean squared difference between prediction and target.",
    ),
    _m(
        "mse",
        "Mean squared error",
        False,
        "numeric",
        "numeric",
        skm.mean_squared_error,
        "The mean squared difference between prediction and target.",
    ),
    _m(
        "mae",
        "Mean absolute error",
        False,
        "numeric",
        "numeric",
        skm.mean_absolute_error,
        "The mean absolute difference between prediction and target.",
    ),
    _m(
        "rmsle",
        "Root mean squared log error",
        False,
        "nonnegative",
        "numeric",
        skm.root_mean_squared_log_error,
        "The root mean squared difference between log(1 + prediction) and log(1 + target).",
    ),
    _m(
        "r2",
        "R²",
        True,
        "numeric",
        "numeric",
        skm.r2_score,
        "The coefficient of determination: 1 minus the residual variance over the target's variance.",
    ),
    _m(
        "mape",
        "Mean absolute percentage error",
        False,
        "numeric",
        "numeric",
        skm.mean_absolute_percentage_error,
        "The mean of |prediction - target| / |target|, as a fraction (not multiplied by 100).",
    ),
    _m(
        "median_ae",
        "Median absolute error",
        False,
        "numeric",
        "numeric",
        skm.median_absolute_error,
        "The median absolute difference between prediction and target.",
    ),
]

METRICS: dict[str, Metric] = {m.name: m for m in _ALL}


def get_metric(name: str) -> Metric:
    """Return the metric called ``name``, or raise ValueError listing the known names."""
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(METRICS))
        raise ValueError(f"unknown metric {name!r}; known metrics: {known}") from None


def metric_choices() -> list[tuple[str, str]]:
    """``(name, label)`` pairs for a Django choices field, sorted by label."""
    return sorted(((m.name, m.label) for m in METRICS.values()), key=lambda c: c[1].lower())
