"""Run a learner's Keras model on the hidden test features, in a sandboxed child process.

This is the parent side. It never imports TensorFlow: TensorFlow must stay out of the web
process and the CSV scoring worker, and must not be imported before a prefork pool forks. The
model runs in ``python -m workers.modelrun.child`` (see child.py for the protocol), which:

- gets a fresh environment (no DATABASE_URL, no SECRET_KEY), its own scratch directory, the
  model (symlinked as ``model.keras``) and the features as a bare ``x.npy``. It never gets ids,
  the solution, or the solution's path: predict_to_csv does not even accept one;
- sets RLIMIT_AS and RLIMIT_CPU before importing TensorFlow, and dies with its parent
  (PR_SET_PDEATHSIG, and the end of its stdin);
- loads the model with ``keras.saving.load_model(safe_mode=True, compile=False)`` and no
  custom objects, so Lambda layers, TFSMLayer, vocabulary files and unregistered classes are
  refused. Before anything starts, the parent also refuses non-zip uploads (HDF5, pickles —
  nothing is ever unpickled or read as HDF5 here), oversized archives, and configs that name
  Lambda layers or code outside Keras, so the common refusals cost no TensorFlow start-up;
- runs exactly one model and exits, so nothing leaks from one learner's model to the next.

Memory budget (measured with TensorFlow 2.21 / Keras 3.15 on x86-64): importing TensorFlow
reserves about 1.4 GB of address space and about 660 MB resident (mostly shared library pages,
which several children share). MALLOC_ARENA_MAX=2 and 1 inter-op / 2 intra-op threads keep a
small model's run at about 1.5 GB of address space. RLIMIT_AS therefore defaults to 2 GiB,
leaving about 500 MB for the model's weights, its activations and the features; TensorFlow
cannot import at all under 1 GiB and its thread pools fail at 2 GiB without those settings.
A worker with the warm pool holds one idle child (~700 MB resident) plus, during a job, the
job's child (~700 MB plus the model and features): plan about 1.5 GB per model worker.

Warm start: importing TensorFlow takes seconds, so ``warm_pool()`` keeps ONE pre-started idle
child that has already imported it. A job consumes that child and immediately starts its
replacement; predict_to_csv spawns a fresh child when there is no pool (or the pool's memory
limit differs from the job's).
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import io
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from workers.engine import ScoringError, get_metric
from workers.engine.errors import show
from workers.engine.metrics import Metric
from workers.engine.scoring import PROBABILITY_SUM_TOLERANCE

from .features import output_spec, read_features
from .isolation import Policy

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
GiB = 1024 * MiB
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Importing TensorFlow takes 3-6 s of CPU; this bounds a child that hangs before any learner
# code runs. A failure here is the platform's problem, not the learner's.
STARTUP_CPU_SECONDS = 60
STARTUP_TIMEOUT_SECONDS = 120.0
# Threads per child. RLIMIT_CPU counts every thread, and a worker runs several jobs at once.
CHILD_THREADS = 2
MAX_CONFIG_BYTES = 16 * MiB
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
# Layers whose config carries code or reaches outside the archive. safe_mode refuses them too;
# naming them here gives a clear message without starting TensorFlow.
_CODE_LAYERS = {"Lambda", "__lambda__", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"}
_H5_HINT = "save it with model.save('model.keras')"


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int = 2 * GiB  # RLIMIT_AS of the child, TensorFlow included (~1.4 GB)
    cpu_seconds: int = 120  # RLIMIT_CPU for the job, all threads, after TensorFlow's import
    wall_seconds: float = 180.0  # from sending the job to its reply
    batch_size: int = 1024
    max_model_bytes: int = 100 * MiB


class ModelRejected(ScoringError):
    """The model could not be run; ``str()`` is for the learner, ``log`` for the operator.

    Refusals of the model file itself (not a zip, unsafe layers, wrong input shape) are free.
    Refusals of its outputs on the hidden features are ``charged``: a free failure would answer
    a question about hidden rows at no cost. Either way the message gives shapes and counts
    only, never an id, a feature or a predicted value.
    """

    def __init__(self, message: str, log: str = "", *, charged: bool = False) -> None:
        super().__init__(message, charged=charged)
        self.log = log


# Child reply categories caused by what the model computed on the hidden features.
OUTPUT_FAILURES = frozenset({"outputs", "output_shape", "output_dtype", "nonfinite"})


class RunnerUnavailable(RuntimeError):
    """The sandbox itself failed (e.g. TensorFlow did not start): retry, don't blame the model."""


