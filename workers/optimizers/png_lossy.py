"""The lossy PNG search: the smallest candidate that holds the target score.

Families of candidates: libimagequant palettes searched by quality, and
truecolour whose Average (or, on screenshots, Up) filter residuals are snapped
to a step (residuals.py), searched by step. Each family's first guess tells how
promising it is; the promising ones are searched to the target, and the
smallest result wins. Large images are scored on a mosaic (png_mosaic.py), with
a margin. The score is SSIMULACRA2 with alpha over white.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from workers.optimizers.palette import QuantizeFailed, quantize
from workers.optimizers.png_encode import (
    LOSSY_LEVEL,
    LOW_DEPTH_LEVEL,
    Extra,
    encode_palette,
    encode_truecolour,
    estimated_palette_size,
    estimated_truecolour_size,
    image_of,
    snapped_png,
)
from workers.optimizers.png_mosaic import UNCONFIRMED_MARGIN, Scorer
from workers.optimizers.residuals import AVERAGE, UP, snap

# libimagequant qualities, lowest first; near the target the score rises about
# QUALITY_SLOPE a quality. The colours stop growing at MAX_COLOURS.
QUALITIES = tuple(range(0, 101))
FIRST_QUALITY_GUESS = 80
QUALITY_SLOPE = 0.7
MAX_COLOURS = 256
# Error diffusion costs more bytes than it buys score at the same target.
DITHERING = 0.0
# Residual steps, coarsest (smallest output) first; near the target the score
# rises about STEP_SLOPE a setting.
STEPS = tuple(step / 4 for step in range(160, 5, -1))
FIRST_STEP_GUESS = {UP: 16.0, AVERAGE: 11.5}
STEP_SLOPE = 0.7
# Up snapping is tried on images where at least this share of the pixels equal
# the one above (screenshots; photographs have under a fifth).
FLAT_SHARE = 0.3
# An image of at most this many colours is stored exactly as a palette.
FEW_COLOURS = 16
# A search stops at a setting that holds the target within TOLERANCE, after at
# most MAX_TRIALS scores.
TOLERANCE = 0.8
MAX_TRIALS = 6
# Candidates a family keeps at hand (others are made again if wanted).
KEPT_CANDIDATES = 3
# A family whose first guess, its size corrected by a rate per point of score
# off the target, looks more than MARGIN larger than the best one's is dropped.
PALETTE_RATE = 0.03
SNAP_RATE = 0.02
MARGIN = 0.05
# A family is searched only if its outlook is within CLOSE of the best size
# found so far, and gives up once a setting that fails is estimated over it.
CLOSE = 0.02


def _first_holding(
    count: int,
    score: Callable[[int], float],
    target: float,
    start: int,
    slope: float,
    dead_end: Callable[[int], bool] = lambda index: False,
    low: int = 0,
) -> int | None:
    """The lowest index from `low` to `count` whose score holds `target`.

    Scores rise with the index, by about `slope` per index near the target. The
    search aims at the middle of the window from the target to TOLERANCE above
    it: it steps from the guess `start` by the score's distance to the aim,
    then interpolates between the nearest indices known on either side, and
    stops at an index that holds within TOLERANCE or next to one that does not.
    A setting that fails at a `dead_end` (no later one can do better) ends it.
    """
    aim = target + TOLERANCE / 2
    known: dict[int, float] = {}
    index = min(max(start, low), count - 1)
    for _ in range(MAX_TRIALS):
        known[index] = score(index)
        if known[index] < target and dead_end(index):
            return None
        passing = [i for i, value in known.items() if value >= target]
        lowest = min(passing, default=None)
        highest = max(
            (
                i
                for i, v in known.items()
                if v < target and (lowest is None or i < lowest)
            ),
            default=low - 1,
        )
        if lowest is not None and (
            known[lowest] - target <= TOLERANCE or lowest - highest == 1
        ):
            return lowest
        rise = _slope(known, slope)
        if lowest is None:
            if index == count - 1:
                return None
            jump = (aim - known[index]) / rise
            index = min(count - 1, index + max(1, round(jump)))
        elif highest < low:
            jump = (known[lowest] - aim) / rise
            index = max(low, lowest - max(1, round(jump)))
        else:
            index = _between(highest, lowest, known, aim)
    return min((i for i, value in known.items() if value >= target), default=None)


def _slope(known: dict[int, float], prior: float) -> float:
    """The score's rise per index between the last two tried, near the prior."""
    if len(known) < 2:
        return prior
    (a, score_a), (b, score_b) = list(known.items())[-2:]
    measured = (score_b - score_a) / (b - a)
    return min(max(measured, prior / 3), prior * 3)


