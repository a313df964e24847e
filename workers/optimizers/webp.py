"""The WebP optimizer: still and animated, lossless and lossy, through libwebp.

Lossless keeps every pixel of every frame: a lossless file is encoded again at a
stronger effort, a lossy one can only be repacked with less metadata. Lossy finds
the lowest quality whose output holds the perceptual bound, and keeps whichever of
that, a repack and (for a lossless original) a stronger lossless copy is smallest.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from workers.optimizers import imaging, webpriff
from workers.optimizers.base import Limits, Options, Result
from workers.optimizers.errors import CorruptFile
from workers.optimizers.perceptual import Candidate, smallest_holding, still_search

# SSIMULACRA2 every lossy WebP holds; tuned on the corpus to land the median near
# cwebp -q 80's while spending fewer bytes.
TARGET = 80.5
# libwebp effort: what cwebp uses by default for lossy; for lossless, the level
# where Pillow's encoder first beats `cwebp -lossless` on the corpus.
LOSSY_METHOD = 4
LOSSLESS_STILL = {"lossless": True, "quality": 100, "method": 4, "exact": True}
LOSSLESS_ANIMATION = {
    "lossless": True,
    "quality": 100,
    "method": 3,
    "exact": True,
    "minimize_size": True,
}
QUALITIES = (30, 40, 50, 60, 65, 70, *range(72, 101, 2))


@dataclass(frozen=True)
class Frames:
    """The decoded frames of an animation, full canvases, and their timing."""

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
        """The smallest copy that keeps the pixels (lossless) or the bound (lossy)."""
        lossless_source = webpriff.is_lossless(data)
        image = imaging.open_image(data, limits)
        if imaging.check_frames(image, limits) > 1:
            return _animation(data, image, options, lossless_source)
        if options.lossless:
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
        candidates.append(
            Candidate(encode(pixels, metadata, LOSSLESS_STILL), pixels.size, 100.0)
        )
    best = min(candidates, key=lambda candidate: len(candidate.data))
    return Result(best.data, "webp", *best.size)


def _still_lossy(
    data: bytes, image: Image.Image, options: Options, lossless_source: bool
) -> Result:
    prepared = imaging.prepare(image, options)
    pixels, metadata = prepared.image, prepared.metadata
    candidates = []
    if _unchanged_pixels(image, pixels, options):
        candidates.append(_repack(data, metadata, pixels.size))
    if lossless_source:
        candidates.append(
            Candidate(encode(pixels, metadata, LOSSLESS_STILL), pixels.size, 100.0)
        )

    def lossy(frame: Image.Image, quality: int) -> bytes:
        return encode(frame, metadata, _lossy_settings(quality))

    to_beat = min((len(candidate.data) for candidate in candidates), default=None)
    found = still_search(pixels, QUALITIES, lossy, decode_still, TARGET, to_beat)
    if found is not None:
        candidates.append(Candidate(found.data, pixels.size, found.score))
    best = smallest_holding(candidates)
    return Result(best.data, "webp", *best.size)


def _animation(
    data: bytes, image: Image.Image, options: Options, lossless_source: bool
) -> Result:
    frames = decode_frames(image)
    size = imaging.fit_size(image.width, image.height, options.resize)
    if size != image.size:
        frames = Frames(
            [imaging.resize_into(frame, options.resize) for frame in frames.images],
            frames.durations,
            frames.loop,
            frames.background,
        )
    metadata = imaging.lossless_metadata(image, options.preserve)
    candidates = []
    if size == image.size:
        candidates.append(_repack(data, metadata, size))
    if lossless_source or size != image.size:
        candidates.append(
            Candidate(encode_frames(frames, metadata, LOSSLESS_ANIMATION), size, 100.0)
        )
    best = min(candidates, key=lambda candidate: len(candidate.data))
    return Result(best.data, "webp", *best.size)


def _unchanged_pixels(
    image: Image.Image, pixels: Image.Image, options: Options
) -> bool:
    """Whether the prepared pixels are the original's, so a repack shows the same."""
    if pixels.size != image.size or imaging.orientation(image) != 1:
        return False
    icc = imaging.icc_profile(image)
    return icc is None or imaging.is_srgb(icc) or "icc" in options.preserve


def _repack(
    data: bytes, metadata: imaging.Metadata, size: tuple[int, int]
) -> Candidate:
    return Candidate(webpriff.repack(data, metadata.exif, metadata.icc), size, 100.0)


def _lossy_settings(quality: int) -> dict[str, object]:
    return {"quality": quality, "method": LOSSY_METHOD, "alpha_quality": 100}


def _decoded(image: Image.Image) -> Image.Image:
    imaging.load(image)
    if image.mode in ("RGB", "RGBA", "L", "LA"):
        return image
    return image.convert("RGBA" if "A" in image.mode else "RGB")


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
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.copy()


def decode_frames(image: Image.Image) -> Frames:
    """Every frame of an opened animation as a full RGBA canvas, with its duration."""
    images, durations = [], []
    try:
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            imaging.load(image)
            images.append(image.convert("RGBA"))
            durations.append(int(image.info.get("duration", 0)))
    except EOFError as error:
        raise CorruptFile("The animation's frames do not decode.") from error
    background = image.info.get("background")
    if isinstance(background, int) or background is None:
        background = None
    return Frames(images, durations, int(image.info.get("loop", 0)), background)
