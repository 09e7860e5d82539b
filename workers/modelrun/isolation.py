"""What a learner's model can reach: the kernel-level layers of the model child's sandbox.

Keras' safe_mode is the first barrier (no Lambda layers, no custom code); these layers are for
the day it has a hole. The child enters them first thing (``enter``), before TensorFlow is
imported and long before the learner's model is read:

- ``user``: the child runs without root. A root worker's child drops to ``nobody``
  (setgroups, setgid, setuid); a non-root worker's child is unprivileged already.
- ``net``: a new, empty network namespace (a loopback that is down): no TCP or UDP to the
  database, the broker or anywhere, and no abstract Unix socket of the host.
- ``mount``: a private mount namespace in which the hidden paths (private storage, media,
  ``var/``, the worker cache, ``/tmp``, ``/run`` with its database sockets, home folders) are
  covered by empty read-only tmpfs; the child's scratch directory and the Python install and
  code it needs are bound back where they were.
- ``seccomp``: a syscall filter (libseccomp through the ``pyseccomp`` binding) under which
  non-Unix sockets, ptrace, mount, namespaces, bpf, keyrings, kernel modules and the like
  fail with EPERM.

As root, ``net`` and ``mount`` are plain ``unshare(2)`` calls. A non-root worker needs an
unprivileged user namespace (CLONE_NEWUSER, the worker's uid mapped to itself); the
capabilities it grants inside are dropped once the mounts are made.

A layer the host does not allow is skipped and reported; ``require`` makes it fatal instead
(HOLDOUT_SANDBOX_REQUIRE in production). Nothing here imports TensorFlow or Django.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import socket
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

LAYERS = ("user", "net", "mount", "seccomp")
DEFAULT_HIDDEN = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/var/run", "/root", "/home", "/srv", "/data")

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_DUMPABLE = 4
_CAP_VERSION_3 = 0x20080522
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}

# Syscalls a model never needs and an escape would: they fail with EPERM.
DENIED_SYSCALLS = (
    "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root",
    "chroot", "unshare", "setns", "bpf", "perf_event_open", "keyctl", "add_key",
    "request_key", "init_module", "finit_module", "delete_module", "kexec_load",
    "kexec_file_load", "reboot", "swapon", "swapoff", "acct", "userfaultfd",
    "open_by_handle_at", "name_to_handle_at", "fsopen", "fsmount", "move_mount",
    "open_tree", "quotactl", "syslog", "io_uring_setup",
)  # fmt: skip


class IsolationError(RuntimeError):
    """A required layer could not be set up: the child must not run a model."""


@dataclass(frozen=True)
class Policy:
    """What the child hides and which layers it must have; travels to the child as JSON."""

    hidden: tuple[str, ...] = DEFAULT_HIDDEN
    require: frozenset[str] = frozenset()
    layers: frozenset[str] = frozenset(LAYERS)  # tests switch single layers off
    user: str = "nobody"

    def to_json(self) -> str:
        data = asdict(self)
        data["require"], data["layers"] = sorted(self.require), sorted(self.layers)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Policy:
        data = json.loads(text)
        return cls(
            hidden=tuple(data["hidden"]),
            require=frozenset(data["require"]),
            layers=frozenset(data["layers"]),
            user=data["user"],
        )


@dataclass
class Report:
    active: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # layer -> why


def enter(policy: Policy, workdir: str) -> Report:
    """Put this process into the sandbox; ``workdir`` (its scratch directory) stays writable.

    Raises IsolationError if a layer in ``policy.require`` cannot be set up.
    """
    keep = _keep_paths(workdir)
    report = Report()
    try:
        # Imported while still able to read the Python install (nobody may not be).
        import pyseccomp
    except (ImportError, OSError) as exc:
        pyseccomp = exc
    for layer in set(LAYERS) - policy.layers:
        report.missing[layer] = "switched off"
    root = os.geteuid() == 0
    uid, gid = _target_ids(policy.user) if root else (os.getuid(), os.getgid())
    wanted = {"net", "mount"} & policy.layers
    if wanted:
        flags = (CLONE_NEWNET if "net" in wanted else 0) | (CLONE_NEWNS if "mount" in wanted else 0)
        try:
            if not root:
                _unshare(flags | CLONE_NEWUSER)
                _map_ids(os.getuid(), os.getgid())
            else:
                _unshare(flags)
            report.active += sorted(wanted)
        except OSError as exc:
            for layer in wanted:
                report.missing[layer] = f"unshare: {os.strerror(exc.errno or 0)}"
    if "mount" in report.active:
        try:
            _hide(policy.hidden, keep)
        except OSError as exc:
            report.active.remove("mount")
            report.missing["mount"] = f"mounts: {exc}"
    if root and "user" in policy.layers:
        try:
            os.chown(workdir, uid, gid)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            report.active.append("user")
        except OSError as exc:
            report.missing["user"] = f"setuid: {exc}"
    elif "user" in policy.layers:
        report.active.append("user")  # not root to begin with
    if not root and wanted & set(report.active):
        _drop_capabilities()  # those the new user namespace granted
    if "seccomp" in policy.layers:
        try:
            if isinstance(pyseccomp, Exception):
                raise pyseccomp
            _install_filter(pyseccomp)
            report.active.append("seccomp")
        except Exception as exc:  # noqa: BLE001 - ImportError, OSError from libseccomp, ...
            report.missing["seccomp"] = f"{type(exc).__name__}: {exc}"
    failed = sorted(policy.require - set(report.active))
    if failed:
        raise IsolationError(
            "required sandbox layers unavailable: "
            + "; ".join(f"{name} ({report.missing.get(name, 'unknown')})" for name in failed)
        )
    return report


def protect_parent() -> None:
    """Make the worker non-dumpable, so a same-uid child (the non-root path) cannot read its
    /proc/PID/environ (DATABASE_URL, SECRET_KEY) or memory."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


