"""Lossy GIF: gifsicle's lossy LZW level, and the tolerance of frame differencing,
each searched to a perceptual bound; the smallest copy that holds is kept.

Every candidate is scored as the benchmark scores an animation (gif_frames),
against the frames of the original. Each search after the first scores only
what would be smaller than the best copy so far, so the order matters: the
search whose strongest setting makes the smaller copy goes first, since its
answer is then likely the smaller one and bounds the other, which often has
nothing left to try.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from workers.optimizers import gif_blocks, gif_transparency
from workers.optimizers.gif_frames import FrameScorer
from workers.optimizers.gif_gifsicle import Deadline, gifsicle
from workers.optimizers.gif_search import PERFECT, SLACK, predicted_search

# gifsicle --lossy levels from the smallest output to the largest, about 8% apart;
# every level at the low end, where a dithered photo loses a point per level.
LEVELS = (
    *(400, 370, 340, 315, 290, 270, 250, 230, 212, 196, 181, 167, 154, 142, 131),
    *(121, 112, 104, 96, 89, 82, 76, 70, 65, 60, 55, 51, 47, 43, 40, 37, 34, 31),
    *(28, 26, 24, 22, *range(20, 5, -1)),
)
# The level search starts from the strongest level, whose copy is also the floor
# that orders the searches: its loss with the power 1/2 points within a level or
# two of the answer across the corpus (8.3 predicted for 8 on Crash_test, 89 for
# 76-82 on neofetch, 253 for 230 on chi, 13.9 for 13 on iss634), where a first
# guess in the middle (43) missed by a factor of two or five either way.
FIRST_GUESS = LEVELS.index(400)
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
# The search encodes without frame optimization (four times faster), keeping the
# frames as the exact copy lays them out. Past LARGE bytes the level found is
# encoded once more with -O2, 2-3% smaller there and as small as -O3 in half the
# time; below, the re-encode gained 1.6% on one file of the corpus, none on the
# others, and cost as much time as the search, so it is left out.
SEARCH_ENCODE = ["--no-interlace"]
OPTIMIZE = ["-O3", "--no-interlace"]
OPTIMIZE_LARGE = ["-O2", "--no-interlace"]
LARGE = 512 * 1024
# Past LARGE bytes the level is also searched with fewer colours: COLOURS in each
# quick encode, and RELAID_COLOURS applied once and laid out anew by gifsicle. On
# the corpus's two long terminal recordings the smallest copy holding the bound
# came 4-12% smaller so; scores along the levels are jagged there (a point or
# more from one level to the next), and each of the two has won on one of them.
COLOURS = 128
RELAID_COLOURS = 96
# Fewer colours made the strongest level's copy 3-16% smaller on the corpus; a
# copy already held in under COLOUR_REACH of that copy's bytes is out of their
# reach, and their searches are skipped (on rich_status, whose tolerance copy
# holds in half of it: three encodes and a score, 3.7 s).
COLOUR_REACH = 0.8
# How far (in 8-bit steps, on every channel) a pixel may be from what the canvas
# shows and still be made transparent, strongest first; video's frame-to-frame
# noise lies within a few steps. On the corpus this held the target in 35-45%
# fewer bytes than any lossy level on the one video and on one of the terminal
# recordings, lost on the others, and a lossy level on top of a tolerance lost
# more score than it saved bytes.
TOLERANCES = (40, 32, 26, 21, 17, 14, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
FIRST_TOLERANCE = TOLERANCES.index(8)
# A tolerance scoring less than this above the target ends its search: near the
# answer one step of tolerance moves the score by 1-3 points, so that a closer
# one is seldom there to find, and each try costs a pass over every frame and a
# score. On the corpus this stops iss634 at its first try (87.2; the next step
# scores 86.0 in 4.6% fewer bytes) and changes no other file.
TOLERANCE_SLACK = 2.2
# What a copy no smaller than the best so far (the exact one to begin with)
# counts as without a score: it cannot win, and the best one holds. The search
# takes a perfect score for such a copy, not a measured one (gif_search._next).
EXACT_SCORE = PERFECT


@dataclass(frozen=True)
class Choice:
    """A copy found to hold the target: the file gifsicle was given, the
    arguments that made the copy from it, and the copy."""

    start: bytes
    arguments: list[str]
    data: bytes


@dataclass(frozen=True)
class Bound:
    """What every candidate is held to: its score against the original's frames."""

    scorer: FrameScorer
    target: float
    deadline: Deadline


class _Search:
    """A search over settings from the strongest (smallest copy) to the weakest.

    Subclasses make the copy of one setting, to be scored, and say what choice it
    is; each copy is made once. A copy's size is the size of its choice, which
    may take more work than the copy (a layout) and is no larger than it; it is
    asked only where the copy alone cannot tell whether the choice could win.
    """

    settings: Sequence[int]
    first: int
    slack: float

    def __init__(self, bound: Bound, start: bytes) -> None:
        self.bound = bound
        self.start = start
        self._made: dict[int, bytes] = {}

    def make(self, index: int) -> bytes:
        """The copy at the setting at `index`."""
        if index not in self._made:
            self._made[index] = self._make(index)
        return self._made[index]

    def size(self, index: int) -> int:
        """The bytes of the choice at the setting at `index`."""
        return len(self.make(index))

    def floor(self) -> int:
        """The bytes of the strongest setting's choice, about the fewest any makes."""
        return self.size(0)

    def search(self, under: int) -> Choice | None:
        """The strongest setting found to hold the target in fewer than `under`
        bytes; None when none holds.

        A copy of `under` bytes or more counts as holding without a score: it
        cannot win, and what set `under` holds. When `under` is already below the
        copy the search starts from, nothing is tried if the floor is no smaller.
        """
        if under < len(self.start) and self.floor() >= under:
            return None

        def score(index: int) -> float:
            data = self.make(index)
            if len(data) >= under and self.size(index) >= under:
                return EXACT_SCORE
            return self.bound.scorer.score(data)

        found = predicted_search(
            self.settings, score, self.bound.target, self.first, self.slack
        )
        if found is None or self.size(found) >= under:
            return None
        return self._choice(found)

    def _make(self, index: int) -> bytes:
        raise NotImplementedError

    def _choice(self, index: int) -> Choice:
        raise NotImplementedError


