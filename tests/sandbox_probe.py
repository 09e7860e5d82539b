"""A test hook, never used in production: enter the model child's isolation exactly as the
child does (``isolation.enter`` with the child's environment and scratch directory), then try
one forbidden thing and print what happened as JSON.

``python -m tests.sandbox_probe POLICY_JSON PROBE [ARG]``. Probes run instead of a Keras model
because safe_mode (rightly) offers no way to run arbitrary code from a model.
"""

from __future__ import annotations

import contextlib
import ctypes
import encodings.idna  # noqa: F401 - socket addresses are idna-encoded, lazily imported
import errno
import json
import os
import socket
import sys

# Everything is imported before entering: a root child becomes nobody, who may not be able to
# read the Python install (e.g. one under /root) when the mount layer does not bind it back.
from workers.modelrun.isolation import CLONE_NEWNET, IsolationError, Policy, enter

with contextlib.suppress(ImportError, OSError):
    import pyseccomp  # noqa: F401 - imported by enter(), but the stand-in non-root user can't


def _outcome(action) -> str:
    try:
        action()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc))
    return "ok"


def _connect(port: str) -> None:
    with socket.create_connection(("127.0.0.1", int(port)), timeout=3):
        pass


def _read(path: str) -> None:
    with open(path, "rb") as f:
        f.read(1)


def _write(name: str) -> None:
    with open(name, "w") as f:
        f.write("predictions")


def _inet_socket(_: str) -> None:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()


def _unix_socket(_: str) -> None:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()


def _unshare_net(_: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare")


PROBES = {
    "connect": _connect,
    "read": _read,
    "write": _write,
    "inet_socket": _inet_socket,
    "unix_socket": _unix_socket,
    "unshare_net": _unshare_net,
}


def main() -> int:
    policy_json, probe, arg = sys.argv[1], sys.argv[2], (sys.argv[3:] or [""])[0]
    become = os.environ.get("PROBE_BECOME_UID")
    if become:
        # Stand-in for a worker that is not root (on hosts where nobody cannot start this
        # Python): the process is already running and everything is imported.
        os.setgroups([])
        os.setgid(int(become))
        os.setuid(int(become))
        # A change of user makes a process non-dumpable, which a real non-root worker's child
        # is not; it must be dumpable to write its own /proc/self/uid_map.
        ctypes.CDLL(None, use_errno=True).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
    try:
        report = enter(Policy.from_json(policy_json), os.getcwd())
    except IsolationError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    result = {"active": sorted(report.active), "missing": report.missing, "uid": os.getuid()}
    result["outcome"] = "skipped"
    if probe in PROBES:
        result["outcome"] = _outcome(lambda: PROBES[probe](arg))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
