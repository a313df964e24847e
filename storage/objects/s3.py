"""Object storage in an S3 bucket: AWS itself or any S3-compatible store (MinIO,
Ceph, R2) reached through an endpoint URL.

Uploads go through boto3's managed transfer, so a large file is sent as a multipart
upload of fixed-size parts and at most a few parts are in memory at once. Timeouts
and retries are bounded, so an unreachable store fails a request in seconds.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from storage.objects.base import (
    DEFAULT_CONTENT_TYPE,
    ObjectNotFound,
    ObjectStore,
    SizedReader,
    StorageUnavailable,
    check_key,
)

MiB = 1 << 20
DELETE_BATCH = 1000  # the most keys one DeleteObjects request may name
READ_BUFFER = 256 << 10

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
# Answers that mean the store cannot serve us now or is misconfigured, rather than
# a fault in the request itself.
_UNAVAILABLE = frozenset(
    {
        "AccessDenied",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidToken",
        "NoSuchBucket",
        "RequestTimeTooSkewed",
        "RequestTimeout",
        "SignatureDoesNotMatch",
        "SlowDown",
        "Throttling",
    }
)


class S3Store(ObjectStore):
    """Objects in `bucket`, each key under `prefix` if one is given.

    Credentials come from boto3's usual chain (environment, shared files, instance
    roles). An `endpoint_url` selects an S3-compatible store and path-style
    addressing. Uploads of `multipart_threshold` bytes or more go up in parts of
    `part_size` bytes, `max_concurrency` at a time; S3 rejects parts under 5 MiB.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        part_size: int = 8 * MiB,
        multipart_threshold: int | None = None,
        max_concurrency: int = 4,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        attempts: int = 3,
        session: boto3.session.Session | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 store needs a bucket name")
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = check_key(prefix) if prefix else ""
        self.endpoint_url = endpoint_url
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": attempts, "mode": "standard"},
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        self.client = (session or boto3.session.Session()).client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold or part_size,
            multipart_chunksize=part_size,
            max_concurrency=max_concurrency,
            use_threads=max_concurrency > 1,
            preferred_transfer_client="classic",
        )
        # Bounds the parts held in memory: by default ten, whatever the concurrency.
        self.transfer.max_in_memory_upload_chunks = max_concurrency

    def __repr__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"S3Store('s3://{self.bucket}/{self.prefix}'{where})"

    def put(
        self,
        key: str,
        stream: BinaryIO,
        size: int | None = None,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> int:
        name = self._name(key)
        reader = SizedReader(stream, size)
        with _s3_errors("upload", key):
            self.client.upload_fileobj(
                reader,
                self.bucket,
                name,
                ExtraArgs={"ContentType": content_type},
                Config=self.transfer,
            )
        return reader.count

    def write(
        self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> int:
        """Send small bytes in one request, without copying them into parts."""
        if len(data) >= self.transfer.multipart_threshold:
            return super().write(key, data, content_type)
        name = self._name(key)
        with _s3_errors("upload", key):
            self.client.put_object(
                Bucket=self.bucket, Key=name, Body=data, ContentType=content_type
            )
        return len(data)

    def open(self, key: str) -> BinaryIO:
        name = self._name(key)
        with _s3_errors("download", key):
            body = self.client.get_object(Bucket=self.bucket, Key=name)["Body"]
        return io.BufferedReader(_ObjectReader(body, key), READ_BUFFER)

    def read(self, key: str) -> bytes:
        name = self._name(key)
        with _s3_errors("download", key):
            body = self.client.get_object(Bucket=self.bucket, Key=name)["Body"]
            with contextlib.closing(body):
                return body.read()

    def size(self, key: str) -> int:
        name = self._name(key)
        with _s3_errors("head", key):
            facts = self.client.head_object(Bucket=self.bucket, Key=name)
        return facts["ContentLength"]

    def delete(self, key: str) -> None:
        name = self._name(key)
        with _s3_errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=name)

    def delete_many(self, keys: Iterable[str]) -> None:
        names = [self._name(key) for key in keys]
        for start in range(0, len(names), DELETE_BATCH):
            batch = [{"Key": name} for name in names[start : start + DELETE_BATCH]]
            with _s3_errors("delete"):
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise StorageUnavailable(
                    detail=f"s3 delete of {len(answer['Errors'])} objects failed, "
                    f"first {first.get('Key')}: {first.get('Code')}"
                )

    def check(self) -> None:
        """Ask for the bucket: it must exist and these credentials must reach it."""
        with _s3_errors("check"):
            self.client.head_bucket(Bucket=self.bucket)

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key


class _ObjectReader(io.RawIOBase):
    """A downloading object's body, failing with StorageUnavailable mid-stream."""

    def __init__(self, body: Any, key: str) -> None:
        self._body = body
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with _s3_errors("download", self._key):
            data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        with _s3_errors("download", self._key):
            return self._body.read()

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


@contextlib.contextmanager
def _s3_errors(action: str, key: str | None = None) -> Iterator[None]:
    """Turn botocore's exceptions into ours: a missing `key` into ObjectNotFound,
    an unreachable, refusing or overloaded store into StorageUnavailable."""
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if key is not None and code in _NOT_FOUND:
            raise ObjectNotFound(detail=key) from error
        if status >= 500 or status in (403, 404, 429) or code in _UNAVAILABLE:
            raise StorageUnavailable(detail=f"s3 {action}: {error}") from error
        raise
    except ParamValidationError:
        raise
    except BotoCoreError as error:
        raise StorageUnavailable(detail=f"s3 {action}: {error}") from error
