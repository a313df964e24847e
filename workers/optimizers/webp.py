"""The WebP optimizer: still and animated, lossless and lossy, through libwebp.

Lossless keeps every pixel of every frame: a lossless file is encoded again at a
stronger effort, a lossy one can only be repacked with less metadata. Lossy finds
the lowest quality whose output holds the perceptual target, and keeps whichever
of that, a repack and (for a lossless original) a stronger lossless copy is
smallest. The encoders (webp_encode.py) and searches (webp_search.py) also serve
`convert`, which makes WebP of any image.
"""

from __future__ import annotations

from dataclasses import replace

from PIL import Image

from workers.optimizers import imaging, webpriff
from workers.optimizers.base import Limits, Options, Result
from workers.optimizers.perceptual import Candidate, smallest_holding
from workers.optimizers.search import Found
from workers.optimizers.webp_encode import (
    Frames,
    decode_frames,
    lossless_animation,
    lossless_still,
)
from workers.optimizers.webp_search import (
    FIRST_GUESS,
    INPUT_MARGIN,
    LOSSLESS_SOURCE_GUESS,
    QUALITIES,
    lossy_animation,
    lossy_still,
    quality_of,
)

# A lossless re-encode rarely saves more than this share of a lossless original,
# so a lossy result below it is not worth the (slow) lossless encode.
LOSSLESS_WORTH = 0.7


class WebpOptimizer:
    """Optimizes WebP files, animations included."""

    formats = frozenset({"webp"})

    def probe(self, data: bytes, limits: Limits) -> Result:
        """The canvas size of `data`, its limits checked."""
        webpriff.chunks(data)
        image = imaging.open_image(data, limits)
        imaging.check_frames(image, limits)
        return Result(data, "webp", image.width, image.height)

    def optimize(self, data: bytes, options: Options, limits: Limits) -> Result:
        """The smallest copy that keeps the pixels (lossless) or the target (lossy)."""
        lossless_source = webpriff.is_lossless(data)
        image = imaging.open_image(data, limits)
        if imaging.check_frames(image, limits) > 1:
            return _animation(data, image, options, lossless_source)
        resized = imaging.fit_size(*image.size, options.resize) != image.size
        # Resizing changes the pixels anyway: a lossy original is then searched
        # lossy, as a JPEG is, rather than stored losslessly at many times its size.
        if options.lossless and (lossless_source or not resized):
            return _still_lossless(data, image, options, lossless_source)
        return _still_lossy(data, image, options, lossless_source)


def _still_lossless(
    data: bytes, image: Image.Image, options: Options, lossless_source: bool
) -> Result:
    metadata = imaging.lossless_metadata(image, options.preserve)
    resized = imaging.fit_size(image.width, image.height, options.resize)
    candidates = []
    if resized == image.size:
        candidates.append(_repack(data, metadata, image.size))
    if lossless_source or resized != image.size:
        pixels = imaging.resize_into(_decoded(image), options.resize)
        candidates.append(Candidate(lossless_still(pixels, metadata), pixels.size, 100))
    best = smallest_holding(candidates)
    return Result(best.data, "webp", *best.size)


def _still_lossy(
    data: bytes, image: Image.Image, options: Options, lossless_source: bool
) -> Result:
    prepared = imaging.prepare(image, options)
    pixels, metadata = prepared.image, prepared.metadata
    candidates = []
    if _unchanged_pixels(image, pixels, options):
        candidates.append(_repack(data, metadata, pixels.size))
    to_beat = min((len(candidate.data) for candidate in candidates), default=None)
    # A re-encode quantized more finely than the original loses to its repack
    # (see finer_than); with alpha, the original's alpha coding, which no
    # quantizer tells, may be what a re-encode saves on.
    coarsest = None
    if to_beat is not None and "A" not in pixels.mode:
        coarsest = webpriff.quantizer(data)
    start = LOSSLESS_SOURCE_GUESS if lossless_source else FIRST_GUESS
    if coarsest is not None:
        start = max(start, QUALITIES.index(quality_of(coarsest)) - INPUT_MARGIN)
    found = lossy_still(pixels, metadata, to_beat, coarsest, start)
    if found is not None:
        candidates.append(Candidate(found.data, pixels.size, found.score))
    if not candidates or (lossless_source and not far_below(found, to_beat)):
        candidates.append(
            Candidate(lossless_still(pixels, metadata), pixels.size, 100.0)
        )
    best = smallest_holding(candidates)
    return Result(best.data, "webp", *best.size)


