"""The model runner: hidden-feature validation, upload refusals, and Keras models run in the
sandboxed child and scored by the engine.

Tests that start TensorFlow children are in TestTensorFlow (deselect them with
``-k "not TensorFlow"``); they share one warm pool, so each costs one child start-up in the
background rather than a cold TensorFlow import.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss

from tests.engine_helpers import learner_error, make_solution
from tests.modelrun_helpers import (
    features_csv,
    features_npz,
    ids_for,
    predict_locally,
    rewrite_archive,
    save_copying_model,
    save_dense,
    save_image_model,
    save_lambda_model,
    save_nan_model,
    save_wide_model,
    usage_for,
    write_zip,
)
from workers.engine import SolutionError, get_metric, read_solution_info, score_submission
from workers.modelrun import (
    FeaturesInfo,
    ModelRejected,
    SandboxLimits,
    check_model_file,
    checks,
    inspect_features,
    output_spec,
    predict_to_csv,
    refusals,
)
from workers.modelrun import pool as sandbox_pool
from workers.modelrun.predictions import write_predictions_csv

HAS_TF = importlib.util.find_spec("tensorflow") is not None
# Keras' own tensor-to-numpy conversion in the test process (building reference predictions).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
ROWS = 300


def refusal(path: Path, **kwargs) -> str:
    with pytest.raises(ModelRejected) as excinfo:
        check_model_file(path, **kwargs)
    return learner_error(excinfo)


def problems(excinfo: pytest.ExceptionInfo[SolutionError]) -> str:
    return " | ".join(excinfo.value.problems)


# -- hidden features -----------------------------------------------------------------------------


def test_inspects_csv_features(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = features_csv(tmp_path / "x.csv", ["a", "b", "c"], x)
    info = inspect_features(path, id_column="id", solution_ids={"a", "b", "c"})
    assert info == FeaturesInfo(row_count=3, input_shape=[4])
    assert info.to_dict() == {"row_count": 3, "input_shape": [4]}


def test_inspects_npz_features_keeping_the_row_shape(tmp_path):
    path = features_npz(tmp_path / "x.npz", np.arange(5), np.zeros((5, 4, 4, 1), np.float64))
    assert inspect_features(path, id_column="id", solution_ids={"0", "1", "2", "3", "4"}).input_shape == [
        4,
        4,
        1,
    ]


def test_lists_every_feature_problem_in_a_csv(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,f0,f1\na,1,2\na,3,x\n,nan,4\nb,inf,\n", encoding="utf-8")
    with pytest.raises(SolutionError) as excinfo:
        inspect_features(path, id_column="id")
    text = problems(excinfo)
    assert "The feature column 'f1' must hold numbers; id 'a' has 'x', id 'b' has ''" in text
    assert len(excinfo.value.problems) == 1  # value problems wait until the columns parse


def test_lists_id_and_value_problems_together(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,f0\na,1\na,2\n,3\nb,inf\n", encoding="utf-8")
    with pytest.raises(SolutionError) as excinfo:
        inspect_features(path, id_column="id")
    text = problems(excinfo)
    assert "1 rows have an empty id (row 3)" in text
    assert "1 ids appear more than once: 'a'" in text
    assert "1 rows have a feature that is empty, not finite, or too large for float32: 'b'" in text


def test_refuses_features_without_the_id_column_or_features(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("key,f0\na,1\n", encoding="utf-8")
    with pytest.raises(SolutionError) as excinfo:
        inspect_features(path, id_column="id")
    assert "The id column 'id' is missing; the columns found are 'key', 'f0'." in problems(excinfo)
    path.write_text("id\na\n", encoding="utf-8")
    with pytest.raises(SolutionError) as excinfo:
        inspect_features(path, id_column="id")
    assert "only the id column" in problems(excinfo)


def test_feature_ids_must_be_exactly_the_solution_ids(tmp_path):
    path = features_csv(tmp_path / "x.csv", ["a", "b", "z"], np.zeros((3, 2)))
    with pytest.raises(SolutionError) as excinfo:
        inspect_features(path, id_column="id", solution_ids={"a", "b", "c"})
    assert excinfo.value.problems == [
        "1 feature ids are not in the solution: 'z'.",
        "1 solution ids have no feature row: 'c'.",
    ]


def test_npz_problems(tmp_path):
    objects = features_npz(tmp_path / "o.npz", np.array(["a", None], dtype=object), np.zeros((2, 3)))
    with pytest.raises(SolutionError) as excinfo:
        inspect_features(objects, id_column="id")
    assert "holds Python objects, which Holdout never unpickles" in problems(excinfo)

    flat = features_npz(tmp_path / "f.npz", np.array(["a", "b", "c"]), np.zeros(2))
    with pytest.raises(SolutionError) as excinfo:
        inspect_features(flat, id_column="id")
    assert "must have shape (rows, ...)" in problems(excinfo)

    mismatch = features_npz(tmp_path / "m.npz", np.array(["a", "b", "c"]), np.zeros((2, 3)))
    with pytest.raises(SolutionError) as excinfo:
        inspect_features(mismatch, id_column="id")
    assert "The array 'ids' has 3 entries but 'x' has 2 rows" in problems(excinfo)

    missing = tmp_path / "n.npz"
    np.savez(missing, ids=np.array(["a"]), X=np.zeros((1, 2)))
    with pytest.raises(SolutionError) as excinfo:
        inspect_features(missing, id_column="id")
    assert "The NPZ file has no array 'x'; the arrays found are 'X', 'ids'." in problems(excinfo)


@pytest.mark.parametrize(
    ("metric", "classes", "expected"),
    [
        (
            "accuracy",
            [str(i) for i in range(10)],
            "10 class probabilities per row (softmax), in the class order 0, 1, …, 9; "
            "the most probable class is the prediction",
        ),
        (
            "log_loss_multiclass",
            ["cat", "dog", "frog"],
            "3 class probabilities per row (softmax), in the class order cat, dog, frog",
        ),
        (
            "log_loss_multiclass",
            [str(i) for i in (0, 1, 10, 11, 2)],
            "5 class probabilities per row (softmax), in the class order 0, 1, 10, 11, 2",
        ),
        ("roc_auc", ["0", "1"], "one probability per row (of class '1', e.g. a sigmoid output)"),
        ("rmse", None, "one number per row"),
    ],
)
def test_output_spec_says_what_the_model_must_output(metric, classes, expected):
    assert output_spec(metric, classes) == expected


def test_output_spec_for_binary_labels_allows_one_probability():
    assert output_spec("f1", ["0", "1"]).endswith(
        "(or one probability of class '1' per row, read as that class from 0.5 up)"
    )


# -- refusals before any child starts ------------------------------------------------------------


def test_refuses_hdf5_models(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert refusal(path) == "HDF5 (.h5) models are not accepted; save it with model.save('model.keras')."


def test_refuses_pickles_without_unpickling(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}, protocol=4))
    assert "This is a Python pickle, not a Keras model; Holdout never unpickles uploads" in refusal(path)


def test_refuses_text_and_empty_files(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("id,label\n1,0\n", encoding="utf-8")
    assert "This is not a .keras file (a Keras 3 model is a zip archive)" in refusal(path)
    path.write_bytes(b"")
    assert "The model file is empty" in refusal(path)


def test_refuses_a_renamed_zip(tmp_path):
    path = write_zip(tmp_path / "model.keras", {"data.bin": os.urandom(1000)})
    assert "This zip archive is not a .keras file (it has no config.json)" in refusal(path)


def test_refuses_a_damaged_zip_and_bad_config(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"PK\x03\x04" + os.urandom(200))
    assert "The .keras file is damaged (its zip archive cannot be read)" in refusal(path)
    write_zip(path, {"config.json": b"{not json", "model.weights.h5": b""})
    assert "its config.json is not valid JSON" in refusal(path)
    write_zip(path, {"config.json": b"{}", "metadata.json": b"{}"})
    assert "has no weights (model.weights.h5)" in refusal(path)


def test_refuses_models_over_the_size_limit(tmp_path):
    path = write_zip(tmp_path / "model.keras", {"config.json": b"{}", "model.weights.h5": os.urandom(3000)})
    assert refusal(path, max_model_bytes=1000).startswith("The model file is 0.0 MB; at most 0 MB")


def test_refuses_a_zipped_saved_model(tmp_path):
    path = write_zip(
        tmp_path / "model.keras", {"my_model/saved_model.pb": b"x", "my_model/variables/x": b"y"}
    )
    assert "This is a zipped TensorFlow SavedModel, not a .keras file" in refusal(path)


def _archive_with(tmp_path: Path, layer: dict) -> Path:
    config = {"module": "keras", "class_name": "Sequential", "config": {"layers": [layer]}}
    return write_zip(
        tmp_path / "model.keras", {"config.json": json.dumps(config).encode(), "model.weights.h5": b""}
    )


def test_refuses_lambda_layers_without_starting_tensorflow(tmp_path):
    layer = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {"function": {"class_name": "__lambda__"}},
    }
    assert refusal(_archive_with(tmp_path, layer)) == (
        "The model uses a Lambda layer or custom code, which Holdout does not run (safe_mode); "
        "use built-in Keras layers only."
    )


def test_refuses_custom_classes_without_starting_tensorflow(tmp_path):
    layer = {
        "module": "my_package.layers",
        "class_name": "Fancy",
        "registered_name": "MyPkg>Fancy",
        "config": {},
    }
    assert "The model uses custom code ('MyPkg>Fancy'), which Holdout does not run" in refusal(
        _archive_with(tmp_path, layer)
    )


def test_ignores_the_training_setup_which_is_never_loaded(tmp_path):
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"layers": []},
        "compile_config": {"loss": {"module": "my_losses", "class_name": "function", "config": "focal"}},
    }
    checks.scan_config(config)  # does not raise


def test_predict_to_csv_never_accepts_a_solution():
    names = list(inspect.signature(predict_to_csv).parameters)
    assert names == [
        "model_path",
        "features_path",
        "out_csv",
        "id_column",
        "submission_columns",
        "metric",
        "classes",
        "limits",
    ]


def test_the_parent_side_never_imports_keras():
    code = (
        "import sys, workers.modelrun as mr\n"
        "mr.predict_to_csv, mr.inspect_features, mr.warm_pool\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=sandbox_pool.PROJECT_ROOT,
        check=True,
    )
    assert result.stdout.strip() == "[]"


def test_child_environment_inherits_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "do-not-leak")
    monkeypatch.setenv("DATABASE_URL", "postgres://user:pw@db/holdout")
    env = sandbox_pool.child_env(tmp_path)
    assert "SECRET_KEY" not in env and "DATABASE_URL" not in env
    assert "do-not-leak" not in json.dumps(env)
    assert env["HOME"] == str(tmp_path)


# -- predictions to CSV --------------------------------------------------------------------------


def _written(tmp_path, predictions, metric, classes, columns):
    out = tmp_path / "sub.csv"
    ids = np.array(["a", "b", "c"])
    write_predictions_csv(
        out,
        ids,
        np.asarray(predictions, np.float32),
        submission_columns=columns,
        metric=get_metric(metric),
        classes=classes,
    )
    return out.read_text().replace('"', "").splitlines()


def test_label_metrics_take_the_most_probable_class(tmp_path):
    p = [[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.0, 0.1, 0.9]]
    lines = _written(tmp_path, p, "accuracy", ["cat", "dog", "frog"], ["id", "animal"])
    assert lines == ["id,animal", "a,dog", "b,cat", "c,frog"]


def test_binary_labels_from_one_probability_threshold_at_a_half(tmp_path):
    lines = _written(tmp_path, [[0.2], [0.5], [0.9]], "f1", ["0", "1"], ["id", "y"])
    assert lines == ["id,y", "a,0", "b,1", "c,1"]


def test_probability_from_a_two_class_softmax_is_the_second_column(tmp_path):
    lines = _written(tmp_path, [[0.75, 0.25], [0.5, 0.5], [0.0, 1.0]], "roc_auc", ["0", "1"], ["id", "y"])
    assert lines == ["id,y", "a,0.25", "b,0.5", "c,1"]


def test_class_probabilities_that_are_not_a_softmax_are_refused(tmp_path):
    with pytest.raises(ModelRejected) as excinfo:
        _written(
            tmp_path,
            [[0.2, 0.3], [2.0, -1.0], [0.5, 0.5]],
            "log_loss_multiclass",
            ["x", "y"],
            ["id", "x", "y"],
        )
    assert learner_error(excinfo) == (
        "The model's outputs must be probabilities between 0 and 1 that sum to 1 on each row (end the model "
        "with a softmax); 2 of 3 test rows are not."
    )
    assert excinfo.value.charged  # caused by the outputs on hidden rows, so not a free question


def test_rmsle_outputs_of_minus_one_or_less_are_refused_by_count(tmp_path):
    with pytest.raises(ModelRejected) as excinfo:
        _written(tmp_path, [[-1.5], [2.0], [-7.25]], "rmsle", None, ["id", "y"])
    message = learner_error(excinfo)
    assert message == (
        "The model's outputs must be greater than -1 (rmsle takes log(1 + prediction)); "
        "2 of 3 test rows are not."
    )
    assert "-1.5" not in message and "-7.25" not in message and excinfo.value.charged


def test_a_child_killed_by_the_cpu_limit_is_reported_as_time():
    assert refusals.exit_category(-signal.SIGXCPU) == "cpu"
    message = str(refusals.reply_refusal({"category": "cpu"}, SandboxLimits(cpu_seconds=7), "spec"))
    assert message == "The model took longer than 7 s of CPU time to predict the test set."
    assert refusals.exit_category(-signal.SIGABRT) == "crash"


# -- models run in the sandbox -------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool():
    if not HAS_TF:
        pytest.skip("TensorFlow is not installed")
    pool = sandbox_pool.warm_pool()
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def challenge(tmp_path_factory):
    """64 features, 10 classes, labels that a seeded model gets partly right."""
    if not HAS_TF:
        pytest.skip("TensorFlow is not installed")
    tmp = tmp_path_factory.mktemp("challenge")
    rng = np.random.default_rng(7)
    x = rng.normal(size=(ROWS, 64)).astype(np.float32)
    ids = ids_for(ROWS)
    model = save_dense(tmp / "good.keras", hidden=32, seed=3)
    predicted = predict_locally(model, x)
    labels = predicted.argmax(axis=1)
    noisy = np.where(rng.random(ROWS) < 0.4, rng.integers(0, 10, ROWS), labels)
    solution = make_solution(tmp, "accuracy", ids, noisy.tolist(), usage=usage_for(ROWS))
    return {
        "dir": tmp,
        "x": x,
        "ids": ids,
        "model": model,
        "predicted": predicted,
        "labels": noisy,
        "solution": solution,
        "info": read_solution_info(solution),
        "features_csv": features_csv(tmp / "x.csv", ids, x),
        "features_npz": features_npz(tmp / "x.npz", np.array(ids), x),
    }


def run(challenge, model: Path, tmp_path: Path, *, metric: str = "accuracy", features=None, **limits) -> Path:
    info = challenge["info"]
    out = tmp_path / "submission.csv"
    predict_to_csv(
        model,
        features or challenge["features_csv"],
        out,
        id_column="id",
        submission_columns=info.submission_columns,
        metric=metric,
        classes=info.classes,
        limits=SandboxLimits(**limits),
    )
    return out


def rejected(
    challenge, model: Path, tmp_path: Path, *, metric: str = "accuracy", features=None, **limits
) -> ModelRejected:
    with pytest.raises(ModelRejected) as excinfo:
        run(challenge, model, tmp_path, metric=metric, features=features, **limits)
    learner_error(excinfo)
    assert "Traceback" not in str(excinfo.value) and str(tmp_path) not in str(excinfo.value)
    return excinfo.value


@pytest.mark.skipif(not HAS_TF, reason="TensorFlow is not installed")
class TestTensorFlow:
    def test_good_model_is_scored_by_the_engine(self, pool, challenge, tmp_path, monkeypatch):
        seen = []
        real_run = sandbox_pool._Child.run

        def spy(child, job, limits, *, rows):
            seen.append((child.argv, child.env))
            reply = real_run(child, job, limits, rows=rows)
            seen.append(child.sent)
            return reply

        monkeypatch.setattr(sandbox_pool._Child, "run", spy)
        out = run(challenge, challenge["model"], tmp_path)
        result = score_submission(out, challenge["solution"], metric="accuracy")

        predicted, labels = challenge["predicted"].argmax(axis=1), challenge["labels"]
        public = np.arange(ROWS) % 2 == 0
        assert result.public_score == pytest.approx(accuracy_score(labels[public], predicted[public]))
        assert result.private_score == pytest.approx(accuracy_score(labels[~public], predicted[~public]))
        assert 0.5 < result.public_score < 1
        # The child never learns where the solution is, nor sees the ids.
        assert seen and str(challenge["solution"]) not in json.dumps(seen)
        assert challenge["ids"][0] not in json.dumps(seen)

    def test_npz_image_features_and_class_probabilities(self, pool, challenge, tmp_path):
        rng = np.random.default_rng(2)
        x = rng.random((60, 8, 8, 1)).astype(np.float32)
        ids = ids_for(60)
        labels = np.array(["cat", "dog", "frog"])[np.arange(60) % 3]
        solution = make_solution(tmp_path, "log_loss_multiclass", ids, labels.tolist(), usage=usage_for(60))
        info = read_solution_info(solution)
        model = save_image_model(tmp_path / "cnn.keras", shape=(8, 8, 1), classes=3)
        features = features_npz(tmp_path / "x.npz", np.array(ids), x)
        out = tmp_path / "sub.csv"
        predict_to_csv(
            model,
            features,
            out,
            id_column="id",
            submission_columns=info.submission_columns,
            metric="log_loss_multiclass",
            classes=info.classes,
        )
        assert out.read_text().splitlines()[0] == "id,cat,dog,frog"
        result = score_submission(out, solution, metric="log_loss_multiclass")
        p = predict_locally(model, x)
        codes = np.arange(60) % 3
        public = np.arange(60) % 2 == 0
        assert result.public_score == pytest.approx(
            log_loss(codes[public], p[public], labels=[0, 1, 2]), rel=1e-4
        )

    def test_refuses_a_lambda_layer_in_the_child_too(self, pool, challenge, tmp_path, monkeypatch):
        # Bypass the parent's config scan to prove Keras' safe_mode refuses it on its own.
        monkeypatch.setattr(checks, "scan_config", lambda config: None)
        error = rejected(challenge, save_lambda_model(tmp_path / "lambda.keras"), tmp_path)
        assert str(error) == (
            "The model uses a Lambda layer or custom code, which Holdout does not run (safe_mode); "
            "use built-in Keras layers only."
        )
        assert "lambda" in error.log.lower()  # the traceback is kept for the operator's log

    def test_refuses_a_lambda_layer_before_starting_a_child(self, challenge, tmp_path):
        error = rejected(challenge, save_lambda_model(tmp_path / "lambda.keras"), tmp_path)
        assert "Lambda layer or custom code" in str(error)

    def test_refuses_an_unknown_layer(self, pool, challenge, tmp_path):
        def rename(config):
            config["config"]["layers"][-1]["class_name"] = "DenseFromTheFuture"
            return config

        model = rewrite_archive(challenge["model"], tmp_path / "unknown.keras", config=rename)
        assert "a layer or function this Keras version does not know" in str(
            rejected(challenge, model, tmp_path)
        )

    def test_refuses_damaged_weights(self, pool, challenge, tmp_path):
        model = rewrite_archive(challenge["model"], tmp_path / "damaged.keras", weights=os.urandom(4096))
        assert str(rejected(challenge, model, tmp_path)).startswith(
            "The .keras file could not be loaded: it is damaged or not a Keras 3 model"
        )

    def test_refuses_a_wrong_input_shape(self, pool, challenge, tmp_path):
        model = save_dense(tmp_path / "m.keras", inputs=32)
        error = rejected(challenge, model, tmp_path)
        assert str(error) == (
            "The model expects inputs of shape (32,) per row, but the test features have shape (64,) per row."
        )
        assert not error.charged  # a problem of the model file, found before any hidden output

    def test_a_model_copying_hidden_features_learns_nothing_from_the_refusal(self, pool, challenge, tmp_path):
        # Features with recognisable values; the model's outputs are the first 10 of them.
        x = np.round(challenge["x"] * 100 + 1000, 2)
        features = features_csv(tmp_path / "x.csv", challenge["ids"], x)
        model = save_copying_model(tmp_path / "copy.keras")
        error = rejected(challenge, model, tmp_path, metric="log_loss_multiclass", features=features)
        message = str(error)
        assert message == (
            "The model's outputs must be probabilities between 0 and 1 that sum to 1 on each row (end the "
            f"model with a softmax); {ROWS} of {ROWS} test rows are not."
        )
        for row in x[:5]:
            assert all(f"{v:.4g}" not in message and f"{v:g}" not in message for v in row[:10])
        assert not any(i in message for i in challenge["ids"])
        assert error.charged

    def test_refuses_a_wrong_output_shape(self, pool, challenge, tmp_path):
        model = save_dense(tmp_path / "m.keras", outputs=3)
        assert str(rejected(challenge, model, tmp_path)) == (
            "The model outputs shape (3,) per row; this challenge needs 10 class probabilities per row "
            "(softmax), in the class order 0, 1, …, 9; the most probable class is the prediction."
        )

    def test_refuses_nan_outputs(self, pool, challenge, tmp_path):
        error = rejected(challenge, save_nan_model(tmp_path / "nan.keras"), tmp_path)
        assert str(error) == (
            f"The model predicted NaN or infinite values on {ROWS} of {ROWS} test rows; "
            "check its weights for NaN."
        )
        assert error.charged

    def test_infinite_outputs_are_counted_over_every_batch_and_never_located(self, pool, challenge, tmp_path):
        # Outputs overflow to inf exactly where a hidden feature is large: the refusal says how
        # many rows (over all batches), never which.
        model = save_copying_model(tmp_path / "copy.keras", scale=3e38)
        with np.errstate(over="ignore"):
            overflowing = int((np.abs(challenge["x"][:, :10] * np.float32(3e38)) == np.inf).any(axis=1).sum())
        assert 0 < overflowing < ROWS
        error = rejected(challenge, model, tmp_path, batch_size=64)
        assert str(error) == (
            f"The model predicted NaN or infinite values on {overflowing} of {ROWS} test rows; "
            "check its weights for NaN."
        )
        assert error.charged

    def test_refuses_a_model_that_needs_too_much_memory(self, pool, challenge, tmp_path):
        # 4096 rows x 100,000 hidden units x 4 bytes = 1.6 GB of activations per batch: more than
        # the default 2 GiB leaves after TensorFlow's own 1.5 GB.
        model = save_wide_model(tmp_path / "wide.keras")
        x = np.zeros((4096, 64), np.float32)
        features = features_npz(tmp_path / "x.npz", np.arange(4096), x)
        error = rejected(challenge, model, tmp_path, features=features, batch_size=4096)
        assert "needed more than 2,048 MB of memory" in str(error)

    def test_refuses_a_model_that_overruns_the_wall_clock(self, pool, challenge, tmp_path):
        error = rejected(challenge, challenge["model"], tmp_path, wall_seconds=0.01)
        assert str(error) == "The model took longer than 0.01 s to predict the test set."

    def test_pool_children_are_reaped_on_close(self):
        pool = sandbox_pool.WarmPool()
        idle = pool._idle
        assert idle is not None
        pool.wait_ready()
        pool.close()
        assert idle.proc.returncode is not None  # waited for: no zombie left behind
        assert not idle.workdir.exists()

    def test_pool_children_die_with_their_parent(self, tmp_path):
        script = (
            "import os, sys\n"
            "from workers.modelrun import pool as sandbox_pool\n"
            "pool = sandbox_pool.WarmPool()\n"
            "pool.wait_ready()\n"
            "print(pool._idle.workdir, pool._idle.proc.pid, flush=True)\n"
            "os._exit(0)\n"  # no atexit, no close(): only the kernel can end the child now
        )
        parent = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=sandbox_pool.PROJECT_ROOT,
        )
        workdir, pid = parent.stdout.split()[-2], int(parent.stdout.split()[-1])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.05)
        shutil.rmtree(workdir, ignore_errors=True)  # only close() removes it; the parent vanished
        assert not _running(pid)


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie awaiting its (new) parent's wait()."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
