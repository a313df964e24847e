"""PNGs written from pixels, and what they carry besides them.

The lossy search writes its candidates here: palettes and truecolour through
oxipng, snapped truecolour with its filter on every row and libdeflate. It also
ranks them by a quick estimate of their size, a fast deflate of the rows their
filter would give, before it pays for the real encode of the one it keeps.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import deflate
import numpy as np
import oxipng
from PIL import Image

from workers.optimizers.errors import CorruptFile
from workers.optimizers.palette import Quantized
from workers.optimizers.png_chunks import Chunk, write_chunks
from workers.optimizers.residuals import UP

# oxipng's presets: for exact copies (evaluating filters quickly), for exact
# copies of under 8 bits a pixel (evaluating them in full), and for lossy
# outputs, whose pixels were chosen to compress.
LOSSLESS_LEVEL = 5
LOW_DEPTH_LEVEL = 4
LOSSY_LEVEL = 2
# Candidates are sized by a quick deflate at this level, scaled by what the
# final encoding gains over it on each kind of image.
ESTIMATE_LEVEL = 6
PALETTE_RATIO = 0.95
TRUECOLOUR_RATIO = 0.87
# The deflate level snapped truecolour is written with (libdeflate's 10 and up
# search matches thoroughly; oxipng's preset 2 uses 11).
SNAPPED_LEVEL = 10
_COLOUR_TYPES = {
    1: oxipng.ColorType.grayscale,
    2: oxipng.ColorType.grayscale_alpha,
    3: oxipng.ColorType.rgb,
    4: oxipng.ColorType.rgba,
}
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}


@dataclass(frozen=True)
class Extra:
    """What a copy re-encoded from pixels carries besides them."""

    chunks: list[Chunk] = field(default_factory=list)
    icc: bytes | None = None


def estimated_palette_size(palette: Quantized) -> int:
    """About the size of the palette PNG: its rows deflated quickly, unfiltered."""
    height, width = palette.indices.shape
    rows = np.zeros((height, width + 1), np.uint8)
    rows[:, 1:] = palette.indices
    return round(
        len(deflate.zlib_compress(rows.tobytes(), ESTIMATE_LEVEL)) * PALETTE_RATIO
    )


def estimated_truecolour_size(pixels: np.ndarray, predictor: str) -> int:
    """About the size of the truecolour PNG: its filtered rows deflated quickly."""
    rows = _filtered_rows(pixels, predictor)
    return round(len(deflate.zlib_compress(rows, ESTIMATE_LEVEL)) * TRUECOLOUR_RATIO)


def _filtered_rows(pixels: np.ndarray, predictor: str) -> bytes:
    """The rows of (height, width[, n]) pixels as PNG's Up or Average filter
    codes them, each after its filter type byte: the data that IDAT deflates."""
    values = pixels.astype(np.int16)
    if values.ndim == 2:
        values = values[:, :, None]
    height = values.shape[0]
    up = np.zeros_like(values)
    up[1:] = values[:-1]
    if predictor == UP:
        prediction, kind = up, 2
    else:
        left = np.zeros_like(values)
        left[:, 1:] = values[:, :-1]
        prediction, kind = (left + up) >> 1, 3
    rows = np.empty((height, values[0].size + 1), np.uint8)
    rows[:, 0] = kind
    rows[:, 1:] = ((values - prediction) & 0xFF).reshape(height, -1)
    return rows.tobytes()


def snapped_png(pixels: np.ndarray, extra: Extra, predictor: str) -> bytes:
    """Snapped pixels as a PNG with the filter they were snapped for on every row.

    Written here rather than by oxipng: the filter is known, and deflate at
    SNAPPED_LEVEL costs half the time of oxipng's for about 1% more bytes.
    """
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    header = struct.pack(
        ">IIBBBBB", width, height, 8, _PNG_COLOUR_TYPES[channels], 0, 0, 0
    )
    chunks: list[Chunk] = [(b"IHDR", header)]
    if extra.icc:
        chunks.append((b"iCCP", b"ICC profile\x00\x00" + zlib.compress(extra.icc, 9)))
    chunks += extra.chunks
    rows = _filtered_rows(pixels, predictor)
    chunks.append((b"IDAT", deflate.zlib_compress(rows, SNAPPED_LEVEL)))
    chunks.append((b"IEND", b""))
    return write_chunks(chunks)


def image_of(pixels: np.ndarray) -> Image.Image:
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    return Image.fromarray(pixels, _MODES[channels])


def oxipng_optimized(
    data: bytes, level: int, timeout: int, fast_evaluation: bool = True
) -> bytes:
    try:
        return oxipng.optimize_from_memory(
            data,
            level=level,
            fast_evaluation=fast_evaluation,
            strip=oxipng.StripChunks.none(),
            interlace=oxipng.Interlacing.Off,
            timeout=timeout,
        )
    except oxipng.PngError as error:
        raise CorruptFile("The PNG image data is truncated or corrupt.") from error


def _finish(
    raw: oxipng.RawImage,
    extra: Extra,
    level: int,
    timeout: int,
    fast_evaluation: bool = True,
) -> bytes:
    """The PNG of pixels re-encoded from scratch, with the chunks they carry.

    The colour of fully transparent pixels is free to change (optimize_alpha):
    these copies are not exact anyway.
    """
    if extra.icc:
        raw.add_icc_profile(extra.icc)
    for kind, body in extra.chunks:
        raw.add_png_chunk(kind, body)
    return raw.create_optimized_png(
        level=level,
        fast_evaluation=fast_evaluation,
        optimize_alpha=True,
        timeout=timeout,
    )


def encode_palette(palette: Quantized, extra: Extra, level: int, timeout: int) -> bytes:
    height, width = palette.indices.shape
    colours = [list(map(int, entry)) for entry in palette.palette]
    raw = oxipng.RawImage(
        palette.indices.tobytes(),
        width,
        height,
        color_type=oxipng.ColorType.indexed(colours),
    )
    return _finish(raw, extra, level, timeout)


def encode_truecolour(
    pixels: np.ndarray,
    extra: Extra,
    level: int,
    timeout: int,
    fast_evaluation: bool = True,
) -> bytes:
    """Grey or truecolour pixels as a PNG, in whatever colour type is smallest."""
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    raw = oxipng.RawImage(
        np.ascontiguousarray(pixels).tobytes(),
        width,
        height,
        color_type=_COLOUR_TYPES[channels](),
    )
    return _finish(raw, extra, level, timeout, fast_evaluation)
