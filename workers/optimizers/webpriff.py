"""The RIFF container of WebP: its chunks, and a repack with other metadata.

A repack keeps every image chunk (VP8, VP8L, ALPH, ANIM, ANMF) byte for byte and
replaces only the metadata chunks, so the pixels cannot change: it is the one
lossless operation a lossy WebP allows. The quantizer of a lossy still, read
from its VP8 frame header, tells how coarsely it was coded.
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
# A VP8 key frame: 3 bytes of frame tag, a start code, 4 bytes of size.
_VP8_START = b"\x9d\x01\x2a"
_VP8_HEADER = 10
_SEGMENTS = 4
_MAX_QUANTIZER = 127


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


def quantizer(data: bytes) -> int | None:
    """The coarsest quantizer index (0-127) of a lossy still's VP8 frame, or None.

    VP8 quantizes each segment of macroblocks by its own index, and libwebp
    gives the busiest segment the coarsest: it follows the quality setting
    (libwebp's q 50 codes with about 52, q 75 with 36, q 90 with 12). None for a
    lossless file, an animation, or a header that cannot be read.
    """
    found = chunks(data)
    if any(chunk.tag in (b"ANMF", b"VP8L") for chunk in found):
        return None
    frame = next((chunk.payload for chunk in found if chunk.tag == b"VP8 "), None)
    if frame is None or len(frame) < _VP8_HEADER or frame[3:6] != _VP8_START:
        return None
    tag = int.from_bytes(frame[:3], "little")
    if tag & 1:
        return None  # an inter frame: no still holds one
    partition = frame[_VP8_HEADER : _VP8_HEADER + (tag >> 5)]
    return _frame_quantizer(_BoolReader(partition))


def _frame_quantizer(bits: _BoolReader) -> int:
    """The coarsest quantizer of a key frame's header, read up to its indices.

    The fields are those of RFC 6386, section 19.2, in order.
    """
    bits.literal(2)  # colour space, clamping type
    segments: list[int] | None = None
    absolute = False
    if bits.literal(1):  # segmentation enabled
        update_map, update_data = bits.literal(1), bits.literal(1)
        if update_data:
            absolute = bool(bits.literal(1))
            segments = [bits.optional_signed(7) for _ in range(_SEGMENTS)]
            for _ in range(_SEGMENTS):
                bits.optional_signed(6)  # loop filter level of the segment
        if update_map:
            for _ in range(_SEGMENTS - 1):
                if bits.literal(1):
                    bits.literal(8)  # probability of the segment tree
    bits.literal(1 + 6 + 3)  # filter type, loop filter level, sharpness
    if bits.literal(1) and bits.literal(1):  # loop filter deltas, updated
        for _ in range(8):
            bits.optional_signed(6)
    bits.literal(2)  # log2 of the number of DCT partitions
    base = bits.literal(7)
    if segments is None:
        return base
    coarsest = max(segments) if absolute else base + max(segments)
    return min(max(coarsest, 0), _MAX_QUANTIZER)


class _BoolReader:
    """VP8's boolean entropy decoder (RFC 6386, section 7.3), for header fields.

    Reading past the end yields zeros, as libvpx does; the caller's fields
    then come out as zeros too rather than raising.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 2
        self.value = int.from_bytes(data[:2].ljust(2, b"\0"), "big")
        self.range = 255
        self.bit_count = 0

    def bit(self, probability: int = 128) -> int:
        split = 1 + (((self.range - 1) * probability) >> 8)
        big_split = split << 8
        if self.value >= big_split:
            self.range -= split
            self.value -= big_split
            bit = 1
        else:
            self.range = split
            bit = 0
        while self.range < 128:
            self.value <<= 1
            self.range <<= 1
            self.bit_count += 1
            if self.bit_count == 8:
                self.bit_count = 0
                if self.position < len(self.data):
                    self.value |= self.data[self.position]
                self.position += 1
        return bit

    def literal(self, count: int) -> int:
        """An unsigned field of `count` bits, most significant first."""
        value = 0
        for _ in range(count):
            value = (value << 1) | self.bit()
        return value

    def optional_signed(self, count: int) -> int:
        """A field behind a presence flag: magnitude, then sign; 0 when absent."""
        if not self.bit():
            return 0
        magnitude = self.literal(count)
        return -magnitude if self.bit() else magnitude
