"""Builders for the model-runner tests: tiny Keras models saved during the test run (nothing is
downloaded) and hidden-feature files. Keras is imported only when a model is built."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def keras():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras as k

    return k


def save_dense(
    path: Path,
    *,
    inputs: int = 64,
    outputs: int = 10,
    activation: str = "softmax",
    hidden: int | None = None,
    seed: int = 0,
) -> Path:
    """Input(inputs) → [Dense(hidden, relu)] → Dense(outputs, activation), random weights."""
    k = keras()
    k.utils.set_random_seed(seed)
    layers = [k.Input((inputs,))]
    if hidden:
        layers.append(k.layers.Dense(hidden, activation="relu"))
    layers.append(k.layers.Dense(outputs, activation=activation))
    model = k.Sequential(layers)
    model.save(path)
    return path


def save_image_model(path: Path, *, shape: Sequence[int] = (8, 8, 1), classes: int = 3) -> Path:
    k = keras()
    k.utils.set_random_seed(1)
    model = k.Sequential(
        [
            k.Input(tuple(shape)),
            k.layers.Conv2D(4, 3, activation="relu"),
            k.layers.Flatten(),
            k.layers.Dense(classes, activation="softmax"),
        ]
    )
    model.save(path)
    return path


def save_lambda_model(path: Path) -> Path:
    k = keras()
    model = k.Sequential(
        [k.Input((64,)), k.layers.Dense(10), k.layers.Lambda(lambda t: k.ops.softmax(t * 2))]
    )
    model.save(path)
    return path


def save_nan_model(path: Path) -> Path:
    k = keras()
    model = k.Sequential([k.Input((64,)), k.layers.Dense(10, activation="softmax")])
    kernel, bias = model.layers[0].get_weights()
    model.layers[0].set_weights([np.full_like(kernel, np.nan), bias])
    model.save(path)
    return path


def save_copying_model(path: Path, *, inputs: int = 64, outputs: int = 10, scale: float = 1.0) -> Path:
    """A linear Dense layer whose outputs are the first ``outputs`` inputs times ``scale``: the
    attack that turns an error message echoing outputs into a reader of hidden features."""
    k = keras()
    model = k.Sequential([k.Input((inputs,)), k.layers.Dense(outputs, activation="linear")])
    kernel = np.eye(inputs, outputs, dtype=np.float32) * np.float32(scale)
    model.layers[0].set_weights([kernel, np.zeros(outputs, np.float32)])
    model.save(path)
    return path


def save_wide_model(path: Path, *, units: int = 100_000) -> Path:
    """A 30 MB model whose hidden activations need ``rows x units x 4`` bytes per batch."""
    k = keras()
    model = k.Sequential(
        [k.Input((64,)), k.layers.Dense(units, activation="relu"), k.layers.Dense(10, activation="softmax")]
    )
    model.save(path)
    return path


def predict_locally(path: Path, x: np.ndarray) -> np.ndarray:
    """What the model outputs, computed in the test process (the reference for scores)."""
    k = keras()
    model = k.saving.load_model(path, compile=False)
    return np.asarray(k.ops.convert_to_numpy(model(x, training=False)))


def rewrite_archive(src: Path, dst: Path, *, config=None, weights: bytes | None = None) -> Path:
    """Copy a .keras archive, replacing its config (a function of the parsed JSON) or weights."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "config.json" and config is not None:
                data = json.dumps(config(json.loads(data))).encode()
            if info.filename == "model.weights.h5" and weights is not None:
                data = weights
            zout.writestr(info.filename, data)
    return dst


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def features_csv(path: Path, ids: Sequence[str], x: np.ndarray, *, id_column: str = "id") -> Path:
    lines = [",".join([id_column, *(f"f{j}" for j in range(x.shape[1]))])]
    lines += [",".join([i, *(repr(float(v)) for v in row)]) for i, row in zip(ids, x, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def features_npz(path: Path, ids, x) -> Path:
    with open(path, "wb") as f:
        np.savez(f, ids=ids, x=x)
    return path


def ids_for(n: int) -> list[str]:
    return [f"row{i:05d}" for i in range(n)]


def usage_for(n: int) -> list[str]:
    """Alternate Public/Private rows, so expected scores can be computed per split."""
    return ["Public" if i % 2 == 0 else "Private" for i in range(n)]


def model_competition_with(organizer, solution_csv: str, ids: Sequence[str], x: np.ndarray, tmp_path: Path):
    """A published model challenge ("digits-lite", accuracy) with this solution and these
    hidden features, ready to score uploaded models."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from competitions import services
    from competitions.models import Competition
    from tests.factories import make_competition

    competition = make_competition(
        organizer,
        slug="digits-lite",
        metric="accuracy",
        solution=solution_csv.encode(),
        kind=Competition.Kind.MODEL,
    )
    upload = SimpleUploadedFile("features.csv", features_csv(tmp_path / "features.csv", ids, x).read_bytes())
    local, info = services.features_validate(upload, competition=competition)
    services.competition_set_features(competition, local=local, info=info, original_name="features.csv")
    return competition
