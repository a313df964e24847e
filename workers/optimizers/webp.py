"""The WebP optimizer: still and animated, lossless and lossy, through libwebp.

Lossless keeps every pixel of every frame: a lossless file is encoded again at a
stronger effort, a lossy one can only be repacked with less metadata. Lossy finds
the lowest quality whose output holds the perceptual target, and keeps whichever
of that, a repack and (for a lossless original) a stronger lossless copy is
smallest. The encoders here also serve `convert`, which makes WebP of any image.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, replace

from PIL import Image

from workers.optimizers import imaging, webpriff
from workers.optimizers.base import Limits, Options, Result
from workers.optimizers.errors import CorruptFile
from workers.optimizers.metric import Reference, rgb_over_white
from workers.optimizers.perceptual import (
    Candidate,
    block_mosaic,
    calibrated,
    smallest_holding,
    still_search,
)
from workers.optimizers.search import Found, first_passing

# SSIMULACRA2 every lossy WebP holds (alpha over white, the mean over sampled
# frames for an animation): the median of cwebp -q 80 on the corpus, 81.3, less
# the one point issue 3 allows, with a little to spare.
TARGET = 80.5
QUALITIES = tuple(range(20, 101))
# Most images of the corpus land between 45 and 90: start a little below the
# middle and step by the score still missing, SCORE_SLOPE points a quality step
# until the trials show their own slope, at most LONGEST_STEP at once. On the
# corpus and the Kodak set this asks a quarter fewer scores than strides
# doubling from 8, for the same qualities.
FIRST_GUESS = QUALITIES.index(72)
SCORE_SLOPE = 0.4
LONGEST_STEP = 16
# A lossless original (a photograph kept exact, a graphic) has no coding noise
# to hide artifacts in: the Kodak set's hold the target at q 84 to 92, 88 in
# the middle, where their search starts (about as many scores as from 72; a
# graphic that needs q 100 finds it a score sooner).
LOSSLESS_SOURCE_GUESS = QUALITIES.index(88)
# A lossy opaque original re-encoded at its own quality scores high against
# itself: the search starts INPUT_MARGIN below that quality (if above 72). Eight
# Kodak images coded at q 85, 90 and 95 are searched so to the same qualities
# with 126 proxy scores instead of 133 from 72 (130 from 2 below, 128 from 4).
INPUT_MARGIN = 3
# libwebp quantizes its busiest segment at 127 * (1 - c ** _SNS_EXPONENT), c the
# compression factor of the quality (VP8SetSegmentParams), the exponent that of
# the segment farthest from the mean at the default spatial noise shaping, 50.
_SNS_EXPONENT = 1 + 0.9 * 50 / 100 / 128 * 127
# A full-size pass within half a quality step's score (SCORE_SLOPE / 2) of the
# target ends the search: the quality below it would miss.
CLOSE_ENOUGH = SCORE_SLOPE / 2
# The proxy's search stops at a bracket PROXY_SETTLE qualities wide: a close
# full-size pass at its top ends the search, a pass with room to spare looks
# below it. Over 36 Kodak searches (lossless, and lossy at q 85-95) that is one
# proxy score fewer and one full-size score more, to the same qualities; on the
# corpus's flower a proxy score fewer.
PROXY_SETTLE = 3
# A proxy search whose step from a miss goes past q 100 confirms q 100 at full
# size without scoring it on the proxy first (a graphic that needs it).
SPARE_LAST = True
# libwebp effort for lossy stills: 5 costs a fifth more time than cwebp's 4 and
# reaches the target where 4 cannot (flat colour with sharp edges), 3% smaller.
LOSSY_METHOD = 5
# Alpha follows the quality down to 70, where libwebp keeps 16 levels of it:
# below that soft edges and shadows band, whatever the background they are on.
ALPHA_FLOOR = 70
LOSSLESS_STILL = {"lossless": True, "quality": 100, "method": 4, "exact": True}
LOSSLESS_ANIMATION = {
    "lossless": True,
    "quality": 100,
    "method": 3,
    "exact": True,
    "minimize_size": True,
}
# Lossy animations let libwebp store a frame losslessly where that is smaller,
# and try key and delta frames both.
ANIMATION_METHOD = 4
# Frames of an animation the lossy search scores, spread over its length: up
# to SCORED_FRAMES, as many as SCORED_PIXELS allows, at least two.
SCORED_FRAMES = 6
SCORED_PIXELS = 2_000_000
# Whole encodes of an animation one lossy search may spend.
ANIMATION_CONFIRMS = 2
# The largest loop count a WebP can hold.
_MAX_LOOP = 0xFFFF
# A lossless re-encode rarely saves more than this share of a lossless original,
# so a lossy result below it is not worth the (slow) lossless encode.
LOSSLESS_WORTH = 0.7


@dataclass(frozen=True)
class Frames:
    """The frames of an animation as full RGBA canvases, and their timing.

    `durations` are milliseconds, `loop` the play count (0: forever).
    """

    images: list[Image.Image]
    durations: list[int]
    loop: int
    background: tuple[int, int, int, int] | None


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


def lossy_settings(quality: int) -> dict[str, object]:
    """libwebp's settings for a lossy still of one quality."""
    return {
        "quality": quality,
        "method": LOSSY_METHOD,
        "alpha_quality": max(quality, ALPHA_FLOOR),
    }