# -- the layers ----------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _target_ids(user: str) -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return 65534, 65534  # nobody/nogroup on every Linux distribution
    return entry.pw_uid, entry.pw_gid


def _unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _map_ids(uid: int, gid: int) -> None:
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    kind = fstype.encode() if fstype else None
    if _libc.mount(source.encode(), target.encode(), kind, flags, data.encode() if data else None):
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _hide(hidden: tuple[str, ...], keep: list[str]) -> None:
    """Cover each hidden directory with an empty tmpfs, then bind the kept paths back."""
    _mount("none", "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the host
    real = {Path(p).resolve() for p in hidden if os.path.isdir(p)}  # /var/run -> /run
    covers = sorted(p for p in real if not any(q in p.parents for q in real))
    kept = [Path(p).resolve() for p in keep]
    # Open the kept paths before they are covered; /proc/self/fd/N still reaches them after.
    fds = {k: os.open(k, os.O_PATH) for k in kept if any(c == k or c in k.parents for c in covers)}
    links = _links_under(keep, covers)
    for cover in covers:
        _mount("tmpfs", str(cover), "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
        # A kept path reached through a symlink inside a hidden folder (a checkout under /tmp
        # whose .venv links elsewhere): the link comes back too, pointing where it did.
        for link, target in links.items():
            if cover in link.parents:
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, link)
        for k, fd in fds.items():
            if cover == k or cover in k.parents:
                if k.is_dir() or os.path.isdir(f"/proc/self/fd/{fd}"):
                    k.mkdir(parents=True, exist_ok=True)
                else:
                    k.parent.mkdir(parents=True, exist_ok=True)
                    k.touch()
                _mount(f"/proc/self/fd/{fd}", str(k), None, MS_BIND | MS_REC)
        _mount("tmpfs", str(cover), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for fd in fds.values():
        os.close(fd)
    # A hidden folder inside a kept one (var/ inside a project under /home) came back with it.
    for inner in sorted(real - set(covers)):
        if any(k in inner.parents for k in kept) and os.path.isdir(inner):
            _mount("tmpfs", str(inner), "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=0755")


def _links_under(keep: list[str], covers: list[Path]) -> dict[Path, str]:
    """Symlinks on the way to a kept path that lie in a covered folder, with their targets."""
    links: dict[Path, str] = {}
    for path in keep:
        current = Path(os.path.abspath(path))
        for ancestor in [current, *current.parents]:
            if not any(c in ancestor.parents for c in covers):
                continue
            try:
                links[ancestor] = os.readlink(ancestor)
            except OSError:  # not a link, or not ours to read (a non-root child under /root)
                continue
    return links


def _drop_capabilities() -> None:
    number = _SYS_CAPSET.get(os.uname().machine)
    if number is None:
        return
    header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2: all zero
    if _libc.syscall(number, header, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def _install_filter(seccomp) -> None:
    """Deny the listed syscalls (EPERM); ``seccomp`` is the pyseccomp module."""
    deny = seccomp.ERRNO(errno.EPERM)
    f = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        with contextlib.suppress(ValueError, OSError):  # unknown on this architecture
            f.add_rule(deny, name)
    f.add_rule(deny, "socket", seccomp.Arg(0, seccomp.NE, socket.AF_UNIX))
    # clone3 passes its flags in memory a filter cannot read: make libc fall back to clone.
    with contextlib.suppress(ValueError, OSError):
        f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    namespaces = (CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWIPC, CLONE_NEWUTS)
    for flag in (*namespaces, CLONE_NEWCGROUP):
        f.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    f.load()  # sets no_new_privs too: no setuid binary can regain privileges


# -- the report at worker start ------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m workers.modelrun.isolation POLICY_JSON``: enter the sandbox, print the report."""
    args = sys.argv[1:] if argv is None else argv
    policy = Policy.from_json(args[0])
    try:
        report = enter(policy, os.getcwd())
    except IsolationError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps(asdict(report)))
    return 0


def _keep_paths(workdir: str) -> list[str]:
    """What the child needs to see: its scratch directory, the Python install and the code."""
    project = Path(__file__).resolve().parents[2]
    paths = {workdir, sys.prefix, sys.base_prefix, sys.exec_prefix, str(project / "workers")}
    paths |= {p for p in sys.path if p and "site-packages" in p and os.path.isdir(p)}
    return sorted(paths)


if __name__ == "__main__":
    sys.exit(main())
