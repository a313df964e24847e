"""libwebp through Pillow: stills and animations written with the metadata they
carry, their settings, and WebP decoded back to pixels to be scored.

Frames are an animation's full RGBA canvases with their timing, as decoded from
any format Pillow composes frames of (WebP, GIF, APNG).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from workers.optimizers import imaging
from workers.optimizers.errors import CorruptFile

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
# The largest loop count a WebP can hold.
_MAX_LOOP = 0xFFFF


@dataclass(frozen=True)
class Frames:
    """The frames of an animation as full RGBA canvases, and their timing.

    `durations` are milliseconds, `loop` the play count (0: forever).
    """

    images: list[Image.Image]
    durations: list[int]
    loop: int
    background: tuple[int, int, int, int] | None


def lossy_settings(quality: int) -> dict[str, object]:
    """libwebp's settings for a lossy still of one quality."""
    return {
        "quality": quality,
        "method": LOSSY_METHOD,
        "alpha_quality": max(quality, ALPHA_FLOOR),
    }


def animation_settings(quality: int) -> dict[str, object]:
    return {
        "quality": quality,
        "method": ANIMATION_METHOD,
        "alpha_quality": max(quality, ALPHA_FLOOR),
        "allow_mixed": True,
        "minimize_size": True,
    }


def lossless_still(pixels: Image.Image, metadata: imaging.Metadata) -> bytes:
    """A lossless WebP keeping every pixel, the colour of transparent ones too."""
    return encode(pixels, metadata, LOSSLESS_STILL)


def lossless_animation(frames: Frames, metadata: imaging.Metadata) -> bytes:
    """A lossless animated WebP of every frame, with its timing and loop."""
    return encode_frames(frames, metadata, LOSSLESS_ANIMATION)


def encode(
    image: Image.Image, metadata: imaging.Metadata, settings: dict[str, object]
) -> bytes:
    """One still WebP of `image` with the metadata it is to carry."""
    out = io.BytesIO()
    extra = metadata.save_arguments()
    image.save(out, "WEBP", **settings, **extra)
    return out.getvalue()


def encode_frames(
    frames: Frames, metadata: imaging.Metadata, settings: dict[str, object]
) -> bytes:
    """An animated WebP of every frame, each shown for its own duration."""
    out = io.BytesIO()
    first, *rest = frames.images
    extra = metadata.save_arguments()
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
