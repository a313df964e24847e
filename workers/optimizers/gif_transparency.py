"""Pixels that barely change from what is on screen, made transparent: frame
differencing with a tolerance.

A frame with a transparent colour shows the canvas wherever it uses that colour.
gifsicle marks a pixel so only when it is exactly unchanged, but in video most
pixels change a little from frame to frame (noise, a new palette, dithering),
and those frames compress poorly. Here a pixel is marked when every channel of
its colour is within a tolerance of what the canvas shows there, so that the
error on screen stays within the tolerance whatever came before, and the long
runs of one index compress far better.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from workers.optimizers import gif_blocks, gif_canvas
from workers.optimizers.gif_gifsicle import Deadline

# Disposals that leave a frame in place for the next: none given, and "do not
# dispose". Other disposals restore what was under a frame, so that the canvas
# the next frame is laid on is another one; files using them are left alone.
_LEAVE = (0, 1)
# Colour indices kept decoded between tolerances up to this many pixels over all
# frames (a byte each); past it each tolerance decodes the frames anew, which
# costs about as much again as the rest of its work.
KEPT_PIXELS = 64 << 20


class Frames:
    """The frames of a GIF, to be made transparent at any tolerance.

    `None` from `read` where this cannot be done or does nothing: a single frame,
    frames past the logical screen, disposals other than leaving the frame in
    place, or colour tables Pillow reads as greyscale.
    """

    def __init__(
        self,
        data: bytes,
        images: Sequence[gif_canvas.FrameImage],
        size: tuple[int, int],
    ) -> None:
        self.data = data
        self.images = images
        self.size = size
        boxes = [image.box for image in images]
        area = sum(
            (right - left) * (bottom - top) for left, top, right, bottom in boxes
        )
        self.decoded = (
            [gif_canvas.colour_indices(image) for image in images]
            if area <= KEPT_PIXELS
            else None
        )

    @classmethod
    def read(cls, data: bytes) -> Frames | None:
        """The frames of `data`, or None where they cannot be made transparent."""
        layout = gif_blocks.read_layout(data)
        if layout.canvas != (layout.width, layout.height):
            return None
        images = gif_canvas.frame_images(data, layout)
        if images is None or len(images) < 2:
            return None
        if any(image.disposal not in _LEAVE for image in images):
            return None
        return cls(data, images, (layout.width, layout.height))

    def transparent(self, tolerance: int, deadline: Deadline) -> tuple[bytes, int]:
        """The file with the pixels within `tolerance` of the canvas transparent,
        and how many pixels were turned so.

        Only frames that have a transparent colour change, and only where some
        frame has drawn before; the first frame and interlaced ones (which
        Pillow's encoder would not interlace below 16 rows) stay as they are.
        """
        width, height = self.size
        canvas = np.zeros((height, width), dtype=np.uint32)
        drawn = np.zeros((height, width), dtype=bool)
        pieces: list[bytes] = []
        copied = 0
        turned = 0
        for number, image in enumerate(self.images):
            indices = (
                gif_canvas.colour_indices(image)
                if self.decoded is None
                else self.decoded[number]
            )
            left, top, right, bottom = image.box
            area = canvas[top:bottom, left:right]
            colours = np.take(gif_canvas.colour_words(image), indices)
            clear = image.transparency
            shown = np.ones(indices.shape, bool) if clear is None else indices != clear
            if number > 0 and clear is not None and not image.interlaced:
                turn = shown & drawn[top:bottom, left:right]
                turn &= _distance(colours, area) <= tolerance
                count = int(np.count_nonzero(turn))
                if count:
                    deadline.remaining()
                    turned += count
                    shown &= ~turn
                    start, end = image.span
                    pieces += [self.data[copied:start], _lzw(indices, turn, image)]
                    copied = end
            np.copyto(area, colours, where=shown)
            drawn[top:bottom, left:right] |= shown
        pieces.append(self.data[copied:])
        return b"".join(pieces), turned


def _distance(colours: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """The largest difference over the colour channels of two arrays of packed
    words (gif_canvas.colour_words), alpha left out."""
    height, width = colours.shape
    difference = cv2.absdiff(
        colours.view(np.uint8).reshape(height, width, 4),
        shown.view(np.uint8).reshape(height, width, 4),
    )
    return np.maximum(
        np.maximum(difference[..., 0], difference[..., 1]), difference[..., 2]
    )


def _lzw(indices: np.ndarray, turn: np.ndarray, image: gif_canvas.FrameImage) -> bytes:
    """The frame's compressed pixels (code size and sub-blocks) with the pixels
    at `turn` set to its transparent colour, by Pillow's LZW encoder."""
    changed = np.where(turn, np.uint8(image.transparency), indices)
    frame = Image.fromarray(changed, "P")
    frame.putpalette(image.palette[: max(image.colours, 2)].tobytes())
    buffer = io.BytesIO()
    frame.save(buffer, "GIF", optimize=False, interlace=False)
    written = buffer.getvalue()
    layout = gif_blocks.read_layout(written)
    images = gif_canvas.frame_images(written, layout)
    start, end = images[0].span
    return written[start:end]
