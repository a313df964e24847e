"""Fixtures for the real services the tests use: a redis-server and a moto S3
server of their own, each started once per session and only when a test needs it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import redis

from api.app import create_app
from storage import database
from storage.embedded_redis import EmbeddedRedis
from storage.settings import Settings
from tests.moto_server import MotoServer

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


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto S3 server for the session, started only if a test asks for it."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def boto_session() -> boto3.session.Session:
    """A boto3 session with moto's dummy credentials, shared so that each store
    does not load the S3 service model again."""
    return boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


@pytest.fixture
def s3_client(moto_server: MotoServer, boto_session: boto3.session.Session):
    """A plain boto3 client of the moto server, to look behind a store's back."""
    return boto_session.client("s3", endpoint_url=moto_server.url)


@pytest.fixture
def s3_bucket(s3_client) -> Iterator[str]:
    """A fresh, empty bucket, emptied and removed after the test."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            s3_client.delete_object(Bucket=name, Key=item["Key"])
    s3_client.delete_bucket(Bucket=name)
