"""The JPEG optimizer: exact recompression, or a perceptual search over quality.

Lossless keeps every DCT coefficient: mozjpeg re-codes the scans (progressive,
optimised Huffman tables) and the metadata is kept or stripped by editing marker
segments. Lossy hands back an exact copy when the input is already coarsely
quantised (re-encoding it would add loss for few bytes), re-coded by jpegtran,
which is about as small in less than half the time; otherwise it decodes
once and searches the quality of two encoders, jpegli at 4:2:0 and libjpeg-turbo
at 4:4:4 (tests/benchmarks/jpeg_encoders.py compares them), for the smallest
JPEG that holds the SSIMULACRA2 target, progressive from half a megapixel on.
The search (jpeg_search.py) runs on a mosaic of tiles picked across the image's
range of detail, and the full size is encoded once (jpeg_encode.py), at the
quality the mosaic picked.
"""

from __future__ import annotations

from collections.abc import Callable

import mozjpeg_lossless_optimization
from PIL import Image, JpegImagePlugin

from workers.optimizers import jpegtran
from workers.optimizers.base import Limits, Options, Result
from workers.optimizers.errors import CorruptFile
from workers.optimizers.imaging import (
    fit_size,
    load,
    lossless_metadata,
    open_image,
    prepare,
)
from workers.optimizers.jpeg_encode import ENCODERS
from workers.optimizers.jpeg_markers import with_metadata
from workers.optimizers.jpeg_search import search

# The score every lossy JPEG is searched to: the floor is 70, and on the corpus
# the median lands near jpegoptim --max=85's (85.9) with a fifth fewer bytes.
TARGET = 85.0
# An input whose luminance table is as coarse as IJG quality KEEP_QUALITY or
# coarser is handed back exact: a re-encode that holds the target saves little.
KEEP_QUALITY = 80.0
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
        encoded = search(pixels, prepared.metadata, self.target, encoders)
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
