"""The GIF optimizer: gifsicle's frame optimization, and its lossy LZW searched to a
perceptual bound.

Lossless keeps every pixel of every frame, the timing and the loop count: the
smaller of the input (its metadata blocks dropped) and `gifsicle -O3`. Lossy finds
the strongest `--lossy` level whose output still scores the target, scoring a
sample of the frames as shown (past 512 KiB with fewer colours as well), and the
largest tolerance within which pixels that barely change can be made transparent
(gif_transparency); it keeps the smallest copy that holds.

GIF carries little metadata: comments and XMP are kept only with `copyright`, a
colour profile only with `icc` or when it is not sRGB, other applications' blocks
never; the loop count always stays. Orientation does not exist in GIF.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageSequence

from workers.optimizers import gif_blocks, gif_transparency, imaging
from workers.optimizers.base import Limits, Options, Result
from workers.optimizers.errors import CorruptFile, LimitExceeded
from workers.optimizers.gif_frames import FrameScorer
from workers.optimizers.gif_gifsicle import (
    Deadline,
    GifsicleFailed,
    OutOfTime,
    gifsicle,
)
from workers.optimizers.gif_search import predicted_search

# SSIMULACRA2 (alpha over white, mean over frames) every lossy GIF holds: the
# median of gifsicle --lossy=80 on the corpus, which leaves three files below 70.
TARGET = 85.0
# gifsicle --lossy levels from the smallest output to the largest, about 8% apart;
# every level at the low end, where a dithered photo loses a point per level.
LEVELS = (
    *(400, 370, 340, 315, 290, 270, 250, 230, 212, 196, 181, 167, 154, 142, 131),
    *(121, 112, 104, 96, 89, 82, 76, 70, 65, 60, 55, 51, 47, 43, 40, 37, 34, 31),
    *(28, 26, 24, 22, *range(20, 5, -1)),
)
FIRST_GUESS = LEVELS.index(43)
# Frames scored per candidate, standing for the 24 the benchmark spreads over an
# animation: on the corpus, 8 land within about half a point of the 24's mean,
# where 4 miss it by up to 3 points. Past LARGE bytes all 24 are scored, so that
# the bound holds on them too (8 read 0.2-0.4 above them on two recordings
# there), at little cost next to gifsicle's own time on such files.
SCORED_FRAMES = 8
BENCHMARK_FRAMES = 24
# Sampled frames that differ from a run's first in at most this fraction of their
# pixels are scored as one: a recording's frames where only the cursor or a
# prompt moves, three times faster to score there. On the corpus the runs' mean
# came within 0.4 of the mean over every frame.
STILL = 0.01
# Gifsicle's strongest frame optimization, lossless on its own. The search encodes
# without it (four times faster). Past LARGE bytes the level found is encoded once
# more with -O2, 2-3% smaller there and as small as -O3 in half the time; below,
# the re-encode gained 1.6% on one file of the corpus, none on the others, and
# cost as much time as the search, so it is left out.
OPTIMIZE = ["-O3", "--no-interlace"]
OPTIMIZE_LARGE = ["-O2", "--no-interlace"]
LARGE = 512 * 1024
SEARCH_ENCODE = ["--no-interlace"]
# Past LARGE bytes the level is also searched with fewer colours: COLOURS in each
# quick encode, and RELAID_COLOURS applied once and laid out anew by gifsicle. On
# the corpus's two long terminal recordings the smallest copy holding the bound
# came 4-12% smaller so; scores along the levels are jagged there (a point or
# more from one level to the next), and each of the two has won on one of them.
COLOURS = 128
RELAID_COLOURS = 96
# How far (in 8-bit steps, on every channel) a pixel may be from what the canvas
# shows and still be made transparent, strongest first; video's frame-to-frame
# noise lies within a few steps. On the corpus this held the target in 35-45%
# fewer bytes than any lossy level on the one video and on one of the terminal
# recordings, lost on the others, and a lossy level on top of a tolerance lost
# more score than it saved bytes.
TOLERANCES = (40, 32, 26, 21, 17, 14, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
FIRST_TOLERANCE = TOLERANCES.index(8)
# A tolerance scoring less than this above the target ends its search: near the
# answer one step of tolerance moves the score by 1-2.5 points, so that a closer
# one is seldom there to find, and each try costs a layout and a score.
TOLERANCE_SLACK = 1.5
# What a copy no smaller than the best so far (the exact one to begin with)
# counts as without a score: it cannot win, and the best one holds.
EXACT_SCORE = 100.0


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
                lossy = self._lossy(reference, base, deadline)
            except (GifsicleFailed, OutOfTime):
                # The exact copies in hand are as good an answer as the input.
                lossy = None
            if lossy is not None:
                candidates.append(_Candidate(lossy, size))
        return min(candidates, key=lambda candidate: len(candidate.data))

    def _lossy(self, reference: bytes, base: bytes, deadline: Deadline) -> bytes | None:
        """The smallest lossy encoding of `base` found to hold the target.

        Candidates are scored against the frames of `reference`, whose pixels
        `base` holds. The level is searched on quick encodes, which keep the
        frames as `base` lays them out (so `base` is the smaller of the input and
        gifsicle's layout); then the tolerance of frame differencing; past LARGE
        bytes the level with fewer colours too, and the smallest pick encoded
        with gifsicle's frame optimization is kept when it is smaller still and
        holds. Each search after the first scores only what would be smaller
        than the best copy so far: a copy no smaller counts as holding, since
        that best one holds and is kept instead (`base` to begin with).
        """
        scorer = FrameScorer(
            reference,
            gif_blocks.read_layout(reference),
            BENCHMARK_FRAMES if len(base) > LARGE else SCORED_FRAMES,
            BENCHMARK_FRAMES,
            STILL,
        )
        held: list[tuple[bytes, list[str], bytes]] = []

        def bound() -> int:
            return min([len(base), *(len(choice[2]) for choice in held)])

        def keep(choice: tuple[bytes, list[str], bytes] | None) -> None:
            if choice is not None and len(choice[2]) < bound():
                held.append(choice)

        keep(self._level(base, [], bound(), scorer, deadline))
        keep(self._tolerance(base, bound(), scorer, deadline))
        if len(base) > LARGE:
            keep(
                self._level(base, ["--colors", str(COLOURS)], bound(), scorer, deadline)
            )
            relaid = self._relaid(base, scorer, deadline)
            if relaid is not None:
                keep(self._level(relaid, [], bound(), scorer, deadline))
        if not held:
            return None
        start, arguments, data = min(held, key=lambda choice: len(choice[2]))
        if len(base) <= LARGE or not arguments:
            return data
        optimized = gifsicle(start, [*OPTIMIZE_LARGE, *arguments], deadline)
        if len(optimized) < len(data) and scorer.score(optimized) >= self.target:
            return optimized
        return data

    def _relaid(
        self, base: bytes, scorer: FrameScorer, deadline: Deadline
    ) -> bytes | None:
        """`base` on RELAID_COLOURS colours and laid out anew, if that alone holds
        the target: the start of a further search, which may find copies smaller
        than the best so far even when this one is not."""
        arguments = [*OPTIMIZE_LARGE, "--colors", str(RELAID_COLOURS)]
        relaid = gifsicle(base, arguments, deadline)
        if len(relaid) < len(base) and scorer.score(relaid) >= self.target:
            return relaid
        return None

    def _level(
        self,
        start: bytes,
        colours: list[str],
        bound: int,
        scorer: FrameScorer,
        deadline: Deadline,
    ) -> tuple[bytes, list[str], bytes] | None:
        """The strongest lossy level found to hold the target from `start` with
        these colour arguments: `start`, the arguments with the level, and their
        quick encode; None if none holds. An encode of `bound` bytes or more
        counts as holding without a score, and is dropped later."""
        encoded: dict[int, bytes] = {}

        def encode(index: int) -> bytes:
            if index not in encoded:
                arguments = [*SEARCH_ENCODE, *colours, f"--lossy={LEVELS[index]}"]
                encoded[index] = gifsicle(start, arguments, deadline)
            return encoded[index]

        def score(index: int) -> float:
            data = encode(index)
            return EXACT_SCORE if len(data) >= bound else scorer.score(data)

        found = predicted_search(LEVELS, score, self.target, FIRST_GUESS)
        if found is None:
            return None
        return start, [*colours, f"--lossy={LEVELS[found]}"], encode(found)

    def _tolerance(
        self, base: bytes, bound: int, scorer: FrameScorer, deadline: Deadline
    ) -> tuple[bytes, list[str], bytes] | None:
        """`base` with the pixels that barely change made transparent, at the
        strongest tolerance found to hold the target, laid out by gifsicle, as a
        level's choice with no arguments; None if none holds under `bound` bytes.

        Each tolerance is laid out by gifsicle before its size is compared: its
        frame optimization and LZW keep every pixel, and come 5-30% smaller than
        Pillow's encoder. A copy of `bound` bytes or more counts as holding
        without a score, so that only what could win is scored.
        """
        frames = gif_transparency.Frames.read(base)
        if frames is None:
            return None
        optimize = OPTIMIZE_LARGE if len(base) > LARGE else OPTIMIZE
        made: dict[int, bytes] = {}

        def make(index: int) -> bytes:
            if index not in made:
                turned, count = frames.transparent(TOLERANCES[index], deadline)
                made[index] = gifsicle(turned, optimize, deadline) if count else base
            return made[index]

        # The strongest tolerance makes about the smallest copy: if that cannot
        # win, no tolerance can (a recording whose changes are all large).
        if len(make(0)) >= bound:
            return None

        def score(index: int) -> float:
            data = make(index)
            return EXACT_SCORE if len(data) >= bound else scorer.score(data)

        found = predicted_search(
            TOLERANCES, score, self.target, FIRST_TOLERANCE, TOLERANCE_SLACK
        )
        if found is None or len(made[found]) >= bound:
            return None
        return made[found], [], made[found]


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
