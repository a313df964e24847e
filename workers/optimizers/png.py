"""The PNG optimizer: oxipng for exact copies, a perceptual search for lossy ones.

Lossless keeps every pixel and lets oxipng pick colour type, filters and deflate,
with the metadata chunks preserve_metas keeps (png_chunks.py). Lossy hands the
displayed pixels to the search of png_lossy.py, which looks for the smallest
file that holds the target score.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from workers.optimizers.base import Limits, Options, Result
from workers.optimizers.imaging import (
    Metadata,
    check_frames,
    kept_exif,
    load,
    open_image,
    prepare,
)
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
from workers.optimizers.png_encode import (
    LOSSLESS_LEVEL,
    LOSSY_LEVEL,
    LOW_DEPTH_LEVEL,
    Extra,
    encode_truecolour,
    oxipng_optimized,
)
from workers.optimizers.png_lossy import LossySearch

# The score every lossy PNG is searched to: the corpus median lands near 77, the
# peer's (pngquant 65-80), while no file falls under the floor of 70.
TARGET = 77.0
# Above this many pixels a lossy copy is exact: the search's full-size candidates
# alone would need more memory than a worker should take.
LOSSY_MAX_PIXELS = 30_000_000


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
        extra = Extra(
            _extra_chunks(chunks, options, prepared.metadata), prepared.metadata.icc
        )
        if options.lossless or pixels.width * pixels.height > LOSSY_MAX_PIXELS:
            out = encode_truecolour(np.asarray(pixels), extra, LOSSY_LEVEL, timeout)
        else:
            out = LossySearch(pixels, self.target, extra, timeout).run()
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
        return oxipng_optimized(kept, LOW_DEPTH_LEVEL, timeout, fast_evaluation=False)
    return oxipng_optimized(kept, LOSSLESS_LEVEL, timeout)


def _with_alpha(image: Image.Image) -> Image.Image:
    """Grey or RGB with a tRNS colour key, as LA or RGBA: prepare would drop it."""
    if image.mode not in ("L", "RGB") or "transparency" not in image.info:
        return image
    info = {k: v for k, v in image.info.items() if k != "transparency"}
    converted = image.convert("LA" if image.mode == "L" else "RGBA")
    converted.info = info
    return converted


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
