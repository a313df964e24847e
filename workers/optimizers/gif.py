"""The GIF optimizer: gifsicle's frame optimization, and its lossy LZW searched to a
perceptual bound.

Lossless keeps every pixel of every frame, the timing and the loop count: the
smaller of the input (its metadata blocks dropped) and `gifsicle -O3`. Lossy keeps
the smallest copy gif_lossy finds to hold the perceptual bound: gifsicle's lossy
LZW, or pixels that barely change made transparent.

GIF carries little metadata: comments and XMP are kept only with `copyright`, a
colour profile only with `icc` or when it is not sRGB, other applications' blocks
never; the loop count always stays. Orientation does not exist in GIF.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageSequence

from workers.optimizers import gif_blocks, gif_lossy, imaging
from workers.optimizers.base import Limits, Options, Result
from workers.optimizers.errors import CorruptFile, LimitExceeded
from workers.optimizers.gif_gifsicle import (
    Deadline,
    GifsicleFailed,
    OutOfTime,
    gifsicle,
)
from workers.optimizers.gif_lossy import OPTIMIZE

# SSIMULACRA2 (alpha over white, mean over frames) every lossy GIF holds: the
# median of gifsicle --lossy=80 on the corpus, which leaves three files below 70.
TARGET = 85.0


@dataclass(frozen=True)
class _Candidate:
    data: bytes
    size: tuple[int, int]


class GifOptimizer:
    """Optimizes GIF files, animations included, through gifsicle."""

    formats = frozenset({"gif"})

    def __init__(self, target: float = TARGET) -> None:
        self.target = target

    def probe(self, data: bytes, limits: Limits) -> Result:
        """The logical screen of `data`, its limits checked."""
        layout = checked_layout(data, limits)
        return Result(data, "gif", layout.width, layout.height)

    def optimize(self, data: bytes, options: Options, limits: Limits) -> Result:
        """The smallest copy that keeps the pixels (lossless) or the bound (lossy)."""
        deadline = Deadline(limits.time_limit)
        layout = checked_layout(data, limits)
        source = stripped(data, layout, options.preserve)
        try:
            best = self._optimized(source, layout, options, deadline)
        except GifsicleFailed:
            _check_decodes(data)
            best = _Candidate(source, (layout.width, layout.height))
        return Result(best.data, "gif", *best.size)

    def _optimized(
        self,
        source: bytes,
        layout: gif_blocks.Layout,
        options: Options,
        deadline: Deadline,
    ) -> _Candidate:
        size = imaging.fit_size(layout.width, layout.height, options.resize)
        candidates = []
        if size == (layout.width, layout.height):
            candidates.append(_Candidate(source, size))
            exact = gifsicle(source, OPTIMIZE, deadline)
        else:
            exact = gifsicle(source, [*OPTIMIZE, *_resize(size)], deadline)
        candidates.append(_Candidate(exact, size))
        if not options.lossless:
            reference = source if size == (layout.width, layout.height) else exact
            base = min(candidates, key=lambda candidate: len(candidate.data)).data
            try:
                lossy = gif_lossy.lossy(reference, base, self.target, deadline)
            except (GifsicleFailed, OutOfTime):
                # The exact copies in hand are as good an answer as the input.
                lossy = None
            if lossy is not None:
                candidates.append(_Candidate(lossy, size))
        return min(candidates, key=lambda candidate: len(candidate.data))


def checked_layout(data: bytes, limits: Limits) -> gif_blocks.Layout:
    """The layout of `data`, after checking the limits on it before any decoding.

    Frames that reach past the logical screen grow the canvas a decoder allocates,
    so the pixel limits are checked on that canvas.
    """
    layout = gif_blocks.read_layout(data)
    width, height = layout.canvas
    imaging.check_pixels(width, height, limits)
    with imaging.open_image(data, limits) as image:
        frames = imaging.check_frames(image, limits)
    if max(frames, len(layout.frames)) * width * height > limits.max_total_pixels:
        raise LimitExceeded(
            f"The animation has {len(layout.frames) * width * height} pixels over "
            f"all frames, over the limit of {limits.max_total_pixels} "
            "(max_total_pixels)."
        )
    return layout


def stripped(data: bytes, layout: gif_blocks.Layout, preserve: frozenset[str]) -> bytes:
    """`data` without the metadata blocks the options do not keep.

    Comments and XMP stay with `copyright`; a colour profile with `icc`, or when it
    is not sRGB, since nothing converts the pixels from it.
    """
    icc = gif_blocks.icc_profile(data, layout)
    keep_icc = icc is not None and ("icc" in preserve or not imaging.is_srgb(icc))
    drop = gif_blocks.metadata_blocks(
        layout, keep_text="copyright" in preserve, keep_icc=keep_icc
    )
    return gif_blocks.without_blocks(data, layout, drop) if drop else data


def _resize(size: tuple[int, int]) -> list[str]:
    """gifsicle's arguments to scale every frame to `size`, averaging pixels."""
    width, height = size
    return [
        "--resize",
        f"{width}x{height}",
        "--resize-method",
        "mix",
        "--resize-colors",
        "256",
    ]


def _check_decodes(data: bytes) -> None:
    """CorruptFile unless Pillow decodes every frame of `data`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                for frame in ImageSequence.Iterator(image):
                    frame.load()
    except imaging.DECODE_ERRORS as error:
        raise CorruptFile("The GIF image data is truncated or corrupt.") from error
