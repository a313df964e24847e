"""Object storage in a directory on local disk, for one machine or a shared volume.

Each key is a relative path under the root. A write goes to a temporary file beside
its target, is flushed to disk and then renamed over it, so a reader sees either the
old object or the whole new one, never a part.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from storage.objects.base import (
    DEFAULT_CONTENT_TYPE,
    ObjectNotFound,
    ObjectStore,
    SizedReader,
    StorageUnavailable,
    check_key,
)

CHUNK_SIZE = 1 << 20
TEMP_PREFIX = ".tmp-"

# Errors meaning "no object here": the path, a parent, or a directory in its place.
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


class LocalStore(ObjectStore):
    """Objects as files under `root`, which is created on the first write."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def put(
        self,
        key: str,
        stream: BinaryIO,
        size: int | None = None,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> int:
        """Stream `stream` into a temporary file, fsync it, then rename it into
        place. The content type is not kept: a directory has nowhere to put it."""
        path = self._path(key)
        reader = SizedReader(stream, size)
        with _disk_errors("write", path):
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
        try:
            _fill(handle, temp, reader)
            with _disk_errors("rename", temp):
                os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        _sync_directory(path.parent)
        return reader.count

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        with _disk_errors("read", path):
            try:
                return path.open("rb")
            except _MISSING as error:
                raise self._missing(key) from error

    def size(self, key: str) -> int:
        path = self._path(key)
        with _disk_errors("stat", path):
            try:
                facts = path.stat()
            except _MISSING as error:
                raise self._missing(key) from error
        if not stat.S_ISREG(facts.st_mode):
            raise ObjectNotFound(detail=key)
        return facts.st_size

    def delete(self, key: str) -> None:
        path = self._path(key)
        with _disk_errors("delete", path):
            try:
                path.unlink()
            except _MISSING as error:
                if not self.root.is_dir():
                    raise self._missing(key) from error

    def delete_many(self, keys: Iterable[str]) -> None:
        for key in [check_key(key) for key in keys]:
            self.delete(key)

    def check(self) -> None:
        """Write and remove a probe file in the root, creating the root if needed."""
        with _disk_errors("write in", self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            handle, probe = tempfile.mkstemp(dir=self.root, prefix=TEMP_PREFIX)
            os.close(handle)
            os.unlink(probe)

    def _missing(self, key: str) -> ObjectNotFound | StorageUnavailable:
        """The error for a missing path: a missing root means an absent volume, not
        an absent object."""
        if self.root.is_dir():
            return ObjectNotFound(detail=key)
        return StorageUnavailable(detail=f"{self.root} is not a directory")

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))


@contextlib.contextmanager
def _disk_errors(action: str, path: str | Path) -> Iterator[None]:
    """Turn a failing disk (full, read-only, denied) into StorageUnavailable."""
    try:
        yield
    except OSError as error:
        raise StorageUnavailable(detail=f"cannot {action} {path}: {error}") from error


def _fill(handle: int, temp: str, reader: SizedReader) -> None:
    """Copy the stream into the open temporary file, flush it to disk, close it."""
    try:
        while chunk := reader.read(CHUNK_SIZE):
            view = memoryview(chunk)
            while view:
                with _disk_errors("write", temp):
                    view = view[os.write(handle, view) :]
        with _disk_errors("flush", temp):
            os.fsync(handle)
    finally:
        os.close(handle)


def _sync_directory(directory: Path) -> None:
    # The rename is only durable once the directory entry itself is on disk.
    with _disk_errors("flush", directory):
        handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
