"""A streaming reader for multipart uploads that keeps the file out of memory.

Werkzeug's own form parsing would do, but it decodes the file part's name with
backslash escapes, and clients on Windows send `C:\\Users\\me\\photo.jpg` unescaped:
the name must come from the raw header. The file part streams into a spooled
temporary file (on disk past a megabyte) while its digest and size are taken, and
the read stops as soon as it passes the size cap.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import unquote

from werkzeug.datastructures import MultiDict
from werkzeug.sansio.multipart import (
    NEED_DATA,
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
)

from storage.errors import BadRequest, FileTooLarge

CHUNK = 64 * 1024
HEAD_BYTES = 1024
IN_MEMORY = 1 << 20
MAX_FIELD_BYTES = 1 << 20
MAX_PARTS = 64

_FILENAME_EXT = re.compile(r"filename\*\s*=\s*([^']*)'[^']*'([^;\s]+)", re.IGNORECASE)
_FILENAME_QUOTED = re.compile(r'filename\s*=\s*"(.*?)"\s*(?:;|$)', re.IGNORECASE)
_FILENAME_BARE = re.compile(r"filename\s*=\s*([^\";\s][^;]*)", re.IGNORECASE)


@dataclass
class Spooled:
    """A file received in full: its bytes on a temporary file, with their facts."""

    file: BinaryIO
    filename: str
    size: int
    sha256: str
    head: bytes

    def close(self) -> None:
        self.file.close()


def spool(source: BinaryIO, filename: str, max_size: int) -> Spooled:
    """Copy a stream into a spooled temporary file, taking its digest and size."""
    sink = _Sink(max_size)
    while chunk := source.read(CHUNK):
        sink.write(chunk)
    return sink.finish(filename)


def read_form(
    stream: BinaryIO, boundary: bytes, max_size: int
) -> tuple[MultiDict[str, str], Spooled | None]:
    """The text fields of a multipart body, and its `file` part spooled.

    Raises FileTooLarge as soon as the file passes `max_size`, and BadRequest for
    a body that is not well-formed multipart or ends early.
    """
    decoder = MultipartDecoder(boundary, MAX_FIELD_BYTES, max_parts=MAX_PARTS)
    reader = _FormReader(max_size)
    try:
        while True:
            chunk = stream.read(CHUNK)
            decoder.receive_data(chunk or None)
            if reader.drain(decoder):
                return reader.fields, reader.upload
            if not chunk:
                raise ValueError("the body ended before its closing boundary")
    except ValueError as error:
        reader.discard()
        raise BadRequest(
            "The multipart body is malformed.", detail=str(error)
        ) from None
    except BaseException:
        reader.discard()
        raise


class _FormReader:
    """Turns decoder events into text fields and one spooled file."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.fields: MultiDict[str, str] = MultiDict()
        self.upload: Spooled | None = None
        self._part: Field | File | None = None
        self._value = bytearray()
        self._sink: _Sink | None = None

    def drain(self, decoder: MultipartDecoder) -> bool:
        """Handle every event the decoder has; True once the body is complete."""
        while (event := decoder.next_event()) is not NEED_DATA:
            if isinstance(event, Epilogue):
                return True
            if isinstance(event, Field | File):
                self._start(event)
            elif isinstance(event, Data) and self._part is not None:
                self._receive(event)
        return False

    def discard(self) -> None:
        for spooled in (self.upload, self._sink):
            if spooled is not None:
                spooled.close()

    def _start(self, part: Field | File) -> None:
        self._part, self._value = part, bytearray()
        wanted = isinstance(part, File) and part.name == "file" and not self.upload
        self._sink = _Sink(self.max_size) if wanted else None

    def _receive(self, event: Data) -> None:
        if self._sink is not None:
            self._sink.write(event.data)
        elif isinstance(self._part, Field):
            self._value += event.data
        if event.more_data:
            return
        if self._sink is not None:
            self.upload = self._sink.finish(_filename(self._part))
        elif isinstance(self._part, Field):
            self.fields.add(self._part.name, self._value.decode("utf-8", "replace"))
        self._part, self._sink = None, None


def base_name(raw: str) -> str:
    """The last component of a client's path, `/` or `\\` separated."""
    name = re.split(r"[\\/]", raw.strip())[-1].strip()
    return name or "file"


def _filename(part: Field | File) -> str:
    header = part.headers.get("Content-Disposition", "")
    extended = _FILENAME_EXT.search(header)
    if extended:
        encoding = extended.group(1) or "utf-8"
        try:
            return base_name(unquote(extended.group(2), encoding=encoding))
        except LookupError:
            pass
    quoted = _FILENAME_QUOTED.search(header) or _FILENAME_BARE.search(header)
    return base_name(quoted.group(1) if quoted else getattr(part, "filename", ""))


class _Sink:
    """Where a file's bytes go while they arrive: counted, hashed, capped."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.file = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)  # noqa: SIM115 - handed on open
        self.digest = hashlib.sha256()
        self.size = 0
        self.head = b""

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_size:
            self.close()
            raise FileTooLarge()
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        self.digest.update(data)
        self.file.write(data)

    def finish(self, filename: str) -> Spooled:
        self.file.seek(0)
        return Spooled(
            self.file, filename, self.size, self.digest.hexdigest(), self.head
        )

    def close(self) -> None:
        self.file.close()
