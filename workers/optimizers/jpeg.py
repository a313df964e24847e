"""The JPEG optimizer: exact recompression, or a perceptual search over quality.

Lossless keeps every DCT coefficient: mozjpeg re-codes the scans (progressive,
optimised Huffman tables) and the metadata is kept or stripped by editing marker
segments. Lossy hands back an exact copy when the input is already coarsely
quantised (re-encoding it would add loss for few bytes), re-coded by jpegtran,
which is about as small in less than half the time; otherwise it decodes
once and searches the quality of two encoders, jpegli at 4:2:0 and libjpeg-turbo
at 4:4:4 (tests/benchmarks/jpeg_encoders.py compares them), for the smallest
JPEG that holds the SSIMULACRA2 target, progressive from half a megapixel on.
The search runs on a mosaic of tiles picked across the image's range of detail,
and the full size is encoded once, at the quality the mosaic picked.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import mozjpeg_lossless_optimization
import numpy as np
import pyjpegli
from PIL import Image, JpegImagePlugin

from workers.optimizers import jpegtran
from workers.optimizers.base import Limits, Options, Result
from workers.optimizers.errors import CorruptFile
from workers.optimizers.imaging import (
    Metadata,
    fit_size,
    load,
    lossless_metadata,
    open_image,
    prepare,
)
from workers.optimizers.jpeg_markers import with_metadata
from workers.optimizers.metric import Reference, rgb_over_white

# The score every lossy JPEG is searched to: the floor is 70, and on the corpus
# the median lands near jpegoptim --max=85's (85.9) with a fifth fewer bytes.
TARGET = 85.0
# An input whose luminance table is as coarse as IJG quality KEEP_QUALITY or
# coarser is handed back exact: a re-encode that holds the target saves little.
KEEP_QUALITY = 80.0
QUALITIES = tuple(range(30, 99))
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
# Smaller lossy outputs stay baseline: there, re-coding jpegli's output
# progressive takes about as long as the whole search, for a tenth of a file of
# a few dozen kilobytes (libjpeg-turbo's progressive mode saves 2%).
PROGRESSIVE_FROM = 500_000
# A lossy result this close to the input's size (less the metadata the exact
# copy drops) is compared with the exact copy, which re-coding makes smaller.
CLOSE_TO_INPUT = 0.9

# Table K.1 of the JPEG standard: the luminance table that IJG quality scales.
_ANNEX_K_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
_SUBSAMPLED_420 = 2  # JpegImagePlugin.get_sampling's value for 4:2:0
# A lossless re-code of a JPEG's scans, without its markers.
Recode = Callable[[bytes], bytes]


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


class JpegOptimizer:
    """Optimizes JPEG files, lossless or within the perceptual target."""

    formats = frozenset({"jpeg"})

    def __init__(self, target: float = TARGET) -> None:
        self.target = target

    def probe(self, data: bytes, limits: Limits) -> Result:
        image = _open_jpeg(data, limits)
        return Result(data, "jpeg", image.width, image.height)

    def optimize(self, data: bytes, options: Options, limits: Limits) -> Result:
        image = _open_jpeg(data, limits)
        resized = fit_size(image.width, image.height, options.resize) != image.size
        if resized:
            return self._lossy(data, image, options, limits)
        if options.lossless:
            return _lossless(data, image, options, _mozjpeg)
        if _already_coarse(image):
            return _lossless(data, image, options, _quick_recode(limits))
        return self._lossy(data, image, options, limits)

    def _lossy(
        self, data: bytes, image: Image.Image, options: Options, limits: Limits
    ) -> Result:
        resized = fit_size(image.width, image.height, options.resize) != image.size
        encoders = _encoders_for(image, resized)
        prepared = prepare(image, options)
        pixels = prepared.image
        encoded = _search(pixels, prepared.metadata, self.target, encoders)
        width, height = pixels.size
        if resized:
            return Result(encoded, "jpeg", width, height)
        # The exact copy is at most the input less its dropped metadata; it is
        # made, at the cost of a mozjpeg pass, only where it may be smaller.
        kept = lossless_metadata(image, options.preserve)
        stripped = with_metadata(data, kept.exif, kept.icc)
        if len(encoded) >= len(stripped) * CLOSE_TO_INPUT:
            exact = _lossless(data, image, options, _quick_recode(limits))
            if len(exact.data) <= len(encoded):
                return exact
        return Result(encoded, "jpeg", width, height)


def _open_jpeg(data: bytes, limits: Limits) -> Image.Image:
    image = open_image(data, limits)
    if image.format != "JPEG":
        raise CorruptFile("The file is not a JPEG.")
    return image


def input_quality(image: Image.Image) -> float | None:
    """The IJG quality whose luminance table is as coarse as the input's, or None.

    The tables' sums are compared, as IJG quality scales Table K.1: 50 is the
    table itself, 100 all ones; tables of other encoders land where they weigh.
    """
    tables = getattr(image, "quantization", None) or {}
    luminance = tables.get(0)
    if not luminance or len(luminance) != 64:
        return None
    scale = 100.0 * sum(luminance) / sum(_ANNEX_K_LUMINANCE)
    return (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale


def _already_coarse(image: Image.Image) -> bool:
    """Whether re-encoding can only add loss for few bytes: a coarse RGB or grey.

    CMYK and YCCK gain by re-encoding at any quality: three channels, and
    subsampled chroma, take fewer bytes than four.
    """
    quality = input_quality(image)
    return image.mode != "CMYK" and quality is not None and quality <= KEEP_QUALITY


def _encoders_for(image: Image.Image, resized: bool) -> tuple[str, ...]:
    """The encoders worth searching (`_likelier_first` orders them).

    Grey takes libjpeg-turbo alone (jpegli here takes RGB only). An input at
    4:2:0 holds no more chroma than jpegli keeps, unless a resize sharpens it;
    one at full-resolution chroma may hold colour edges that 4:2:0 blurs below
    the target at any quality, so both are worth a look there.
    """
    if image.mode in ("L", "LA", "I", "I;16", "1"):
        return ("444",)
    if resized:
        return ENCODERS
    if image.mode == "RGB" and JpegImagePlugin.get_sampling(image) == _SUBSAMPLED_420:
        return ("jpegli",)
    return ("444", "jpegli")


def _lossless(
    data: bytes, image: Image.Image, options: Options, recode: Recode
) -> Result:
    """Every coefficient kept; only the entropy coding and the metadata change.

    `recode` re-codes the scans and drops every marker (ValueError if it cannot).
    """
    metadata = lossless_metadata(image, options.preserve)
    width, height = image.size
    # A truncated or broken scan must fail here, not be padded. Decoding at an
    # eighth of the size still reads every coefficient, for a fraction of the work.
    image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
    load(image)
    try:
        recoded = recode(data)
    except ValueError as error:
        raise CorruptFile("The JPEG data does not decode.") from error
    candidates = [
        with_metadata(recoded, metadata.exif, metadata.icc),
        with_metadata(data, metadata.exif, metadata.icc),
        data,
    ]
    return Result(min(candidates, key=len), "jpeg", width, height)


def _mozjpeg(data: bytes) -> bytes:
    """mozjpeg's lossless re-code: the smallest, trying many scan scripts."""
    return mozjpeg_lossless_optimization.optimize(data)


