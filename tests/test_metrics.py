import math

import numpy as np
import pytest
from sklearn import metrics as skm

from workers.engine import METRICS, get_metric, metric_choices

RNG_SEED = 20240601

# Independent scikit-learn calls, written out here rather than reusing the registry's wrappers.
REFERENCE = {
    "accuracy": lambda y, p: skm.accuracy_score(y, p),
    "balanced_accuracy": lambda y, p: skm.balanced_accuracy_score(y, p),
    "f1": lambda y, p: skm.f1_score(y, p, pos_label=1),
    "f1_macro": lambda y, p: skm.f1_score(y, p, average="macro"),
    "f1_micro": lambda y, p: skm.f1_score(y, p, average="micro"),
    "f1_weighted": lambda y, p: skm.f1_score(y, p, average="weighted"),
    "precision": lambda y, p: skm.precision_score(y, p),
    "recall": lambda y, p: skm.recall_score(y, p),
    "log_loss": lambda y, p: skm.log_loss(y, p),
    "log_loss_multiclass": lambda y, p: skm.log_loss(y, p),
    "roc_auc": lambda y, p: skm.roc_auc_score(y, p),
    "roc_auc_ovr": lambda y, p: skm.roc_auc_score(y, p, multi_class="ovr", average="macro"),
    "average_precision": lambda y, p: skm.average_precision_score(y, p),
    "mcc": lambda y, p: skm.matthews_corrcoef(y, p),
    "qwk": lambda y, p: skm.cohen_kappa_score(y, p, weights="quadratic"),
    "rmse": lambda y, p: math.sqrt(skm.mean_squared_error(y, p)),
    "mse": lambda y, p: skm.mean_squared_error(y, p),
    "mae": lambda y, p: skm.mean_absolute_error(y, p),
    "rmsle": lambda y, p: math.sqrt(skm.mean_squared_log_error(y, p)),
    "r2": lambda y, p: skm.r2_score(y, p),
    "mape": lambda y, p: skm.mean_absolute_percentage_error(y, p),
    "median_ae": lambda y, p: skm.median_absolute_error(y, p),
}

LOWER_IS_BETTER = {"log_loss", "log_loss_multiclass", "rmse", "mse", "mae", "rmsle", "mape", "median_ae"}


def random_case(name: str, n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    m = get_metric(name)
    if m.target == "binary":
        y = rng.integers(0, 2, n)
        if m.prediction == "probability":
            return y, np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1)
        return y, np.where(rng.random(n) < 0.7, y, 1 - y)
    if m.target in ("labels", "ordinal"):
        # Every rating present in both arrays, so the full-range QWK equals sklearn's default.
        y = np.concatenate([np.arange(4), rng.integers(0, 4, n - 4)])
        if m.prediction == "class_probabilities":
            raw = rng.random((n, 4)) + np.eye(4)[y]
            return y, raw / raw.sum(axis=1, keepdims=True)
        return y, np.where(rng.random(n) < 0.6, y, rng.integers(0, 4, n))
    y = rng.gamma(2.0, 3.0, n) + 0.5
    return y, y + rng.normal(0, 1, n).clip(-0.4, None)


def test_reference_covers_every_metric():
    assert set(REFERENCE) == set(METRICS)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_matches_scikit_learn_on_random_data(name):
    y, p = random_case(name)
    assert METRICS[name].func(y, p) == pytest.approx(REFERENCE[name](y, p), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_higher_is_better_flag(name):
    assert METRICS[name].higher_is_better is (name not in LOWER_IS_BETTER)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_registry_entries_are_complete(name):
    m = METRICS[name]
    assert m.name == name
    assert m.target in ("labels", "binary", "numeric", "nonnegative", "ordinal")
    assert m.prediction in ("label", "probability", "class_probabilities", "numeric")
    assert m.label and m.description.endswith(".")


def test_accuracy_of_three_out_of_four():
    assert get_metric("accuracy").func(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])) == 0.75


def test_rmse_of_a_tiny_vector():
    # errors 3 and 4: sqrt((9 + 16) / 2)
    value = get_metric("rmse").func(np.array([0.0, 0.0]), np.array([3.0, 4.0]))
    assert value == pytest.approx(math.sqrt(12.5))


def test_mae_and_median_ae_by_hand():
    y, p = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 6.0])
    assert get_metric("mae").func(y, p) == pytest.approx(4 / 3)
    assert get_metric("median_ae").func(y, p) == pytest.approx(1.0)


def test_qwk_known_value():
    # Observed [[1, 1], [0, 2]], expected [[.5, 1.5], [.5, 1.5]], weights [[0, 1], [1, 0]]:
    # kappa = 1 - 1 / 2.
    assert get_metric("qwk").func(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])) == 0.5


def test_qwk_weights_by_rating_distance_not_label_position():
    # Rating 1 never occurs: scikit-learn's default would treat 0 -> 2 as one step apart.
    y = np.array([0, 0, 2, 2, 3, 3, 0, 3])
    p = np.array([0, 2, 2, 3, 3, 0, 0, 2])
    full_range = skm.cohen_kappa_score(y, p, weights="quadratic", labels=[0, 1, 2, 3])
    assert get_metric("qwk").func(y, p) == pytest.approx(full_range)
    assert full_range != pytest.approx(skm.cohen_kappa_score(y, p, weights="quadratic"))


def test_log_loss_multiclass_renormalises_rows_within_tolerance():
    y = np.array([0, 1, 2])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    slightly_off = p * 1.0005
    metric = get_metric("log_loss_multiclass")
    assert metric.func(y, slightly_off) == pytest.approx(metric.func(y, p))
    assert metric.func(y, p) == pytest.approx(-np.mean(np.log([0.7, 0.8, 0.6])))


def test_roc_auc_ovr_with_two_classes_equals_binary_auc():
    y = np.array([0, 1, 1, 0, 1])
    p1 = np.array([0.1, 0.8, 0.4, 0.5, 0.9])
    got = get_metric("roc_auc_ovr").func(y, np.column_stack([1 - p1, p1]))
    assert got == pytest.approx(skm.roc_auc_score(y, p1))


def test_f1_uses_one_as_the_positive_class():
    y, p = np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0])
    # precision 1, recall 1/2 -> F1 2/3 (with 0 as positive it would be 0.8)
    assert get_metric("f1").func(y, p) == pytest.approx(2 / 3)


def test_get_metric_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="roc_auc") as excinfo:
        get_metric("auc_roc")
    assert "auc_roc" in str(excinfo.value)


def test_metric_choices_sorted_by_label_and_complete():
    choices = metric_choices()
    assert {name for name, _ in choices} == set(METRICS)
    labels = [label.lower() for _, label in choices]
    assert labels == sorted(labels)
    assert ("roc_auc", "ROC AUC") in choices
