"""The frames of a GIF composed as Pillow shows them, a rectangle at a time.

Pillow composes every frame after the first on a full-size canvas and converts
the whole canvas to RGBA, which makes a long screen recording cost a second to
decode. Here only each frame's rectangle is decoded (by Pillow's own LZW decoder)
and drawn, with Pillow's rules for transparency and disposal, so that scoring sees
the very pixels the benchmark's decoder gives, several times faster. Files those
rules are not written for here (frames past the logical screen, greyscale colour
tables that Pillow reads without a palette) return None, for the caller to use
Pillow itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from workers.optimizers import gif_blocks
from workers.optimizers.errors import CorruptFile
from workers.optimizers.imaging import DECODE_ERRORS

_DESCRIPTOR = struct.Struct("<HHHHB")
# Disposal methods of the graphic control extension.
_RESTORE_BACKGROUND = 2
_RESTORE_PREVIOUS = 3
_WHITE = 255
# A packed RGBA word with its alpha cleared.
_COLOUR_BITS = np.uint32(0x00FFFFFF)


@dataclass(frozen=True)
class FrameImage:
    """One frame's image block: its rectangle, colours and compressed pixels, and
    where those (from the LZW code size to the block's end) lie in the file."""

    box: tuple[int, int, int, int]
    palette: np.ndarray
    colours: int
    transparency: int | None
    disposal: int
    interlaced: bool
    code_size: int
    pixels: bytes
    span: tuple[int, int]


def shown_frames(data: bytes, indices: list[int]) -> dict[int, np.ndarray] | None:
    """The frames at `indices` as Pillow shows them, RGB over white, or None.

    None for a file whose frames reach past the logical screen or whose colour
    table Pillow reads as greyscale; CorruptFile if the pixels do not decode.
    """
    layout = gif_blocks.read_layout(data)
    if layout.canvas != (layout.width, layout.height):
        return None
    images = frame_images(data, layout)
    if images is None:
        return None
    # Pillow reads the background colour only beside a global colour table.
    background = data[11] if data[10] & 0x80 else 0
    return _compose(images, (layout.width, layout.height), background, indices)


def _compose(
    images: list[FrameImage],
    size: tuple[int, int],
    background: int,
    indices: list[int],
) -> dict[int, np.ndarray]:
    """Draw the frames in order and keep those at `indices`, as Pillow does.

    The canvas holds one packed RGBA word a pixel, alpha 0 where it is
    transparent. Pillow's canvas has no alpha when the first frame has no
    transparent colour, and then shows the colour behind a transparent disposal.
    """
    width, height = size
    wanted = set(indices)
    first = images[0]
    # Outside its rectangle the first frame shows its transparent colour, or
    # colour 0 when it has none.
    fill = first.transparency if first.transparency is not None else 0
    indexed = np.full((height, width), fill, dtype=np.uint8)
    left, top, right, bottom = first.box
    indexed[top:bottom, left:right] = colour_indices(first)
    canvas = np.take(colour_words(first), indexed)
    has_alpha = first.transparency is not None
    shown = {0: _over_white(canvas, has_alpha)} if 0 in wanted else {}
    disposal = first.disposal
    pending = _first_disposed(first, background)
    for index in range(1, max(indices) + 1):
        image = images[index]
        if pending is not None:
            (left, top, right, bottom), restored = pending
            canvas[top:bottom, left:right] = restored
        disposal = image.disposal or disposal
        pending = _disposed(image, disposal, canvas, background)
        left, top, right, bottom = image.box
        pixels = colour_indices(image)
        words = np.take(colour_words(image), pixels)
        area = canvas[top:bottom, left:right]
        if image.transparency is None:
            area[...] = words
        else:
            np.copyto(area, words, where=pixels != image.transparency)
        if index in wanted:
            shown[index] = _over_white(canvas, has_alpha)
    return shown


def _first_disposed(
    first: FrameImage, background: int
) -> tuple[tuple[int, int, int, int], np.ndarray | np.uint32] | None:
    """What the first frame's rectangle turns into: Pillow has no canvas yet to
    restore, so "previous" clears to the transparent colour when there is one."""
    words = colour_words(first)
    if first.disposal == _RESTORE_BACKGROUND:
        if first.transparency is None:
            return first.box, words[background]
        return first.box, words[first.transparency]
    if first.disposal == _RESTORE_PREVIOUS and first.transparency is not None:
        return first.box, words[first.transparency]
    return None


def _disposed(
    image: FrameImage, disposal: int, canvas: np.ndarray, background: int
) -> tuple[tuple[int, int, int, int], np.ndarray | np.uint32] | None:
    """What the frame's rectangle turns into before the next frame, if anything.

    Pillow restores the background with the frame's transparent colour when it has
    one, else with the screen's background colour; "previous" restores the canvas
    as it was before this frame.
    """
    left, top, right, bottom = image.box
    if disposal == _RESTORE_BACKGROUND:
        colour = image.transparency if image.transparency is not None else background
        if colour >= image.colours:
            colour = 0
        word = colour_words(image)[colour]
        if image.transparency is not None:
            word &= _COLOUR_BITS
        return image.box, word
    if disposal == _RESTORE_PREVIOUS:
        return image.box, canvas[top:bottom, left:right].copy()
    return None


def colour_words(image: FrameImage) -> np.ndarray:
    """The frame's colours as packed RGBA words, its transparent colour clear."""
    rgba = np.full((256, 4), 255, dtype=np.uint8)
    rgba[:, :3] = image.palette
    if image.transparency is not None:
        rgba[image.transparency, 3] = 0
    return rgba.view(np.uint32)[:, 0]


def _over_white(canvas: np.ndarray, has_alpha: bool) -> np.ndarray:
    """The canvas as RGB, white where it is transparent."""
    rgba = canvas.view(np.uint8).reshape(*canvas.shape, 4)
    shown = cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
    if has_alpha:
        shown[rgba[..., 3] == 0] = _WHITE
    return shown


def colour_indices(image: FrameImage) -> np.ndarray:
    """The colour indices of a frame's rectangle, by Pillow's LZW decoder."""
    left, top, right, bottom = image.box
    try:
        decoded = Image.frombytes(
            "P",
            (right - left, bottom - top),
            image.pixels,
            "gif",
            image.code_size,
            image.interlaced,
            -1,
        )
    except DECODE_ERRORS as error:
        raise CorruptFile("The GIF image data is truncated or corrupt.") from error
    return np.asarray(decoded)


def _palette(table: bytes) -> np.ndarray | None:
    """The colour table as (256, 3) uint8, black past its end as in Pillow; None
    when Pillow reads it as greyscale."""
    colours = np.frombuffer(table, dtype=np.uint8).reshape(-1, 3)
    ramp = np.arange(len(colours), dtype=np.uint8)[:, None]
    if np.array_equal(colours, np.repeat(ramp, 3, axis=1)):
        return None
    padded = np.zeros((256, 3), dtype=np.uint8)
    padded[: len(colours)] = colours
    return padded


def frame_images(data: bytes, layout: gif_blocks.Layout) -> list[FrameImage] | None:
    """Every image block with what drawing it takes; None without a colour table
    or with one Pillow reads as greyscale."""
    global_palette, global_colours = None, 0
    if data[10] & 0x80:
        global_colours = 2 << (data[10] & 0x07)
        global_palette = _palette(data[13 : 13 + 3 * global_colours])
        if global_palette is None:
            return None
    images = []
    control: bytes | None = None
    for block in layout.blocks:
        if block.kind == gif_blocks.EXTENSION and block.label == gif_blocks.CONTROL:
            control = data[block.start + 3 : block.start + 7]
            continue
        if block.kind != gif_blocks.IMAGE:
            continue
        left, top, width, height, packed = _DESCRIPTOR.unpack_from(
            data, block.start + 1
        )
        offset = block.start + 1 + _DESCRIPTOR.size
        palette, colours = global_palette, global_colours
        if packed & 0x80:
            length = 3 << ((packed & 0x07) + 1)
            palette, colours = _palette(data[offset : offset + length]), length // 3
            offset += length
        if palette is None:
            return None
        transparency = None
        disposal = 0
        if control is not None and len(control) == 4:
            disposal = (control[0] >> 2) & 0x07
            if control[0] & 1:
                transparency = control[3]
        images.append(
            FrameImage(
                (left, top, left + width, top + height),
                palette,
                colours,
                transparency,
                disposal,
                bool(packed & 0x40),
                data[offset],
                data[offset + 1 : block.end],
                (offset, block.end),
            )
        )
        control = None
    return images
