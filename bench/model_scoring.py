"""Time a model challenge end to end: predict_to_csv (sandboxed Keras child) + score_submission.

A small dense model (64 → 32 → 10, softmax) predicts 10,000 rows of hidden features, and the
submission CSV it produces is scored for accuracy. Two set-ups, best of 3 each:

- cold: no warm pool, so every job starts a child that imports TensorFlow;
- warm: ``warm_pool()`` keeps a child that has already imported TensorFlow; before each timed
  job the bench waits (untimed) for the replacement child to be ready, as a worker between jobs.

The hidden features are read once per worker process and cached, as in a real worker; the
one-off read is reported separately. Target: warm ≤ 1 s.

    .venv/bin/python bench/model_scoring.py
    .venv/bin/python bench/model_scoring.py --rows 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers.engine import prepare_solution, read_solution_info, score_submission  # noqa: E402
from workers.modelrun import sandbox  # noqa: E402
from workers.modelrun.features import read_features  # noqa: E402

WARM_TARGET_SECONDS = 1.0

# Built in a separate process so this one, like a scoring worker, never imports TensorFlow.
BUILD_MODEL = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input((64,)),
    keras.layers.Dense(32, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.save(sys.argv[1])
"""


def generate(directory: Path, rows: int) -> tuple[Path, Path, Path]:
    model = directory / "model.keras"
    subprocess.run([sys.executable, "-c", BUILD_MODEL, str(model)], check=True, capture_output=True)
    rng = np.random.default_rng(0)
    ids = np.char.add("id_", rng.permutation(rows).astype(str))
    x = rng.normal(size=(rows, 64)).astype(np.float32)
    features = directory / "features.csv"
    columns = {"id": ids, **{f"f{j}": x[:, j] for j in range(64)}}
    pcsv.write_csv(pa.table(columns), features, write_options=pcsv.WriteOptions(quoting_style="none"))
    pcsv.write_csv(pa.table({"id": ids, "label": rng.integers(0, 10, rows)}), directory / "solution.csv")
    solution = directory / "solution.parquet"
    prepare_solution(
        directory / "solution.csv",
        solution,
        id_column="id",
        target_column="label",
        metric="accuracy",
        public_fraction=0.3,
        seed=0,
    )
    return model, features, solution


def one_job(model: Path, features: Path, solution: Path, out: Path) -> float:
    info = read_solution_info(solution)
    started = time.perf_counter()
    sandbox.predict_to_csv(
        model,
        features,
        out,
        id_column="id",
        submission_columns=info.submission_columns,
        metric="accuracy",
        classes=info.classes,
    )
    score_submission(out, solution, metric="accuracy")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        model, features, solution = generate(directory, args.rows)
        out = directory / "submission.csv"

        started = time.perf_counter()
        read_features(features, id_column="id")
        read_seconds = time.perf_counter() - started
        print(f"features: {args.rows:,} rows x 64, one-off CSV read {read_seconds:.3f} s (cached after)")

        cold = [one_job(model, features, solution, out) for _ in range(args.repeat)]
        print(f"cold (fresh child each job): best {min(cold):.2f} s, median {statistics.median(cold):.2f} s")

        pool = sandbox.warm_pool()
        warm = []
        try:
            for _ in range(args.repeat):
                pool.wait_ready()
                warm.append(one_job(model, features, solution, out))
        finally:
            pool.close()
        best = min(warm)
        verdict = "PASS" if best <= WARM_TARGET_SECONDS else "FAIL"
        print(f"warm (pre-started child):    best {best:.2f} s, median {statistics.median(warm):.2f} s")
        print(f"target: warm ≤ {WARM_TARGET_SECONDS:g} s for {args.rows:,} rows — {verdict}")


if __name__ == "__main__":
    main()
