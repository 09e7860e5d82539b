"""The sandboxed child that runs one learner model: ``python -m workers.modelrun.child``.

Started only by workers.modelrun.pool, never imported by the web process or a worker. It
imports nothing from the project but isolation.py (standard library only), so it pulls in only
the standard library, numpy and Keras (TensorFlow).

Protocol (one job per process, so no state can leak from one learner's model to the next):

1. Arguments: ``--memory-bytes N --startup-cpu S --parent PID [--isolation POLICY]``. Before
   anything else it enters the sandbox's isolation layers (isolation.py). Before importing TensorFlow
   the child asks the kernel to SIGKILL it when the parent dies, and sets RLIMIT_AS to N and
   RLIMIT_CPU to S seconds (enough to import TensorFlow, not enough to spin forever).
2. It imports Keras, then writes ``ready`` on its protocol stream (the original stdout; fd 1
   is pointed at stderr so nothing a library prints can corrupt the protocol).
3. It reads ONE JSON line from stdin: ``{"model": path, "features": path to an .npy of x,
   "out": path for the .npy predictions, "batch_size": int, "cpu_seconds": int,
   "widths": [accepted outputs per row]}``. End of input (the pool is closing, or the parent
   died) makes it exit quietly.
4. It writes one JSON line — ``{"ok": true, ...}`` or ``{"ok": false, "category": ...,
   "detail": {...}, "log": traceback}`` — and exits. The parent turns categories into
   learner-facing messages; ``log`` is for the operator's logs only.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import signal
import sys
import time
import traceback

PR_SET_PDEATHSIG = 1


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    protocol = _take_stdout()
    if args.isolation:
        # First: the learner's model must never run outside the sandbox (see isolation.py).
        from workers.modelrun.isolation import IsolationError, Policy, enter

        try:
            report = enter(Policy.from_json(args.isolation), os.getcwd())
        except IsolationError as exc:
            print(f"sandbox: {exc}", file=sys.stderr)
            return 1
        print(f"sandbox: active {report.active}, missing {report.missing}", file=sys.stderr)
    # After changing user: a change of credentials clears the parent-death signal.
    _die_with_parent(args.parent)
    resource.setrlimit(resource.RLIMIT_AS, (args.memory_bytes, args.memory_bytes))
    _cpu_budget(args.startup_cpu, final=False)
    try:
        import keras  # noqa: F401  (imports TensorFlow)
        import numpy  # noqa: F401
    except MemoryError:
        _send(
            protocol, {"ok": False, "category": "startup_memory", "detail": {}, "log": traceback.format_exc()}
        )
        return 1
    _warm_up()
    _send(protocol, "ready")

    line = sys.stdin.readline()
    if not line.strip():
        _exit(0)
    job = json.loads(line)
    _cpu_budget(int(job["cpu_seconds"]), final=True)
    started = time.perf_counter()
    try:
        result = _run(job)
    except MemoryError:
        result = _failure("memory", log=traceback.format_exc())
    except BaseException as exc:  # noqa: BLE001 - every failure must become a categorised reply
        result = _failure(_categorise(exc), log=traceback.format_exc())
    result["seconds"] = round(time.perf_counter() - started, 4)
    _send(protocol, result)
    _exit(0)
    return 0  # unreachable


def _exit(code: int) -> None:
    """Leave without TensorFlow's interpreter teardown, which takes seconds and runs after the
    reply was sent anyway; there is nothing else to flush or clean up."""
    sys.stderr.flush()
    os._exit(code)


def _run(job: dict) -> dict:
    import keras
    import numpy as np

    started = time.perf_counter()
    x = np.load(job["features"], mmap_mode="r", allow_pickle=False)
    row_shape = list(x.shape[1:])
    try:
        model = keras.saving.load_model(job["model"], safe_mode=True, compile=False)
    except MemoryError:
        raise
    except BaseException as exc:  # noqa: BLE001
        return _failure(_categorise_load(exc), log=traceback.format_exc())

    loaded = time.perf_counter()
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) > 1:
        return _failure("inputs", {"count": len(inputs)})
    if inputs:
        expected = [None if d is None else int(d) for d in inputs[0].shape[1:]]
        if len(expected) != len(row_shape) or any(
            e is not None and e != f for e, f in zip(expected, row_shape, strict=True)
        ):
            return _failure("input_shape", {"model": expected, "features": row_shape})

    widths = set(job["widths"])
    batch_size = int(job["batch_size"])
    n = len(x)
    out = None
    nonfinite = 0  # counted over every batch: the learner is told how many rows, never which
    for start in range(0, n, batch_size):
        batch = np.ascontiguousarray(x[start : start + batch_size])
        try:
            y = model(batch, training=False)
        except MemoryError:
            raise
        except BaseException as exc:  # noqa: BLE001
            category = _categorise(exc)
            if category == "error" and not inputs:
                category = "predict"
            return _failure(category, {"features": row_shape}, log=traceback.format_exc())
        if isinstance(y, (list, tuple, dict)):
            return _failure("outputs", {"count": len(y)})
        y = np.asarray(keras.ops.convert_to_numpy(y))
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[0] != len(batch) or y.shape[1] not in widths:
            return _failure("output_shape", {"per_row": [int(d) for d in y.shape[1:]]})
        if y.dtype.kind not in "fiub":
            return _failure("output_dtype", {"dtype": str(y.dtype)})
        nonfinite += int((~np.isfinite(y).all(axis=1)).sum())
        if out is None:
            out = np.empty((n, y.shape[1]), dtype=np.float64 if y.dtype == np.float64 else np.float32)
        out[start : start + len(batch)] = y
    if nonfinite:
        return _failure("nonfinite", {"rows": nonfinite, "total": n})
    np.save(job["out"], out, allow_pickle=False)
    return {
        "ok": True,
        "shape": list(out.shape),
        "load_seconds": round(loaded - started, 4),
        "predict_seconds": round(time.perf_counter() - loaded, 4),
        **_memory_usage(),
    }


def _memory_usage() -> dict:
    """Peak address space (what RLIMIT_AS limits) and peak resident memory, for the logs."""
    usage = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmPeak", "VmHWM"):
                usage[{"VmPeak": "peak_address_space_mb", "VmHWM": "peak_resident_mb"}[key]] = (
                    int(value.split()[0]) // 1024
                )
    return usage


def _warm_up() -> None:
    """Save, load and call a tiny model of our own, so the job does not pay for the lazy
    imports (h5py, the saving code) and the first-kernel set-up of TensorFlow."""
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.save("warmup.keras")  # the working directory is this child's scratch directory
    loaded = keras.saving.load_model("warmup.keras", safe_mode=True, compile=False)
    loaded(np.zeros((8, 4), dtype=np.float32), training=False)
    os.remove("warmup.keras")


def _failure(category: str, detail: dict | None = None, *, log: str = "") -> dict:
    return {"ok": False, "category": category, "detail": detail or {}, "log": log[-8000:]}


def _categorise_load(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    if "lambda" in lowered or "tfsmlayer" in lowered or "unsafe" in lowered or "safe_mode" in lowered:
        return "unsafe"
    if "could not locate" in lowered or "could not deserialize" in lowered or "cannot deserialize" in lowered:
        return "unknown_object"
    if _is_memory(exc):
        return "memory"
    return "corrupt"


def _categorise(exc: BaseException) -> str:
    return "memory" if _is_memory(exc) else "error"


def _is_memory(exc: BaseException) -> bool:
    name = type(exc).__name__
    text = str(exc).lower()
    return (
        isinstance(exc, MemoryError)
        or name == "ResourceExhaustedError"
        or "oom" in text.split()
        or "out of memory" in text
        or "bad_alloc" in text
        or "failed to allocate" in text
        or "cannot allocate memory" in text
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="workers.modelrun.child")
    parser.add_argument("--memory-bytes", type=int, required=True)
    parser.add_argument("--startup-cpu", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--isolation", default="", help="an isolation.Policy as JSON")
    return parser.parse_args(argv)


def _take_stdout():
    """Keep the real stdout for the protocol and send fd 1 (library prints) to stderr."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def _send(protocol, message: object) -> None:
    protocol.write((message if isinstance(message, str) else json.dumps(message)) + "\n")
    protocol.flush()


def _die_with_parent(parent: int) -> None:
    # PDEATHSIG follows the parent *thread* that spawned us; the sandbox spawns from the
    # calling thread and the pipe's EOF is the second line of defence.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def _cpu_budget(seconds: int, *, final: bool) -> None:
    """Allow ``seconds`` more CPU time from now (RLIMIT_CPU counts from process start).

    SIGXCPU at the soft limit ends the process. The startup budget sets only the soft limit,
    because an unprivileged process can never raise its hard limit again; the job's budget
    then pins the hard limit 2 s above the soft one (SIGKILL, should SIGXCPU be blocked).
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime) + 1 + max(int(seconds), 1)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    unlimited = hard == resource.RLIM_INFINITY
    if final:
        hard = soft + 2 if unlimited else min(hard, soft + 2)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


if __name__ == "__main__":
    sys.exit(main())
