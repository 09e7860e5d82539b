"""The public/private split of a solution: from a Usage column, kept from an earlier
preparation, or drawn at random; and the checks that the metric is defined on both sides.

Messages here go to the organizer, so they may talk about the public and private splits.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import examples, id_examples, show
from .metrics import Metric
from .prepared import METADATA_KEY

# A random split on which the metric is undefined is drawn again, at most this many times.
SPLIT_DRAWS = 20


def usage_split(usage: pa.Array, ids: pa.Array) -> tuple[np.ndarray | None, list[str]]:
    lowered = pc.utf8_lower(usage)
    public = pc.equal(lowered, "public").to_numpy(zero_copy_only=False)
    private = pc.equal(lowered, "private").to_numpy(zero_copy_only=False)
    bad = ~(public | private)
    if bad.any():
        shown = id_examples(ids, np.flatnonzero(bad), usage)
        return None, [f"The Usage column may only contain Public or Private; {shown}."]
    return public, []


def public_count_for(n: int, fraction: float) -> int:
    """How many of ``n`` rows a random split makes public: at least one row on each side."""
    return min(max(round(n * fraction), 1), n - 1)


def random_split(
    ids: pa.Array,
    fraction: float,
    seed: int | None,
    m: Metric,
    values: pa.Array | None,
    classes: list[str] | None,
) -> np.ndarray:
    """A uniformly random split; ``seed=None`` draws it from 128 secret bits.

    A draw on which the metric is undefined (one split without both classes, say) is replaced
    by the next one, a few times, so small solutions do not fail by bad luck. With a seed, the
    id-sorted rows are permuted so the split depends only on (ids, seed, fraction), never on the
    order of rows in the uploaded file: reproducible, and so derivable by anyone who learns the
    seed.
    """
    n = len(ids)
    order = pc.sort_indices(ids).to_numpy()
    rng = np.random.default_rng(secrets.randbits(128) if seed is None else seed)
    for _ in range(SPLIT_DRAWS):
        public = np.zeros(n, dtype=bool)
        public[order[rng.permutation(n)[: public_count_for(n, fraction)]]] = True
        if values is None or not split_problems(m, values, public, classes):
            break
    return public


def kept_split(previous: str | Path, ids: pa.Array, fraction: float) -> tuple[np.ndarray, str] | None:
    """The public mask of an earlier split, in ``ids``' order, when it still fits these ids.

    It fits when it assigns exactly the same ids and the public share still rounds to the same
    count; otherwise (new ids, a changed fraction) the caller draws a new split.
    """
    try:
        table = pq.read_table(previous, columns=["id", "public"])
        source = json.loads((pq.read_schema(previous).metadata or {}).get(METADATA_KEY, b"{}"))
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None
    old_ids = table.column("id").combine_chunks().cast(pa.string())
    if len(old_ids) != len(ids) or table.column("public").null_count:
        return None
    position = pc.index_in(ids, value_set=old_ids)
    if position.null_count:
        return None
    old_public = table.column("public").to_numpy()
    public = old_public[position.to_numpy(zero_copy_only=False).astype(np.int64)]
    if int(public.sum()) != public_count_for(len(ids), fraction):
        return None
    split_source = source.get("info", {}).get("split_source", "random")
    return public, split_source


def split_problems(m: Metric, values: pa.Array, public: np.ndarray, classes: list[str] | None) -> list[str]:
    """Problems that make ``m`` undefined on either split (organizer-facing)."""
    problems = []
    for name, mask in (("public", public), ("private", ~public)):
        rows = int(mask.sum())
        if rows == 0:
            problems.append(f"The {name} split has no rows.")
            continue
        part = values.filter(pa.array(mask))
        if classes is not None:
            present = sorted(set(pc.unique(part).to_pylist()))
            if m.name == "roc_auc_ovr" and len(present) < len(classes):
                absent = [c for c in classes if c not in present]
                problems.append(
                    f"The {name} split lacks the class(es) {examples(absent, len(absent))}; "
                    f"{m.name} needs every class in each split."
                )
            elif m.target == "binary" and len(present) < 2:
                problems.append(
                    f"The {name} split holds only the class {show(present[0])}; {m.name} needs "
                    "both 0 and 1 in each split."
                )
            elif len(present) < 2:
                problems.append(
                    f"The {name} split holds only the class {show(present[0])}; {m.name} needs "
                    "at least 2 classes in each split."
                )
        elif m.name == "r2":
            arr = part.to_numpy()
            if rows < 2 or arr.min() == arr.max():
                problems.append(f"The {name} split's target is constant, so {m.name} is undefined there.")
    return problems


def class_counts(values: pa.Array, classes: list[str]) -> dict[str, int]:
    counts = {c: 0 for c in classes}
    for item in pc.value_counts(values).to_pylist():
        counts[item["values"]] = int(item["counts"])
    return counts
