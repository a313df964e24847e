"""The PNG optimizer: oxipng for exact copies, a perceptual search for lossy ones.

Lossless keeps every pixel and lets oxipng pick colour type, filters and deflate,
with the metadata chunks preserve_metas keeps. Lossy looks for the smallest file
that holds the target score among families of candidates: libimagequant palettes
searched by quality, and truecolour whose Average (or, on screenshots, Up) filter
residuals are snapped to a step (residuals.py), searched by step. Each family's
first guess tells how promising it is; the promising ones are searched to the
target, and the smallest result wins. Large images are scored on a mosaic of
tiles, with a margin. The score is SSIMULACRA2 with alpha over white.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import deflate
import numpy as np
import oxipng
from PIL import Image

from workers.optimizers.base import Limits, Options, Result
from workers.optimizers.errors import CorruptFile
from workers.optimizers.imaging import (
    Metadata,
    check_frames,
    kept_exif,
    load,
    open_image,
    prepare,
)
from workers.optimizers.metric import Reference, rgb_over_white
from workers.optimizers.palette import Quantized, QuantizeFailed, quantize
from workers.optimizers.png_chunks import (
    Chunk,
    colour_chunks,
    exif_body,
    is_animated,
    kept_chunks,
    read_chunks,
    text_chunks,
    write_chunks,
)
from workers.optimizers.residuals import AVERAGE, UP, snap

# The score every lossy PNG is searched to: the corpus median lands near 77, the
# peer's (pngquant 65-80), while no file falls under the floor of 70.
TARGET = 77.0
# oxipng's presets: for exact copies (evaluating filters quickly), for exact
# copies of under 8 bits a pixel (evaluating them in full), and for lossy
# outputs, whose pixels were chosen to compress.
LOSSLESS_LEVEL = 5
LOW_DEPTH_LEVEL = 4
LOSSY_LEVEL = 2
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
# Images above PROXY_FROM pixels (whose reference would take the metric over a
# gigabyte) are scored on a mosaic of MOSAIC_ROWS by MOSAIC_COLUMNS tiles TILE
# wide, and must hold UNCONFIRMED_MARGIN above the target there. Above
# LOSSY_MAX_PIXELS a lossy copy is exact: even that search would need more
# memory than a worker should take.
PROXY_FROM = 4_500_000
TILE = 512
MOSAIC_ROWS = 2
MOSAIC_COLUMNS = 3
UNCONFIRMED_MARGIN = 2.0
LOSSY_MAX_PIXELS = 30_000_000
# Candidates a family keeps at hand (others are made again if wanted).
KEPT_CANDIDATES = 3
# Candidates are sized by a quick deflate at this level, scaled by what the
# final encoding gains over it on each kind of image.
ESTIMATE_LEVEL = 6
PALETTE_RATIO = 0.95
TRUECOLOUR_RATIO = 0.87
# The deflate level snapped truecolour is written with (libdeflate's 10 and up
# search matches thoroughly; oxipng's preset 2 uses 11).
SNAPPED_LEVEL = 10
# A family whose first guess, its size corrected by a rate per point of score
# off the target, looks more than MARGIN larger than the best one's is dropped.
PALETTE_RATE = 0.03
SNAP_RATE = 0.02
MARGIN = 0.05
# A family is searched only if its outlook is within CLOSE of the best size
# found so far, and gives up once a setting that fails is estimated over it.
CLOSE = 0.02
_COLOUR_TYPES = {
    1: oxipng.ColorType.grayscale,
    2: oxipng.ColorType.grayscale_alpha,
    3: oxipng.ColorType.rgb,
    4: oxipng.ColorType.rgba,
}
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}


class PngOptimizer:
    """PNG in, PNG out: exact with oxipng, or the smallest that holds the score."""

    formats = frozenset({"png"})

    def __init__(self, target: float = TARGET) -> None:
        self.target = target

    def probe(self, data: bytes, limits: Limits) -> Result:
        image = open_image(data, limits)
        check_frames(image, limits)
        return Result(data, "png", image.width, image.height)

    def optimize(self, data: bytes, options: Options, limits: Limits) -> Result:
        chunks = read_chunks(data)
        image = open_image(data, limits)
        check_frames(image, limits)
        timeout = max(1, int(limits.time_limit / 4))
        if is_animated(chunks) or (options.lossless and not _shrinks(image, options)):
            out = _exact_copy(image, chunks, options.preserve, timeout)
            return Result(min(out, data, key=len), "png", image.width, image.height)

        # Decode first: prepare reads EXIF, which makes Pillow decode a PNG and
        # swallows the error of a broken one.
        prepared = prepare(_with_alpha(load(image)), options)
        pixels = prepared.image
        extra = _Extra(
            _extra_chunks(chunks, options, prepared.metadata), prepared.metadata.icc
        )
        if options.lossless or pixels.width * pixels.height > LOSSY_MAX_PIXELS:
            out = _encode_truecolour(np.asarray(pixels), extra, LOSSY_LEVEL, timeout)
        else:
            out = _LossySearch(pixels, self.target, extra, timeout).run()
        if len(out) >= len(data) and pixels.size == image.size:
            out = data
        return Result(out, "png", pixels.width, pixels.height)


def _exact_copy(
    image: Image.Image, chunks: list[Chunk], preserve: frozenset[str], timeout: int
) -> bytes:
    """The file's own pixels (every frame) recompressed, with the chunks kept.

    Interlacing goes: it only changes the order rows arrive in, and costs bytes.
    oxipng's fast evaluation ranks the filters by a quick deflate, which
    misjudges images of under 8 bits a pixel (scans, icons): those are
    evaluated in full at a lower level.
    """
    exif = kept_exif(image, preserve, keep_orientation=True)
    kept = write_chunks(_with_exif(kept_chunks(chunks, preserve, exif), exif))
    header = chunks[0][1] if chunks and chunks[0][0] == b"IHDR" else b""
    if len(header) == 13 and header[8] < 8:
        return _oxipng(kept, LOW_DEPTH_LEVEL, timeout, fast_evaluation=False)
    return _oxipng(kept, LOSSLESS_LEVEL, timeout)


def _with_alpha(image: Image.Image) -> Image.Image:
    """Grey or RGB with a tRNS colour key, as LA or RGBA: prepare would drop it."""
    if image.mode not in ("L", "RGB") or "transparency" not in image.info:
        return image
    info = {k: v for k, v in image.info.items() if k != "transparency"}
    converted = image.convert("LA" if image.mode == "L" else "RGBA")
    converted.info = info
    return converted


@dataclass(frozen=True)
class _Extra:
    """What a copy re-encoded from pixels carries besides them."""

    chunks: list[Chunk] = field(default_factory=list)
    icc: bytes | None = None


_NO_EXTRA = _Extra()


class _Scorer:
    """Scores candidates against the original; big images also on a mosaic.

    `quick` scores a full-size candidate on the whole image, or, for a big one
    whose reference would take the metric gigabytes, on a mosaic of tiles that
    stands for it. The tiles are chosen once the first candidates are known:
    half where they differ most from the original, since the score dwells on
    the worst areas, and half spread evenly over the image. They are large, so
    that the metric's coarse scales still see what they see on the whole.
    """

    def __init__(self, image: Image.Image) -> None:
        self.original = rgb_over_white(image)
        height, width = self.original.shape[:2]
        self.big = height * width > PROXY_FROM and min(height, width) >= 2 * TILE
        self.tiles: list[tuple[int, int]] = []
        self.proxy = None if self.big else Reference(self.original)

    def choose_tiles(self, candidates: Sequence[Image.Image]) -> None:
        """Pick the mosaic's tiles from where these candidates are worst."""
        if not self.big:
            return
        down, across = self.original.shape[0] // TILE, self.original.shape[1] // TILE
        badness = np.zeros((down, across))
        for candidate in candidates:
            errors = _tile_errors(self.original, rgb_over_white(candidate))
            badness += errors / max(float(errors.mean()), 1e-9)
        worst = [divmod(int(i), across) for i in np.argsort(-badness, axis=None)]
        spread = [
            (int(row), int(column))
            for row in np.linspace(0, down - 1, MOSAIC_ROWS).round()
            for column in np.linspace(0, across - 1, MOSAIC_COLUMNS).round()
        ]
        count = MOSAIC_ROWS * MOSAIC_COLUMNS
        chosen = dict.fromkeys(worst[: count // 2])
        for tile in spread + worst:
            if len(chosen) == count:
                break
            chosen.setdefault(tile)
        self.tiles = list(chosen)
        self.proxy = Reference(self.mosaic(self.original))

    def mosaic(self, pixels: np.ndarray) -> np.ndarray:
        """The chosen tiles of (height, width[, n]) pixels, in rows of a mosaic."""
        if not self.tiles:
            return pixels
        tiles = [
            pixels[row * TILE : (row + 1) * TILE, column * TILE : (column + 1) * TILE]
            for row, column in self.tiles
        ]
        rows = [
            np.concatenate(tiles[i : i + MOSAIC_COLUMNS], axis=1)
            for i in range(0, len(tiles), MOSAIC_COLUMNS)
        ]
        return np.concatenate(rows)

    def quick(self, image: Image.Image) -> float:
        if self.proxy is None:
            raise RuntimeError("choose the mosaic's tiles before scoring on it")
        if not self.tiles:
            return self.proxy.score(rgb_over_white(image))
        tiles = Image.fromarray(self.mosaic(np.asarray(image)), image.mode)
        return self.proxy.score(rgb_over_white(tiles))


def _tile_errors(original: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """The mean squared error of each whole tile of (height, width, 3) pixels."""
    down, across = original.shape[0] // TILE, original.shape[1] // TILE
    height, width = down * TILE, across * TILE
    difference = candidate[:height, :width].astype(np.float32)
    difference -= original[:height, :width]
    squared = difference * difference
    return squared.reshape(down, TILE, across, TILE, 3).mean(axis=(1, 3, 4))


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


class _LossySearch:
    """The smallest candidate holding the target, over palettes and snapping.

    Every family tries its first guess. In the order of their outlooks, the
    families are searched to the target while their outlook stays within CLOSE
    of the best size found (and MARGIN of the best outlook). An image of few
    colours is stored exactly; one of at most 256 also has its exact palette
    among the candidates.
    """

    def __init__(
        self, pixels: Image.Image, target: float, extra: _Extra, timeout: int
    ) -> None:
        self.image = _reduced(pixels)
        self.pixels = np.asarray(self.image)
        self.target = target
        self.extra = extra
        self.timeout = timeout
        self.scorer = _Scorer(pixels)

    def run(self) -> bytes:
        colours = self.image.getcolors(MAX_COLOURS)
        exact = None
        if colours is not None and len(colours) <= FEW_COLOURS:
            return _encode_truecolour(
                self.pixels,
                self.extra,
                LOW_DEPTH_LEVEL,
                self.timeout,
                fast_evaluation=False,
            )
        if colours is not None:
            exact = _encode_truecolour(
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
            return exact or _encode_truecolour(
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
                lambda: _encode_palette(palette, self.extra, LOSSY_LEVEL, self.timeout),
                lambda: _estimated_palette_size(palette),
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
                lambda: _image_of(snapped),
                lambda: _snapped_png(snapped, self.extra, predictor),
                lambda: _estimated_truecolour_size(snapped, predictor),
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


def _estimated_palette_size(palette: Quantized) -> int:
    """About the size of the palette PNG: its rows deflated quickly, unfiltered."""
    height, width = palette.indices.shape
    rows = np.zeros((height, width + 1), np.uint8)
    rows[:, 1:] = palette.indices
    return round(
        len(deflate.zlib_compress(rows.tobytes(), ESTIMATE_LEVEL)) * PALETTE_RATIO
    )


def _estimated_truecolour_size(pixels: np.ndarray, predictor: str) -> int:
    """About the size of the truecolour PNG: its filtered rows deflated quickly."""
    rows = _filtered_rows(pixels, predictor)
    return round(len(deflate.zlib_compress(rows, ESTIMATE_LEVEL)) * TRUECOLOUR_RATIO)


def _filtered_rows(pixels: np.ndarray, predictor: str) -> bytes:
    """The rows of (height, width[, n]) pixels as PNG's Up or Average filter
    codes them, each after its filter type byte: the data that IDAT deflates."""
    values = pixels.astype(np.int16)
    if values.ndim == 2:
        values = values[:, :, None]
    height = values.shape[0]
    up = np.zeros_like(values)
    up[1:] = values[:-1]
    if predictor == UP:
        prediction, kind = up, 2
    else:
        left = np.zeros_like(values)
        left[:, 1:] = values[:, :-1]
        prediction, kind = (left + up) >> 1, 3
    rows = np.empty((height, values[0].size + 1), np.uint8)
    rows[:, 0] = kind
    rows[:, 1:] = ((values - prediction) & 0xFF).reshape(height, -1)
    return rows.tobytes()


def _snapped_png(pixels: np.ndarray, extra: _Extra, predictor: str) -> bytes:
    """Snapped pixels as a PNG with the filter they were snapped for on every row.

    Written here rather than by oxipng: the filter is known, and deflate at
    SNAPPED_LEVEL costs half the time of oxipng's for about 1% more bytes.
    """
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    header = struct.pack(
        ">IIBBBBB", width, height, 8, _PNG_COLOUR_TYPES[channels], 0, 0, 0
    )
    chunks: list[Chunk] = [(b"IHDR", header)]
    if extra.icc:
        chunks.append((b"iCCP", b"ICC profile\x00\x00" + zlib.compress(extra.icc, 9)))
    chunks += extra.chunks
    rows = _filtered_rows(pixels, predictor)
    chunks.append((b"IDAT", deflate.zlib_compress(rows, SNAPPED_LEVEL)))
    chunks.append((b"IEND", b""))
    return write_chunks(chunks)


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


def _image_of(pixels: np.ndarray) -> Image.Image:
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    return Image.fromarray(pixels, _MODES[channels])


def _shrinks(image: Image.Image, options: Options) -> bool:
    box = options.resize
    if box is None:
        return False
    width, height = box
    return bool((width and image.width > width) or (height and image.height > height))


def _with_exif(chunks: list[Chunk], exif: bytes | None) -> list[Chunk]:
    """Add an eXIf chunk before the first IDAT if the file had none."""
    if not exif or any(kind == b"eXIf" for kind, _ in chunks):
        return chunks
    first = next(i for i, (kind, _) in enumerate(chunks) if kind == b"IDAT")
    return [*chunks[:first], (b"eXIf", exif_body(exif)), *chunks[first:]]


def _extra_chunks(
    chunks: list[Chunk], options: Options, metadata: Metadata
) -> list[Chunk]:
    """The metadata chunks a copy re-encoded from pixels carries (ICC comes apart).

    The colour chunks stay when the profile is kept, or when they describe a
    gamma other than sRGB's (which prepare does not convert).
    """
    extra: list[Chunk] = []
    if metadata.icc is not None or not _has_iccp(chunks):
        # The profile goes separately; sRGB may not stand beside one.
        dropped = (b"iCCP", b"sRGB") if metadata.icc is not None else (b"iCCP",)
        colour = colour_chunks(chunks, options.preserve)
        extra += [chunk for chunk in colour if chunk[0] not in dropped]
    if metadata.exif:
        extra.append((b"eXIf", exif_body(metadata.exif)))
    return extra + text_chunks(chunks, options.preserve)


def _has_iccp(chunks: list[Chunk]) -> bool:
    return any(kind == b"iCCP" for kind, _ in chunks)


def _oxipng(
    data: bytes, level: int, timeout: int, fast_evaluation: bool = True
) -> bytes:
    try:
        return oxipng.optimize_from_memory(
            data,
            level=level,
            fast_evaluation=fast_evaluation,
            strip=oxipng.StripChunks.none(),
            interlace=oxipng.Interlacing.Off,
            timeout=timeout,
        )
    except oxipng.PngError as error:
        raise CorruptFile("The PNG image data is truncated or corrupt.") from error


def _finish(
    raw: oxipng.RawImage,
    extra: _Extra,
    level: int,
    timeout: int,
    fast_evaluation: bool = True,
) -> bytes:
    """The PNG of pixels re-encoded from scratch, with the chunks they carry.

    The colour of fully transparent pixels is free to change (optimize_alpha):
    these copies are not exact anyway.
    """
    if extra.icc:
        raw.add_icc_profile(extra.icc)
    for kind, body in extra.chunks:
        raw.add_png_chunk(kind, body)
    return raw.create_optimized_png(
        level=level,
        fast_evaluation=fast_evaluation,
        optimize_alpha=True,
        timeout=timeout,
    )


def _encode_palette(
    palette: Quantized, extra: _Extra, level: int, timeout: int
) -> bytes:
    height, width = palette.indices.shape
    colours = [list(map(int, entry)) for entry in palette.palette]
    raw = oxipng.RawImage(
        palette.indices.tobytes(),
        width,
        height,
        color_type=oxipng.ColorType.indexed(colours),
    )
    return _finish(raw, extra, level, timeout)


def _encode_truecolour(
    pixels: np.ndarray,
    extra: _Extra,
    level: int,
    timeout: int,
    fast_evaluation: bool = True,
) -> bytes:
    """Grey or truecolour pixels as a PNG, in whatever colour type is smallest."""
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    raw = oxipng.RawImage(
        np.ascontiguousarray(pixels).tobytes(),
        width,
        height,
        color_type=_COLOUR_TYPES[channels](),
    )
    return _finish(raw, extra, level, timeout, fast_evaluation)