def _between(failing: int, passing: int, known: dict[int, float], target: float) -> int:
    """An index strictly between two, where the scores' line crosses the target."""
    low, high = known[failing], known[passing]
    fraction = 0.5 if high <= low else (target - low) / (high - low)
    guess = failing + round(fraction * (passing - failing))
    return min(max(guess, failing + 1), passing - 1)


@dataclass
class _Candidate:
    """A full-size output under consideration: its pixels as an image to score
    (made when asked, so that only the compact form stays in memory), a way to
    encode it and a quick estimate of its size."""

    render: Callable[[], Image.Image]
    encode: Callable[[], bytes]
    estimator: Callable[[], int]
    estimated: int | None = None

    def image(self) -> Image.Image:
        return self.render()

    def estimate(self) -> int:
        """About the size of the output, computed once."""
        if self.estimated is None:
            self.estimated = self.estimator()
        return self.estimated


@dataclass
class _Family:
    """One kind of candidate, its settings ordered from the smallest output up.

    `make` builds the full-size candidate of a setting and `score` rates one
    (on the mosaic for a big image). Scores are kept; candidates only the last
    KEPT_CANDIDATES made, since a big image's weigh tens of megabytes.
    """

    settings: Sequence[float]
    start: int
    slope: float
    rate: float
    make: Callable[[float], _Candidate]
    score: Callable[[Image.Image], float]
    saturated: Callable[[int], bool] = lambda index: False
    candidates: dict[int, _Candidate] = field(default_factory=dict)
    scores: dict[int, float] = field(default_factory=dict)

    def candidate(self, index: int) -> _Candidate:
        if index not in self.candidates:
            self.candidates[index] = self.make(self.settings[index])
            while len(self.candidates) > KEPT_CANDIDATES:
                del self.candidates[next(iter(self.candidates))]
        return self.candidates[index]

    def quick(self, index: int) -> float:
        if index not in self.scores:
            self.scores[index] = self.score(self.candidate(index).image())
        return self.scores[index]

    def outlook(self, target: float) -> float:
        """The size the family's first guess suggests it will need at `target`.

        The guess's own size, grown or shrunk by `rate` per point of score it
        lacks or has over the target; infinite if it cannot get there.
        """
        value = self.quick(self.start)
        if value < target and self.saturated(self.start):
            return math.inf
        size = self.candidate(self.start).estimate()
        return size * max(0.5, 1.0 + self.rate * (target - value))


