"""The one interface every object store offers, and the rules its keys follow.

An object store keeps the originals and optimized copies as opaque bytes under keys
that Squeezer builds itself. Implementations stream uploads and downloads, turn a
missing object into `ObjectNotFound` and an unreachable store into
`StorageUnavailable`, so callers never see a backend's own exceptions.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import BinaryIO

from storage.errors import BadRequest, ObjectNotFound, ServiceUnavailable

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "ObjectNotFound",
    "ObjectStore",
    "SizeMismatch",
    "SizedReader",
    "StorageUnavailable",
    "check_key",
]

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_KEY_BYTES = 1024


class StorageUnavailable(ServiceUnavailable):
    """The object store cannot be reached or refuses to serve (answered as 503)."""


class SizeMismatch(BadRequest):
    """An upload ended before, or ran past, the size it was declared with."""

    message = "The upload's length does not match its declared size."


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative name of `/`-separated segments, so
    that it maps to the same object on every store and never escapes a directory.

    Raises ValueError for an empty or absolute key, an empty, `.` or `..` segment,
    a backslash, a control character, or more than 1024 bytes of UTF-8.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"object key must be a non-empty string, not {key!r}")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValueError(f"object key is longer than {MAX_KEY_BYTES} bytes")
    if "\\" in key or any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        raise ValueError(f"object key has a backslash or control character: {key!r}")
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        raise ValueError(f"object key must be relative with no ., .. or //: {key!r}")
    return key


class SizedReader:
    """A read-only view of a stream that counts its bytes and, when the size is
    declared, fails as soon as the stream runs past it or ends short of it.

    Like a buffered file, `read(n)` returns fewer than n bytes only at the end of
    the stream, so a reader that stops at a short read still sees a short stream.
    """

    def __init__(self, stream: BinaryIO, size: int | None) -> None:
        if size is not None and size < 0:
            raise ValueError(f"declared size must not be negative, not {size}")
        self._stream = stream
        self.size = size
        self.count = 0

    def read(self, amount: int | None = -1) -> bytes:
        if amount is None or amount < 0:
            if self.size is None:
                return self._counted(self._stream.read())
            # One byte past what is due is enough to tell an overlong stream.
            amount = self.size - self.count + 1
        chunks = []
        wanted = amount
        while wanted > 0 and (chunk := self._stream.read(wanted)):
            chunks.append(self._counted(chunk))
            wanted -= len(chunk)
        if wanted > 0 and self.size is not None and self.count < self.size:
            raise SizeMismatch(detail=f"{self.count} of {self.size} bytes")
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _counted(self, data: bytes) -> bytes:
        self.count += len(data)
        if self.size is not None and self.count > self.size:
            raise SizeMismatch(detail=f"more than the declared {self.size} bytes")
        return data


class ObjectStore(ABC):
    """Bytes kept under keys: streamed in by `put`, streamed out by `open`."""

    @abstractmethod
    def put(
        self,
        key: str,
        stream: BinaryIO,
        size: int | None = None,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> int:
        """Store what `stream` yields under `key`, replacing any object there, and
        return its length; nothing is stored unless the whole stream was read.

        With `size`, a stream of another length raises SizeMismatch.
        """

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the object; close it when done."""

    @abstractmethod
    def size(self, key: str) -> int:
        """The object's length in bytes."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""

    @abstractmethod
    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove every object named, ignoring those already missing."""

    @abstractmethod
    def check(self) -> None:
        """Raise StorageUnavailable unless the store can be read and written now,
        for readiness probes."""

    def write(
        self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> int:
        """Store bytes already in memory, such as an optimized copy."""
        return self.put(key, io.BytesIO(data), len(data), content_type)

    def read(self, key: str) -> bytes:
        """The whole object in memory, for a worker that must decode it anyway."""
        with self.open(key) as stream:
            return stream.read()

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True
