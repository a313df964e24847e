"""Conversion to WebP or AVIF: the `convert` option, for any raster input.

A JPEG, PNG, GIF or WebP is decoded once by imaging.prepare (orientation, sRGB,
resize, the metadata preserve_metas keeps) and encoded in the asked format by the
perceptual search every lossy still uses. Lossless conversion makes a lossless
WebP of the stored pixels, carrying the orientation tag and a non-sRGB profile as
the lossless optimizers do; an animation becomes an animated WebP with its frames,
durations and loop count.

Some conversions cannot be done as asked; `convert` then answers None and
registry.optimize optimizes the input in its own format instead, as it does when
the conversion comes out no smaller than the input (the Result's `format` says
which format the client gets):
- lossless AVIF: libavif through Pillow stores YUV even at quality 100, which
  changes pixels (and comes out several times larger than lossless WebP);
- animated AVIF: Pillow writes no loop count (its sequences loop for ever), and
  the animation search here encodes WebP only;
- lossless input that 8-bit RGBA cannot hold (16-bit or CMYK pixels);
- a lossy search that finds nothing holding the target below the input's size.
"""

from __future__ import annotations

import io

from PIL import Image

from workers.optimizers import imaging, webp, webp_encode, webp_search
from workers.optimizers.base import Limits, Options, Result
from workers.optimizers.perceptual import block_mosaic, still_search

# SSIMULACRA2 an AVIF holds, as a lossy WebP does.
AVIF_TARGET = webp_search.TARGET
AVIF_QUALITIES = tuple(range(20, 101))
AVIF_FIRST_GUESS = AVIF_QUALITIES.index(65)
AVIF_FIRST_STRIDE = 8
# libavif's speed (0 slowest, 10 fastest): 7 costs a quarter second a megapixel
# for a few percent more bytes than the default 6; past LARGE pixels, 8 costs a
# third of that for some 7% more.
AVIF_SPEED = 7
AVIF_LARGE_SPEED = 8
LARGE = 2_000_000
# Full-resolution chroma: at the target it is no larger than 4:2:0 on photos,
# and the only way to hold it on screenshots and coloured text.
AVIF_SUBSAMPLING = "4:4:4"
# AV1 superblocks are 64 pixels: the proxy's tiles are cut on that grid.
AVIF_GRID = 64
# Formats whose images are often graphics, which lossless WebP may store smaller.
_LOSSLESS_SOURCES = frozenset({"PNG", "GIF"})
# Modes whose every pixel an 8-bit RGBA WebP holds as it is.
_EXACT_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA"})


def convert(data: bytes, options: Options, limits: Limits) -> Result | None:
    """`data` (JPEG, PNG, GIF or WebP) as options.convert's format, or None.

    None means this conversion cannot be done as asked (see the module's
    docstring); the result is not compared with the input's size here.
    """
    image = imaging.open_image(data, limits)
    frames = imaging.check_frames(image, limits)
    if options.convert == "webp":
        if frames > 1:
            return _animated_webp(image, options, len(data))
        if options.lossless:
            return _lossless_webp(image, options)
        return _lossy_webp(image, options, len(data))
    if options.convert == "avif" and frames == 1 and not options.lossless:
        return _lossy_avif(image, options, len(data))
    return None


def _lossless_webp(image: Image.Image, options: Options) -> Result | None:
    """Every stored pixel kept; orientation and a non-sRGB profile as metadata."""
    if image.mode not in _EXACT_MODES:
        return None
    metadata = imaging.lossless_metadata(image, options.preserve)
    imaging.load(image)
    pixels = imaging.to_8bit(image)
    pixels = imaging.resize_into(pixels, options.resize)
    data = webp_encode.lossless_still(pixels, metadata)
    return Result(data, "webp", pixels.width, pixels.height)


def _lossy_webp(image: Image.Image, options: Options, to_beat: int) -> Result | None:
    """The lossy search; for a PNG or GIF also a lossless WebP, unless it cannot win.

    Screenshots, drawings and dithered palettes often come out smaller lossless,
    and colour detail that 4:2:0 chroma loses can hold the target no other way.
    """
    source_format = image.format
    prepared = imaging.prepare(image, options)
    pixels, metadata = prepared.image, prepared.metadata
    found = webp_search.lossy_still(pixels, metadata, to_beat)
    candidates = [] if found is None else [found.data]
    if source_format in _LOSSLESS_SOURCES and not webp.far_below(found, to_beat):
        candidates.append(webp_encode.lossless_still(pixels, metadata))
    if not candidates:
        return None
    return Result(min(candidates, key=len), "webp", pixels.width, pixels.height)


def _animated_webp(image: Image.Image, options: Options, to_beat: int) -> Result:
    """Every frame with its duration and the loop count, lossless or lossy.

    Lossy mode tries lossless first: a GIF's screen recordings and drawings are
    often smaller so, and the lossy search then gives up as soon as its first
    whole encode is no smaller.
    """
    if options.lossless:
        frames = webp.resized(webp_encode.decode_frames(image), options.resize)
        metadata = imaging.lossless_metadata(image, options.preserve)
        data = webp_encode.lossless_animation(frames, metadata)
    else:
        frames, metadata = webp.prepare_frames(image, options)
        data = webp_encode.lossless_animation(frames, metadata)
        found = webp_search.lossy_animation(frames, metadata, min(to_beat, len(data)))
        if found is not None and len(found.data) < len(data):
            data = found.data
    width, height = frames.images[0].size
    return Result(data, "webp", width, height)


def _lossy_avif(image: Image.Image, options: Options, to_beat: int) -> Result | None:
    prepared = imaging.prepare(image, options)
    pixels, metadata = prepared.image, prepared.metadata

    # The proxy and the whole are encoded alike, so that their scores agree.
    large = pixels.width * pixels.height > LARGE
    speed = AVIF_LARGE_SPEED if large else AVIF_SPEED

    def encode(frame: Image.Image, quality: int) -> bytes:
        return encode_avif(frame, metadata, quality, speed)

    found = still_search(
        pixels,
        AVIF_QUALITIES,
        encode,
        decode_avif,
        AVIF_TARGET,
        to_beat,
        start=AVIF_FIRST_GUESS,
        stride=AVIF_FIRST_STRIDE,
        mosaic=lambda frame: block_mosaic(frame, grid=AVIF_GRID),
    )
    if found is None:
        return None
    return Result(found.data, "avif", pixels.width, pixels.height)


def encode_avif(
    image: Image.Image,
    metadata: imaging.Metadata,
    quality: int,
    speed: int = AVIF_SPEED,
) -> bytes:
    """One still AVIF of `image` at `quality` and libavif `speed`, with `metadata`.

    Pillow turns an EXIF orientation into the AVIF's own rotation and mirror.
    """
    out = io.BytesIO()
    image.save(
        out,
        "AVIF",
        quality=quality,
        speed=speed,
        subsampling=AVIF_SUBSAMPLING,
        max_threads=1,
        **metadata.save_arguments(),
    )
    return out.getvalue()


def decode_avif(data: bytes) -> Image.Image:
    """Decode AVIF bytes of ours back to pixels, to score them."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.copy()