def far_below(found: Found[int] | None, to_beat: int | None) -> bool:
    """Whether a lossy result is too small for a lossless re-encode to beat it."""
    if found is None or to_beat is None:
        return False
    return len(found.data) < LOSSLESS_WORTH * to_beat


def _animation(
    data: bytes, image: Image.Image, options: Options, lossless_source: bool
) -> Result:
    size = imaging.fit_size(image.width, image.height, options.resize)
    candidates = []
    if options.lossless and (lossless_source or size == image.size):
        frames = resized(decode_frames(image), options.resize)
        metadata = imaging.lossless_metadata(image, options.preserve)
        if size == image.size:
            candidates.append(_repack(data, metadata, size))
        if lossless_source or size != image.size:
            encoded = lossless_animation(frames, metadata)
            candidates.append(Candidate(encoded, size, 100.0))
        best = smallest_holding(candidates)
        return Result(best.data, "webp", *best.size)

    frames, metadata = prepare_frames(image, options)
    if _unchanged_frames(image, frames, options):
        candidates.append(_repack(data, metadata, size))
    to_beat = min((len(candidate.data) for candidate in candidates), default=None)
    found = lossy_animation(frames, metadata, to_beat)
    if found is not None:
        candidates.append(Candidate(found.data, size, found.score))
    if not candidates or (lossless_source and not far_below(found, to_beat)):
        candidates.append(Candidate(lossless_animation(frames, metadata), size, 100))
    best = smallest_holding(candidates)
    return Result(best.data, "webp", *best.size)


def _unchanged_pixels(
    image: Image.Image, pixels: Image.Image, options: Options
) -> bool:
    """Whether the prepared pixels are the original's, so a repack shows the same."""
    if pixels.size != image.size or imaging.orientation(image) != 1:
        return False
    icc = imaging.icc_profile(image)
    return icc is None or imaging.is_srgb(icc) or "icc" in options.preserve


def _unchanged_frames(image: Image.Image, frames: Frames, options: Options) -> bool:
    return _unchanged_pixels(image, frames.images[0], options)


def _repack(
    data: bytes, metadata: imaging.Metadata, size: tuple[int, int]
) -> Candidate:
    return Candidate(webpriff.repack(data, metadata.exif, metadata.icc), size, 100.0)


def _decoded(image: Image.Image) -> Image.Image:
    imaging.load(image)
    if image.mode in ("RGB", "RGBA", "L", "LA"):
        return image
    return image.convert("RGBA" if "A" in image.mode else "RGB")


def prepare_frames(
    image: Image.Image, options: Options
) -> tuple[Frames, imaging.Metadata]:
    """Every frame of an opened animation as imaging.prepare treats a still.

    Orientation is applied unless kept as a tag, a profile converted to sRGB
    unless kept, and each frame resized into the box; with the metadata to carry.
    """
    frames = decode_frames(image)
    icc = imaging.icc_profile(image)
    value = imaging.orientation(image)
    keep_orientation = "orientation" in options.preserve
    keep_icc = "icc" in options.preserve and icc is not None
    box = options.resize
    if keep_orientation and box is not None and value in (5, 6, 7, 8):
        box = (box[1], box[0])
    images = []
    for frame in frames.images:
        if not keep_icc and not imaging.is_srgb(icc):
            frame = imaging.to_srgb(frame, icc)
        if not keep_orientation:
            frame = imaging.upright(frame, value)
        images.append(imaging.resize_into(frame, box))
    metadata = imaging.Metadata(
        exif=imaging.kept_exif(image, options.preserve, keep_orientation),
        icc=icc if keep_icc else None,
    )
    return replace(frames, images=images), metadata


def resized(frames: Frames, box: tuple[int, int] | None) -> Frames:
    """The frames scaled down into `box`, their timing unchanged."""
    return replace(
        frames, images=[imaging.resize_into(frame, box) for frame in frames.images]
    )
