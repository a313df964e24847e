"""Reading and rewriting the marker segments of a JPEG without touching its scans.

Metadata is kept or stripped by editing segments, so that a lossless copy keeps
every DCT coefficient of the entropy-coded data as it was.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from workers.optimizers.errors import CorruptFile

SOI = b"\xff\xd8"
_ICC_SIGNATURE = b"ICC_PROFILE\x00"
_ICC_CHUNK = 65519  # the segment limit less its length field, signature and numbering
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn carry no length
_SOS = 0xDA
_EOI = 0xD9
APP0, APP1, APP2, APP14, COM = 0xE0, 0xE1, 0xE2, 0xEE, 0xFE


@dataclass(frozen=True)
class Segment:
    """One marker segment of the header: its marker byte and its payload."""

    marker: int
    payload: bytes

    def to_bytes(self) -> bytes:
        return (
            struct.pack(">BBH", 0xFF, self.marker, len(self.payload) + 2) + self.payload
        )


def split(data: bytes) -> tuple[list[Segment], bytes]:
    """The header segments of a JPEG (after SOI, before the first SOS) and the rest.

    The rest starts at the first SOS marker; bytes before SOI or a malformed
    header raise CorruptFile.
    """
    if not data.startswith(SOI):
        raise CorruptFile("The file is not a JPEG.")
    segments: list[Segment] = []
    position = 2
    while True:
        while position < len(data) and data[position] == 0xFF:
            position += 1
        if position >= len(data):
            raise CorruptFile("The JPEG ends before its image data.")
        marker = data[position]
        start = position - 1
        position += 1
        if marker in _STANDALONE:
            continue
        if marker == _SOS:
            return segments, data[start:]
        if marker == _EOI or position + 2 > len(data):
            raise CorruptFile("The JPEG ends before its image data.")
        (length,) = struct.unpack(">H", data[position : position + 2])
        if length < 2 or position + length > len(data):
            raise CorruptFile("A JPEG marker segment runs past the end of the file.")
        segments.append(Segment(marker, data[position + 2 : position + length]))
        position += length


def is_metadata(segment: Segment) -> bool:
    """Whether a segment only describes the image (APPn but JFIF and Adobe, COM).

    JFIF and Adobe (APP14) stay: the latter says how CMYK/YCCK is to be read.
    """
    if segment.marker == APP0 and segment.payload.startswith(b"JFIF\x00"):
        return False
    if segment.marker == APP14 and segment.payload.startswith(b"Adobe"):
        return False
    return 0xE0 <= segment.marker <= 0xEF or segment.marker == COM


def metadata_segments(exif: bytes | None, icc: bytes | None) -> list[Segment]:
    """The APP1 EXIF and APP2 ICC segments that carry `exif` and `icc`.

    `exif` is as Pillow writes it, starting with its "Exif" header.
    """
    segments = []
    if exif:
        segments.append(Segment(APP1, exif))
    if icc:
        chunks = [icc[i : i + _ICC_CHUNK] for i in range(0, len(icc), _ICC_CHUNK)]
        for number, chunk in enumerate(chunks, start=1):
            numbering = bytes([number, len(chunks)])
            segments.append(Segment(APP2, _ICC_SIGNATURE + numbering + chunk))
    return segments


def with_metadata(data: bytes, exif: bytes | None, icc: bytes | None) -> bytes:
    """`data` with every metadata segment replaced by the given EXIF and ICC.

    The new segments go after JFIF, where readers look for them; the image data
    and the tables are copied byte for byte.
    """
    segments, rest = split(data)
    kept = [segment for segment in segments if not is_metadata(segment)]
    at = 1 if kept and kept[0].marker == APP0 else 0
    kept[at:at] = metadata_segments(exif, icc)
    return SOI + b"".join(segment.to_bytes() for segment in kept) + rest
