"""The RIFF container of WebP: its chunks, and a repack with other metadata.

A repack keeps every image chunk (VP8, VP8L, ALPH, ANIM, ANMF) byte for byte and
replaces only the metadata chunks, so the pixels cannot change: it is the one
lossless operation a lossy WebP allows.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from workers.optimizers.errors import CorruptFile

_METADATA = (b"ICCP", b"EXIF", b"XMP ")
_FLAG_ICC = 0x20
_FLAG_ALPHA = 0x10
_FLAG_EXIF = 0x08
_FLAG_XMP = 0x04
_FLAG_ANIMATION = 0x02
_ANMF_HEADER = 16


@dataclass(frozen=True)
class Chunk:
    """One RIFF chunk: its four-character tag and its payload."""

    tag: bytes
    payload: bytes

    def encoded(self) -> bytes:
        """The chunk as it sits in a file, padded to an even length."""
        pad = b"\0" if len(self.payload) % 2 else b""
        return self.tag + struct.pack("<I", len(self.payload)) + self.payload + pad


def chunks(data: bytes) -> list[Chunk]:
    """The top-level chunks of a WebP file; CorruptFile if the container is broken."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise CorruptFile("The file is not a WebP image.")
    found = []
    offset = 12
    end = min(len(data), 8 + struct.unpack("<I", data[4:8])[0])
    while offset + 8 <= end:
        tag = data[offset : offset + 4]
        size = struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        payload = data[offset + 8 : offset + 8 + size]
        if len(payload) < size:
            raise CorruptFile("The WebP file is truncated.")
        found.append(Chunk(tag, payload))
        offset += 8 + size + (size & 1)
    if not any(chunk.tag in (b"VP8 ", b"VP8L", b"ANMF") for chunk in found):
        raise CorruptFile("The WebP file holds no image.")
    return found


def bitstreams(found: list[Chunk]) -> list[bytes]:
    """The tags of every frame's image bitstream (VP8 or VP8L), frames included."""
    tags = []
    for chunk in found:
        if chunk.tag in (b"VP8 ", b"VP8L"):
            tags.append(chunk.tag)
        elif chunk.tag == b"ANMF":
            tags.extend(
                sub.tag
                for sub in _subchunks(chunk.payload[_ANMF_HEADER:])
                if sub.tag in (b"VP8 ", b"VP8L")
            )
    return tags


def is_lossless(data: bytes) -> bool:
    """Whether every frame of the file is stored losslessly (VP8L)."""
    return all(tag == b"VP8L" for tag in bitstreams(chunks(data)))


def _subchunks(data: bytes) -> list[Chunk]:
    found = []
    offset = 0
    while offset + 8 <= len(data):
        size = struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        payload = data[offset + 8 : offset + 8 + size]
        found.append(Chunk(data[offset : offset + 4], payload))
        offset += 8 + size + (size & 1)
    return found


def repack(data: bytes, exif: bytes | None, icc: bytes | None) -> bytes:
    """The same image chunks with only the given EXIF and ICC (no XMP).

    `exif` is a TIFF block, with or without Pillow's "Exif\\0\\0" header. Without
    any metadata, alpha or animation the file takes the simple (VP8X-less) form.
    """
    found = chunks(data)
    images = [chunk for chunk in found if chunk.tag not in (*_METADATA, b"VP8X")]
    header = next((chunk for chunk in found if chunk.tag == b"VP8X"), None)
    if exif is not None and exif.startswith(b"Exif\0\0"):
        exif = exif[6:]
    flags = header.payload[0] & (_FLAG_ALPHA | _FLAG_ANIMATION) if header else 0
    if any(chunk.tag == b"ALPH" or _lossless_alpha(chunk) for chunk in images):
        flags |= _FLAG_ALPHA
    if header is None or (not flags and not exif and not icc):
        if len(images) == 1 and not exif and not icc:
            return _riff([images[0]])
        if header is None:
            header = Chunk(b"VP8X", b"\0" * 4 + _canvas(images[0]))
    if icc:
        flags |= _FLAG_ICC
    if exif:
        flags |= _FLAG_EXIF
    vp8x = Chunk(b"VP8X", bytes([flags]) + header.payload[1:10])
    out = [vp8x]
    if icc:
        out.append(Chunk(b"ICCP", icc))
    out.extend(images)
    if exif:
        out.append(Chunk(b"EXIF", exif))
    return _riff(out)


def _lossless_alpha(image: Chunk) -> bool:
    """Whether a VP8L bitstream says its image uses alpha (bit 28 of its header)."""
    if image.tag != b"VP8L" or len(image.payload) < 5:
        return False
    return bool(int.from_bytes(image.payload[1:5], "little") >> 28 & 1)


def _canvas(image: Chunk) -> bytes:
    """The VP8X canvas field (width-1, height-1, 24 bits each) of a simple file."""
    payload = image.payload
    if image.tag == b"VP8L":
        bits = int.from_bytes(payload[1:5], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    else:
        width = struct.unpack("<H", payload[6:8])[0] & 0x3FFF
        height = struct.unpack("<H", payload[8:10])[0] & 0x3FFF
    return (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")


def _riff(found: list[Chunk]) -> bytes:
    body = b"WEBP" + b"".join(chunk.encoded() for chunk in found)
    return b"RIFF" + struct.pack("<I", len(body)) + body
