"""Decoding raster images once, safely, into pixels every encoder can take.

Limits are checked on the header before any pixel is decoded; EXIF orientation,
colour profiles, CMYK/YCCK, 16-bit and palette images are brought to plain 8-bit
sRGB as the options ask; resizing is done in linear light; and the metadata policy
of API.md decides which EXIF tags and which ICC profile the output carries.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from workers.optimizers.base import Limits, Options
from workers.optimizers.errors import CorruptFile, LimitExceeded

ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825

# Which EXIF tags each preserve_metas name keeps: (IFD0 tags, Exif sub-IFD tags).
_KEPT_TAGS: dict[str, tuple[frozenset[int], frozenset[int]]] = {
    "copyright": (frozenset({0x8298, 0x013B}), frozenset()),
    "datetime": (
        frozenset({0x0132}),
        frozenset({0x9003, 0x9004, 0x9010, 0x9011, 0x9012, 0x9290, 0x9291, 0x9292}),
    ),
}

# The transpose that shows the stored pixels upright, for each EXIF orientation.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# The errors Pillow raises for bytes that claim a format but do not decode.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# Colour transforms kept for the profiles met most recently.
_TRANSFORMS = 16


@dataclass(frozen=True)
class Metadata:
    """What an output carries besides pixels: an EXIF block and an ICC profile.

    `exif` is as Pillow's `save(exif=...)` takes it (with its "Exif" header), or
    None; `icc` is a profile to embed, or None for plain sRGB.
    """

    exif: bytes | None = None
    icc: bytes | None = None

    def save_arguments(self) -> dict[str, object]:
        """The arguments of Pillow's `save` that embed this metadata."""
        arguments: dict[str, object] = {}
        if self.exif:
            arguments["exif"] = self.exif
        if self.icc:
            arguments["icc_profile"] = self.icc
        return arguments


@dataclass(frozen=True)
class Prepared:
    """Decoded pixels ready to encode, and the metadata the output is to carry.

    `image` is loaded, in mode L, LA, RGB or RGBA, 8 bits per channel.
    """

    image: Image.Image
    metadata: Metadata


def check_pixels(width: int, height: int, limits: Limits) -> None:
    """Refuse a frame over the pixel limit, before it is decoded."""
    if width <= 0 or height <= 0:
        raise CorruptFile("The image has no pixels.")
    if width * height > limits.max_pixels:
        raise LimitExceeded(
            f"The image is {width}x{height} pixels, over the limit of "
            f"{limits.max_pixels} pixels (max_pixels)."
        )


def check_frames(image: Image.Image, limits: Limits) -> int:
    """Refuse an animation over the frame limits; return its number of frames."""
    frames = getattr(image, "n_frames", 1)
    if frames > limits.max_frames:
        raise LimitExceeded(
            f"The animation has {frames} frames, over the limit of "
            f"{limits.max_frames} frames (max_frames)."
        )
    if frames * image.width * image.height > limits.max_total_pixels:
        raise LimitExceeded(
            f"The animation has {frames * image.width * image.height} pixels over "
            f"all frames, over the limit of {limits.max_total_pixels} "
            "(max_total_pixels)."
        )
    return frames


def open_image(data: bytes, limits: Limits) -> Image.Image:
    """Open `data` reading its header only, and check the pixel limit.

    Pillow's own bomb guard is left to ours (its warning is silenced, its error
    becomes LimitExceeded); bytes Pillow cannot identify raise CorruptFile.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise LimitExceeded(
            f"The image is over the limit of {limits.max_pixels} pixels (max_pixels)."
        ) from error
    except (UnidentifiedImageError, *DECODE_ERRORS) as error:
        raise CorruptFile("The file does not decode as an image.") from error
    check_pixels(image.width, image.height, limits)
    return image


def load(image: Image.Image) -> Image.Image:
    """Decode the pixels of an opened image, mapping decoder failures to CorruptFile."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except Image.DecompressionBombError as error:
        raise LimitExceeded(
            "The image is over the pixel limit (max_pixels)."
        ) from error
    except DECODE_ERRORS as error:
        raise CorruptFile("The image data is truncated or corrupt.") from error
    return image


def orientation(image: Image.Image) -> int:
    """The EXIF orientation of an opened image, 1 (upright) when absent or invalid."""
    try:
        value = image.getexif().get(ORIENTATION, 1)
    except DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright(image: Image.Image, value: int) -> Image.Image:
    """The pixels as shown upright for EXIF orientation `value` (1 to 8)."""
    transpose = _UPRIGHT.get(value)
    return image if transpose is None else image.transpose(transpose)


def icc_profile(image: Image.Image) -> bytes | None:
    """The embedded ICC profile of an image, or None."""
    return image.info.get("icc_profile") or None


