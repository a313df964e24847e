"""Decoded pixels of images and PDF pages, as the benchmark's checks and metric see.

Two views of a file: its stored pixels, for the lossless checks (what the file holds,
orientation and colour profile untouched), and its displayed pixels, for the metric
(oriented, converted to sRGB, composited over white).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator

import numpy as np
import pypdfium2 as pdfium
from PIL import Image, ImageCms, ImageOps, ImageSequence

PDF_SCALE = 1.0  # 72 dpi
WHITE = 255.0

_SIXTEEN_BIT_GREY = frozenset({"I;16", "I;16L", "I;16B", "I"})
_NON_RGB = frozenset({"CMYK", "YCbCr", "LAB", "HSV"})
_SRGB = ImageCms.createProfile("sRGB")


class DecodeFailed(Exception):
    """A file that the check or the metric cannot read."""


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except (OSError, ValueError) as error:
        raise DecodeFailed(f"cannot decode: {error}") from error


def rgba16(frame: Image.Image) -> np.ndarray:
    """A frame as an (h, w, 4) uint16 array, 8-bit values scaled to 16 bits."""
    if frame.mode in _SIXTEEN_BIT_GREY:
        grey = np.asarray(frame).astype(np.uint16)
        alpha = np.full_like(grey, 0xFFFF)
        return np.stack([grey, grey, grey, alpha], axis=-1)
    return np.asarray(frame.convert("RGBA")).astype(np.uint16) * 257


def visible_pixels(frame: Image.Image) -> np.ndarray:
    """The frame as rgba16, with the colour of fully transparent pixels zeroed.

    A pixel nobody can see has no colour worth keeping: optimizers may change it.
    """
    pixels = rgba16(frame)
    pixels[pixels[..., 3] == 0] = 0
    return pixels


def frame_digest(frame: Image.Image) -> str:
    """A digest of what the frame shows; modes without an RGB view must match too."""
    if frame.mode in _NON_RGB:
        content = frame.mode.encode() + frame.tobytes()
    else:
        content = visible_pixels(frame).tobytes()
    size = f"{frame.width}x{frame.height}".encode()
    return hashlib.sha256(size + b"\0" + content).hexdigest()


def timeline(data: bytes) -> list[tuple[str, int]]:
    """The frames as (digest, duration in ms), runs of identical frames merged.

    Optimizers such as gifsicle merge a frame into the one before when it shows the
    same pixels, adding up the delays: the animation plays the same.
    """
    with _open(data) as image:
        return merge_runs(
            (frame_digest(frame), int(frame.info.get("duration") or 0))
            for frame in ImageSequence.Iterator(image)
        )


def merge_runs(frames: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """Consecutive frames with one digest merged into one, their durations added."""
    runs: list[tuple[str, int]] = []
    for key, duration in frames:
        if runs and runs[-1][0] == key:
            runs[-1] = (key, runs[-1][1] + duration)
        else:
            runs.append((key, duration))
    return runs


def same_image_pixels(original: bytes, output: bytes) -> bool:
    """Every frame showing the same pixels for as long (JPEG: same decoded samples)."""
    return timeline(original) == timeline(output)


def frame_starts(data: bytes) -> list[int]:
    """When each frame starts showing, in ms from the start of the animation."""
    starts, clock = [], 0
    with _open(data) as image:
        for frame in ImageSequence.Iterator(image):
            starts.append(clock)
            frame.load()  # Pillow reads a WebP frame's duration with its pixels
            clock += int(frame.info.get("duration") or 0)
    return starts


def frame_sample(count: int, limit: int | None) -> list[int]:
    """Indices of up to `limit` frames spread evenly over `count`, first and last."""
    if limit is None or count <= limit:
        return list(range(count))
    if limit == 1:
        return [0]
    step = (count - 1) / (limit - 1)
    return sorted({round(i * step) for i in range(limit)})


def over_white(frame: Image.Image) -> np.ndarray:
    """An RGB(A) frame as (h, w, 3) uint8 with its alpha composited over white."""
    rgba = np.asarray(frame.convert("RGBA")).astype(np.float32)
    alpha = rgba[..., 3:4] / 255.0
    rgb = rgba[..., :3] * alpha + WHITE * (1.0 - alpha)
    return np.rint(rgb).astype(np.uint8)


def to_srgb(frame: Image.Image, icc: bytes | None) -> Image.Image:
    """The frame converted from its embedded profile to sRGB (RGB or RGBA)."""
    wants_alpha = frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info
    if frame.mode not in ("RGB", "RGBA", "L", "CMYK"):
        frame = frame.convert("RGBA" if wants_alpha else "RGB")
    if icc and not _is_srgb(icc):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            out_mode = "RGBA" if frame.mode == "RGBA" else "RGB"
            return ImageCms.profileToProfile(frame, source, _SRGB, outputMode=out_mode)
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    return frame.convert("RGBA" if frame.mode == "RGBA" else "RGB")


def _is_srgb(icc: bytes) -> bool:
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return "srgb" in ImageCms.getProfileDescription(profile).lower()
    except (ImageCms.PyCMSError, OSError):
        return False


def displayed_frames(data: bytes, indices: list[int]) -> Iterator[np.ndarray]:
    """The frames a viewer shows at these ascending indices, as RGB uint8 arrays."""
    with _open(data) as image:
        icc = image.info.get("icc_profile")
        if getattr(image, "n_frames", 1) == 1:
            still = over_white(to_srgb(ImageOps.exif_transpose(image), icc))
            for _ in indices:
                yield still
            return
        for index in indices:
            image.seek(index)
            yield over_white(to_srgb(image.copy(), icc))


def frame_count(data: bytes) -> int:
    with _open(data) as image:
        return getattr(image, "n_frames", 1)


def pdf_document(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        raise DecodeFailed(f"cannot open PDF: {error}") from error


def pdf_page_count(data: bytes) -> int:
    document = pdf_document(data)
    try:
        return len(document)
    finally:
        document.close()


def rendered_pages(data: bytes, limit: int | None = None) -> Iterator[np.ndarray]:
    """The first `limit` pages (all if None) rendered at 72 dpi as RGB uint8 arrays."""
    document = pdf_document(data)
    try:
        count = len(document) if limit is None else min(limit, len(document))
        for index in range(count):
            page = document[index]
            bitmap = page.render(scale=PDF_SCALE, rev_byteorder=True)
            pixels = bitmap.to_numpy()[..., :3].copy()
            bitmap.close()
            page.close()
            yield pixels
    finally:
        document.close()


def same_pdf_pages(original: bytes, output: bytes) -> bool:
    """Same page count, and every page rendering to the same pixels at 72 dpi."""
    if pdf_page_count(original) != pdf_page_count(output):
        return False
    pairs = zip(rendered_pages(original), rendered_pages(output), strict=True)
    return all(np.array_equal(a, b) for a, b in pairs)


def pdf_characters(data: bytes) -> int:
    """How many text characters pdfium finds on all pages: text that stayed text."""
    document = pdf_document(data)
    try:
        total = 0
        for index in range(len(document)):
            page = document[index]
            text = page.get_textpage()
            total += text.count_chars()
            text.close()
            page.close()
        return total
    finally:
        document.close()
