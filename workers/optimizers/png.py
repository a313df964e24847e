"""The PNG optimizer: oxipng for exact copies, a perceptual search for lossy ones.

Lossless keeps every pixel and lets oxipng pick colour type, filters and deflate,
with the metadata chunks preserve_metas keeps. Lossy tries a libimagequant palette
first; where no palette holds the target score (photographs, mostly), the image
stays truecolour with its Up-filter residuals rounded to the coarsest step that
holds it. Either way the score is SSIMULACRA2 with alpha over white.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import oxipng
from PIL import Image

from workers.optimizers.base import Limits, Options, Result
from workers.optimizers.errors import CorruptFile
from workers.optimizers.imaging import (
    Metadata,
    check_frames,
    kept_exif,
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
from workers.optimizers.residuals import snap_rows
from workers.optimizers.search import first_passing

# The score every lossy PNG is searched to, tuned so that the corpus median lands
# near the peer's (pngquant 65-80) while no file falls under the bound of 70.
TARGET = 77.5
# oxipng's preset for exact copies, with the filters tried on a fast deflate.
LOSSLESS_LEVEL = 5
LOSSY_LEVEL = 2
# libimagequant qualities to search, lowest first; 100 means as many colours as fit.
QUALITIES = (20, 30, 40, 50, 60, 70, 80, 90, 100)
# Up-residual steps to search, coarsest (smallest output) first.
STEPS = (24, 20, 18, 16, 14, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
FIRST_STEP_GUESS = 12
FIRST_QUALITY_GUESS = 70
# Images above twice this many pixels are searched on a mosaic of tiles this big.
PROXY_PIXELS = 160_000
PROXY_TILE = 128
# A confirm at full size may fall this far under the target and still pass.
CONFIRM_SLACK = 0.5
MAX_CONFIRMS = 3
T = TypeVar("T")


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
            exif = kept_exif(image, options.preserve, keep_orientation=True)
            kept = write_chunks(
                _with_exif(kept_chunks(chunks, options.preserve, exif), exif)
            )
            out = _oxipng(kept, LOSSLESS_LEVEL, timeout)
            return Result(min(out, data, key=len), "png", image.width, image.height)
        prepared = prepare(image, options)
        pixels = prepared.image
        extra = _Extra(
            _extra_chunks(chunks, options, prepared.metadata), prepared.metadata.icc
        )
        if options.lossless:
            out = _encode_truecolour(np.asarray(pixels), pixels.mode, extra, timeout)
        else:
            out = self._lossy(pixels, extra, timeout)
        if len(out) >= len(data) and pixels.size == image.size:
            out = data
        return Result(out, "png", pixels.width, pixels.height)

    def _lossy(self, pixels: Image.Image, extra: _Extra, timeout: int) -> bytes:
        """The smallest PNG of `pixels` found to hold the target score."""
        scorer = _Scorer(pixels)
        palette = _search_palette(pixels.convert("RGBA"), scorer, self.target)
        if palette is not None:
            return _encode_palette(palette, extra, timeout)
        array = np.asarray(pixels)
        step = _search_step(array, scorer, self.target)
        return _encode_truecolour(snap_rows(array, step), pixels.mode, extra, timeout)


class _Scorer:
    """Scores candidate pixels against the original, on a mosaic for big images."""

    def __init__(self, image: Image.Image) -> None:
        original = rgb_over_white(image)
        self.full = Reference(original)
        self.rows, self.columns = _mosaic_cuts(original.shape[0], original.shape[1])
        self.proxy = Reference(self.mosaic(original)) if self.rows else None

    def mosaic(self, pixels: np.ndarray) -> np.ndarray:
        """The tiles the proxy scores, cut from (height, width[, n]) pixels."""
        if not self.rows:
            return pixels
        return np.concatenate(
            [
                np.concatenate([pixels[r, c] for c in self.columns], axis=1)
                for r in self.rows
            ]
        )

    def quick(self, image: Image.Image) -> float:
        """The proxy's score of a full-size candidate (the full score if small)."""
        over_white = rgb_over_white(image)
        if self.proxy is None:
            return self.full.score(over_white)
        return self.proxy.score(self.mosaic(over_white))

    def quick_tiles(self, image: Image.Image) -> float:
        """The proxy's score of a candidate made from the mosaic itself."""
        reference = self.full if self.proxy is None else self.proxy
        return reference.score(rgb_over_white(image))

    def exact(self, image: Image.Image) -> float | None:
        """The full-size score, or None where the quick score was already it."""
        return None if self.proxy is None else self.full.score(rgb_over_white(image))


