"""The GIF optimizer: gifsicle's frame optimization, and its lossy LZW searched to a
perceptual bound.

Lossless keeps every pixel of every frame, the timing and the loop count: the
smaller of the input (its metadata blocks dropped) and `gifsicle -O3`. Lossy finds
the strongest `--lossy` level (with fewer colours where that costs less) whose
output still scores the target, scoring a sample of the frames as shown.

GIF carries little metadata: comments and XMP are kept only with `copyright`, a
colour profile only with `icc` or when it is not sRGB, other applications' blocks
never; the loop count always stays. Orientation does not exist in GIF.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageSequence

from workers.optimizers import gif_blocks, imaging
from workers.optimizers.base import Limits, Options, Result
from workers.optimizers.errors import CorruptFile, LimitExceeded
from workers.optimizers.gif_frames import FrameScorer
from workers.optimizers.gif_gifsicle import Deadline, GifsicleFailed, gifsicle
from workers.optimizers.search import search

# SSIMULACRA2 (alpha over white, mean over frames) every lossy GIF holds.
TARGET = 85.0
# gifsicle settings from the smallest output to the largest: (colours, lossy).
SETTINGS: tuple[tuple[int, int], ...] = tuple(
    (256, level)
    for level in (400, 300, 240, 200, 160, 130, 100, 80, 65, 50, 40, 30, 20, 14, 9, 5)
)
FIRST_GUESS = SETTINGS.index((256, 80))
# Frames scored per candidate, and the pixels of a frame's mosaic of crops.
SCORED_FRAMES = 8
PROXY_PIXELS = 160_000
# Gifsicle's strongest frame optimization; lossless on its own.
OPTIMIZE = ["-O3", "--no-interlace"]


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
            lossy = self._lossy(reference, exact, deadline)
            if lossy is not None:
                candidates.append(_Candidate(lossy, size))
        return min(candidates, key=lambda candidate: len(candidate.data))

    def _lossy(
        self, reference: bytes, exact: bytes, deadline: Deadline
    ) -> bytes | None:
        """The smallest lossy encoding of `exact` found to hold the target.

        Candidates are scored against the frames of `reference`, whose pixels
        `exact` holds (the input, unless resized).
        """
        layout = gif_blocks.read_layout(reference)
        scorer = FrameScorer(reference, layout, SCORED_FRAMES, PROXY_PIXELS)

        def encode(setting: tuple[int, int]) -> bytes:
            return gifsicle(exact, [*OPTIMIZE, *_lossy_arguments(setting)], deadline)

        found = search(SETTINGS, encode, scorer.score, self.target, start=FIRST_GUESS)
        return None if found is None else found.data


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


def _lossy_arguments(setting: tuple[int, int]) -> list[str]:
    colours, level = setting
    arguments = [f"--lossy={level}"]
    if colours < 256:
        arguments.append(f"--colors={colours}")
    return arguments


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
