"""`squeezer serve`: the API, a Celery worker and the beat scheduler on one machine.

It runs the same processes as production (gunicorn, `celery worker`, `celery beat`)
with a private Redis and local disk when REDIS_URL and STORAGE_URL are unset, and
stops everything it started on Ctrl-C or SIGTERM, Redis last.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from types import FrameType

from storage import database, keys
from storage.accounts import Accounts
from storage.embedded_redis import EmbeddedRedis
from storage.processes import stop_process, tie_to_parent
from storage.settings import Settings
from workers.app import create_celery

STATE_FILE = "serve.json"
_GRACE = {"api": 10.0, "beat": 10.0, "worker": 60.0}


class ServeError(Exception):
    """`serve` cannot start, or its state cannot be found."""


def run(
    settings: Settings,
    *,
    data_dir: Path,
    host: str,
    port: int,
    workers: int | None,
) -> int:
    """Start everything, print the demo account, and wait for a stop signal."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    redis_server = None
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        if not settings.redis_url:
            redis_server = EmbeddedRedis(data_dir / "redis")
            redis_server.start()
            settings = replace(settings, redis_url=redis_server.url)
        settings = _local_defaults(settings, data_dir, host, port)
        _write_state(data_dir, settings)
        _announce_demo_account(settings)
        environ = _child_environ(settings)
        for role, command in _commands(data_dir, host, port, workers).items():
            children[role] = _spawn(command, environ)
        _wait_until_up(host, port, children, stopping)
        _wait_for_worker(settings, children, stopping)
        print(f"Squeezer is running at http://{host}:{port}  (Ctrl-C stops it)")
        sys.stdout.flush()
        return _supervise(children, stopping)
    finally:
        for role in ("api", "beat", "worker"):
            if role in children:
                stop_process(children[role], grace=_GRACE[role])
        if redis_server is not None:
            redis_server.stop()
        (data_dir / STATE_FILE).unlink(missing_ok=True)


def _local_defaults(
    settings: Settings, data_dir: Path, host: str, port: int
) -> Settings:
    """Local disk for files and this address for links, unless configured."""
    if not settings.storage_url:
        settings = replace(settings, storage_url=str(data_dir / "objects"))
    if "PUBLIC_BASE_URL" not in os.environ:
        settings = replace(settings, public_base_url=f"http://{host}:{port}")
    return settings


def _supervise(
    children: dict[str, subprocess.Popen[bytes]], stopping: list[int]
) -> int:
    """Wait for a stop signal (0), or for a child to die (1)."""
    while not stopping:
        for role, child in children.items():
            if child.poll() is not None:
                print(f"squeezer: {role} stopped; stopping the rest", file=sys.stderr)
                return 1
        time.sleep(0.2)
    return 0


def running_redis_url(data_dir: Path) -> str:
    """The Redis URL of the `serve` running on `data_dir`."""
    state_file = data_dir.resolve() / STATE_FILE
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        raise ServeError(f"no `squeezer serve` is running on {data_dir}") from None
    if not _alive(state.get("pid", 0)):
        raise ServeError(f"the `squeezer serve` of {data_dir} is no longer running")
    return state["redis_url"]


def _commands(
    data_dir: Path, host: str, port: int, workers: int | None
) -> dict[str, list[str]]:
    python = sys.executable
    concurrency = workers or os.cpu_count() or 1
    return {
        "worker": [
            python, "-m", "celery", "-A", "workers.main", "worker",
            "--loglevel", "info", "--concurrency", str(concurrency),
            "--without-gossip", "--without-mingle", "--hostname", "serve@%h",
        ],
        "beat": [
            python, "-m", "celery", "-A", "workers.main", "beat", "--loglevel", "info",
            "--schedule", str(data_dir / "beat-schedule"),
        ],
        "api": [
            python, "-m", "gunicorn", "--bind", f"{host}:{port}",
            "--workers", "2", "--threads", "8", "--worker-class", "gthread",
            "api.wsgi:app",
        ],
    }  # fmt: skip


def _spawn(command: list[str], environ: dict[str, str]) -> subprocess.Popen[bytes]:
    # Each child gets a session of its own, so Ctrl-C reaches only this process,
    # which then stops the children in order; they die with it if it is killed.
    return subprocess.Popen(  # noqa: S603 - fixed argument list
        command,
        env=environ,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=tie_to_parent,
    )


def _child_environ(settings: Settings) -> dict[str, str]:
    environ = dict(os.environ)
    environ.update(
        REDIS_URL=settings.redis_url or "",
        STORAGE_URL=settings.storage_url or "",
        PUBLIC_BASE_URL=settings.public_base_url,
    )
    environ.setdefault("LOG_FORMAT", "text")
    return environ


def _announce_demo_account(settings: Settings) -> None:
    """Create the demo account on first start and print its key and secret."""
    client = database.connect(settings.redis_url or "")
    accounts = Accounts(client)
    known = client.get(keys.demo_account())
    if known and accounts.get(int(known)):
        account = accounts.get(int(known))
        print(f"Demo account {account.id}: key {account.api_key}")
        return
    account = accounts.create(
        title="Demo", monthly_quota=settings.default_monthly_quota
    )
    client.set(keys.demo_account(), account.id)
    print("Created a demo account (the secret is shown only this once):")
    print(f"  key    {account.api_key}\n  secret {account.api_secret}")


def _write_state(data_dir: Path, settings: Settings) -> None:
    path = data_dir / STATE_FILE
    path.touch(mode=0o600)
    path.write_text(json.dumps({"pid": os.getpid(), "redis_url": settings.redis_url}))


def _wait_until_up(
    host: str,
    port: int,
    children: dict[str, subprocess.Popen[bytes]],
    stopping: list[int],
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not stopping:
        for role, child in children.items():
            if child.poll() is not None:
                raise ServeError(f"the {role} process exited at start")
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    if not stopping:
        raise ServeError("the API did not start within 60 seconds")


def _wait_for_worker(
    settings: Settings,
    children: dict[str, subprocess.Popen[bytes]],
    stopping: list[int],
) -> None:
    """Wait until a Celery worker answers a ping through the broker."""
    control = create_celery(settings).control
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not stopping:
        if children["worker"].poll() is not None:
            raise ServeError("the worker process exited at start")
        if control.ping(timeout=0.5):
            return
    if not stopping:
        raise ServeError("the worker did not start within 60 seconds")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (OSError, TypeError):
        return False
    return pid > 0
