"""The sandbox's child processes, and the warm pool that keeps one of them ready.

The model runs in ``python -m workers.modelrun.child`` (see child.py for the protocol), which:

- gets a fresh environment (no DATABASE_URL, no SECRET_KEY), its own scratch directory, the
  model (copied as ``model.keras``) and the features as a bare ``x.npy``. It never gets ids,
  the solution, or the solution's path;
- enters the isolation layers of isolation.py, sets RLIMIT_AS and RLIMIT_CPU before importing
  TensorFlow, and dies with its parent (PR_SET_PDEATHSIG, and the end of its stdin);
- runs exactly one model and exits, so nothing leaks from one learner's model to the next.

Warm start: importing TensorFlow takes seconds, so ``warm_pool()`` keeps ONE pre-started idle
child that has already imported it. A job consumes that child and immediately starts its
replacement; ``child_for()`` spawns a fresh child when there is no pool (or the pool's memory
limit differs from the job's). The memory budget is in limits.py.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .isolation import Policy
from .limits import SandboxLimits
from .refusals import RunnerUnavailable, exit_category

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Importing TensorFlow takes 3-6 s of CPU; this bounds a child that hangs before any learner
# code runs. A failure here is the platform's problem, not the learner's.
STARTUP_CPU_SECONDS = 60
STARTUP_TIMEOUT_SECONDS = 120.0
# Threads per child. RLIMIT_CPU counts every thread, and a worker runs several jobs at once.
CHILD_THREADS = 2


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
                "category": exit_category(code),
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


def child_for(memory_bytes: int) -> _Child:
    """A child for one job: the pool's warm one when it fits ``memory_bytes``, else a new one."""
    child = _POOL.take(memory_bytes) if _POOL is not None else None
    return child if child is not None else _Child.spawn(memory_bytes)


def _close_pool_at_exit() -> None:
    if _POOL is not None:
        _POOL.close()


atexit.register(_close_pool_at_exit)
