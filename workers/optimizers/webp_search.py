"""The lossy WebP searches: the lowest quality whose output holds the target.

A still is searched on a proxy and confirmed at full size (perceptual.py); an
animation on sampled frames encoded as stills, then encoded whole and scored on
those frames as it shows them. A lossy original's coarsest quantizer bounds the
search: a finer one would only code its artifacts again.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image

from workers.optimizers import imaging
from workers.optimizers.metric import Reference, rgb_over_white
from workers.optimizers.perceptual import block_mosaic, calibrated, still_search
from workers.optimizers.search import Found, first_passing
from workers.optimizers.webp_encode import (
    ANIMATION_METHOD,
    Frames,
    animation_settings,
    decode_still,
    encode,
    encode_frames,
    lossy_settings,
)

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
# Frames of an animation the lossy search scores, spread over its length: up
# to SCORED_FRAMES, as many as SCORED_PIXELS allows, at least two.
SCORED_FRAMES = 6
SCORED_PIXELS = 2_000_000
# Whole encodes of an animation one lossy search may spend.
ANIMATION_CONFIRMS = 2


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
        data = encode_frames(frames, metadata, animation_settings(QUALITIES[index]))
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