def _animation_settings(quality: int) -> dict[str, object]:
    return {
        "quality": quality,
        "method": ANIMATION_METHOD,
        "alpha_quality": max(quality, ALPHA_FLOOR),
        "allow_mixed": True,
        "minimize_size": True,
    }


def lossy_still(
    pixels: Image.Image,
    metadata: imaging.Metadata,
    size_to_beat: int | None,
    input_quantizer: int | None = None,
    start: int = FIRST_GUESS,
) -> Found[int] | None:
    """The lowest quality whose WebP of `pixels` holds TARGET, or None.

    The search starts from the index `start` of QUALITIES. None also when a
    large image is estimated to come out well above `size_to_beat` before it
    is encoded whole, and as soon as every quality left to search quantizes
    more finely than `input_quantizer`, the coarsest quantizer of the lossy
    original these pixels were decoded from (see finer_than).
    """

    def encode_at(image: Image.Image, quality: int) -> bytes:
        return encode(image, metadata, lossy_settings(quality))

    def gains_nothing(quality: int) -> bool:
        return finer_than(quality, input_quantizer)

    return still_search(
        pixels,
        QUALITIES,
        encode_at,
        decode_still,
        TARGET,
        size_to_beat,
        start=start,
        stride=LONGEST_STEP,
        slope=SCORE_SLOPE,
        mosaic=block_mosaic,
        gains_nothing=None if input_quantizer is None else gains_nothing,
        close=CLOSE_ENOUGH,
        settle=PROXY_SETTLE,
        spare_last=SPARE_LAST,
    )


def finer_than(quality: int, input_quantizer: int | None) -> bool:
    """Whether our lossy still of `quality` quantizes more finely than its original.

    Where holding the target takes a finer quantizer than the lossy original
    was coded with, the copy spends bits coding the original's own artifacts
    again and comes out larger than it: so it did in every such search of eight
    Kodak images coded by libwebp at q 50 and 70 (16 of 16, 4% to 51% larger),
    while those at q 85 searched to a quantizer as coarse or coarser, and shrank.
    Giving up there lost nothing on eight others coded at q 40 to 90 by methods
    4 and 6 (64 searches, over a quarter less time); libwebp's fastest method, 0,
    codes loosely enough that 6 of 32 such originals would have shrunk by 0.1%
    to 9% (1% of their bytes), which is given up.
    """
    if input_quantizer is None:
        return False
    return libwebp_quantizer(quality) < input_quantizer


def libwebp_quantizer(quality: int) -> int:
    """The quantizer index libwebp codes the busiest segment of a still with."""
    fraction = quality / 100
    linear = fraction * 2 / 3 if fraction < 0.75 else 2 * fraction - 1
    compression = linear ** (1 / 3)
    return min(max(int(127 * (1 - compression**_SNS_EXPONENT)), 0), 127)


def quality_of(quantizer: int) -> int:
    """The highest of QUALITIES that libwebp codes as coarsely as `quantizer`."""
    coarse = [q for q in QUALITIES if libwebp_quantizer(q) >= quantizer]
    return max(coarse, default=QUALITIES[0])


def lossless_still(pixels: Image.Image, metadata: imaging.Metadata) -> bytes:
    """A lossless WebP keeping every pixel, the colour of transparent ones too."""
    return encode(pixels, metadata, LOSSLESS_STILL)


def lossless_animation(frames: Frames, metadata: imaging.Metadata) -> bytes:
    """A lossless animated WebP of every frame, with its timing and loop."""
    return encode_frames(frames, metadata, LOSSLESS_ANIMATION)


