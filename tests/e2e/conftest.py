"""The whole service for end-to-end tests: its own redis-server, moto S3 over HTTP,
gunicorn serving the API and a real Celery worker process, as in production."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.accounts import Account, Accounts
from storage.embedded_redis import EmbeddedRedis, free_port
from storage.processes import stop_process, tie_to_parent
from storage.settings import Settings
from storage.stores import Stores
from tests.e2e.client import Client
from tests.moto_server import MotoServer
from workers.app import create_celery

BUCKET = "squeezer-e2e"


class Process:
    """A child process of the test session whose output goes to a log file."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.command, self.env, self.log = command, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=tie_to_parent,
            )

    def stop(self, grace: float = 30.0) -> None:
        if self.process is not None:
            stop_process(self.process, grace)
            self.process = None

    def kill(self) -> None:
        """SIGKILL the whole process group, as the kernel's OOM killer would."""
        if self.process is not None:
            os.killpg(self.process.pid, 9)
            self.process.wait()
            self.process = None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


class Worker(Process):
    """A Celery worker process; `start` waits until it answers a ping."""

    def __init__(self, env: dict[str, str], log: Path, name: str) -> None:
        command = [
            sys.executable, "-m", "celery", "-A", "workers.main", "worker",
            "--loglevel", "info", "--concurrency", "1", "--without-gossip",
            "--without-mingle", "--hostname", f"{name}@%h",
        ]  # fmt: skip
        super().__init__(command, env, log)
        self.control = create_celery(Settings.from_env(env)).control
        self.name = name

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + 60
        while not self._answers():
            assert self.process.poll() is None, self.tail()
            assert time.monotonic() < deadline, "the worker did not start"

    def _answers(self) -> bool:
        return _pinged(self.control.ping(timeout=0.5), self.name)


def _pinged(replies: list[dict], name: str) -> bool:
    return any(host.startswith(f"{name}@") for reply in replies for host in reply)


@pytest.fixture(scope="session")
def e2e_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A Redis of the end-to-end tests alone: the other tests empty theirs."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("e2e-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def e2e_env(
    e2e_redis: EmbeddedRedis, moto_server: MotoServer, boto_session
) -> Iterator[dict[str, str]]:
    """The environment every process of the service runs with."""
    boto_session.client("s3", endpoint_url=moto_server.url).create_bucket(Bucket=BUCKET)
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": e2e_redis.url,
        "STORAGE_URL": f"s3://{BUCKET}",
        "STORAGE_ENDPOINT_URL": moto_server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "FETCH_ALLOW_HOSTS": "127.0.0.1,localhost",
        "TASK_VISIBILITY_TIMEOUT": "6",
        "SYNC_WAIT_TIMEOUT": "90",
        "LOG_FORMAT": "text",
        "SQUEEZER_TEST_PORT": str(port),
    }
    # This process reaches S3 too, to look behind the API's back.
    with pytest.MonkeyPatch.context() as patch:
        for name in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
        ):
            patch.setenv(name, env[name])
        yield env


@pytest.fixture(scope="session")
def worker(e2e_env, tmp_path_factory) -> Iterator[Worker]:
    process = Worker(e2e_env, tmp_path_factory.mktemp("logs") / "worker.log", "main")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def live_api(e2e_env, worker, tmp_path_factory) -> Iterator[str]:
    """gunicorn serving the API over HTTP on 127.0.0.1; yields its base URL."""
    port = e2e_env["SQUEEZER_TEST_PORT"]
    server = Process(
        [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--threads", "8", "--worker-class", "gthread",
            "api.wsgi:app",
        ],
        e2e_env,
        tmp_path_factory.mktemp("logs") / "api.log",
    )  # fmt: skip
    server.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                break
        except OSError:
            assert server.process.poll() is None, server.tail()
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
    yield base
    server.stop()


@pytest.fixture(scope="session")
def e2e_stores(e2e_env) -> Stores:
    """The service's Redis and S3, to look behind the API's back."""
    return Stores.build(Settings.from_env(e2e_env))


@pytest.fixture
def account(e2e_stores) -> Account:
    return Accounts(e2e_stores.redis).create(title="e2e")


@pytest.fixture
def api(live_api, account) -> Client:
    return Client(live_api, account.api_key, account.api_secret)