# -- the public entry point ----------------------------------------------------------------------


def predict_to_csv(
    model_path: str | Path,
    features_path: str | Path,
    out_csv: str | Path,
    *,
    id_column: str,
    submission_columns: list[str],
    metric: str,
    classes: list[str] | None,
    limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen, so sharing it is safe
) -> None:
    """Run the model on the features and write a submission CSV with ``submission_columns``.

    Raises ModelRejected (a ScoringError) with a learner-facing message for every refusal,
    SolutionError if the features are invalid, and RunnerUnavailable if the sandbox fails.
    """
    m = get_metric(metric)
    check_model_file(model_path, max_model_bytes=limits.max_model_bytes)
    ids, x = _features(features_path, id_column)
    widths = output_widths(m, classes)
    spec = output_spec(m.name, classes)

    pool = _POOL
    child = pool.take(limits.memory_bytes) if pool is not None else None
    if child is None:
        child = _Child.spawn(limits.memory_bytes)
    try:
        # A copy, not a link: the child cannot see (or, as nobody, read) where uploads live.
        shutil.copyfile(model_path, child.workdir / "model.keras")
        np.save(child.workdir / "x.npy", x, allow_pickle=False)
        for name in ("model.keras", "x.npy"):  # readable by the child's user, whatever the umask
            os.chmod(child.workdir / name, 0o644)
        job = {
            "model": str(child.workdir / "model.keras"),
            "features": str(child.workdir / "x.npy"),
            "out": str(child.workdir / "out.npy"),
            "batch_size": int(limits.batch_size),
            "cpu_seconds": int(limits.cpu_seconds),
            "widths": widths,
        }
        reply = child.run(job, limits, rows=len(ids))
        if not reply.get("ok"):
            logger.info("model refused: %s", {k: v for k, v in reply.items() if k != "log"})
            raise ModelRejected(
                _explain(reply, limits, spec),
                log=reply.get("log", ""),
                charged=reply.get("category") in OUTPUT_FAILURES,
            )
        logger.info("model run: %s", reply)
        predictions = np.load(child.workdir / "out.npy", allow_pickle=False)
    finally:
        child.discard()
    if predictions.ndim != 2 or predictions.shape[0] != len(ids) or predictions.shape[1] not in widths:
        raise RunnerUnavailable(f"the child returned predictions of shape {predictions.shape}")
    write_predictions_csv(
        out_csv, ids, predictions, submission_columns=submission_columns, metric=m, classes=classes
    )


def output_widths(m: Metric, classes: list[str] | None) -> list[int]:
    """The numbers of outputs per row a model may have for ``m``."""
    k = len(classes or [])
    if m.prediction == "class_probabilities":
        return [k]
    if m.prediction == "label":
        return [k, 1] if k == 2 or m.target == "ordinal" else [k]
    if m.prediction == "probability":
        return [1, 2]  # a sigmoid, or a 2-class softmax whose second column is class 1
    return [1]


# -- cheap checks in the parent ------------------------------------------------------------------