class LevelSearch(_Search):
    """gifsicle's lossy level on quick encodes of `start`, with `colours` (the
    arguments that reduce its colours, if any)."""

    settings = LEVELS
    first = FIRST_GUESS
    slack = SLACK

    def __init__(self, start: bytes, colours: list[str], bound: Bound) -> None:
        super().__init__(bound, start)
        self.colours = colours

    def _arguments(self, index: int) -> list[str]:
        return [*self.colours, f"--lossy={LEVELS[index]}"]

    def _make(self, index: int) -> bytes:
        arguments = [*SEARCH_ENCODE, *self._arguments(index)]
        return gifsicle(self.start, arguments, self.bound.deadline)

    def _choice(self, index: int) -> Choice:
        return Choice(self.start, self._arguments(index), self.make(index))


class ToleranceSearch(_Search):
    """The pixels that barely change made transparent, within a tolerance.

    A tolerance's copy is scored as made, and laid out by gifsicle before its
    size counts: gifsicle's frame optimization and LZW keep every pixel, and come
    1-45% smaller than Pillow's encoder on the corpus.
    """

    settings = TOLERANCES
    first = FIRST_TOLERANCE
    slack = TOLERANCE_SLACK

    def __init__(
        self, frames: gif_transparency.Frames, base: bytes, bound: Bound
    ) -> None:
        super().__init__(bound, base)
        self.frames = frames
        self.optimize = OPTIMIZE_LARGE if len(base) > LARGE else OPTIMIZE
        self._laid: dict[int, bytes] = {}

    def _make(self, index: int) -> bytes:
        turned, count = self.frames.transparent(TOLERANCES[index], self.bound.deadline)
        return turned if count else self.start

    def laid(self, index: int) -> bytes:
        """The copy at `index` laid out by gifsicle."""
        if index not in self._laid:
            made = self.make(index)
            self._laid[index] = (
                made
                if made is self.start
                else gifsicle(made, self.optimize, self.bound.deadline)
            )
        return self._laid[index]

    def size(self, index: int) -> int:
        return len(self.laid(index))

    def _choice(self, index: int) -> Choice:
        return Choice(self.laid(index), [], self.laid(index))


def lossy(
    reference: bytes, base: bytes, target: float, deadline: Deadline
) -> bytes | None:
    """The smallest lossy copy of `base` found to hold `target`, None if none does.

    Candidates are scored against the frames of `reference`, whose pixels `base`
    holds; `base` is the smaller of the input and gifsicle's exact layout, which
    the quick encodes keep. The level and the tolerance are searched; past LARGE
    bytes the level with fewer colours too, unless a copy held is already out of
    their reach, and the smallest pick encoded with gifsicle's frame optimization
    is kept when it is smaller still and holds.
    """
    bound = Bound(
        FrameScorer(
            reference,
            gif_blocks.read_layout(reference),
            BENCHMARK_FRAMES if len(base) > LARGE else SCORED_FRAMES,
            BENCHMARK_FRAMES,
            STILL,
        ),
        target,
        deadline,
    )
    held: list[Choice] = []

    def under() -> int:
        return min([len(base), *(len(choice.data) for choice in held)])

    def keep(choice: Choice | None) -> None:
        if choice is not None and len(choice.data) < under():
            held.append(choice)

    levels = LevelSearch(base, [], bound)
    searches: list[_Search] = [levels]
    frames = gif_transparency.Frames.read(base)
    if frames is not None:
        searches.append(ToleranceSearch(frames, base, bound))
    if len(searches) > 1:
        searches.sort(key=_Search.floor)
    for search in searches:
        keep(search.search(under()))
    if len(base) > LARGE and under() >= COLOUR_REACH * levels.floor():
        fewer = LevelSearch(base, ["--colors", str(COLOURS)], bound)
        # A file on no more than COLOURS colours comes out the same: its search
        # would only repeat the first.
        if fewer.make(0) != levels.make(0):
            keep(fewer.search(under()))
        relaid = _relaid(base, bound)
        if relaid is not None:
            keep(LevelSearch(relaid, [], bound).search(under()))
    if not held:
        return None
    best = min(held, key=lambda choice: len(choice.data))
    if len(base) <= LARGE or not best.arguments:
        return best.data
    optimized = gifsicle(best.start, [*OPTIMIZE_LARGE, *best.arguments], deadline)
    if len(optimized) < len(best.data) and bound.scorer.score(optimized) >= target:
        return optimized
    return best.data


def _relaid(base: bytes, bound: Bound) -> bytes | None:
    """`base` on RELAID_COLOURS colours and laid out anew, if that alone holds the
    target: the start of a further search, which may find copies smaller than the
    best so far even when this one is not."""
    arguments = [*OPTIMIZE_LARGE, "--colors", str(RELAID_COLOURS)]
    relaid = gifsicle(base, arguments, bound.deadline)
    if len(relaid) < len(base) and bound.scorer.score(relaid) >= bound.target:
        return relaid
    return None
