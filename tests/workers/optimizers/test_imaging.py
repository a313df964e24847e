"""Decoding: limits before pixels, orientation, colour, modes, resize, metadata."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.optimizers.base import Limits, Options
from workers.optimizers.errors import CorruptFile, LimitExceeded
from workers.optimizers.imaging import (
    fit_size,
    is_srgb,
    kept_exif,
    load,
    lossless_metadata,
    open_image,
    prepare,
    resize_into,
    to_8bit,
)
from workers.optimizers.metric import ssimulacra2

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "images"
JPEGS = CORPUS / "jpeg"

# Quadrant colours of the upright test picture: top-left, top-right, bottom-left,
# bottom-right.
QUADRANTS = ((230, 30, 30), (30, 200, 30), (30, 30, 230), (240, 240, 40))


def upright_picture() -> Image.Image:
    """A 48x32 picture whose four quadrants tell every flip and turn apart."""
    image = Image.new("RGB", (48, 32))
    for index, colour in enumerate(QUADRANTS):
        x, y = (index % 2) * 24, (index // 2) * 16
        image.paste(colour, (x, y, x + 24, y + 16))
    return image


# The transpose that stores an upright picture so that orientation N shows it.
STORED_AS = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def jpeg_bytes(image: Image.Image, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, **save)
    return buffer.getvalue()


def png_bytes(image: Image.Image, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **save)
    return buffer.getvalue()


def exif_with(**tags: int) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[int(tag.removeprefix("tag_"), 16)] = value
    return exif.tobytes()


def quadrant_colours(image: Image.Image) -> list[tuple[int, ...]]:
    width, height = image.size
    points = [(width // 4, height // 4), (3 * width // 4, height // 4)]
    points += [(width // 4, 3 * height // 4), (3 * width // 4, 3 * height // 4)]
    return [image.getpixel(point) for point in points]


def assert_near(actual: tuple[int, ...], expected: tuple[int, ...], slack: int) -> None:
    assert all(abs(a - e) <= slack for a, e in zip(actual, expected, strict=True)), (
        f"expected about {expected}, got {actual}"
    )


@pytest.mark.parametrize(
    "value", range(1, 9), ids=[f"orientation-{v}" for v in range(1, 9)]
)
def test_every_orientation_is_applied_to_the_pixels(value: int) -> None:
    stored = upright_picture()
    if STORED_AS[value] is not None:
        stored = stored.transpose(STORED_AS[value])
    data = jpeg_bytes(stored, exif=exif_with(tag_0112=value))

    prepared = prepare(open_image(data, Limits()), Options())

    assert prepared.image.size == (48, 32), (
        f"upright size expected, got {prepared.image.size}"
    )
    for actual, expected in zip(
        quadrant_colours(prepared.image), QUADRANTS, strict=True
    ):
        assert_near(actual, expected, slack=12)
    assert prepared.metadata.exif is None, "the orientation tag goes once applied"


def test_a_kept_orientation_leaves_the_pixels_and_the_tag() -> None:
    stored = upright_picture().transpose(Image.Transpose.ROTATE_90)
    data = jpeg_bytes(stored, exif=exif_with(tag_0112=6))

    prepared = prepare(
        open_image(data, Limits()), Options(preserve=frozenset({"orientation"}))
    )

    assert prepared.image.size == stored.size, "kept orientation: stored pixels stay"
    assert prepared.metadata.exif is not None, "the orientation tag must be kept"
    kept = Image.Exif()
    kept.load(prepared.metadata.exif)
    assert kept.get(0x0112) == 6, f"expected orientation 6, got {dict(kept)}"


def test_a_kept_orientation_resizes_into_the_box_as_shown() -> None:
    stored = upright_picture().transpose(Image.Transpose.ROTATE_90)  # 32x48 stored
    data = jpeg_bytes(stored, exif=exif_with(tag_0112=6))
    options = Options(resize=(24, 0), preserve=frozenset({"orientation"}))

    prepared = prepare(open_image(data, Limits()), options)

    assert prepared.image.size == (16, 24), (
        f"shown 48 wide, boxed 24 wide: stored 16x24, not {prepared.image.size}"
    )


def adobe_rgb_profile() -> bytes:
    with Image.open(JPEGS / "pillow_xmp_test.jpg") as image:
        return image.info["icc_profile"]


def test_an_adobe_rgb_profile_is_converted_before_it_goes() -> None:
    picture = Image.new("RGB", (16, 16), (60, 160, 60))
    picture.paste((128, 128, 128), (0, 0, 8, 16))
    data = png_bytes(picture, icc_profile=adobe_rgb_profile())

    prepared = prepare(open_image(data, Limits()), Options())

    assert prepared.metadata.icc is None, "the profile goes once converted"
    grey = prepared.image.getpixel((2, 2))
    green = prepared.image.getpixel((12, 2))
    assert_near(grey, (128, 128, 128), slack=3)
    assert green[0] < 50, f"Adobe RGB (60,160,60) is a purer green in sRGB: {green}"
    assert green[1] > 160, f"Adobe RGB (60,160,60) is a brighter green in sRGB: {green}"


def test_a_kept_profile_leaves_the_pixels_and_the_profile() -> None:
    picture = Image.new("RGB", (16, 16), (60, 160, 60))
    profile = adobe_rgb_profile()
    data = png_bytes(picture, icc_profile=profile)

    prepared = prepare(open_image(data, Limits()), Options(preserve=frozenset({"icc"})))

    assert prepared.metadata.icc == profile, "the kept profile must be the original"
    assert prepared.image.getpixel((4, 4)) == (60, 160, 60), "pixels must be untouched"


SRGB_CASES = [
    ("absent", None, True),
    ("Adobe RGB", "adobe", False),
    ("sRGB from a corpus file", "srgb", True),
    ("garbage", b"not a profile", False),
]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [(kind, expected) for _, kind, expected in SRGB_CASES],
    ids=[name for name, _, _ in SRGB_CASES],
)
def test_is_srgb(kind: object, expected: bool) -> None:
    if kind == "adobe":
        icc: bytes | None = adobe_rgb_profile()
    elif kind == "srgb":
        with Image.open(JPEGS / "dacsan_web3.jpg") as image:
            icc = image.info["icc_profile"]
    else:
        icc = kind  # type: ignore[assignment]

    assert is_srgb(icc) is expected, f"is_srgb should be {expected} for {kind!r}"


CMYK_CASES = [
    # name, file, the RGB file it should look like (None: just check the mode)
    ("Adobe CMYK", "ocrmypdf_baiona_cmyk.jpg", "ocrmypdf_baiona_color.jpg"),
    ("YCCK", "pillow_pil_sample_cmyk.jpg", None),
    ("YCCK with SWOP profile", "sharp_Channel_digital_image_CMYK_color.jpg", None),
]


@pytest.mark.parametrize(
    ("name", "twin"),
    [row[1:] for row in CMYK_CASES],
    ids=[row[0] for row in CMYK_CASES],
)
def test_cmyk_and_ycck_become_rgb(name: str, twin: str | None) -> None:
    with Image.open(JPEGS / name) as raw:
        assert raw.mode == "CMYK", f"{name} should decode as CMYK, not {raw.mode}"

    prepared = prepare(open_image((JPEGS / name).read_bytes(), Limits()), Options())

    assert prepared.image.mode == "RGB", f"expected RGB, got {prepared.image.mode}"
    assert prepared.metadata.icc is None, "a CMYK profile cannot describe RGB pixels"
    if twin is not None:
        expected = prepare(open_image((JPEGS / twin).read_bytes(), Limits()), Options())
        score = ssimulacra2(expected.image, prepared.image)
        assert score > 60, f"the CMYK copy should look like its RGB twin: {score:.1f}"


def test_a_cmyk_picture_keeps_its_colours() -> None:
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))
    cmyk.paste((0, 0, 0, 0), (0, 0, 8, 16))

    prepared = prepare(open_image(jpeg_bytes(cmyk), Limits()), Options())

    assert_near(prepared.image.getpixel((2, 2)), (255, 255, 255), slack=8)
    assert_near(prepared.image.getpixel((12, 2)), (255, 0, 0), slack=8)


MODE_CASES = [
    ("16-bit grey", Image.fromarray(np.full((4, 4), 0x8080, np.uint16)), "L", 128),
    (
        "16-bit grey white",
        Image.fromarray(np.full((4, 4), 0xFFFF, np.uint16)),
        "L",
        255,
    ),
    ("grey", Image.new("L", (4, 4), 77), "L", 77),
    ("bilevel", Image.new("1", (4, 4), 1), "L", 255),
    ("palette", Image.new("P", (4, 4), 0), "RGB", (0, 0, 0)),
    ("grey alpha", Image.new("LA", (4, 4), (9, 200)), "LA", (9, 200)),
]


@pytest.mark.parametrize(
    ("image", "mode", "pixel"),
    [row[1:] for row in MODE_CASES],
    ids=[row[0] for row in MODE_CASES],
)
def test_modes_become_8_bit(image: Image.Image, mode: str, pixel: object) -> None:
    converted = to_8bit(image)

    assert converted.mode == mode, f"expected {mode}, got {converted.mode}"
    assert converted.getpixel((1, 1)) == pixel, f"expected {pixel}"


def test_a_16_bit_grey_png_decodes_to_grey() -> None:
    values = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    data = png_bytes(Image.fromarray(values))

    prepared = prepare(open_image(data, Limits()), Options())

    assert prepared.image.mode == "L", f"grey stays grey, got {prepared.image.mode}"
    expected = np.rint(values / 257.0).astype(np.uint8)
    assert np.array_equal(np.asarray(prepared.image), expected), (
        "16 to 8 bits must scale"
    )


def test_palette_transparency_becomes_alpha() -> None:
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 255, 0, 0])
    data = png_bytes(image, transparency=1)

    prepared = prepare(open_image(data, Limits()), Options())

    assert prepared.image.mode == "RGBA", f"expected RGBA, got {prepared.image.mode}"
    assert prepared.image.getpixel((0, 0))[3] == 0, "the transparent entry is alpha 0"


FIT_CASES = [
    ("width bound", (100, 50), (50, 0), (50, 25)),
    ("height bound", (100, 50), (0, 10), (20, 10)),
    ("both, tighter height", (100, 50), (80, 20), (40, 20)),
    ("no bound", (100, 50), (0, 0), (100, 50)),
    ("no box", (100, 50), None, (100, 50)),
    ("never enlarges", (100, 50), (400, 400), (100, 50)),
    ("at least one pixel", (1000, 1), (10, 0), (10, 1)),
]


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [row[1:] for row in FIT_CASES],
    ids=[row[0] for row in FIT_CASES],
)
def test_fit_size(
    size: tuple[int, int], box: tuple[int, int] | None, expected: tuple[int, int]
) -> None:
    assert fit_size(*size, box) == expected, f"{size} into {box} should be {expected}"


def test_resize_is_in_linear_light() -> None:
    checker = (np.indices((32, 32)).sum(axis=0) % 2 * 255).astype(np.uint8)

    resized = resize_into(Image.fromarray(checker, "L"), (8, 8))

    middle = np.asarray(resized)[2:6, 2:6]
    assert np.all(np.abs(middle.astype(int) - 188) <= 3), (
        f"black and white average to sRGB 188 in linear light, not 128: {middle}"
    )


def test_resize_does_not_bleed_transparent_colour() -> None:
    pixels = np.zeros((32, 32, 4), dtype=np.uint8)
    pixels[:, :16] = (255, 0, 0, 0)  # invisible red
    pixels[:, 16:] = (0, 0, 255, 255)  # opaque blue

    resized = np.asarray(resize_into(Image.fromarray(pixels, "RGBA"), (8, 8)))

    edge = resized[:, 3:5]
    visible = edge[edge[..., 3] > 0]
    assert visible.size, "the edge must have visible pixels"
    assert np.all(visible[:, 0] <= 2), (
        f"no red may bleed out of transparent pixels: {visible[:, 0]}"
    )


def test_resize_keeps_a_small_image() -> None:
    image = Image.new("RGB", (10, 10))

    assert resize_into(image, (20, 20)) is image, "a smaller image is never enlarged"


def png_header_claiming(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = zlib.compress(b"\0" * 64)
    idat = (
        struct.pack(">I", len(data))
        + b"IDAT"
        + data
        + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    )
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat


HOSTILE = [
    (
        "bomb header 50000x50000",
        png_header_claiming(50000, 50000),
        LimitExceeded,
        "max_pixels",
    ),
    ("not an image", b"GIF89a but not really", CorruptFile, "decode"),
    ("empty", b"", CorruptFile, "decode"),
]


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [row[1:] for row in HOSTILE],
    ids=[row[0] for row in HOSTILE],
)
def test_hostile_headers_are_refused_before_decoding(
    data: bytes, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        open_image(data, Limits())


def test_the_pixel_limit_comes_from_the_limits() -> None:
    data = png_bytes(Image.new("RGB", (20, 10)))

    with pytest.raises(LimitExceeded, match="limit of 199 pixels"):
        open_image(data, Limits(max_pixels=199))
    assert open_image(data, Limits(max_pixels=200)).size == (20, 10)


def test_a_truncated_file_is_corrupt() -> None:
    data = (JPEGS / "pillow_flower.jpg").read_bytes()

    image = open_image(data[: len(data) // 2], Limits())

    with pytest.raises(CorruptFile, match="truncated or corrupt"):
        load(image)


CANON = JPEGS / "exif-samples_canon_hdr_NO.jpg"  # copyright, artist, dates, GPS

METADATA_CASES = [
    ("strip all", frozenset(), set(), set(), False),
    ("copyright", frozenset({"copyright"}), {0x8298, 0x013B}, set(), False),
    ("datetime", frozenset({"datetime"}), {0x0132}, {0x9003}, False),
    ("location", frozenset({"location"}), set(), set(), True),
    (
        "all",
        frozenset({"copyright", "datetime", "location", "orientation", "icc"}),
        {0x8298, 0x013B, 0x0132},
        {0x9003},
        True,
    ),
]


@pytest.mark.parametrize(
    ("preserve", "main", "sub", "gps"),
    [row[1:] for row in METADATA_CASES],
    ids=[row[0] for row in METADATA_CASES],
)
def test_exif_keeps_only_what_preserve_names(
    preserve: frozenset[str], main: set[int], sub: set[int], gps: bool
) -> None:
    with Image.open(CANON) as image:
        block = kept_exif(image, preserve, keep_orientation=False)

    if not main and not sub and not gps:
        assert block is None, "nothing preserved: no EXIF at all"
        return
    assert block is not None, f"{sorted(preserve)} should keep some EXIF"
    kept = Image.Exif()
    kept.load(block)
    assert set(kept.keys()) - {0x8769, 0x8825} == main, f"IFD0 tags: {set(kept.keys())}"
    assert sub <= set(kept.get_ifd(0x8769)), "the date tags of the Exif IFD are kept"
    assert not set(kept.get_ifd(0x8769)) - {
        0x9003,
        0x9004,
        0x9010,
        0x9011,
        0x9012,
        0x9290,
        0x9291,
        0x9292,
    }, "no camera settings may survive"
    assert bool(kept.get_ifd(0x8825)) is gps, f"GPS kept should be {gps}"
    assert (0x8769 in kept) is bool(sub), "an Exif directory only to hold tags"


def test_lossless_keeps_orientation_and_a_foreign_profile() -> None:
    data = png_bytes(
        upright_picture(), icc_profile=adobe_rgb_profile(), exif=exif_with(tag_0112=3)
    )

    with Image.open(io.BytesIO(data)) as image:
        metadata = lossless_metadata(image, frozenset())

    assert metadata.icc == adobe_rgb_profile(), "lossless keeps a non-sRGB profile"
    assert metadata.exif is not None, "lossless keeps the orientation tag"
    kept = Image.Exif()
    kept.load(metadata.exif)
    assert dict(kept) == {0x0112: 3}, f"only the orientation stays: {dict(kept)}"


def test_lossless_drops_an_srgb_profile_unless_preserved() -> None:
    with Image.open(JPEGS / "dacsan_web3.jpg") as image:
        dropped = lossless_metadata(image, frozenset())
        kept = lossless_metadata(image, frozenset({"icc"}))
        profile = image.info["icc_profile"]

    assert dropped.icc is None, "an sRGB profile says nothing untagged pixels do not"
    assert kept.icc == profile, "a preserved profile stays"
