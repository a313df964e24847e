"""A zip archive of image files, produced as a stream while it is written."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator

from storage.images import DONE, OPTIMIZED, ImageRecord
from storage.objects import ObjectNotFound, ObjectStore
from workers.wire import download_name

CHUNK = 256 * 1024


class _Pipe:
    """A write-only file whose bytes are taken out as they come; zipfile writes
    to it without seeking, using data descriptors."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def zip_records(
    objects: ObjectStore, records: list[ImageRecord], which: str
) -> Iterator[bytes]:
    """Yield a zip of the `which` file of every record, one chunk at a time.

    Images are compressed already, so entries are stored, not deflated. Names that
    repeat get a numbered suffix; a file gone meanwhile is left out.
    """
    pipe = _Pipe()
    names: set[str] = set()
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for record in records:
            key = record.original_key
            if which == OPTIMIZED and record.status == DONE:
                key = record.optimized_key
            try:
                stream = objects.open(key)
            except ObjectNotFound:
                continue
            name = _unique(download_name(record, which), names)
            with stream, archive.open(name, mode="w", force_zip64=True) as entry:
                while chunk := stream.read(CHUNK):
                    entry.write(chunk)
                    yield pipe.take()
            yield pipe.take()
    yield pipe.take()


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    while candidate in taken:
        stem, dot, extension = name.rpartition(".")
        number += 1
        candidate = f"{stem}-{number}.{extension}" if dot else f"{name}-{number}"
    taken.add(candidate)
    return candidate
