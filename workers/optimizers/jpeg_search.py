"""The lossy JPEG search: the lowest quality of the likelier encoder that holds
the target, found on a mosaic of tiles.

The tiles are picked across the image's range of detail, so that the proxy
holds flat, middling and busy parts in the image's proportions; each setting is
encoded once on it as a baseline JPEG and scored, and the full size is encoded
once, at the setting the proxy picked.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from workers.optimizers.imaging import Metadata
from workers.optimizers.jpeg_encode import QUALITIES, Setting, baseline, final
from workers.optimizers.metric import Reference, rgb_over_white

# The proxy: PROXY_PIXELS / PROXY_TILE**2 tiles, each a whole number of 16-pixel
# blocks. On the corpus, its score runs about PROXY_BIAS above the full size's.
PROXY_PIXELS = 64 * 64 * 16
PROXY_TILE = 64
PROXY_BIAS = 1.0
# Score points gained per quality step near the target, for the first stride.
SLOPE = 0.7
# A passing trial this close to the aim ends the search: a quality step or two
# below it would save a few percent, for one or two more trials; on the corpus
# it takes a sixth fewer trials for 1% more bytes.
CLOSE_ENOUGH = 1.0
# The size of `encode`'s progressive output over the baseline's, on the corpus.
_PROGRESSIVE_GAIN = {"jpegli": 0.92, "444": 0.98}
# Where each encoder's search starts: about where the corpus holds the target.
_FIRST_GUESS = {"jpegli": 89, "444": 82}
# Chroma detail (see chroma_detail) from which libjpeg-turbo's 4:4:4 is searched
# first without a trial of each, and up to which jpegli is: on the corpus, all
# images over 2 but one (by a few percent) were smaller at 4:4:4, and those under
# 1.2 smaller with jpegli or even, at full size.
SHARP_CHROMA = 2.0
FLAT_CHROMA = 1.2
# How much smaller an encode gets per score point given up, near the target:
# the log of bytes over the score, on the corpus.
SIZE_PER_POINT = 0.09


@dataclass(frozen=True)
class Trial:
    """One setting tried on the proxy: the bytes of its encode and its score."""

    size: int
    score: float


class ProxyTrials:
    """Each setting encoded once on the proxy and scored against it.

    A trial's size is the baseline encode's, scaled by what the progressive
    re-coding of `encode` saves on the corpus, so encoders compare as they ship.
    """

    def __init__(self, proxy: Image.Image) -> None:
        self.proxy = proxy
        self.reference = Reference(rgb_over_white(proxy))
        self.trials: dict[Setting, Trial] = {}

    def __call__(self, setting: Setting) -> Trial:
        if setting not in self.trials:
            data = baseline(self.proxy, setting)
            with Image.open(io.BytesIO(data)) as decoded:
                score = self.reference.score(rgb_over_white(decoded))
            size = round(len(data) * _PROGRESSIVE_GAIN[setting.encoder])
            self.trials[setting] = Trial(size, score)
        return self.trials[setting]


def search(
    image: Image.Image, metadata: Metadata, target: float, encoders: tuple[str, ...]
) -> bytes:
    """The full-size encode at the cheapest setting that holds `target` on the proxy.

    A proxy that samples the image aims PROXY_BIAS higher. Only the encoder
    likelier to be smaller is searched, the other only if it cannot reach the
    aim; when neither can, the higher top score wins.
    """
    proxy = proxy_mosaic(image)
    aim = target if proxy is image else target + PROXY_BIAS
    trial = ProxyTrials(proxy)
    for encoder in _likelier_first(trial, encoders, aim):
        found = lowest_passing(trial, encoder, aim, _FIRST_GUESS[encoder])
        if found is not None:
            return final(image, found, metadata)
    tops = [Setting(QUALITIES[-1], encoder) for encoder in encoders]
    return final(image, max(tops, key=lambda top: trial(top).score), metadata)


def _likelier_first(
    trial: ProxyTrials, encoders: tuple[str, ...], aim: float
) -> tuple[str, ...]:
    """The encoders, the one likelier to be smaller at the aim first.

    Chroma detail that 4:2:0 would blur settles it when there is much or
    almost none (a trial costs as much as a tenth of the whole search);
    otherwise one trial each, at its first guess, is moved to the aim along the
    corpus's usual trade of bytes for score, and those trials start the search.
    """
    if set(encoders) != {"jpegli", "444"}:
        return encoders
    detail = chroma_detail(trial.proxy)
    if detail >= SHARP_CHROMA:
        return ("444", "jpegli")
    if detail <= FLAT_CHROMA:
        return ("jpegli", "444")

    def estimate(encoder: str) -> float:
        first = trial(Setting(_FIRST_GUESS[encoder], encoder))
        return first.size * math.exp(SIZE_PER_POINT * (aim - first.score))

    return tuple(sorted(encoders, key=estimate))


def chroma_detail(image: Image.Image) -> float:
    """The RMS of what 4:2:0 takes from the chroma: Cb and Cr less their 2x2 means."""
    height, width = image.height // 2 * 2, image.width // 2 * 2
    if height == 0 or width == 0:
        return 0.0
    ycbcr = np.asarray(image.convert("YCbCr"))[:height, :width]
    chroma = ycbcr[:, :, 1:].astype(np.float32)
    # OpenCV's area average and its nearest-neighbour upscale take a tenth of the
    # time of NumPy's mean over the blocks' axes, for the same means.
    means = cv2.resize(chroma, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    blocks = cv2.resize(means, (width, height), interpolation=cv2.INTER_NEAREST)
    spread = chroma - blocks
    return float(np.sqrt(np.mean(spread * spread)))


def lowest_passing(
    trial: Callable[[Setting], Trial], encoder: str, aim: float, start: int
) -> Setting | None:
    """The lowest quality of `encoder` whose trial scores `aim`, or None.

    Steps from `start` by the score still missing over SLOPE, then by the slope
    the trials show, and narrows the bracket by interpolating its ends; a pass
    within CLOSE_ENOUGH of the aim is taken as it comes. None when the highest
    quality falls short.
    """
    lowest, highest = QUALITIES[0], QUALITIES[-1]
    scores: dict[int, float] = {}
    failing, passing = lowest - 1, None
    quality = min(max(start, lowest), highest)
    while True:
        result = trial(Setting(quality, encoder))
        scores[quality] = result.score
        if result.score >= aim:
            passing = quality
            if result.score < aim + CLOSE_ENOUGH:
                return Setting(passing, encoder)
        else:
            failing = quality
        if passing is not None and passing - failing <= 1:
            return Setting(passing, encoder)
        if passing is None and failing >= highest:
            return None
        quality = _next_quality(scores, failing, passing, aim, quality)


def _next_quality(
    scores: dict[int, float],
    failing: int,
    passing: int | None,
    aim: float,
    last: int,
) -> int:
    """The next quality to try, strictly inside the bracket (failing, passing)."""
    upper = QUALITIES[-1] if passing is None else passing - 1
    if failing in scores and passing is not None:
        low, high = scores[failing], scores[passing]
        fraction = (aim - low) / (high - low) if high > low else 0.5
        guess = failing + math.ceil(fraction * (passing - failing))
    else:
        slope = _slope(scores)
        guess = last + math.ceil((aim - scores[last]) / slope)
        if scores[last] >= aim:
            guess = last - max(1, math.floor((scores[last] - aim) / slope))
    return min(max(guess, failing + 1), upper)


def _slope(scores: dict[int, float]) -> float:
    """Score points per quality step between the two latest trials, or SLOPE."""
    if len(scores) < 2:
        return SLOPE
    (a, score_a), (b, score_b) = list(scores.items())[-2:]
    slope = (score_b - score_a) / (b - a)
    return slope if slope > SLOPE / 4 else SLOPE


def proxy_mosaic(
    image: Image.Image, budget: int = PROXY_PIXELS, tile: int = PROXY_TILE
) -> Image.Image:
    """Tiles picked across the image's range of detail, side by side.

    SSIMULACRA2 weighs the worst areas heavily, so tiles picked by position
    miss or overweight them; tiles are ranked by activity (the absolute
    differences of neighbouring luma) and taken at evenly spaced ranks, so that
    flat, middling and busy parts come in the image's proportions. Tiles follow
    the 16-pixel block grid, so encoders quantise them as they would the image.
    An image within twice the budget is its own proxy: its exact scores are
    worth more than the time a proxy of half its size saves.
    """
    width, height = image.size
    columns, rows = width // tile, height // tile
    count = max(1, budget // (tile * tile))
    if width * height <= 2 * budget or columns * rows <= 2 * count:
        return image
    activity = _tile_activity(image, tile, columns, rows)
    order = np.argsort(activity, axis=None, kind="stable")
    picks = [int(order[(2 * i + 1) * len(order) // (2 * count)]) for i in range(count)]
    across = math.ceil(math.sqrt(count))
    down = math.ceil(count / across)
    mosaic = Image.new(image.mode, (across * tile, down * tile))
    for slot in range(across * down):
        row, column = divmod(picks[slot % count], columns)
        box = (column * tile, row * tile, (column + 1) * tile, (row + 1) * tile)
        mosaic.paste(image.crop(box), ((slot % across) * tile, (slot // across) * tile))
    return mosaic


def _tile_activity(
    image: Image.Image, tile: int, columns: int, rows: int
) -> np.ndarray:
    """The mean absolute luma difference between neighbours in each tile."""
    # Every other row and column: the ranking does not need them all.
    luma = np.asarray(image.convert("L"))[: rows * tile : 2, : columns * tile : 2]
    luma = np.ascontiguousarray(luma)
    size = (columns, rows)
    activity = np.zeros((rows, columns), dtype=np.float32)
    for difference in (
        cv2.absdiff(luma[:, 1:], luma[:, :-1]),
        cv2.absdiff(luma[1:], luma[:-1]),
    ):
        activity += cv2.resize(
            difference.astype(np.float32), size, interpolation=cv2.INTER_AREA
        )
    return activity
