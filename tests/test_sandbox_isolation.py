"""The model child's kernel-level isolation (workers/modelrun/isolation.py), one layer at a time,
with real child processes: each probe enters the sandbox exactly as the model child does and
then tries what a hostile model would. Every test also runs the probe with the layer off, to
show that the probe itself can succeed (so the test can fail).

These need Linux namespaces and libseccomp, which the worker image and CI have; a host without
them skips with the reason the isolation itself reports.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from workers.modelrun import sandbox
from workers.modelrun.isolation import LAYERS, Policy

ROOT = os.geteuid() == 0


def probe(tmp_path: Path, probe: str, arg: str = "", *, layers, hidden=(), require=(), become=None) -> dict:
    workdir = tmp_path / "scratch"
    workdir.mkdir(exist_ok=True, mode=0o700)
    hidden = tuple(str(h) for h in hidden)
    policy = Policy(hidden=hidden, layers=frozenset(layers), require=frozenset(require))
    command = [sys.executable, "-s", "-m", "tests.sandbox_probe", policy.to_json(), probe, arg]
    env = {**sandbox.child_env(workdir), "PYTHONPATH": str(sandbox.PROJECT_ROOT)}
    if become is not None:
        env["PROBE_BECOME_UID"] = str(become)
        os.chown(workdir, become, become)
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir, env=env, timeout=60)
    assert result.stdout, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def available(layer: str, tmp_path: Path) -> None:
    report = probe(tmp_path, "none", layers={layer})
    if layer not in report.get("active", []):
        if os.environ.get("HOLDOUT_REQUIRE_SERVICES"):
            pytest.fail(f"sandbox layer {layer} unavailable: {report}")
        pytest.skip(f"sandbox layer {layer} unavailable on this host: {report}")


@pytest.fixture
def open_tmp():
    """A directory under /tmp that nobody can reach (pytest's own are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="holdout-probe-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 standing in for PostgreSQL or Redis."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_net_layer_cuts_the_child_off_from_local_services(tmp_path, listener):
    available("net", tmp_path)
    assert probe(tmp_path, "connect", str(listener), layers=set())["outcome"] == "ok"
    assert probe(tmp_path, "connect", str(listener), layers={"net"})["outcome"] == "ENETUNREACH"
    for port in (5432, 6379):  # the real database and broker, where this host runs them
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                assert probe(tmp_path, "connect", str(port), layers={"net"})["outcome"] == "ENETUNREACH"


def test_mount_layer_hides_private_files_but_keeps_the_scratch_directory(tmp_path):
    available("mount", tmp_path)
    private = tmp_path / "private"
    private.mkdir()
    solution = private / "solution.csv"
    solution.write_text("id,target\nrow00001,7\n")
    solution.chmod(0o644)  # as Django's storage leaves it: readable by everyone
    assert probe(tmp_path, "read", str(solution), layers=set(), hidden=[private])["outcome"] == "ok"
    assert probe(tmp_path, "read", str(solution), layers={"mount"}, hidden=[private])["outcome"] == "ENOENT"
    # /tmp hidden as a whole (the default) while the scratch directory inside it stays writable.
    assert str(tmp_path).startswith("/tmp/")
    report = probe(tmp_path, "read", str(solution), layers={"mount"}, hidden=["/tmp"])
    assert report["outcome"] == "ENOENT"
    assert probe(tmp_path, "write", "out.npy", layers={"mount"}, hidden=["/tmp"])["outcome"] == "ok"
    assert (tmp_path / "scratch" / "out.npy").read_text() == "predictions"
    assert solution.read_text().startswith("id,target")  # the host's view is untouched


def test_mount_layer_hides_a_hidden_folder_inside_a_kept_one(tmp_path):
    # Like var/ inside a checkout under /home: the kept folder comes back, its var/ must not.
    available("mount", tmp_path)
    inner = tmp_path / "scratch" / "var"
    inner.mkdir(parents=True)
    (inner / "holdout.sqlite3").write_text("database")
    target = str(inner / "holdout.sqlite3")
    hidden = [tmp_path, inner]
    assert probe(tmp_path, "read", target, layers=set(), hidden=hidden)["outcome"] == "ok"
    assert probe(tmp_path, "read", target, layers={"mount"}, hidden=hidden)["outcome"] == "ENOENT"
    assert probe(tmp_path, "write", "out.npy", layers={"mount"}, hidden=hidden)["outcome"] == "ok"


@pytest.mark.django_db
def test_the_workers_policy_hides_every_place_hidden_data_lives(tmp_path, settings):
    from competitions.services import sandbox_policy

    policy = sandbox_policy()
    for place in (
        settings.STORAGES["private"]["OPTIONS"]["location"],
        settings.STORAGES["default"]["OPTIONS"]["location"],
        settings.HOLDOUT_WORKER_CACHE,
        settings.VAR_DIR,
        "/tmp",
        "/run",
        "/root",
        "/home",
    ):
        assert str(place) in policy.hidden
    assert policy.layers == frozenset(LAYERS)


@pytest.mark.django_db
def test_the_workers_policy_makes_private_storage_and_the_database_unreadable(tmp_path, settings):
    from competitions.services import sandbox_policy

    available("mount", tmp_path)
    secrets = []
    for name in ("private", "default"):
        folder = Path(settings.STORAGES[name]["OPTIONS"]["location"])
        folder.mkdir(parents=True, exist_ok=True)
        secrets.append(folder / "solution.parquet")
    database = tmp_path / "var" / "holdout.sqlite3"
    database.parent.mkdir()
    settings.VAR_DIR = database.parent
    secrets.append(database)
    for secret in secrets:
        secret.write_bytes(b"hidden")
        secret.chmod(0o644)
    policy = sandbox_policy()
    for secret in secrets:
        kwargs = {"layers": {"mount"}, "hidden": policy.hidden}
        assert probe(tmp_path, "read", str(secret), **{**kwargs, "layers": set()})["outcome"] == "ok"
        assert probe(tmp_path, "read", str(secret), **kwargs)["outcome"] == "ENOENT"


@pytest.mark.skipif(not ROOT, reason="the worker is not root here, so there is no root to drop")
def test_user_layer_drops_a_root_worker_to_nobody(tmp_path):
    nobody = pwd.getpwnam("nobody").pw_uid
    assert probe(tmp_path, "none", layers=set())["uid"] == 0
    report = probe(tmp_path, "read", "/etc/shadow", layers={"user"})
    assert report["uid"] == nobody and "user" in report["active"]
    assert report["outcome"] == "EACCES"
    assert probe(tmp_path, "read", "/etc/shadow", layers=set())["outcome"] == "ok"


def test_seccomp_layer_denies_network_sockets_and_namespaces(tmp_path):
    available("seccomp", tmp_path)
    assert probe(tmp_path, "inet_socket", layers=set())["outcome"] == "ok"
    assert probe(tmp_path, "inet_socket", layers={"seccomp"})["outcome"] == "EPERM"
    assert probe(tmp_path, "unix_socket", layers={"seccomp"})["outcome"] == "ok"  # TensorFlow may use one
    if ROOT:
        assert probe(tmp_path, "unshare_net", layers=set())["outcome"] == "ok"
        assert probe(tmp_path, "unshare_net", layers={"seccomp"})["outcome"] == "EPERM"


def test_a_required_layer_that_is_switched_off_refuses_to_run(tmp_path):
    report = probe(tmp_path, "none", layers={"user", "seccomp"}, require={"net"})
    assert "required sandbox layers unavailable: net (switched off)" in report["error"]


@pytest.mark.skipif(not ROOT, reason="needs root to stand in for a non-root worker")
def test_the_non_root_path_uses_a_user_namespace(open_tmp, listener):
    """A worker that is not root: net and mount come from an unprivileged user namespace."""
    nobody = pwd.getpwnam("nobody").pw_uid
    tmp_path = open_tmp
    private = tmp_path / "private"
    private.mkdir(mode=0o755)
    (private / "solution.csv").write_text("hidden")
    (private / "solution.csv").chmod(0o644)
    kwargs = {"layers": set(LAYERS), "hidden": ["/tmp"], "become": nobody}
    report = probe(tmp_path, "inet_socket", **kwargs)
    assert report["uid"] == nobody and set(report["active"]) == set(LAYERS), report
    assert report["outcome"] == "EPERM"
    # Without the filter, socket() works and the connection fails in the empty namespace.
    no_filter = {**kwargs, "layers": set(LAYERS) - {"seccomp"}}
    assert probe(tmp_path, "connect", str(listener), **no_filter)["outcome"] == "ENETUNREACH"
    assert probe(tmp_path, "read", str(private / "solution.csv"), **kwargs)["outcome"] == "ENOENT"
    assert probe(tmp_path, "write", "out.npy", **kwargs)["outcome"] == "ok"
    control = probe(tmp_path, "read", str(private / "solution.csv"), layers=set(), become=nobody)
    assert control["uid"] == nobody and control["outcome"] == "ok"


def test_model_children_run_inside_every_layer(tmp_path):
    """The production launcher: a real model child reports all layers, as nobody when root."""
    child = sandbox._Child.spawn(sandbox.SandboxLimits().memory_bytes)
    try:
        status = Path(f"/proc/{child.proc.pid}/status")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "sandbox:" not in child.stderr_tail():
            time.sleep(0.05)
        assert "sandbox: active" in child.stderr_tail(), child.stderr_tail()
        assert "missing {}" in child.stderr_tail()
        uid_line = next(line for line in status.read_text().splitlines() if line.startswith("Uid:"))
        assert int(uid_line.split()[1]) == (pwd.getpwnam("nobody").pw_uid if ROOT else os.getuid())
        assert os.readlink(f"/proc/{child.proc.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        assert os.readlink(f"/proc/{child.proc.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    finally:
        child.discard()


@pytest.mark.django_db
def test_the_model_worker_logs_its_layers_and_stops_when_a_required_one_is_missing(
    monkeypatch, caplog, settings
):
    from config.celery_app import _warm_model_runner
    from workers.modelrun import sandbox as sandbox_module

    monkeypatch.setenv("HOLDOUT_MODEL_WORKER", "1")
    monkeypatch.setattr(sandbox_module, "warm_pool", lambda: None)
    monkeypatch.setattr(sandbox_module, "configure_isolation", lambda policy: None)
    monkeypatch.setattr(
        sandbox_module,
        "isolation_report",
        lambda policy: {"active": ["user", "seccomp"], "missing": {"net": "unshare: EPERM"}},
    )
    with caplog.at_level("INFO"):
        _warm_model_runner()
    assert "model sandbox layers active: user, seccomp" in caplog.text
    assert "model sandbox layer net is NOT active: unshare: EPERM" in caplog.text

    settings.HOLDOUT_SANDBOX_REQUIRE = ["net"]
    error = "required sandbox layers unavailable: net (unshare: EPERM)"
    monkeypatch.setattr(sandbox_module, "isolation_report", lambda policy: {"error": error})
    with pytest.raises(SystemExit, match="net"):
        _warm_model_runner()
    assert error in caplog.text


def test_the_isolation_report_runs_the_real_isolation(tmp_path):
    report = sandbox.isolation_report(Policy(layers=frozenset({"user"}), require=frozenset({"net"})))
    assert "required sandbox layers unavailable: net (switched off)" in report["error"]
    nothing = sandbox.isolation_report(Policy(layers=frozenset()))
    assert nothing == {"active": [], "missing": dict.fromkeys(LAYERS, "switched off")}