def is_srgb(icc: bytes | None) -> bool:
    """Whether a profile is sRGB (or absent, which means sRGB); unreadable is not."""
    if not icc:
        return True
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = ImageCms.getProfileDescription(profile)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return False
    return "srgb" in description.lower()


def to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert loaded pixels described by `icc` to sRGB; unusable profiles are ignored.

    CMYK comes out RGB, grey stays grey, alpha is carried over untouched.
    """
    alpha = None
    if image.mode in ("RGBA", "LA"):
        alpha = image.getchannel("A")
        image = image.convert(image.mode[:-1])
    converted = _apply_profile(image, icc)
    if converted is None:
        converted = image.convert("RGB") if image.mode == "CMYK" else image
    if alpha is not None:
        converted = converted.convert(converted.mode + "A")
        converted.putalpha(alpha)
    return converted


def _apply_profile(image: Image.Image, icc: bytes | None) -> Image.Image | None:
    if not icc or image.mode not in ("RGB", "L", "CMYK"):
        return None
    try:
        converted = _transform_to_srgb(icc, image.mode).apply(image)
    except (ImageCms.PyCMSError, OSError, TypeError, ValueError):
        return None
    if image.mode == "L":
        return converted.convert("L")
    return converted


@lru_cache(maxsize=_TRANSFORMS)
def _transform_to_srgb(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform:
    """The LittleCMS transform from `icc` to sRGB for pixels of `mode`, kept.

    Building one takes a few milliseconds, tens for a large profile (often more
    than applying it), and a worker meets the same cameras' profiles over and
    over. Perceptual, as
    browsers render a profile (and LittleCMS by default); the intent a profile's
    header suggests moves CMYK colours by a visible amount.
    """
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return ImageCms.ImageCmsTransform(
        source, _SRGB, mode, "RGB", ImageCms.Intent.PERCEPTUAL
    )


def to_8bit(image: Image.Image) -> Image.Image:
    """Bring any loaded mode to L, LA, RGB or RGBA with 8 bits per channel.

    16-bit grey is scaled, not clipped; palettes become RGB, or RGBA when they have
    transparency; CMYK becomes RGB by Pillow's plain formula (use `to_srgb` first
    when a profile describes it).
    """
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        scaled = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, "L")
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
    if mode == "1":
        return image.convert("L")
    if mode in ("P", "PA"):
        transparent = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if transparent else "RGB")
    if mode in ("La", "RGBa"):
        return image.convert("LA" if mode == "La" else "RGBA")
    return image.convert("RGB")


def _linear_table() -> np.ndarray:
    v = np.arange(256, dtype=np.float64) / 255.0
    linear = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return linear.astype(np.float32)


# Linear light of each 8-bit sRGB value, the transfer function of IEC 61966-2-1.
SRGB_TO_LINEAR = _linear_table()


def _to_srgb_bytes(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    shape = linear.shape
    flat = linear.reshape(shape[0], -1) if linear.ndim > 1 else linear[None, :]
    powered = cv2.pow(flat, 1.0 / 2.4).reshape(shape)
    encoded = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * powered - 0.055)
    return np.rint(encoded * 255.0).astype(np.uint8)


def fit_size(width: int, height: int, box: tuple[int, int] | None) -> tuple[int, int]:
    """The size of a width x height image scaled down into `box`, never enlarged.

    A 0 side of the box does not bound; None means no box.
    """
    if box is None:
        return width, height
    scales = [
        bound / side
        for bound, side in zip(box, (width, height), strict=True)
        if bound > 0
    ]
    scale = min(scales, default=1.0)
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_into(image: Image.Image, box: tuple[int, int] | None) -> Image.Image:
    """Scale an 8-bit L, LA, RGB or RGBA image down into `box` in linear light.

    Lanczos on linear values, with alpha premultiplied so that transparent pixels
    do not bleed their colour into the edges; never enlarges.
    """
    size = fit_size(image.width, image.height, box)
    if size == image.size:
        return image
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    colour_count = 3 if image.mode in ("RGB", "RGBA") else 1
    has_alpha = image.mode in ("LA", "RGBA")
    linear = SRGB_TO_LINEAR[pixels[:, :, :colour_count]]
    alpha = pixels[:, :, colour_count].astype(np.float32) / 255.0 if has_alpha else None
    if alpha is not None:
        linear *= alpha[:, :, None]

    planes = [linear[:, :, i] for i in range(colour_count)]
    if alpha is not None:
        planes.append(alpha)
    resized = [_resize_plane(plane, size) for plane in planes]

    out_alpha = resized.pop() if alpha is not None else None
    colour = np.stack(resized, axis=2)
    if out_alpha is not None:
        out_alpha = np.clip(out_alpha, 0.0, 1.0)
        safe = np.where(out_alpha > 0.0, out_alpha, 1.0)
        colour = colour / safe[:, :, None]
    channels = [_to_srgb_bytes(colour)]
    if out_alpha is not None:
        channels.append(np.rint(out_alpha * 255.0).astype(np.uint8)[:, :, None])
    out = np.concatenate(channels, axis=2)
    if out.shape[2] == 1:
        return Image.fromarray(out[:, :, 0], "L")
    return Image.fromarray(out, image.mode)


def _resize_plane(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    resized = Image.fromarray(np.ascontiguousarray(plane), "F").resize(
        size, Image.Resampling.LANCZOS, reducing_gap=3.0
    )
    return np.asarray(resized, dtype=np.float32)


def kept_exif(
    image: Image.Image, preserve: frozenset[str], keep_orientation: bool
) -> bytes | None:
    """The EXIF block holding only the tags `preserve` names, or None if none are.

    `copyright` keeps Copyright and Artist, `datetime` the date, time, sub-second
    and offset tags, `location` the whole GPS directory; `keep_orientation` keeps
    an orientation other than 1. Everything else (maker notes, thumbnails, camera
    settings) goes.
    """
    try:
        source = image.getexif()
        sub_ifd = source.get_ifd(_EXIF_IFD)
        gps = source.get_ifd(_GPS_IFD) if "location" in preserve else {}
    except DECODE_ERRORS:
        return None
    kept, kept_sub = Image.Exif(), {}
    for name in preserve & _KEPT_TAGS.keys():
        main_tags, sub_tags = _KEPT_TAGS[name]
        for tag in main_tags & source.keys():
            kept[tag] = source[tag]
        kept_sub |= {tag: sub_ifd[tag] for tag in sub_tags & sub_ifd.keys()}
    value = orientation(image)
    if keep_orientation and value != 1:
        kept[ORIENTATION] = value
    if not (kept or kept_sub or gps):
        return None
    # Asking Pillow for a sub-directory creates it: only those with tags.
    if kept_sub:
        kept.get_ifd(_EXIF_IFD).update(kept_sub)
    if gps:
        kept.get_ifd(_GPS_IFD).update(gps)
    return kept.tobytes()


def lossless_metadata(image: Image.Image, preserve: frozenset[str]) -> Metadata:
    """The metadata a lossless copy carries, whose pixels are the original's.

    The orientation tag and a non-sRGB profile always stay, since nothing applied
    them; an sRGB profile and the other tags stay only as `preserve` says.
    """
    icc = icc_profile(image)
    keep_icc = icc is not None and ("icc" in preserve or not is_srgb(icc))
    return Metadata(
        exif=kept_exif(image, preserve, keep_orientation=True),
        icc=icc if keep_icc else None,
    )


def prepare(image: Image.Image, options: Options) -> Prepared:
    """Decode an opened image into pixels to re-encode, following `options`.

    Orientation is applied to the pixels unless kept as a tag, a profile is
    converted to sRGB unless kept (CMYK is always converted: the encoders take
    RGB), the mode becomes 8-bit L/LA/RGB/RGBA, and the image is resized into
    the box without enlarging.
    """
    preserve = options.preserve
    icc = icc_profile(image)
    value = orientation(image)
    keep_orientation = "orientation" in preserve
    _draft_for(image, options.resize, value)
    load(image)
    exif = kept_exif(image, preserve, keep_orientation)

    pixels = image
    keep_icc = "icc" in preserve and icc is not None and image.mode != "CMYK"
    if not keep_icc and (not is_srgb(icc) or image.mode == "CMYK"):
        pixels = to_srgb(to_8bit(pixels) if pixels.mode != "CMYK" else pixels, icc)
    pixels = to_8bit(pixels)
    box = options.resize
    if not keep_orientation:
        pixels = upright(pixels, value)
    elif box is not None and value in (5, 6, 7, 8):
        box = (box[1], box[0])
    pixels = resize_into(pixels, box)
    if pixels is image:
        pixels = image.copy()
    return Prepared(pixels, Metadata(exif=exif, icc=icc if keep_icc else None))


def _draft_for(image: Image.Image, box: tuple[int, int] | None, value: int) -> None:
    """Let a JPEG decode at a DCT-scaled size when the resize will discard it anyway.

    Asks for at least twice the target size, so the Lanczos pass still filters.
    """
    if image.format != "JPEG" or box is None:
        return
    upright_box = (box[1], box[0]) if value in (5, 6, 7, 8) else box
    width, height = fit_size(image.width, image.height, upright_box)
    if width * 2 <= image.width and height * 2 <= image.height:
        image.draft(image.mode, (width * 2, height * 2))