def check_model_file(path: str | Path, *, max_model_bytes: int = SandboxLimits.max_model_bytes) -> None:
    """Refuse anything that is not a plausible Keras 3 ``.keras`` archive, without TensorFlow."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        raise ModelRejected("The model file could not be read; upload it again.") from None
    if size > max_model_bytes:
        raise ModelRejected(
            f"The model file is {size / MiB:,.1f} MB; at most {max_model_bytes / MiB:,.0f} MB are allowed."
        )
    if size == 0:
        raise ModelRejected(f"The model file is empty; {_H5_HINT}.")
    if head.startswith(_HDF5_MAGIC):
        raise ModelRejected(f"HDF5 (.h5) models are not accepted; {_H5_HINT}.")
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise ModelRejected(
            f"This is a Python pickle, not a Keras model; Holdout never unpickles uploads — {_H5_HINT}."
        )
    if not head.startswith(_ZIP_MAGICS):
        raise ModelRejected(f"This is not a .keras file (a Keras 3 model is a zip archive); {_H5_HINT}.")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {info.filename: info for info in zf.infolist()}
            expanded = sum(info.file_size for info in infos.values())
            if expanded > 2 * max_model_bytes:
                raise ModelRejected(
                    f"The model archive expands to {expanded / MiB:,.0f} MB; at most "
                    f"{2 * max_model_bytes / MiB:,.0f} MB are allowed."
                )
            if "saved_model.pb" in {name.rsplit("/", 1)[-1] for name in infos}:
                raise ModelRejected(f"This is a zipped TensorFlow SavedModel, not a .keras file; {_H5_HINT}.")
            if "config.json" not in infos:
                raise ModelRejected(
                    f"This zip archive is not a .keras file (it has no config.json); {_H5_HINT}."
                )
            if "model.weights.h5" not in infos and "model.weights.npz" not in infos:
                raise ModelRejected(f"This .keras file has no weights (model.weights.h5); {_H5_HINT}.")
            if infos["config.json"].file_size > MAX_CONFIG_BYTES:
                raise ModelRejected("The model's config.json is implausibly large.")
            raw = zf.read("config.json")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError):
        raise ModelRejected(
            f"The .keras file is damaged (its zip archive cannot be read); {_H5_HINT}."
        ) from None
    try:
        config = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ModelRejected("The .keras file is damaged (its config.json is not valid JSON).") from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelRejected("The .keras file is damaged (its config.json does not describe a model).")
    scan_config(config)


def scan_config(config: dict) -> None:
    """Refuse a model config that names a Lambda layer or anything outside Keras."""
    stack: list[object] = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        class_name = node.get("class_name")
        if class_name in _CODE_LAYERS:
            raise ModelRejected(
                f"The model uses a {'Lambda' if 'lambda' in class_name.lower() else class_name} layer or "
                "custom code, which Holdout does not run (safe_mode); use built-in Keras layers only."
            )
        module = node.get("module")
        registered = node.get("registered_name")
        if (isinstance(module, str) and module.split(".")[0] not in ("keras", "builtins")) or (
            isinstance(registered, str) and registered != class_name
        ):
            name = registered if isinstance(registered, str) else class_name
            raise ModelRejected(
                f"The model uses custom code ({show(name)}), which Holdout does not run (safe_mode); "
                "use built-in Keras layers only."
            )
        for key, value in node.items():
            # The training set-up (optimizer, loss) is never loaded: compile=False.
            if key != "compile_config" and isinstance(value, (dict, list)):
                stack.append(value)


# -- features ------------------------------------------------------------------------------------

_features_lock = threading.Lock()
_features_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _features(path: str | Path, id_column: str) -> tuple[np.ndarray, np.ndarray]:
    """read_features, remembering the last file: every job of a challenge reads the same one."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, id_column)
    with _features_lock:
        if key in _features_cache:
            return _features_cache[key]
    value = read_features(path, id_column=id_column)
    with _features_lock:
        _features_cache.clear()
        _features_cache[key] = value
    return value


# -- predictions to CSV --------------------------------------------------------------------------


def write_predictions_csv(
    out_csv: str | Path,
    ids: np.ndarray,
    predictions: np.ndarray,
    *,
    submission_columns: list[str],
    metric: Metric,
    classes: list[str] | None,
) -> None:
    """Turn model outputs into a submission the engine scores like any uploaded CSV."""
    id_name, *value_names = submission_columns
    values = _prediction_columns(predictions, metric, classes)
    if len(values) != len(value_names):
        raise ValueError(f"{len(values)} prediction columns for the submission columns {submission_columns}")
    table = pa.Table.from_arrays([pa.array(ids, type=pa.string()), *values], names=[id_name, *value_names])
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(submission_columns)
    with open(out_csv, "wb") as f:
        f.write(header.getvalue().encode())
        pcsv.write_csv(
            table, f, write_options=pcsv.WriteOptions(include_header=False, quoting_style="needed")
        )


