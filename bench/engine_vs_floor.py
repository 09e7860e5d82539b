"""Compare score_submission end to end with the cheapest reasonable way to score a CSV.

The floor is what a hand-written script would do: ``pyarrow.csv.read_csv`` of the submission,
align ids to the (already loaded, id-sorted) solution with numpy, and one
``sklearn.metrics.roc_auc_score`` per split. The engine additionally validates everything,
reads the prepared parquet and its metadata, and produces learner-friendly errors.

    .venv/bin/python bench/engine_vs_floor.py                      # 1M rows, ratio vs floor
    .venv/bin/python bench/engine_vs_floor.py --rows 10000000 --rss  # peak RSS of the engine
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from sklearn.metrics import roc_auc_score

ROOT = str(Path(__file__).resolve().parents[1])
sys.path.insert(0, ROOT)

from workers.engine import prepare_solution, score_submission  # noqa: E402

TARGET_RATIO = 1.3
TARGET_RSS_BYTES = 2 * 1024**3


def generate(directory: Path, rows: int, seed: int, shuffled: bool) -> tuple[Path, Path]:
    """Write a binary solution CSV, prepare it, and write a matching submission CSV."""
    rng = np.random.default_rng(seed)
    # Kaggle-like opaque string ids whose file order differs from their sorted order.
    ids = np.char.add("id_", rng.permutation(rows).astype(str))
    labels = rng.integers(0, 2, rows)
    pcsv.write_csv(pa.table({"id": ids, "label": labels}), directory / "solution.csv")
    prepared = directory / "solution.parquet"
    prepare_solution(
        directory / "solution.csv",
        prepared,
        id_column="id",
        target_column="label",
        metric="roc_auc",
        public_fraction=0.3,
        seed=seed,
    )
    order = rng.permutation(rows) if shuffled else np.argsort(ids)
    noisy = np.clip(labels * 0.3 + rng.random(rows) * 0.7, 0, 1)
    submission = directory / "submission.csv"
    table = pa.table({"id": ids[order], "label": np.round(noisy[order], 6)})
    pcsv.write_csv(table, submission, write_options=pcsv.WriteOptions(quoting_style="none"))
    return prepared, submission


def floor(submission: Path, sol_ids: np.ndarray, y: np.ndarray, public: np.ndarray):
    table = pcsv.read_csv(submission)
    # Fixed-width bytes sort about 6x faster than numpy object (str) arrays; this was the
    # quickest numpy alignment tried (object argsort, StringDType argsort, searchsorted).
    sub_ids = table.column("id").to_numpy().astype("S")
    preds = table.column("label").to_numpy()
    # The solution is sorted by id, so one argsort of the submission aligns it.
    order = np.argsort(sub_ids)
    if not np.array_equal(sub_ids[order], sol_ids):
        raise AssertionError("ids differ")
    aligned = preds[order]
    return roc_auc_score(y[public], aligned[public]), roc_auc_score(y[~public], aligned[~public])


def best_of_interleaved(repeat: int, first, second) -> tuple[float, float, object, object]:
    """Best wall time of each function, alternating runs so that noise from other processes
    on a small shared machine hits both sides alike."""
    best = [float("inf"), float("inf")]
    results: list[object] = [None, None]
    for _ in range(repeat):
        for k, fn in enumerate((first, second)):
            start = time.perf_counter()
            results[k] = fn()
            best[k] = min(best[k], time.perf_counter() - start)
    return best[0], best[1], results[0], results[1]


def child_peak_rss(submission: Path, prepared: Path) -> int:
    """Peak RSS of a fresh process that scores once.

    os.wait4 gives this child's own rusage. RUSAGE_CHILDREN would also include the data
    generator, and Linux carries a parent's RSS high-water mark into a child across exec, so
    the parent of this child must stay small: generation runs in its own process.
    """
    code = (
        "import sys; sys.path.insert(0, sys.argv[3]);"
        "from workers.engine import score_submission;"
        "print(score_submission(sys.argv[1], sys.argv[2], metric='roc_auc'))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(submission), str(prepared), ROOT])
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("the scoring child failed")
    return usage.ru_maxrss * 1024  # Linux reports KiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sorted", action="store_true", help="submission rows in the solution's id order")
    parser.add_argument("--rss", action="store_true", help="score once in a child process; report peak RSS")
    parser.add_argument("--generate-into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.generate_into:
        generate(args.generate_into, args.rows, args.seed, not args.sorted)
        return 0

    with tempfile.TemporaryDirectory(prefix="holdout-bench-") as tmp:
        directory = Path(tmp)
        start = time.perf_counter()
        if args.rss:
            command = [sys.executable, __file__, "--generate-into", tmp]
            command += ["--rows", str(args.rows), "--seed", str(args.seed)]
            subprocess.run(command + (["--sorted"] if args.sorted else []), check=True)
            prepared, submission = directory / "solution.parquet", directory / "submission.csv"
        else:
            prepared, submission = generate(directory, args.rows, args.seed, not args.sorted)
        size = submission.stat().st_size / 1024**2
        print(
            f"rows={args.rows:,} submission={size:.1f} MB "
            f"order={'sorted' if args.sorted else 'shuffled'} "
            f"(generate + prepare {time.perf_counter() - start:.1f}s)"
        )
        if args.rss:
            start = time.perf_counter()
            peak = child_peak_rss(submission, prepared)
            ok = peak < TARGET_RSS_BYTES
            print(
                f"engine peak RSS {peak / 1024**2:,.0f} MB in {time.perf_counter() - start:.1f}s "
                f"(target < {TARGET_RSS_BYTES / 1024**3:g} GB): {'PASS' if ok else 'FAIL'}"
            )
            return 0 if ok else 1

        solution = pq.read_table(prepared)
        sol_ids = solution.column("id").to_numpy().astype("S")
        y = solution.column("target").to_numpy().astype(np.int64)
        public = solution.column("public").to_numpy()
        floor_s, engine_s, floor_scores, result = best_of_interleaved(
            args.repeat,
            lambda: floor(submission, sol_ids, y, public),
            lambda: score_submission(submission, prepared, metric="roc_auc"),
        )
        assert np.isclose(result.public_score, floor_scores[0]), (result, floor_scores)
        assert np.isclose(result.private_score, floor_scores[1]), (result, floor_scores)
        ratio = engine_s / floor_s
        ok = ratio <= TARGET_RATIO
        print(f"floor  {floor_s:.3f}s (best of {args.repeat})")
        print(f"engine {engine_s:.3f}s (best of {args.repeat})")
        print(f"ratio  {ratio:.2f} (target <= {TARGET_RATIO}): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
