"""Fixtures for the real services the tests use: a redis-server of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from api.app import create_app
from storage import database
from storage.embedded_redis import EmbeddedRedis
from storage.settings import Settings

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One real redis-server for the whole test session."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    """A client of the session's Redis, emptied before each test."""
    client = database.connect(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def settings(redis_server: EmbeddedRedis, tmp_path: Path) -> Settings:
    """Settings for an API on the session's Redis, with files on local disk."""
    return Settings(
        redis_url=redis_server.url,
        storage_url=str(tmp_path / "objects"),
        public_base_url="http://squeezer.test",
        max_file_size=10 << 20,
    )


@pytest.fixture
def app(settings: Settings, redis_client: redis.Redis):
    return create_app(settings, redis_client)


@pytest.fixture
def client(app):
    return app.test_client()
