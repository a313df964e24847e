"""The Redis configuration we deploy keeps every acknowledged write across a crash."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from storage.accounts import Accounts
from storage.embedded_redis import EmbeddedRedis, free_port, redis_server_binary

DEPLOY_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "redis" / "redis.conf"


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            redis_server_binary(),
            str(DEPLOY_CONFIG),
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, decode_responses=True)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return process
        except (redis.ConnectionError, redis.BusyLoadingError):
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                process.wait()
                raise AssertionError("redis-server did not start") from None
            time.sleep(0.05)


def test_deployed_config_keeps_writes_across_a_kill(tmp_path: Path):
    port = free_port()
    process = _start(tmp_path, port)
    try:
        client = redis.Redis(port=port, decode_responses=True)
        account = Accounts(client).create(title="Durable")
        process.kill()  # SIGKILL: no chance to save on the way out
        process.wait()
        process = _start(tmp_path, port)
        restored = Accounts(redis.Redis(port=port, decode_responses=True))
        assert restored.get(account.id) == account
        assert restored.authenticate(account.api_key, account.api_secret) == account
    finally:
        process.kill()
        process.wait()


def test_embedded_redis_keeps_writes_across_a_kill(tmp_path: Path):
    server = EmbeddedRedis(tmp_path)
    server.start()
    try:
        account = Accounts(redis.Redis.from_url(server.url)).create(title="Demo")
        server.kill()
        server.start()
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert Accounts(client).get(account.id) == account
    finally:
        server.stop()
