"""Palette quantization with libimagequant, called through its C interface directly.

The `imagequant` package's own helpers convert pixels one by one in Python, which
costs more than the quantization itself; this module hands libimagequant the RGBA
buffer as it is and can remap one quantization at several dithering levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from imagequant import ffi, lib
from PIL import Image

# libimagequant's speed 1-10. pngquant's default is 4; 5 costs a fifth less for
# the same palettes. Above 5 it drops the dither map, and above 7 a bit of every
# channel: palettes get worse.
SPEED = 5


class QuantizeFailed(RuntimeError):
    """libimagequant could not quantize the image (out of memory, bad size)."""


@dataclass(frozen=True)
class Quantized:
    """A palette image: one index per pixel and an RGBA palette."""

    indices: np.ndarray
    palette: np.ndarray

    def to_image(self) -> Image.Image:
        """The quantized pixels as a Pillow RGBA image, for scoring."""
        return Image.fromarray(self.palette[self.indices], "RGBA")


def quantize(
    rgba: Image.Image,
    max_colors: int = 256,
    dithering: tuple[float, ...] = (1.0,),
    max_quality: int = 100,
) -> list[Quantized]:
    """Quantize an RGBA image once, remapped at each of the `dithering` levels.

    `max_quality` lets libimagequant stop adding colours once its own error
    estimate reaches that quality, as pngquant's --quality does.
    """
    width, height = rgba.size
    buffer = rgba.tobytes()
    attr = lib.liq_attr_create()
    image = result = None
    try:
        lib.liq_set_max_colors(attr, max_colors)
        lib.liq_set_speed(attr, SPEED)
        lib.liq_set_quality(attr, 0, max_quality)
        image = lib.liq_image_create_rgba(attr, buffer, width, height, 0)
        if image == ffi.NULL:
            raise QuantizeFailed("libimagequant refused the image")
        result_p = ffi.new("liq_result**")
        code = lib.liq_image_quantize(image, attr, result_p)
        if code != lib.LIQ_OK:
            raise QuantizeFailed(f"libimagequant failed with code {code}")
        result = result_p[0]
        return [_remap(result, image, width, height, level) for level in dithering]
    finally:
        if result is not None:
            lib.liq_result_destroy(result)
        if image is not None and image != ffi.NULL:
            lib.liq_image_destroy(image)
        lib.liq_attr_destroy(attr)


def _remap(result: object, image: object, width: int, height: int, level: float):
    lib.liq_set_dithering_level(result, level)
    out = ffi.new("unsigned char[]", width * height)
    code = lib.liq_write_remapped_image(result, image, out, width * height)
    if code != lib.LIQ_OK:
        raise QuantizeFailed(f"libimagequant failed to remap with code {code}")
    indices = np.frombuffer(ffi.buffer(out), dtype=np.uint8).reshape(height, width)
    entries = lib.liq_get_palette(result)
    count = entries.count
    palette = np.zeros((256, 4), dtype=np.uint8)
    for index in range(count):
        colour = entries.entries[index]
        palette[index] = (colour.r, colour.g, colour.b, colour.a)
    return Quantized(indices.copy(), palette[: max(count, 1)].copy())
