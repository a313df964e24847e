"""An image XObject's samples as a Pillow image, and Pillow images back as streams.

Only images that can be written back faithfully are read: 8 bits per component in
DeviceGray, DeviceRGB, DeviceCMYK or an ICC-based space of 1, 3 or 4 components,
under general filters or one final DCTDecode, with no colour-key mask. Samples stay
in the image's own colour space. CMYK samples follow Pillow's JPEG convention
(inverted) both ways, so that the image's /Decode array keeps its meaning.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import deflate
import numpy as np
import pikepdf
from PIL import Image

from workers.optimizers import imaging, pdfstreams
from workers.optimizers.base import Limits
from workers.optimizers.errors import OptimizeError
from workers.optimizers.pdffilters import GENERAL_FILTERS, Budget
from workers.optimizers.png_chunks import read_chunks

MODES = {1: "L", 3: "RGB", 4: "CMYK"}
_DEVICE_COMPONENTS = {"/DeviceGray": 1, "/DeviceRGB": 3, "/DeviceCMYK": 4}
_JPEG = "/DCTDecode"
_FLATE_LEVEL = 9
# PNG's filters chosen per row: PDF's predictor 15 reads them.
_PNG_PREDICTOR = 15


@dataclass(frozen=True)
class Encoded:
    """Stream data and the filters, in decoding order, that it is encoded with."""

    data: bytes
    filters: tuple[tuple[str, dict[str, int]], ...]


def components(image: pikepdf.Stream) -> int | None:
    """How many components the image's colour space has, if we handle that space."""
    space = image.get("/ColorSpace")
    if isinstance(space, pikepdf.Name):
        return _DEVICE_COMPONENTS.get(str(space))
    if (
        isinstance(space, pikepdf.Array)
        and len(space) == 2
        and space[0] == "/ICCBased"
        and isinstance(space[1], pikepdf.Stream)
    ):
        count = space[1].get("/N")
        if isinstance(count, int) and int(count) in MODES:
            return int(count)
    return None


def size(image: pikepdf.Stream) -> tuple[int, int] | None:
    """The image's width and height in samples, if both are sane."""
    width, height = image.get("/Width"), image.get("/Height")
    if not isinstance(width, int) or not isinstance(height, int):
        return None
    if width <= 0 or height <= 0:
        return None
    return int(width), int(height)


def is_jpeg(image: pikepdf.Stream) -> bool:
    """Whether the image's last filter is DCTDecode."""
    chain = pdfstreams.filter_chain(image)
    return bool(chain) and chain[-1][0] == _JPEG


def readable(image: pikepdf.Stream) -> bool:
    """Whether `decode` can read the image and its samples can be written back."""
    if image.get("/ImageMask") or image.get("/BitsPerComponent") != 8:
        return False
    if isinstance(image.get("/Mask"), pikepdf.Array) or "/SMaskInData" in image:
        return False  # colour keys need exact samples
    if components(image) is None or size(image) is None:
        return False
    chain = pdfstreams.filter_chain(image)
    names = [name for name, _ in chain]
    if names and names[-1] == _JPEG:
        if "/ColorTransform" in chain[-1][1]:
            return False  # the renderer's colour transform may not be Pillow's
        names = names[:-1]
    return all(name in GENERAL_FILTERS for name in names)


def decode(
    image: pikepdf.Stream, limits: Limits, draft: tuple[int, int] | None = None
) -> Image.Image | None:
    """The image's samples in mode L, RGB or CMYK, or None where they cannot be read.

    The pixel limit is checked before decoding. With `draft`, a JPEG may decode
    at a reduced scale that is still at least that size.
    """
    dimensions, count = size(image), components(image)
    if dimensions is None or count is None:
        return None
    width, height = dimensions
    if width * height > limits.max_pixels:
        return None
    try:
        if is_jpeg(image):
            return _decode_jpeg(image, limits, MODES[count], draft)
        raw = image.read_bytes()
    except (pikepdf.PdfError, OptimizeError, ValueError):
        return None
    expected = width * height * count
    if len(raw) < expected:
        return None
    samples = np.frombuffer(raw, dtype=np.uint8, count=expected)
    if count == 1:
        return Image.fromarray(samples.reshape(height, width), "L")
    samples = samples.reshape(height, width, count)
    if count == 4:
        samples = 255 - samples
    return Image.fromarray(samples, MODES[count])


def _decode_jpeg(
    image: pikepdf.Stream,
    limits: Limits,
    mode: str,
    draft: tuple[int, int] | None,
) -> Image.Image | None:
    decoded = pdfstreams.decoded_general(image, Budget(limits.max_decoded_stream_bytes))
    if decoded is None or [name for name, _ in decoded[1]] != [_JPEG]:
        return None
    picture = imaging.open_image(decoded[0], limits)
    if picture.format != "JPEG" or picture.mode != mode or picture.size != size(image):
        return None
    if draft is not None:
        picture.draft(mode, draft)
    return imaging.load(picture)


def flate(picture: Image.Image) -> Encoded:
    """The samples deflated, with PNG's row filters where they make it smaller."""
    raw = np.asarray(picture)
    if picture.mode == "CMYK":
        raw = 255 - raw
    plain = Encoded(
        bytes(deflate.zlib_compress(raw.tobytes(), _FLATE_LEVEL)),
        (("/FlateDecode", {}),),
    )
    if picture.mode == "CMYK":
        return plain
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", compress_level=9)
    idat = b"".join(
        body for kind, body in read_chunks(buffer.getvalue()) if kind == b"IDAT"
    )
    parms = {
        "/Predictor": _PNG_PREDICTOR,
        "/Colors": len(picture.getbands()),
        "/BitsPerComponent": 8,
        "/Columns": picture.width,
    }
    predicted = Encoded(idat, (("/FlateDecode", parms),))
    return min(plain, predicted, key=lambda encoded: len(encoded.data))


def jpeg(data: bytes) -> Encoded:
    """A JPEG file as DCTDecode stream data."""
    return Encoded(data, ((_JPEG, {}),))


def write(image: pikepdf.Stream, encoded: Encoded, dimensions: tuple[int, int]) -> None:
    """Replace the image's samples; its colour space, /Decode and masks stay."""
    names = [pikepdf.Name(name) for name, _ in encoded.filters]
    parms = [pikepdf.Dictionary(p) if p else None for _, p in encoded.filters]
    if len(names) == 1:
        image.write(encoded.data, filter=names[0], decode_parms=parms[0])
    else:
        image.write(
            encoded.data, filter=pikepdf.Array(names), decode_parms=pikepdf.Array(parms)
        )
    image.Width, image.Height = dimensions
    image.BitsPerComponent = 8
