"""The metric registry: what each leaderboard metric is, without how it is computed.

Names, labels, direction, target and prediction kinds and descriptions are all the web process
needs (choices, pages, ranking direction), so they live here with no heavy imports; the engine
(``workers.engine.metrics``) attaches a scikit-learn function to each. ``target`` and
``prediction`` are explained there.
"""

from __future__ import annotations

from dataclasses import dataclass

TARGETS = ("labels", "binary", "numeric", "nonnegative", "ordinal")
PREDICTIONS = ("label", "probability", "class_probabilities", "numeric")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    label: str
    higher_is_better: bool
    target: str
    prediction: str
    description: str


SPECS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "accuracy",
            "Accuracy",
            True,
            "labels",
            "label",
            "The fraction of rows whose predicted label equals the true label.",
        ),
        MetricSpec(
            "balanced_accuracy",
            "Balanced accuracy",
            True,
            "labels",
            "label",
            "The average, over classes, of the fraction of that class's rows predicted correctly.",
        ),
        MetricSpec(
            "f1",
            "F1 score",
            True,
            "binary",
            "label",
            "The harmonic mean of precision and recall for the positive class 1.",
        ),
        MetricSpec(
            "f1_macro",
            "F1 score (macro)",
            True,
            "labels",
            "label",
            "The unweighted mean of the per-class F1 scores.",
        ),
        MetricSpec(
            "f1_micro",
            "F1 score (micro)",
            True,
            "labels",
            "label",
            "F1 computed from the total true positives, false negatives and false positives.",
        ),
        MetricSpec(
            "f1_weighted",
            "F1 score (weighted)",
            True,
            "labels",
            "label",
            "The mean of the per-class F1 scores weighted by each class's number of rows.",
        ),
        MetricSpec(
            "precision",
            "Precision",
            True,
            "binary",
            "label",
            "The fraction of rows predicted as 1 that truly are 1.",
        ),
        MetricSpec(
            "recall",
            "Recall",
            True,
            "binary",
            "label",
            "The fraction of rows that truly are 1 which are predicted as 1.",
        ),
        MetricSpec(
            "log_loss",
            "Log loss",
            False,
            "binary",
            "probability",
            "The mean negative log-likelihood of the true 0/1 label under the predicted probability of 1.",
        ),
        MetricSpec(
            "log_loss_multiclass",
            "Log loss (multiclass)",
            False,
            "labels",
            "class_probabilities",
            "The mean negative log-likelihood of the true class under the predicted class "
            "probabilities, which must sum to 1 on each row.",
        ),
        MetricSpec(
            "roc_auc",
            "ROC AUC",
            True,
            "binary",
            "probability",
            "The area under the ROC curve of the predicted probability of 1.",
        ),
        MetricSpec(
            "roc_auc_ovr",
            "ROC AUC (one-vs-rest)",
            True,
            "labels",
            "class_probabilities",
            "The unweighted mean over classes of the one-vs-rest ROC AUC of each class's predicted "
            "probability.",
        ),
        MetricSpec(
            "average_precision",
            "Average precision",
            True,
            "binary",
            "probability",
            "The area under the precision-recall curve of the predicted probability of 1.",
        ),
        MetricSpec(
            "mcc",
            "Matthews correlation coefficient",
            True,
            "labels",
            "label",
            "The correlation between predicted and true labels, from -1 to 1, robust to class imbalance.",
        ),
        MetricSpec(
            "qwk",
            "Quadratic weighted kappa",
            True,
            "ordinal",
            "label",
            "Agreement between predicted and true integer ratings, penalising disagreements by "
            "the square of their distance.",
        ),
        MetricSpec(
            "rmse",
            "Root mean squared error",
            False,
            "numeric",
            "numeric",
            "The square root of the mean squared difference between prediction and target.",
        ),
        MetricSpec(
            "mse",
            "Mean squared error",
            False,
            "numeric",
            "numeric",
            "The mean squared difference between prediction and target.",
        ),
        MetricSpec(
            "mae",
            "Mean absolute error",
            False,
            "numeric",
            "numeric",
            "The mean absolute difference between prediction and target.",
        ),
        MetricSpec(
            "rmsle",
            "Root mean squared log error",
            False,
            "nonnegative",
            "numeric",
            "The root mean squared difference between log(1 + prediction) and log(1 + target).",
        ),
        MetricSpec(
            "r2",
            "R²",
            True,
            "numeric",
            "numeric",
            "The coefficient of determination: 1 minus the residual variance over the target's variance.",
        ),
        MetricSpec(
            "mape",
            "Mean absolute percentage error",
            False,
            "numeric",
            "numeric",
            "The mean of |prediction - target| / |target|, as a fraction (not multiplied by 100).",
        ),
        MetricSpec(
            "median_ae",
            "Median absolute error",
            False,
            "numeric",
            "numeric",
            "The median absolute difference between prediction and target.",
        ),
    )
}


def get_spec(name: str) -> MetricSpec:
    """The metric called ``name``, or ValueError listing the known names."""
    try:
        return SPECS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(SPECS))
        raise ValueError(f"unknown metric {name!r}; known metrics: {known}") from None


def metric_choices() -> list[tuple[str, str]]:
    """``(name, label)`` pairs for a Django choices field, sorted by label."""
    return sorted(((s.name, s.label) for s in SPECS.values()), key=lambda c: c[1].lower())
