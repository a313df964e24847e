"""The JPEG encoders the lossy search chooses between, and the output it writes.

jpegli at 4:2:0 (adaptive quantisation), re-coded progressive by mozjpeg, and
libjpeg-turbo at 4:4:4 (or grey) through Pillow with optimised Huffman tables;
a baseline encode has the same coefficients with cheaper entropy coding, which
is what the search's trials pay for.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import mozjpeg_lossless_optimization
import numpy as np
import pyjpegli
from PIL import Image

from workers.optimizers.imaging import Metadata
from workers.optimizers.jpeg_markers import with_metadata

QUALITIES = tuple(range(30, 99))
# Smaller lossy outputs stay baseline: there, re-coding jpegli's output
# progressive takes about as long as the whole search, for a tenth of a file of
# a few dozen kilobytes (libjpeg-turbo's progressive mode saves 2%).
PROGRESSIVE_FROM = 500_000


@dataclass(frozen=True)
class Setting:
    """One encoder setting: quality 1-100 and which encoder.

    "jpegli" is jpegli (4:2:0, adaptive quantisation), which `encode` re-codes
    progressive with mozjpeg; "444" is libjpeg-turbo through Pillow,
    full-resolution chroma or grey, progressive from `encode`.
    """

    quality: int
    encoder: str


ENCODERS = ("jpegli", "444")


def encode(image: Image.Image, setting: Setting, metadata: Metadata) -> bytes:
    """The progressive JPEG of one setting, carrying `metadata`."""
    if setting.encoder == "jpegli":
        coded = baseline(image, setting)
        progressive = mozjpeg_lossless_optimization.optimize(coded)
        return with_metadata(progressive, metadata.exif, metadata.icc)
    extra = metadata.save_arguments()
    return _turbo(image, setting.quality, progressive=True, **extra)


def final(image: Image.Image, setting: Setting, metadata: Metadata) -> bytes:
    """The output: progressive from PROGRESSIVE_FROM pixels on, baseline below."""
    if image.width * image.height >= PROGRESSIVE_FROM:
        return encode(image, setting, metadata)
    return with_metadata(baseline(image, setting), metadata.exif, metadata.icc)


def baseline(image: Image.Image, setting: Setting) -> bytes:
    """A baseline encode: the coefficients of `encode`, with cheaper entropy coding."""
    if setting.encoder == "jpegli":
        pixels = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        return pyjpegli.encode(pixels, image.width, image.height, setting.quality)
    return _turbo(image, setting.quality, progressive=False)


def _turbo(
    image: Image.Image, quality: int, progressive: bool, **extra: bytes
) -> bytes:
    """libjpeg-turbo at 4:4:4 (or grey) with optimised Huffman tables.

    Pillow gives an optimised encode a buffer of a byte a pixel (two from
    quality 95), which noise can overflow; a plain baseline encode, with the
    same coefficients, has no such bound.
    """
    buffer = io.BytesIO()
    try:
        image.save(
            buffer,
            "JPEG",
            quality=quality,
            subsampling=0,
            optimize=True,
            progressive=progressive,
            **extra,
        )
    except OSError:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality, subsampling=0, **extra)
    return buffer.getvalue()
