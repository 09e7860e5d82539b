"""Peak memory of scoring a decompression bomb of tiny rows, in a child process.

    .venv/bin/python bench/bomb.py                        # 262M rows in a ~1 MB gzip
    .venv/bin/python bench/bomb.py --engine-root /tmp/old # an older engine (git archive of workers/)
    .venv/bin/python bench/bomb.py --valid-rows 1000000   # a valid 1M-row submission instead

The bomb is `id,target` then N lines "a,0"; the solution has --solution-rows ids. The child
reports its own peak resident memory (VmHWM, which, unlike ru_maxrss, does not inherit the
parent's high-water mark across exec), the time scoring took and the learner's message.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from workers.engine import ScoringError, score_submission

def peak_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024

before = peak_mb()
started = time.perf_counter()
try:
    result = score_submission(sys.argv[2], sys.argv[3], metric="roc_auc")
    message = f"scored {result.public_score:.4f}"
except ScoringError as exc:
    message = str(exc)
took = time.perf_counter() - started
print(f"{peak_mb():.0f} MB peak ({before:.0f} MB after imports), {took:.1f} s: {message}")
"""


def write_bomb(path: Path, rows: int) -> None:
    line, per_chunk = b"a,0\n", 1_000_000
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as f:
        f.write(packer.compress(b"id,target\n"))
        for start in range(0, rows, per_chunk):
            f.write(packer.compress(line * min(per_chunk, rows - start)))
        f.write(packer.flush())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=262_000_000)
    parser.add_argument("--solution-rows", type=int, default=1000)
    parser.add_argument("--valid-rows", type=int, default=0, help="score a valid file of this many rows")
    parser.add_argument("--engine-root", default=str(ROOT), help="directory holding workers/engine")
    args = parser.parse_args()

    from tests.engine_helpers import make_solution

    with tempfile.TemporaryDirectory(prefix="holdout-bomb-") as tmp:
        tmp = Path(tmp)
        n = args.valid_rows or args.solution_rows
        ids = [f"r{i}" for i in range(n)]
        solution = make_solution(tmp, "roc_auc", ids, [i % 2 for i in range(n)])
        if args.valid_rows:
            upload = tmp / "valid.csv"
            upload.write_text("id,target\n" + "".join(f"{i},0.5\n" for i in ids))
        else:
            upload = tmp / "bomb.csv.gz"
            write_bomb(upload, args.rows)
        what = f"valid, {n:,} rows" if args.valid_rows else f"bomb, {args.rows:,} rows"
        print(f"{what}: {upload.stat().st_size / 1e6:.2f} MB upload, solution {n:,} rows")
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, args.engine_root, str(upload), str(solution)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": args.engine_root},
        )
        print(out.stdout.strip() or out.stderr.strip()[-2000:])
        print(f"child wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
