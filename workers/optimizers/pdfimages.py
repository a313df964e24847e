"""Lossy work on a PDF's images: downsampling and JPEG re-encoding by the bound.

Each image is brought down to TARGET_DPI at its largest placement on any page (an
SMask it alone uses comes down with it), then photographic images are searched as
JPEG for the smallest encode holding the perceptual TARGET, as JPEG files are;
graphics stay lossless. A stream is replaced only by a smaller one. Images whose
placements cannot all be measured, and samples that cannot be written back
faithfully (1-bit, indexed, JBIG2, CCITT, JPEG 2000, colour keys), are left alone.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import pikepdf
from PIL import Image

from workers.optimizers import jpeg_encode, pdf_samples, pdfstreams
from workers.optimizers.base import Limits
from workers.optimizers.imaging import Metadata
from workers.optimizers.pdf_placements import (
    ObjGen,
    Placements,
    TooComplex,
    find_placements,
)
from workers.optimizers.pdf_samples import Encoded
from workers.optimizers.perceptual import proxy_of, still_search

TARGET_DPI = 150
# An image is resampled only when it holds this much more than TARGET_DPI needs:
# a few percent fewer samples are not worth a resampling blur.
RESAMPLE_ABOVE = 1.1
# Images of fewer pixels are left as they are: too few bytes to win.
MIN_PIXELS = 64 * 64
# The score a JPEG of a PDF image is searched to, on the image at its new size.
TARGET = 80.0
# An image of at most this many colours is a graphic, kept lossless.
GRAPHIC_COLOURS = 256
# The share of the time limit the images may take; the rest saves the file.
IMAGE_TIME_SHARE = 0.5
_POINTS_PER_INCH = 72.0
_AREA_AVERAGE = Image.Resampling.BOX


@dataclass(frozen=True)
class _Mask:
    """An image's SMask, which only that image uses."""

    stream: pikepdf.Stream
    matte: bool


def reduce_images(pdf: pikepdf.Pdf, limits: Limits) -> None:
    """Bring every image down to what its largest placement needs.

    The largest streams go first; past IMAGE_TIME_SHARE of the time limit the
    rest are left to the lossless pass, so that the file is still done in time.
    """
    stop_at = time.monotonic() + limits.time_limit * IMAGE_TIME_SHARE
    pdfstreams.merge_duplicates(pdf)
    try:
        placements = find_placements(pdf)
    except TooComplex:
        return
    masks = _own_masks(pdf, placements)
    images = [
        (image, extent)
        for key, extent in placements.measured().items()
        if isinstance(image := pdf.get_object(key), pikepdf.Stream)
    ]
    images.sort(key=lambda entry: _stored_size(entry[0]), reverse=True)
    for image, extent in images:
        if time.monotonic() > stop_at:
            return
        try:
            _reduce(image, masks.get(image.objgen), extent, limits)
        except pikepdf.PdfError:
            continue  # a damaged image stream is left for the lossless pass


def _stored_size(stream: pikepdf.Stream) -> int:
    try:
        return len(stream.read_raw_bytes())
    except pikepdf.PdfError:
        return 0


def _own_masks(pdf: pikepdf.Pdf, placements: Placements) -> dict[ObjGen, _Mask]:
    """Each image's SMask, where no other image uses it and it is not drawn alone."""
    parents: dict[ObjGen, list[ObjGen]] = {}
    masks: dict[ObjGen, pikepdf.Stream] = {}
    for obj in pdfstreams.streams(pdf):
        mask = obj.get("/SMask") if obj.get("/Subtype") == "/Image" else None
        if isinstance(mask, pikepdf.Stream):
            parents.setdefault(mask.objgen, []).append(obj.objgen)
            masks[obj.objgen] = mask
    own = {}
    for key, mask in masks.items():
        drawn = (
            mask.objgen in placements.extents or mask.objgen in placements.unmeasured
        )
        if len(parents[mask.objgen]) == 1 and not drawn:
            own[key] = _Mask(mask, "/Matte" in mask)
    return own


def wanted_size(
    width: int, height: int, extent: tuple[float, float]
) -> tuple[int, int]:
    """The image's size at TARGET_DPI over `extent` (points), never enlarged.

    One scale serves both axes, the larger of the two they need, so that neither
    falls below TARGET_DPI by more than rounding to whole samples.
    """
    need_x = extent[0] * TARGET_DPI / _POINTS_PER_INCH
    need_y = extent[1] * TARGET_DPI / _POINTS_PER_INCH
    scale = max(need_x / width, need_y / height)
    if scale * RESAMPLE_ABOVE >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _reduce(
    image: pikepdf.Stream,
    mask: _Mask | None,
    extent: tuple[float, float],
    limits: Limits,
) -> None:
    if not pdf_samples.readable(image):
        return
    dimensions = pdf_samples.size(image)
    if dimensions is None or dimensions[0] * dimensions[1] < MIN_PIXELS:
        return
    size = wanted_size(*dimensions, extent)
    alpha = _decoded_mask(mask, dimensions, limits)
    premultiply = (
        alpha is not None and mask is not None and not mask.matte and size != dimensions
    )
    draft = None if premultiply or size == dimensions else size
    pixels = pdf_samples.decode(image, limits, draft)
    if pixels is None:
        return
    if pixels.size != size:
        pixels, alpha = _resized(pixels, alpha, size, premultiply)
    elif alpha is not None and alpha.size != size:
        alpha = alpha.resize(size, _AREA_AVERAGE)

    original = len(image.read_raw_bytes())
    candidates = []
    if size != dimensions:
        candidates.append(pdf_samples.flate(pixels))
    to_beat = min([original] + [len(c.data) for c in candidates])
    if _photographic(image, pixels) and _jpeg_may_win(pixels, to_beat):
        found = _jpeg_search(pixels, alpha, to_beat)
        if found is not None:
            candidates.append(found)
    best = min(candidates, key=lambda encoded: len(encoded.data), default=None)
    if best is not None and len(best.data) < original:
        pdf_samples.write(image, best, size)
    if mask is not None and alpha is not None and size != dimensions:
        _write_mask(mask.stream, alpha)