def lossy_animation(
    frames: Frames, metadata: imaging.Metadata, size_to_beat: int | None = None
) -> Found[int] | None:
    """The lowest quality, one for all frames, whose animation holds TARGET.

    The quality is searched on sampled frames (mosaics of large ones) encoded as
    stills, which score close to the animation's frames at the same quality; the
    animation is then encoded whole and scored on those frames as it shows them,
    and the proxy's measured error steers one more whole encode (see
    perceptual.calibrated), unless a miss is already no smaller than
    `size_to_beat`.
    """
    width, height = frames.images[0].size
    wanted = max(2, min(SCORED_FRAMES, SCORED_PIXELS // (width * height)))
    sample = frame_sample(len(frames.images), wanted)
    proxies = {}
    for index in sample:
        mosaic = block_mosaic(frames.images[index])
        image = frames.images[index] if mosaic is None else mosaic
        proxies[index] = image, Reference(rgb_over_white(image))
    starts = frame_starts(frames.durations)
    proxy_scores: dict[int, float] = {}

    def proxy(quality: int) -> float:
        if quality not in proxy_scores:
            settings = {**lossy_settings(quality), "method": ANIMATION_METHOD}
            scores = []
            for image, reference in proxies.values():
                still = encode(image, imaging.Metadata(), settings)
                scores.append(reference.score_image(decode_still(still)))
            proxy_scores[quality] = sum(scores) / len(scores)
        return proxy_scores[quality]

    references: dict[int, Reference] = {}

    def scored(data: bytes) -> float:
        if not references:
            for index in sample:
                references[index] = Reference(rgb_over_white(frames.images[index]))
        shown = shown_frames(data, [starts[index] for index in sample])
        values = [
            references[index].score_image(frame)
            for index, frame in zip(sample, shown, strict=True)
        ]
        return sum(values) / len(values)

    def full(index: int) -> tuple[bytes, float]:
        data = encode_frames(frames, metadata, _animation_settings(QUALITIES[index]))
        return data, scored(data)

    def proxy_at(index: int) -> float:
        return proxy(QUALITIES[index])

    index = first_passing(
        QUALITIES,
        proxy,
        TARGET,
        start=FIRST_GUESS,
        stride=LONGEST_STEP,
        slope=SCORE_SLOPE,
    )
    index = len(QUALITIES) - 1 if index is None else index
    return calibrated(
        QUALITIES, index, proxy_at, full, TARGET, size_to_beat, ANIMATION_CONFIRMS
    )


def frame_sample(count: int, wanted: int) -> list[int]:
    """Up to `wanted` frame indices spread evenly from the first to the last."""
    if count <= wanted:
        return list(range(count))
    return sorted({round(step * (count - 1) / (wanted - 1)) for step in range(wanted)})


def frame_starts(durations: Sequence[int]) -> list[int]:
    """When each frame starts showing, in milliseconds."""
    starts, moment = [], 0
    for duration in durations:
        starts.append(moment)
        moment += duration
    return starts


def shown_frames(data: bytes, moments: Sequence[int]) -> list[Image.Image]:
    """The RGBA canvas an animated WebP shows at each of the (ascending) moments.

    libwebp merges a frame identical to the one before into it, so frames are
    found by time, not by index.
    """
    shown: list[Image.Image] = []
    with Image.open(io.BytesIO(data)) as image:
        frame, start = 0, 0
        image.seek(0)
        for moment in moments:
            while frame + 1 < image.n_frames and start + _duration(image) <= moment:
                start += _duration(image)
                frame += 1
                image.seek(frame)
            shown.append(image.convert("RGBA"))
    return shown


def _duration(image: Image.Image) -> int:
    image.load()
    return int(image.info.get("duration") or 0)


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


def encode(
    image: Image.Image, metadata: imaging.Metadata, settings: dict[str, object]
) -> bytes:
    """One still WebP of `image` with the metadata it is to carry."""
    out = io.BytesIO()
    extra = _metadata_arguments(metadata)
    image.save(out, "WEBP", **settings, **extra)
    return out.getvalue()


def encode_frames(
    frames: Frames, metadata: imaging.Metadata, settings: dict[str, object]
) -> bytes:
    """An animated WebP of every frame, each shown for its own duration."""
    out = io.BytesIO()
    first, *rest = frames.images
    extra = _metadata_arguments(metadata)
    if frames.background is not None:
        extra["background"] = frames.background
    first.save(
        out,
        "WEBP",
        save_all=True,
        append_images=rest,
        duration=frames.durations,
        loop=frames.loop,
        **settings,
        **extra,
    )
    return out.getvalue()


def _metadata_arguments(metadata: imaging.Metadata) -> dict[str, object]:
    extra: dict[str, object] = {}
    if metadata.exif:
        extra["exif"] = metadata.exif
    if metadata.icc:
        extra["icc_profile"] = metadata.icc
    return extra


def decode_still(data: bytes) -> Image.Image:
    """Decode WebP bytes of ours back to pixels, to score them."""
    with Image.open(io.BytesIO(data), formats=("WEBP",)) as image:
        image.load()
        return image.copy()


def decode_frames(image: Image.Image) -> Frames:
    """Every frame of an opened animation as a full RGBA canvas, with its duration.

    Works for any format Pillow composes frames of (WebP, GIF, APNG). `loop` is
    WebP's: plays in all, 0 for ever. A GIF counts repeats after the first play,
    as browsers read it, and plays once without a count (gif2webp agrees).
    """
    images, durations = [], []
    try:
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            imaging.load(image)
            images.append(image.convert("RGBA"))
            durations.append(int(image.info.get("duration") or 0))
    except (EOFError, *imaging.DECODE_ERRORS) as error:
        raise CorruptFile("The animation's frames do not decode.") from error
    background = image.info.get("background")
    if not isinstance(background, tuple) or len(background) != 4:
        background = None
    loop = int(image.info.get("loop", 0 if image.format != "GIF" else 1))
    if image.format == "GIF" and "loop" in image.info and 0 < loop < _MAX_LOOP:
        loop += 1
    return Frames(images, durations, loop, background)