def _mosaic_cuts(height: int, width: int) -> tuple[list[slice], list[slice]]:
    """Row and column slices of tiles spread over an image above PROXY_PIXELS."""
    if height * width <= PROXY_PIXELS * 2 or min(height, width) < PROXY_TILE * 2:
        return [], []
    wanted = PROXY_PIXELS // (PROXY_TILE * PROXY_TILE)
    across = max(1, min(width // PROXY_TILE, round((wanted * width / height) ** 0.5)))
    down = max(1, min(height // PROXY_TILE, wanted // across))

    def cuts(length: int, count: int) -> list[slice]:
        starts = [
            (length - PROXY_TILE) * (2 * i + 1) // (2 * count) for i in range(count)
        ]
        return [slice(start, start + PROXY_TILE) for start in starts]

    return cuts(height, down), cuts(width, across)


def _first_holding(
    settings: Sequence[T],
    quick: Callable[[T], float],
    exact: Callable[[T], float | None],
    target: float,
    start: int,
) -> T | None:
    """The first setting whose full-size score holds `target`, steered by `quick`.

    A confirm that falls short raises the quick aim by the shortfall and looks
    further up, at most MAX_CONFIRMS times.
    """
    quick = functools.cache(quick)
    aim, low = target, 0
    for _ in range(MAX_CONFIRMS):
        index = first_passing(settings, quick, aim, low, start=max(low, start))
        if index is None:
            return None
        value = exact(settings[index])
        if value is None or value >= target - CONFIRM_SLACK:
            return settings[index]
        aim = quick(settings[index]) + target - value
        low = start = index + 1
    return None


def _search_palette(
    rgba: Image.Image, scorer: _Scorer, target: float
) -> Quantized | None:
    """The palette of fewest colours that holds `target`, or None if none does.

    A palette of the mosaic says first whether any palette can: photographs
    mostly cannot, and are spared quantizing at full size.
    """
    try:
        tiles = Image.fromarray(scorer.mosaic(np.asarray(rgba)), "RGBA")
        if scorer.quick_tiles(quantize(tiles)[0].to_image()) < target:
            return None

        @functools.cache
        def quantized(quality: int) -> Quantized:
            return quantize(rgba, max_quality=quality)[0]

        quality = _first_holding(
            QUALITIES,
            lambda q: scorer.quick(quantized(q).to_image()),
            lambda q: scorer.exact(quantized(q).to_image()),
            target,
            start=QUALITIES.index(FIRST_QUALITY_GUESS),
        )
    except QuantizeFailed:
        return None
    return None if quality is None else quantized(quality)


def _search_step(pixels: np.ndarray, scorer: _Scorer, target: float) -> int:
    """The coarsest Up-residual step whose pixels hold `target` (1 is exact)."""
    tiles = scorer.mosaic(pixels)
    step = _first_holding(
        STEPS,
        lambda s: scorer.quick_tiles(_image_of(snap_rows(tiles, s))),
        lambda s: scorer.exact(_image_of(snap_rows(pixels, s))),
        target,
        start=STEPS.index(FIRST_STEP_GUESS),
    )
    return 1 if step is None else step


_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def _image_of(pixels: np.ndarray) -> Image.Image:
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    return Image.fromarray(pixels, _MODES[channels])


def _shrinks(image: Image.Image, options: Options) -> bool:
    box = options.resize
    if box is None:
        return False
    width, height = box
    return (width and image.width > width) or (height and image.height > height)


def _with_exif(chunks: list[Chunk], exif: bytes | None) -> list[Chunk]:
    """Add an eXIf chunk before the first IDAT if the file had none."""
    if not exif or any(kind == b"eXIf" for kind, _ in chunks):
        return chunks
    first = next(i for i, (kind, _) in enumerate(chunks) if kind == b"IDAT")
    return [*chunks[:first], (b"eXIf", exif_body(exif)), *chunks[first:]]


def _extra_chunks(
    chunks: list[Chunk], options: Options, metadata: Metadata
) -> list[Chunk]:
    """The metadata chunks a copy re-encoded from pixels carries (ICC comes apart)."""
    extra: list[Chunk] = []
    if metadata.icc is None:
        extra += [c for c in colour_chunks(chunks, frozenset()) if c[0] != b"iCCP"]
    if metadata.exif:
        extra.append((b"eXIf", exif_body(metadata.exif)))
    return extra + text_chunks(chunks, options.preserve)


def _oxipng(data: bytes, level: int, timeout: int, **options: object) -> bytes:
    try:
        return oxipng.optimize_from_memory(
            data,
            level=level,
            fast_evaluation=True,
            strip=oxipng.StripChunks.none(),
            timeout=timeout,
            **options,
        )
    except oxipng.PngError as error:
        raise CorruptFile("The PNG image data is truncated or corrupt.") from error


@dataclass(frozen=True)
class _Extra:
    """What a copy re-encoded from pixels carries besides them."""

    chunks: list[Chunk]
    icc: bytes | None


def _finish(raw: oxipng.RawImage, extra: _Extra, timeout: int) -> bytes:
    if extra.icc:
        raw.add_icc_profile(extra.icc)
    for kind, body in extra.chunks:
        raw.add_png_chunk(kind, body)
    return raw.create_optimized_png(
        level=LOSSY_LEVEL,
        fast_evaluation=True,
        optimize_alpha=True,
        timeout=timeout,
    )


def _encode_palette(palette: Quantized, extra: _Extra, timeout: int) -> bytes:
    height, width = palette.indices.shape
    colours = [list(map(int, entry)) for entry in palette.palette]
    raw = oxipng.RawImage(
        palette.indices.tobytes(),
        width,
        height,
        color_type=oxipng.ColorType.indexed(colours),
    )
    return _finish(raw, extra, timeout)


def _encode_truecolour(
    pixels: np.ndarray, mode: str, extra: _Extra, timeout: int
) -> bytes:
    colour_types = {
        "L": oxipng.ColorType.grayscale,
        "LA": oxipng.ColorType.grayscale_alpha,
        "RGB": oxipng.ColorType.rgb,
        "RGBA": oxipng.ColorType.rgba,
    }
    height, width = pixels.shape[:2]
    raw = oxipng.RawImage(
        np.ascontiguousarray(pixels).tobytes(),
        width,
        height,
        color_type=colour_types[mode](),
    )
    return _finish(raw, extra, timeout)