def _quick_recode(limits: Limits) -> Recode:
    """jpegtran's re-code within the time limit; mozjpeg's where jpegtran is
    missing or refuses the input.

    About 1% larger than mozjpeg's in under half the time: for the exact copies
    of the lossy optimizer, which weigh time against bytes.
    """

    def recode(data: bytes) -> bytes:
        recoded = jpegtran.recode(data, limits.time_limit)
        return _mozjpeg(data) if recoded is None else recoded

    return recode


def encode(image: Image.Image, setting: Setting, metadata: Metadata) -> bytes:
    """The progressive JPEG of one setting, carrying `metadata`."""
    if setting.encoder == "jpegli":
        baseline = _baseline(image, setting)
        progressive = mozjpeg_lossless_optimization.optimize(baseline)
        return with_metadata(progressive, metadata.exif, metadata.icc)
    extra = metadata.save_arguments()
    return _turbo(image, setting.quality, progressive=True, **extra)


def _final(image: Image.Image, setting: Setting, metadata: Metadata) -> bytes:
    """The output: progressive from PROGRESSIVE_FROM pixels on, baseline below."""
    if image.width * image.height >= PROGRESSIVE_FROM:
        return encode(image, setting, metadata)
    return with_metadata(_baseline(image, setting), metadata.exif, metadata.icc)


def _baseline(image: Image.Image, setting: Setting) -> bytes:
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
            data = _baseline(self.proxy, setting)
            with Image.open(io.BytesIO(data)) as decoded:
                score = self.reference.score(rgb_over_white(decoded))
            size = round(len(data) * _PROGRESSIVE_GAIN[setting.encoder])
            self.trials[setting] = Trial(size, score)
        return self.trials[setting]


def _search(
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
            return _final(image, found, metadata)
    tops = [Setting(QUALITIES[-1], encoder) for encoder in encoders]
    return _final(image, max(tops, key=lambda top: trial(top).score), metadata)


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
