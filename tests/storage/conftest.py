"""Fixtures for the object store tests: a moto S3 server over HTTP, a bucket each."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest

from tests.storage.moto_server import MotoServer


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