def _decoded_mask(
    mask: _Mask | None, dimensions: tuple[int, int], limits: Limits
) -> Image.Image | None:
    """The SMask's samples as an L image, if it is a plain grey 8-bit image."""
    if mask is None or not pdf_samples.readable(mask.stream):
        return None
    if pdf_samples.components(mask.stream) != 1:
        return None
    if pdf_samples.size(mask.stream) != dimensions:
        return None  # a mask of its own resolution is left as it is
    return pdf_samples.decode(mask.stream, limits)


def _resized(
    pixels: Image.Image,
    alpha: Image.Image | None,
    size: tuple[int, int],
    premultiply: bool,
) -> tuple[Image.Image, Image.Image | None]:
    """Both resampled to `size`, colour weighted by alpha when `premultiply`.

    Each new sample is the area average of the old ones it covers, on the samples
    as they are: that is how PDF renderers scale images down, so the page looks
    as the original did (sharper filters measured worse on the corpus's pages).
    """
    if premultiply and alpha is not None and pixels.mode in ("L", "RGB"):
        combined = pixels.copy()
        combined.putalpha(alpha)
        bands = combined.resize(size, _AREA_AVERAGE).split()
        return Image.merge(pixels.mode, bands[:-1]), bands[-1]
    colour = pixels.resize(size, _AREA_AVERAGE)
    if alpha is not None:
        alpha = alpha.resize(size, _AREA_AVERAGE)
    return colour, alpha


def _write_mask(mask: pikepdf.Stream, alpha: Image.Image) -> None:
    encoded = pdf_samples.flate(alpha)
    if len(encoded.data) < len(mask.read_raw_bytes()):
        pdf_samples.write(mask, encoded, alpha.size)


def _photographic(image: pikepdf.Stream, pixels: Image.Image) -> bool:
    """Whether the image is worth a JPEG: one already, or of many colours."""
    return pdf_samples.is_jpeg(image) or pixels.getcolors(GRAPHIC_COLOURS) is None


def _jpeg_may_win(pixels: Image.Image, to_beat: int) -> bool:
    """Whether the lowest quality searched, estimated on a proxy, is under `to_beat`.

    No JPEG the search can find comes out smaller than that one; the estimate
    spares the search on images (scanned text, drawings) that stay smaller
    lossless.
    """
    sample = proxy_of(pixels) or pixels
    encoder = "jpegli" if pixels.mode == "RGB" else "444"
    lowest = jpeg_encode.Setting(jpeg_encode.QUALITIES[0], encoder)
    probe = jpeg_encode.encode(sample, lowest, Metadata())
    scale = pixels.width * pixels.height / (sample.width * sample.height)
    return len(probe) * scale < to_beat


def _jpeg_search(
    pixels: Image.Image, alpha: Image.Image | None, to_beat: int
) -> Encoded | None:
    """The smallest JPEG found whose page-visible pixels hold TARGET, or None.

    With an alpha of the same size the score is taken over white, as the page
    shows the image. RGB is searched with jpegli at 4:2:0, and with libjpeg-turbo
    at 4:4:4 only where jpegli cannot hold TARGET (sharp colour edges of small
    images); grey and CMYK with libjpeg-turbo alone.
    """
    encoders = jpeg_encode.ENCODERS if pixels.mode == "RGB" else ("444",)
    over = _OverAlpha(alpha if pixels.mode in ("L", "RGB") else None)
    subject = over.attach(pixels)
    for encoder in encoders:
        qualities = jpeg_encode.QUALITIES
        settings = [jpeg_encode.Setting(quality, encoder) for quality in qualities]
        found = still_search(
            subject, settings, over.encode, over.decode, TARGET, to_beat
        )
        if found is not None:
            if len(found.data) >= to_beat:
                return None
            return pdf_samples.jpeg(found.data)
    return None


class _OverAlpha:
    """Encode the colour alone; decode it with the alpha of its crop put back.

    The search encodes the image and its proxy mosaic, and scores each decode
    against its own reference: the alpha of each is kept by its size.
    """

    def __init__(self, alpha: Image.Image | None) -> None:
        self.alpha = alpha
        self.alphas: dict[tuple[int, int], Image.Image] = {}

    def attach(self, pixels: Image.Image) -> Image.Image:
        if self.alpha is None or self.alpha.size != pixels.size:
            return pixels
        combined = pixels.copy()
        combined.putalpha(self.alpha)
        return combined

    def encode(self, picture: Image.Image, setting: jpeg_encode.Setting) -> bytes:
        if picture.mode in ("LA", "RGBA"):
            self.alphas[picture.size] = picture.getchannel("A")
            picture = picture.convert(picture.mode[:-1])
        return jpeg_encode.encode(picture, setting, Metadata())

    def decode(self, data: bytes) -> Image.Image:
        picture = Image.open(io.BytesIO(data))
        picture.load()
        alpha = self.alphas.get(picture.size)
        if alpha is not None and picture.mode in ("L", "RGB"):
            picture.putalpha(alpha)
        return picture