def _prediction_columns(p: np.ndarray, m: Metric, classes: list[str] | None) -> list[pa.Array]:
    k = p.shape[1]
    if m.prediction == "class_probabilities":
        _check_probabilities(p, "softmax")
        return [pa.array(p[:, j]) for j in range(k)]
    if m.prediction == "probability":
        if k == 2:
            _check_probabilities(p, "softmax")
            return [pa.array(p[:, 1])]
        _check_probabilities(p, "sigmoid")
        return [pa.array(p[:, 0])]
    if m.prediction == "numeric":
        if m.target == "nonnegative":
            why = f"{m.name} takes log(1 + prediction)"
            _refuse_rows(p[:, 0] <= -1, f"The model's outputs must be greater than -1 ({why})")
        return [pa.array(p[:, 0])]
    assert classes is not None
    labels = np.asarray(classes, dtype=object)
    if k == len(classes):
        chosen = labels[np.argmax(p, axis=1)]
    elif len(classes) == 2:
        chosen = labels[(p[:, 0] >= 0.5).astype(np.int64)]
    else:  # ordinal ratings from one number: the nearest rating
        ratings = np.asarray([int(c) for c in classes], dtype=np.float64)
        chosen = labels[np.abs(p[:, :1] - ratings[None, :]).argmin(axis=1)]
    return [pa.array(chosen.tolist(), type=pa.string())]


def _check_probabilities(p: np.ndarray, activation: str) -> None:
    outside = ((p < 0) | (p > 1)).any(axis=1)
    off = np.abs(p.sum(axis=1) - 1) > PROBABILITY_SUM_TOLERANCE if p.shape[1] > 1 else np.zeros(len(p), bool)
    what = "probabilities between 0 and 1" + (" that sum to 1 on each row" if p.shape[1] > 1 else "")
    _refuse_rows(outside | off, f"The model's outputs must be {what} (end the model with a {activation})")


def _refuse_rows(bad: np.ndarray, requirement: str) -> None:
    """Refuse outputs that break ``requirement`` on some rows: a charged refusal that counts
    the rows but never names one or shows a value (outputs can copy hidden features)."""
    if bad.any():
        rows = f"{int(bad.sum()):,} of {len(bad):,} test rows are not"
        raise ModelRejected(f"{requirement}; {rows}.", charged=True)


# -- learner-facing messages ---------------------------------------------------------------------


def _explain(reply: dict, limits: SandboxLimits, spec: str) -> str:
    category = reply.get("category")
    detail = reply.get("detail") or {}
    mb = f"{limits.memory_bytes / MiB:,.0f} MB"
    if category == "unsafe":
        return (
            "The model uses a Lambda layer or custom code, which Holdout does not run (safe_mode); "
            "use built-in Keras layers only."
        )
    if category == "unknown_object":
        return (
            "The model uses a layer or function this Keras version does not know (custom code is not "
            "run); use built-in Keras layers only."
        )
    if category == "corrupt":
        return f"The .keras file could not be loaded: it is damaged or not a Keras 3 model; {_H5_HINT}."
    if category == "input_shape":
        return (
            f"The model expects inputs of shape {_shape(detail.get('model'))} per row, but the test features "
            f"have shape {_shape(detail.get('features'))} per row."
        )
    if category == "inputs":
        return f"The model has {detail.get('count')} inputs; it must take one array of test features."
    if category == "outputs":
        return f"The model has {detail.get('count')} outputs; it must produce one: {spec}."
    if category == "output_shape":
        return (
            f"The model outputs shape {_shape(detail.get('per_row'))} per row; this challenge needs {spec}."
        )
    if category == "output_dtype":
        return f"The model outputs {detail.get('dtype')} values; it must output numbers."
    if category == "nonfinite":
        return (
            f"The model predicted NaN or infinite values on {int(detail.get('rows', 0)):,} of "
            f"{int(detail.get('total', 0)):,} test rows; check its weights for NaN."
        )
    if category == "memory":
        return f"The model needed more than {mb} of memory (the limit for a model run, TensorFlow included)."
    if category == "cpu":
        return f"The model took longer than {limits.cpu_seconds:,} s of CPU time to predict the test set."
    if category == "wall":
        return f"The model took longer than {limits.wall_seconds:g} s to predict the test set."
    if category == "crash":
        return f"The model run stopped abruptly, most likely because it needed more than {mb} of memory."
    if category == "predict":
        return (
            "The model failed on the test features, whose shape is "
            f"{_shape(detail.get('features'))} per row; check the model's input shape."
        )
    return "The model failed while predicting the test features; check it runs with model.predict locally."