class LossySearch:
    """The smallest candidate holding the target, over palettes and snapping.

    Every family tries its first guess. In the order of their outlooks, the
    families are searched to the target while their outlook stays within CLOSE
    of the best size found (and MARGIN of the best outlook). An image of few
    colours is stored exactly; one of at most 256 also has its exact palette
    among the candidates.
    """

    def __init__(
        self, pixels: Image.Image, target: float, extra: Extra, timeout: int
    ) -> None:
        self.image = _reduced(pixels)
        self.pixels = np.asarray(self.image)
        self.target = target
        self.extra = extra
        self.timeout = timeout
        self.scorer = Scorer(pixels)

    def run(self) -> bytes:
        colours = self.image.getcolors(MAX_COLOURS)
        exact = None
        if colours is not None and len(colours) <= FEW_COLOURS:
            return encode_truecolour(
                self.pixels,
                self.extra,
                LOW_DEPTH_LEVEL,
                self.timeout,
                fast_evaluation=False,
            )
        if colours is not None:
            exact = encode_truecolour(
                self.pixels, self.extra, LOSSY_LEVEL, self.timeout
            )
        families = self._families()
        self.scorer.choose_tiles(
            [family.candidate(family.start).image() for family in families]
        )
        outlooks = [family.outlook(self.target) for family in families]
        ranked = sorted(zip(outlooks, range(len(families)), families, strict=True))
        holding: list[_Candidate] = []
        for outlook, _, family in ranked:
            best = min((c.estimate() for c in holding), default=math.inf)
            if outlook > min(best, ranked[0][0] * (1 + MARGIN)) * (1 + CLOSE):
                break
            found = self._search(family, best)
            if found is not None:
                holding.append(found)
        if not holding:
            return exact or encode_truecolour(
                self.pixels, self.extra, LOSSY_LEVEL, self.timeout
            )
        out = min(holding, key=lambda candidate: candidate.estimate()).encode()
        return out if exact is None else min(out, exact, key=len)

    def _search(self, family: _Family, bound: float) -> _Candidate | None:
        """The family's first setting that holds the target (on a mosaic, with
        UNCONFIRMED_MARGIN to spare), or None.

        The search gives up once a setting that fails is estimated larger than
        `bound`, since every setting that holds is larger still.
        """

        def dead_end(index: int) -> bool:
            if family.saturated(index):
                return True
            return bound < math.inf and family.candidate(index).estimate() > bound

        aim = self.target + (UNCONFIRMED_MARGIN if self.scorer.big else 0.0)
        index = _first_holding(
            len(family.settings),
            family.quick,
            aim,
            family.start,
            family.slope,
            dead_end,
        )
        return None if index is None else family.candidate(index)

    def _families(self) -> list[_Family]:
        """Palettes, Average snapping, and Up snapping where it can pay: on an
        image with rows of flat colour, such as a screenshot. Not on a mosaic:
        the errors it leaves run down long columns, which tiles cut short, and
        the mosaic's score runs far above the whole image's."""
        families = [self._palette_family(), self._snap_family(AVERAGE)]
        if _flat_share(self.pixels) >= FLAT_SHARE and not self.scorer.big:
            families.append(self._snap_family(UP))
        return families

    def _palette_family(self) -> _Family:
        rgba = self.image.convert("RGBA")
        counts: dict[int, int] = {}

        def make(quality: float) -> _Candidate:
            try:
                (palette,) = quantize(
                    rgba, max_quality=int(quality), dithering=(DITHERING,)
                )
            except QuantizeFailed:
                palette = None
            counts[int(quality)] = 0 if palette is None else len(palette.palette)
            if palette is None:
                blank = Image.new("RGB", rgba.size)
                return _Candidate(lambda: blank, _no_output, _no_size)
            return _Candidate(
                palette.to_image,
                lambda: encode_palette(palette, self.extra, LOSSY_LEVEL, self.timeout),
                lambda: estimated_palette_size(palette),
            )

        def saturated(index: int) -> bool:
            return counts.get(QUALITIES[index], 0) in (0, MAX_COLOURS)

        start = QUALITIES.index(FIRST_QUALITY_GUESS)
        return _Family(
            QUALITIES,
            start,
            QUALITY_SLOPE,
            PALETTE_RATE,
            make,
            self.scorer.quick,
            saturated,
        )

    def _snap_family(self, predictor: str) -> _Family:
        keep_flat = predictor == UP

        def make(step: float) -> _Candidate:
            snapped = snap(self.pixels, step, predictor, keep_flat)
            return _Candidate(
                lambda: image_of(snapped),
                lambda: snapped_png(snapped, self.extra, predictor),
                lambda: estimated_truecolour_size(snapped, predictor),
            )

        start = STEPS.index(FIRST_STEP_GUESS[predictor])
        return _Family(STEPS, start, STEP_SLOPE, SNAP_RATE, make, self.scorer.quick)


def _flat_share(pixels: np.ndarray) -> float:
    """The share of pixels equal to the one above them."""
    same = pixels[1:] == pixels[:-1]
    if same.ndim == 3:
        same = same.all(axis=2)
    return float(same.mean()) if same.size else 0.0


def _no_output() -> bytes:
    raise QuantizeFailed("no palette")


def _no_size() -> int:
    return 1 << 62


def _reduced(image: Image.Image) -> Image.Image:
    """The image without an alpha channel that is opaque everywhere, and as grey
    if it is grey: fewer channels to search and to code."""
    if image.mode in ("LA", "RGBA"):
        alpha = image.getchannel("A")
        if alpha.getextrema() == (255, 255):
            image = image.convert(image.mode[:-1])
    if image.mode == "RGB":
        red, green, blue = (np.asarray(band) for band in image.split())
        if np.array_equal(red, green) and np.array_equal(green, blue):
            image = image.convert("L")
    return image
