"""`manage.py serve` supervises its children: a crashed one is restarted and named in the log,
a crash loop stops everything with an error, and stopping ends every child."""

import logging
import sys
import time

import pytest

from competitions.management.commands.serve import MAX_RESTARTS, Child, CrashLoop, Supervisor

EXIT_3 = [sys.executable, "-c", "import sys; sys.exit(3)"]
SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wait_exited(child: Child) -> None:
    deadline = time.monotonic() + 30
    while child.process.poll() is None:
        assert time.monotonic() < deadline, f"{child.name} did not exit"
        time.sleep(0.05)


def test_a_child_that_exits_is_restarted_after_a_backoff_and_named_in_the_log(caplog):
    clock = Clock()
    flaky, steady = Child("scoring worker", EXIT_3), Child("web server", SLEEP)
    supervisor = Supervisor([flaky, steady], clock=clock)
    supervisor.start()
    try:
        first = flaky.process
        wait_exited(flaky)
        with caplog.at_level(logging.WARNING, logger="holdout.serve"):
            supervisor.check()
            assert flaky.process is first  # not yet: it waits out its backoff
            clock.now += 1
            supervisor.check()
        assert flaky.process is not first
        assert "scoring worker exited unexpectedly (status 3)" in caplog.text
        assert "restarting scoring worker" in caplog.text
        assert steady.process.poll() is None
    finally:
        supervisor.stop()
    assert steady.process.poll() is not None


def test_a_crash_loop_stops_with_an_error_naming_the_child():
    clock = Clock()
    flaky = Child("scoring worker", EXIT_3)
    supervisor = Supervisor([flaky], clock=clock)
    supervisor.start()
    with pytest.raises(CrashLoop, match="scoring worker exited 6 times within 60 s"):
        for _ in range(MAX_RESTARTS + 1):
            wait_exited(flaky)
            supervisor.check()  # counts the crash, schedules the restart
            clock.now += 11
            supervisor.check()  # restarts it
    supervisor.stop()


def test_crashes_spread_over_more_than_a_minute_are_not_a_loop():
    clock = Clock()
    flaky = Child("web server", EXIT_3)
    supervisor = Supervisor([flaky], clock=clock)
    supervisor.start()
    for _ in range(MAX_RESTARTS * 3):
        wait_exited(flaky)
        supervisor.check()
        clock.now += 30
        supervisor.check()
    supervisor.stop()


def test_stop_ends_every_child_and_the_broker_last():
    broker, worker = Child("redis", SLEEP, is_broker=True), Child("scoring worker", SLEEP)
    supervisor = Supervisor([broker, worker])
    supervisor.start()
    supervisor.stop()
    assert broker.process.poll() is not None and worker.process.poll() is not None


def test_the_embedded_redis_listens_on_a_unix_socket_under_var_only(tmp_path):
    from config import embedded_redis

    argv = embedded_redis.command(tmp_path)
    assert argv[argv.index("--port") + 1] == "0"  # no TCP listener
    assert argv[argv.index("--unixsocket") + 1] == str(tmp_path / "redis" / "redis.sock")
    with pytest.raises(embedded_redis.RedisServerMissing, match="too long"):
        embedded_redis.command(tmp_path / ("x" * 120))