def _shape(dims: object) -> str:
    if not isinstance(dims, list):
        return "(unknown)"
    return (
        "(" + ", ".join("any" if d is None else str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"
    )


def _explain_exit(returncode: int) -> str:
    """The reply category for a child that died without replying."""
    if returncode == -signal.SIGXCPU:
        return "cpu"
    if returncode in (-signal.SIGKILL, -signal.SIGABRT, -signal.SIGSEGV, -signal.SIGBUS):
        # Under RLIMIT_AS, TensorFlow aborts when it cannot allocate or start a thread; a SIGKILL
        # we did not send is the kernel's OOM killer.
        return "crash"
    return "error"


# -- the child process ---------------------------------------------------------------------------


def child_env(workdir: Path) -> dict[str, str]:
    """The child's whole environment: nothing is inherited, so no secret reaches the model."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "KERAS_HOME": str(workdir / ".keras"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
        # Each glibc arena reserves 64 MB of address space per thread; RLIMIT_AS counts it.
        "MALLOC_ARENA_MAX": "2",
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": str(CHILD_THREADS),
        "OMP_NUM_THREADS": str(CHILD_THREADS),
    }


class _Child:
    """One child process: started, optionally kept idle in the pool, given one job, discarded."""

    def __init__(self, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self.workdir = Path(tempfile.mkdtemp(prefix="holdout-model-"))
        self.argv = [
            sys.executable,
            "-s",
            "-m",
            "workers.modelrun.child",
            "--memory-bytes",
            str(memory_bytes),
            "--startup-cpu",
            str(STARTUP_CPU_SECONDS),
            "--parent",
            str(os.getpid()),
            "--isolation",
            _ISOLATION.to_json(),
        ]
        self.env = child_env(self.workdir)
        self.sent = ""
        self.ready = False
        self._buffer = b""
        self._stderr = open(self.workdir / "stderr.log", "wb")  # noqa: SIM115 - closed in discard()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=self.workdir,
            env=self.env,
            close_fds=True,
            # Its own session: a terminal's Ctrl-C or a signal to the worker's process group
            # reaches the parent, which then ends the child itself.
            start_new_session=True,
        )

    @classmethod
    def spawn(cls, memory_bytes: int) -> _Child:
        return cls(memory_bytes)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        if self.ready:
            return
        line = self._readline(time.monotonic() + timeout)
        if line != "ready":
            self.kill()
            code = self.proc.returncode
            raise RunnerUnavailable(
                f"the model runner did not start (exit {code}, said {line!r}): {self.stderr_tail()}"
            )
        self.ready = True

    def run(self, job: dict, limits: SandboxLimits, *, rows: int) -> dict:
        """Send ``job`` and return the child's reply (a failure reply if it dies or overruns)."""
        self.wait_ready()
        self.sent = json.dumps(job)
        started = time.monotonic()
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(self.sent.encode() + b"\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        line = self._readline(started + limits.wall_seconds)
        if line is None and self.alive():
            self.kill()
            logger.info("model run exceeded %s s wall time on %s rows", limits.wall_seconds, rows)
            return {"ok": False, "category": "wall", "detail": {}, "log": self.stderr_tail()}
        if line is None:
            code = self.proc.wait()
            return {
                "ok": False,
                "category": _explain_exit(code),
                "detail": {"returncode": code},
                "log": f"child exited with {code}\n{self.stderr_tail()}",
            }
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        try:
            return json.loads(line)
        except ValueError:
            return {"ok": False, "category": "error", "detail": {}, "log": f"unparsable reply {line[:200]!r}"}

    def _readline(self, deadline: float) -> str | None:
        """One line from the child's protocol stream, or None at EOF or the deadline."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode(errors="replace").strip()

    def stderr_tail(self, limit: int = 4000) -> str:
        try:
            return (self.workdir / "stderr.log").read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        self.proc.wait()

    def discard(self) -> None:
        """End the process (an idle child exits on the end of its stdin), reap it, clean up."""
        if self.alive():
            with contextlib.suppress(OSError):
                if self.proc.stdin and not self.proc.stdin.closed:
                    self.proc.stdin.close()
            try:
                self.proc.wait(timeout=0.5 if self.ready else 0)
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self._stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


# -- the warm pool -------------------------------------------------------------------------------


class WarmPool:
    """One idle child that has already imported TensorFlow, replaced as soon as it is taken."""

    def __init__(self, memory_bytes: int = SandboxLimits.memory_bytes) -> None:
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        self._idle: _Child | None = _Child.spawn(memory_bytes)

    def take(self, memory_bytes: int) -> _Child | None:
        """The idle child if it fits ``memory_bytes`` (its RLIMIT_AS is fixed at start-up)."""
        with self._lock:
            if self._pid != os.getpid():
                # We are a forked copy: the idle child belongs to the process that started it.
                self._idle, self._pid = None, os.getpid()
            if self._closed or memory_bytes != self.memory_bytes:
                return None
            child, self._idle = self._idle, None
            if child is not None and not child.alive():
                logger.warning("idle model runner had exited (%s); starting another", child.proc.returncode)
                child.discard()
                child = None
            # Start the replacement now: it imports TensorFlow while this job runs.
            try:
                self._idle = _Child.spawn(self.memory_bytes)
            except OSError:
                logger.exception("could not start a warm model runner")
            return child

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        """Block until the idle child has imported TensorFlow (for benchmarks and tests)."""
        with self._lock:
            idle = self._idle
        if idle is not None:
            idle.wait_ready(timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, None
        if idle is not None and self._pid == os.getpid():
            idle.discard()


_POOL: WarmPool | None = None
_POOL_LOCK = threading.Lock()
_ISOLATION = Policy()


def configure_isolation(policy: Policy) -> None:
    """Set what every child from now on hides and requires (see isolation.py); a warm child
    started under another policy is discarded."""
    global _ISOLATION
    with _POOL_LOCK:
        if policy == _ISOLATION:
            return
        _ISOLATION = policy
        if _POOL is not None and _POOL._pid == os.getpid():
            _POOL.close()


def isolation_report(policy: Policy | None = None) -> dict:
    """Which layers a child gets on this host: run the isolation alone in a short process."""
    policy = policy or _ISOLATION
    with tempfile.TemporaryDirectory(prefix="holdout-sandbox-check-") as workdir:
        result = subprocess.run(
            [sys.executable, "-s", "-m", "workers.modelrun.isolation", policy.to_json()],
            capture_output=True,
            text=True,
            cwd=workdir,
            env=child_env(Path(workdir)),
            timeout=60,
        )
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"exit {result.returncode}: {result.stderr[-2000:]}"}


def warm_pool(memory_bytes: int = SandboxLimits.memory_bytes) -> WarmPool:
    """Start (once) and return the module's warm pool; predict_to_csv uses it from then on.

    Call it in the model worker after the pool process has forked (e.g. from Celery's
    ``worker_process_init``), never in the web process. ``close()`` stops it.
    """
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._closed or _POOL._pid != os.getpid() or _POOL.memory_bytes != memory_bytes:
            if _POOL is not None and _POOL._pid == os.getpid():
                _POOL.close()
            _POOL = WarmPool(memory_bytes)
        return _POOL


def _close_pool_at_exit() -> None:
    if _POOL is not None:
        _POOL.close()


atexit.register(_close_pool_at_exit)
