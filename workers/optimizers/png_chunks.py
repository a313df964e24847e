"""The chunks of a PNG file, and which of them its optimized copy carries.

Pixels and what decides how they look (palette, transparency, a non-sRGB colour
space, animation control) always stay; the rest is metadata, kept only where the
caller's preserve_metas names it: colour chunks under `icc`, EXIF under the tags
imaging keeps, text chunks under `copyright` or `datetime` by their keyword.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

from workers.optimizers.errors import CorruptFile
from workers.optimizers.imaging import is_srgb

SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Chunks that shape the pixels or their display; never metadata.
_RENDERING = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"acTL", b"fcTL", b"fdAT"}
    | {b"cICP", b"mDCV", b"cLLI"}
)
_TEXT = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_TEXT_KEYWORDS = {
    "copyright": frozenset({b"copyright", b"author", b"artist", b"disclaimer"}),
    "datetime": frozenset({b"creation time", b"date:create", b"date:modify"}),
}
# gAMA 1/2.2 and the sRGB primaries and white, in PNG's units of 1/100000.
_SRGB_GAMMA = 45455
_SRGB_CHROMATICITIES = (31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)
_GAMMA_SLACK = 500
_CHROMATICITY_SLACK = 1000
# Larger than any real profile (print profiles reach a few megabytes).
MAX_PROFILE_BYTES = 16 << 20

Chunk = tuple[bytes, bytes]


def read_chunks(data: bytes) -> list[Chunk]:
    """The (type, body) chunks of a PNG file, up to its IEND.

    A file cut short, or a critical chunk (IHDR, PLTE, IDAT, IEND) whose CRC does
    not match, raises CorruptFile; an ancillary chunk with a bad CRC is left out,
    as libpng does.
    """
    if not data.startswith(SIGNATURE):
        raise CorruptFile("The file is not a PNG image.")
    chunks: list[Chunk] = []
    offset = len(SIGNATURE)
    while True:
        if offset + 8 > len(data):
            raise CorruptFile("The PNG file is truncated.")
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        end = offset + 12 + length
        if end > len(data):
            raise CorruptFile("The PNG file is truncated.")
        body = data[offset + 8 : end - 4]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(body, zlib.crc32(kind)) == crc:
            chunks.append((kind, body))
        elif _is_critical(kind):
            raise CorruptFile("The PNG file is corrupt (a chunk fails its CRC).")
        offset = end
        if kind == b"IEND":
            return chunks


def _is_critical(kind: bytes) -> bool:
    """Whether a decoder must understand the chunk (its type starts upper case)."""
    return not kind[0] & 0x20


def write_chunks(chunks: Iterable[Chunk]) -> bytes:
    """A PNG file made of these (type, body) chunks, with their CRCs."""
    parts = [SIGNATURE]
    for kind, body in chunks:
        crc = zlib.crc32(body, zlib.crc32(kind))
        parts.append(
            struct.pack(">I4s", len(body), kind) + body + struct.pack(">I", crc)
        )
    return b"".join(parts)


def is_animated(chunks: Iterable[Chunk]) -> bool:
    """Whether the PNG is an APNG (it has an animation control chunk)."""
    return any(kind == b"acTL" for kind, _ in chunks)


def kept_chunks(
    chunks: list[Chunk], preserve: frozenset[str], exif: bytes | None
) -> list[Chunk]:
    """The chunks a copy with the original's pixels carries under `preserve`.

    `exif` replaces any eXIf chunk (Pillow's block with its "Exif" header, as
    imaging's `kept_exif` gives it), or drops it when None.
    """
    colour = colour_chunks(chunks, preserve)
    kept: list[Chunk] = []
    for kind, body in chunks:
        if kind in _RENDERING or (kind, body) in colour:
            kept.append((kind, body))
        elif kind == b"eXIf" and exif:
            kept.append((kind, exif_body(exif)))
        elif _is_kept_metadata(kind, body, preserve):
            kept.append((kind, body))
    return kept


def colour_chunks(chunks: list[Chunk], preserve: frozenset[str]) -> list[Chunk]:
    """The colour-space chunks (iCCP, sRGB, gAMA, cHRM) a lossless copy keeps.

    All of them under `icc`; otherwise only those that describe something other
    than sRGB, since dropping them would change how the image looks.
    """
    found = [(k, b) for k, b in chunks if k in (b"iCCP", b"sRGB", b"gAMA", b"cHRM")]
    if "icc" in preserve:
        return found
    kinds = dict(found)
    if b"iCCP" in kinds:
        profile = iccp_profile(kinds[b"iCCP"])
        return [] if is_srgb(profile) else [(b"iCCP", kinds[b"iCCP"])]
    if b"sRGB" in kinds or b"gAMA" not in kinds:
        return []
    if _srgb_like(kinds[b"gAMA"], kinds.get(b"cHRM")):
        return []
    return [(k, b) for k, b in found if k in (b"gAMA", b"cHRM")]


def text_chunks(chunks: list[Chunk], preserve: frozenset[str]) -> list[Chunk]:
    """The text and time chunks `preserve` keeps, for a copy made from pixels."""
    return [(k, b) for k, b in chunks if _is_kept_metadata(k, b, preserve)]


def iccp_profile(body: bytes) -> bytes | None:
    """The ICC profile inside an iCCP chunk; None if it does not inflate or if it
    inflates past MAX_PROFILE_BYTES (a profile is kilobytes, a bomb gigabytes)."""
    name_end = body.find(b"\x00")
    if name_end < 0:
        return None
    inflater = zlib.decompressobj()
    try:
        profile = inflater.decompress(body[name_end + 2 :], MAX_PROFILE_BYTES)
    except zlib.error:
        return None
    if inflater.unconsumed_tail:
        return None
    return profile


def exif_body(exif: bytes) -> bytes:
    """An EXIF block as the eXIf chunk holds it: the TIFF data, no "Exif" header."""
    return exif[6:] if exif.startswith(b"Exif\x00\x00") else exif


def _is_kept_metadata(kind: bytes, body: bytes, preserve: frozenset[str]) -> bool:
    if kind == b"tIME":
        return "datetime" in preserve
    if kind not in _TEXT:
        return False
    keyword = body.split(b"\x00", 1)[0].strip().lower()
    return any(
        keyword in _TEXT_KEYWORDS[name] for name in preserve & _TEXT_KEYWORDS.keys()
    )


def _srgb_like(gamma: bytes, chromaticities: bytes | None) -> bool:
    if len(gamma) != 4:
        return True
    if abs(struct.unpack(">I", gamma)[0] - _SRGB_GAMMA) > _GAMMA_SLACK:
        return False
    if chromaticities is None or len(chromaticities) != 32:
        return True
    values = struct.unpack(">8I", chromaticities)
    return all(
        abs(value - srgb) <= _CHROMATICITY_SLACK
        for value, srgb in zip(values, _SRGB_CHROMATICITIES, strict=True)
    )
