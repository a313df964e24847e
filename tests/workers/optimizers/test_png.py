"""The PNG optimizer: every pixel kept when lossless, the bound held when lossy."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import oxipng
import pytest
from PIL import Image, ImageCms, ImageOps, PngImagePlugin

from workers.optimizers.base import Limits, Options
from workers.optimizers.errors import CorruptFile, LimitExceeded
from workers.optimizers.imaging import open_image, prepare
from workers.optimizers.metric import ssimulacra2
from workers.optimizers.png import PngOptimizer
from workers.optimizers.png_chunks import read_chunks, write_chunks
from workers.optimizers.png_mosaic import MOSAIC_COLUMNS, MOSAIC_ROWS, TILE, Scorer
from workers.optimizers.residuals import AVERAGE, PREDICTORS, UP, snap

IMAGES = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "images"
FLOOR = 70.0
OPTIMIZER = PngOptimizer()
ORIENTATION = 0x0112


def png_bytes(image: Image.Image, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **save)
    return buffer.getvalue()


def photo(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A crop of a real photograph: colour, edges and texture, and not symmetric."""
    with Image.open(IMAGES / "kodak" / "kodim23.png") as image:
        return image.convert("RGB").crop((300, 100, 300 + size[0], 100 + size[1]))


def sixteen_bit_rgb() -> bytes:
    rgb = np.asarray(photo()).astype(np.uint16) * 257 + 3
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return encoded.tobytes()


def sixteen_bit_grey() -> bytes:
    grey = np.asarray(photo().convert("L")).astype(np.uint16) * 257 + 5
    return png_bytes(Image.fromarray(grey))


def grey_alpha() -> bytes:
    grey = photo().convert("L")
    alpha = np.tile(np.linspace(0, 255, grey.width).astype(np.uint8), (grey.height, 1))
    image = grey.convert("LA")
    image.putalpha(Image.fromarray(alpha))
    return png_bytes(image)


def palette_with_transparency() -> bytes:
    image = photo().quantize(16)
    return png_bytes(image, transparency=3)


def interlaced() -> bytes:
    return oxipng.optimize_from_memory(
        png_bytes(photo()), level=0, interlace=oxipng.Interlacing.Adam7
    )


def apng() -> bytes:
    frames = [photo().rotate(angle) for angle in (0, 90, 180)]
    buffer = io.BytesIO()
    frames[0].save(
        buffer, "PNG", save_all=True, append_images=frames[1:], duration=80, loop=0
    )
    return buffer.getvalue()


def corpus(name: str) -> bytes:
    return (IMAGES / "png" / name).read_bytes()


# Small corpus files and files made with Pillow, one kind of PNG each.
SOURCES = [
    ("icon RGBA", lambda: corpus("btop_icon.png")),
    ("logo palette tRNS gAMA cHRM", lambda: corpus("btop_logo.png")),
    ("swiss palette", lambda: corpus("sharp_swiss.png")),
    ("test card RGB", lambda: corpus("pillow_test-card.png")),
    ("16-bit RGB", sixteen_bit_rgb),
    ("16-bit grey", sixteen_bit_grey),
    ("grey", lambda: png_bytes(photo().convert("L"))),
    ("grey alpha", grey_alpha),
    ("palette tRNS", palette_with_transparency),
    ("interlaced", interlaced),
]
SOURCE_IDS = [row[0] for row in SOURCES]
MAKERS = [row[1] for row in SOURCES]


def stored_pixels(data: bytes) -> np.ndarray:
    """The pixels a file stores, as RGBA at their own bit depth.

    16-bit files are read with OpenCV, which keeps 16 bits (Pillow reduces RGB
    to 8); the rest with Pillow, which applies palettes and tRNS.
    """
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded.dtype == np.uint16:
        if decoded.ndim == 2:
            decoded = np.stack([decoded] * 3, axis=2)
        if decoded.shape[2] == 3:
            opaque = np.full(decoded.shape[:2], 0xFFFF, np.uint16)
            decoded = np.dstack([decoded, opaque])
        return decoded[..., [2, 1, 0, 3]]
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGBA"))


def shown(data: bytes) -> Image.Image:
    """The pixels as a viewer shows them: upright, in sRGB, 8 bits."""
    return prepare(open_image(data, Limits()), Options()).image


def chunk_types(data: bytes) -> list[bytes]:
    return [kind for kind, _ in read_chunks(data)]


@pytest.mark.parametrize("make", MAKERS, ids=SOURCE_IDS)
def test_lossless_keeps_every_pixel(make) -> None:
    data = make()

    result = OPTIMIZER.optimize(data, Options(lossless=True), Limits())

    assert len(result.data) <= len(data), f"grew from {len(data)} to {len(result.data)}"
    before, after = stored_pixels(data), stored_pixels(result.data)
    assert after.dtype == before.dtype, f"{before.dtype} became {after.dtype}"
    assert np.array_equal(before, after), "a pixel changed"
    assert (result.width, result.height) == (after.shape[1], after.shape[0])


def test_lossless_drops_interlacing() -> None:
    data = interlaced()

    result = OPTIMIZER.optimize(data, Options(lossless=True), Limits())

    with Image.open(io.BytesIO(result.data)) as image:
        assert not image.info.get("interlace"), "Adam7 costs bytes and shows nothing"
    assert len(result.data) < len(data)


@pytest.mark.parametrize("make", MAKERS, ids=SOURCE_IDS)
def test_lossy_holds_the_floor_and_never_grows(make) -> None:
    data = make()

    result = OPTIMIZER.optimize(data, Options(), Limits())

    assert len(result.data) <= len(data), f"grew from {len(data)} to {len(result.data)}"
    assert result.data.startswith(b"\x89PNG\r\n\x1a\n"), "the output must be a PNG"
    score = ssimulacra2(shown(data), shown(result.data))
    assert score >= FLOOR, f"scored {score:.1f}, below {FLOOR}"


def test_lossy_shrinks_a_photograph() -> None:
    data = png_bytes(photo((256, 192)))

    result = OPTIMIZER.optimize(data, Options(), Limits())

    assert len(result.data) < 0.7 * len(data), f"{len(data)} -> {len(result.data)}"
    score = ssimulacra2(shown(data), shown(result.data))
    assert score >= FLOOR, f"scored {score:.1f}, below {FLOOR}"


def test_lossy_keeps_a_few_colours_exact() -> None:
    image = Image.new("P", (200, 120))
    image.putpalette([255, 255, 255, 0, 0, 0, 200, 30, 30])
    for x in range(0, 200, 7):
        image.paste(1 + x % 2, (x, 10, x + 3, 110))
    data = png_bytes(image)

    result = OPTIMIZER.optimize(data, Options(), Limits())

    assert np.array_equal(stored_pixels(data), stored_pixels(result.data))
    assert len(result.data) <= len(data)


def test_a_big_image_is_scored_on_its_worst_tiles() -> None:
    original = np.asarray(photo((256, 192)).resize((2600, 1800)))
    damaged = original.copy()
    damaged[1100:1200, 1600:1700] = 0  # one spoilt area, inside tile (2, 3)
    scorer = Scorer(Image.fromarray(original))

    scorer.choose_tiles([Image.fromarray(damaged)])

    assert scorer.big, "4.7 megapixels is scored on a mosaic"
    assert (2, 3) in scorer.tiles, f"the damaged tile is missing: {scorer.tiles}"
    assert scorer.mosaic(original).shape == (
        MOSAIC_ROWS * TILE,
        MOSAIC_COLUMNS * TILE,
        3,
    )
    assert scorer.quick(Image.fromarray(damaged)) < FLOOR, "the damage must show"
    brighter = np.minimum(original.astype(int) + 1, 255).astype(np.uint8)
    assert scorer.quick(Image.fromarray(brighter)) > 90, "a slight change must not"


RESIZES = [
    ("width", (48, 0), (48, 32)),
    ("height", (0, 16), (24, 16)),
    ("box", (30, 30), (30, 20)),
    ("larger than the image", (1000, 1000), (96, 64)),
]


@pytest.mark.parametrize(
    ("box", "size"), [row[1:] for row in RESIZES], ids=[row[0] for row in RESIZES]
)
@pytest.mark.parametrize("lossless", [False, True], ids=["lossy", "lossless"])
def test_resize_into_the_box(
    box: tuple[int, int], size: tuple[int, int], lossless: bool
) -> None:
    data = png_bytes(photo())  # 96x64

    result = OPTIMIZER.optimize(data, Options(lossless=lossless, resize=box), Limits())

    with Image.open(io.BytesIO(result.data)) as image:
        assert image.size == size, f"expected {size}, got {image.size}"
    assert (result.width, result.height) == size, "the facts must tell the new size"


def oriented(value: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = value
    return png_bytes(photo((48, 32)), exif=exif.tobytes())


@pytest.mark.parametrize("value", range(1, 9))
def test_orientation_is_applied_before_the_tag_goes(value: int) -> None:
    data = oriented(value)
    with Image.open(io.BytesIO(data)) as source:
        expected = ImageOps.exif_transpose(source).convert("RGB")

    result = OPTIMIZER.optimize(data, Options(), Limits())

    with Image.open(io.BytesIO(result.data)) as image:
        assert image.getexif().get(ORIENTATION) is None, "the tag goes"
        assert image.size == expected.size, f"{image.size} is not upright"
        score = ssimulacra2(expected, image.convert("RGB"))
    assert score >= FLOOR, f"orientation {value}: the pixels are not upright"
    assert (result.width, result.height) == expected.size


@pytest.mark.parametrize("value", [3, 6, 8])
@pytest.mark.parametrize(
    "options",
    [Options(lossless=True), Options(preserve=frozenset({"orientation"}))],
    ids=["lossless", "kept"],
)
def test_orientation_stays_a_tag_when_kept(value: int, options: Options) -> None:
    data = oriented(value)

    result = OPTIMIZER.optimize(data, options, Limits())

    with Image.open(io.BytesIO(result.data)) as image:
        assert image.getexif().get(ORIENTATION) == value, "the tag stays"
        assert image.size == (48, 32), "and the pixels are stored as they were"


def adobe_rgb_png() -> tuple[bytes, Image.Image]:
    """A photograph stored in Adobe RGB with its profile, and its sRGB original."""
    with Image.open(IMAGES / "jpeg" / "pillow_xmp_test.jpg") as image:
        profile = image.info["icc_profile"]
    original = photo()
    original.paste((30, 200, 40), (0, 0, 32, 32))
    original.paste((220, 30, 30), (64, 32, 96, 64))
    adobe = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    stored = ImageCms.profileToProfile(original, srgb, adobe, outputMode="RGB")
    return png_bytes(stored, icc_profile=profile), original


def test_a_non_srgb_profile_is_converted_before_it_goes() -> None:
    data, original = adobe_rgb_png()

    result = OPTIMIZER.optimize(data, Options(), Limits())

    assert b"iCCP" not in chunk_types(result.data), "the profile goes"
    with Image.open(io.BytesIO(result.data)) as image:
        score = ssimulacra2(original, image.convert("RGB"))
        shift = colour_shift(original, image)
    assert score >= FLOOR, f"scored {score:.1f} against the sRGB original"
    assert shift < 1.5, f"colours moved by {shift:.1f} on average"
    with Image.open(io.BytesIO(data)) as stored:
        assert colour_shift(original, stored) > 4, "the profile must matter"


def colour_shift(original: Image.Image, other: Image.Image) -> float:
    """The largest difference of one channel's mean between two images."""
    means = [
        np.asarray(i.convert("RGB"), float).mean((0, 1)) for i in (original, other)
    ]
    return float(np.abs(means[0] - means[1]).max())


@pytest.mark.parametrize(
    "options",
    [Options(lossless=True), Options(preserve=frozenset({"icc"}))],
    ids=["lossless", "kept"],
)
def test_a_kept_profile_stays_with_its_pixels(options: Options) -> None:
    data, _ = adobe_rgb_png()

    result = OPTIMIZER.optimize(data, options, Limits())

    with (
        Image.open(io.BytesIO(data)) as before,
        Image.open(io.BytesIO(result.data)) as after,
    ):
        assert after.info.get("icc_profile") == before.info["icc_profile"]
        score = ssimulacra2(before.convert("RGB"), after.convert("RGB"))
    assert score >= FLOOR, f"the stored pixels changed too much: {score:.1f}"


def with_metadata() -> bytes:
    """A photograph with text, time, and EXIF date and GPS."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Copyright", "Squeezer tests")
    info.add_text("Comment", "a comment nobody asked to keep")
    info.add_itxt("Author", "Ada")
    info.add(b"tIME", struct.pack(">HBBBBB", 2024, 5, 6, 7, 8, 9))
    exif = Image.Exif()
    exif[0x0132] = "2024:05:06 07:08:09"
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 0.0)
    return png_bytes(photo(), pnginfo=info, exif=exif.tobytes())


METADATA = [
    # name, preserve, lossless, text keywords expected, tIME kept, EXIF tags
    ("lossy strips all", frozenset(), False, set(), False, set()),
    ("lossless strips all", frozenset(), True, set(), False, set()),
    (
        "lossy keeps copyright",
        frozenset({"copyright"}),
        False,
        {"Copyright", "Author"},
        False,
        set(),
    ),
    ("lossless keeps datetime", frozenset({"datetime"}), True, set(), True, {0x0132}),
    ("lossy keeps location", frozenset({"location"}), False, set(), False, {0x8825}),
]


@pytest.mark.parametrize(
    ("preserve", "lossless", "keywords", "time", "tags"),
    [row[1:] for row in METADATA],
    ids=[row[0] for row in METADATA],
)
def test_metadata_follows_preserve_metas(
    preserve: frozenset[str],
    lossless: bool,
    keywords: set[str],
    time: bool,
    tags: set[int],
) -> None:
    data = with_metadata()

    result = OPTIMIZER.optimize(
        data, Options(lossless=lossless, preserve=preserve), Limits()
    )

    with Image.open(io.BytesIO(result.data)) as image:
        image.load()
        kept_keywords = set(image.text)
        exif = image.getexif()
        kept_tags = set(exif.keys()) - {0x8769, 0x8825}
        if exif.get_ifd(0x8825):
            kept_tags.add(0x8825)
    assert kept_keywords == keywords, f"text kept: {kept_keywords}"
    assert (b"tIME" in chunk_types(result.data)) is time, f"tIME kept should be {time}"
    assert kept_tags == tags, f"EXIF tags kept: {kept_tags}"
    if not tags:
        assert b"eXIf" not in chunk_types(result.data), "no empty eXIf chunk"


def test_an_animation_keeps_every_frame() -> None:
    data = apng()

    for options in (Options(), Options(lossless=True), Options(resize=(10, 10))):
        result = OPTIMIZER.optimize(data, options, Limits())

        assert len(result.data) <= len(data), "never larger"
        with (
            Image.open(io.BytesIO(data)) as before,
            Image.open(io.BytesIO(result.data)) as after,
        ):
            assert after.n_frames == before.n_frames, "every frame stays"
            for index in range(before.n_frames):
                before.seek(index)
                after.seek(index)
                assert np.array_equal(
                    np.asarray(before.convert("RGBA")),
                    np.asarray(after.convert("RGBA")),
                ), f"frame {index} changed"


def with_chunk_changed(data: bytes, kind: bytes, change) -> bytes:
    """The file with one chunk's raw bytes (length, type, body, CRC) changed."""
    chunks = read_chunks(data)
    body = dict(chunks)[kind]
    start = data.index(struct.pack(">I", len(body)) + kind)
    end = start + 12 + len(body)
    return data[:start] + change(data[start:end]) + data[end:]


def bad_crc(kind: bytes):
    def change(raw: bytes) -> bytes:
        return raw[:-4] + bytes(b ^ 0xFF for b in raw[-4:])

    return lambda: with_chunk_changed(png_bytes(photo()), kind, change)


def truncated_idat() -> bytes:
    data = png_bytes(photo())
    start = data.index(b"IDAT")
    return data[: start + 100]


def garbled_idat() -> bytes:
    data = png_bytes(photo())
    chunks = [
        (kind, b"\x78\x9c" + bytes(range(200)) if kind == b"IDAT" else body)
        for kind, body in read_chunks(data)
    ]
    return write_chunks(chunks)


def claiming(width: int, height: int) -> bytes:
    chunks = read_chunks(png_bytes(Image.new("RGB", (4, 4))))
    header = struct.pack(">II", width, height) + dict(chunks)[b"IHDR"][8:]
    return write_chunks([(b"IHDR", header), *chunks[1:]])


def zip_bomb_profile() -> bytes:
    chunks = read_chunks(png_bytes(photo()))
    body = b"bomb\x00\x00" + zlib.compress(b"\0" * (64 << 20), 9)
    return write_chunks([chunks[0], (b"iCCP", body), *chunks[1:]])


# name, bytes, error, whether reading the header alone (probe) finds it
HOSTILE = [
    ("bad CRC in IHDR", bad_crc(b"IHDR"), CorruptFile, True),
    ("bad CRC in IDAT", bad_crc(b"IDAT"), CorruptFile, False),
    ("truncated IDAT", truncated_idat, CorruptFile, False),
    ("IDAT that does not inflate", garbled_idat, CorruptFile, False),
    ("header 100000x100000", lambda: claiming(100_000, 100_000), LimitExceeded, True),
    ("header 0x4", lambda: claiming(0, 4), CorruptFile, True),
    ("signature only", lambda: b"\x89PNG\r\n\x1a\n", CorruptFile, True),
    ("profile that inflates to 64 MiB", zip_bomb_profile, CorruptFile, True),
]


@pytest.mark.parametrize(
    ("make", "error", "in_header"),
    [row[1:] for row in HOSTILE],
    ids=[row[0] for row in HOSTILE],
)
@pytest.mark.parametrize("lossless", [False, True], ids=["lossy", "lossless"])
def test_hostile_files_raise_typed_errors(
    make, error: type[Exception], in_header: bool, lossless: bool
) -> None:
    data = make()

    with pytest.raises(error):
        OPTIMIZER.optimize(data, Options(lossless=lossless), Limits())
    if in_header:
        with pytest.raises(error):
            OPTIMIZER.probe(data, Limits())


def test_an_animation_over_the_frame_limit_is_refused() -> None:
    with pytest.raises(LimitExceeded, match="max_frames"):
        OPTIMIZER.optimize(apng(), Options(), Limits(max_frames=2))


def test_probe_reads_the_size() -> None:
    data = corpus("btop_logo.png")

    facts = OPTIMIZER.probe(data, Limits())

    assert (facts.width, facts.height, facts.format) == (349, 98, "png")
    assert facts.data == data, "probe hands back the input"


def filter_residuals(pixels: np.ndarray, predictor: str) -> np.ndarray:
    """What PNG's Up or Average filter codes for each byte of (height, width[, n])."""
    values = pixels.astype(int)
    if values.ndim == 2:
        values = values[:, :, None]
    up = np.zeros_like(values)
    up[1:] = values[:-1]
    if predictor == UP:
        return (values - up).reshape(pixels.shape)
    left = np.zeros_like(values)
    left[:, 1:] = values[:, :-1]
    return (values - (left + up) // 2).reshape(pixels.shape)


def with_holes(mode: str) -> np.ndarray:
    """A photograph with a transparent square and a half-transparent band."""
    pixels = np.array(photo().convert(mode))
    pixels[10:30, 10:30, -1] = 0
    pixels[40:50, :, -1] = 128
    return pixels


SNAPPED = [
    ("grey", lambda: np.asarray(photo().convert("L"))),
    ("grey alpha", lambda: with_holes("LA")),
    ("RGB", lambda: np.asarray(photo())),
    ("RGBA", lambda: with_holes("RGBA")),
]


@pytest.mark.parametrize("step", [2, 5, 7.5, 12])
@pytest.mark.parametrize("predictor", PREDICTORS)
@pytest.mark.parametrize(
    "make", [row[1] for row in SNAPPED], ids=[row[0] for row in SNAPPED]
)
def test_snapped_residuals_are_multiples_of_the_step(
    make, predictor: str, step: float
) -> None:
    pixels = make()

    snapped = snap(pixels, step, predictor)

    assert snapped.shape == pixels.shape, "the shape stays"
    assert snapped.dtype == np.uint8, "8 bits per channel"
    error = np.abs(snapped.astype(int) - pixels.astype(int))
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        alpha = pixels[..., -1]
        assert np.array_equal(snapped[..., -1] == 0, alpha == 0), "holes stay holes"
        assert np.all(snapped[alpha == 255, -1] == 255), "opaque stays opaque"
        error = error[alpha > 0]
    assert error.max() <= step / 2 + 1, f"error {error.max()} over half the step"
    residual = filter_residuals(snapped, predictor)
    levels = np.rint(np.arange(-300, 300) * step)
    coded = residual[(snapped > 0) & (snapped < 255)]
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        coded = residual[..., :-1][(snapped[..., :-1] > 0) & (snapped[..., :-1] < 255)]
    assert np.isin(coded, levels).all(), "a residual off the step's levels"


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_kept_flat_areas_stay_exact(predictor: str) -> None:
    pixels = np.array(photo())
    pixels[20:40, 30:70] = (200, 30, 40)  # a flat patch below and right of edges

    snapped = snap(pixels, 12, predictor, keep_flat=True)

    inner = (slice(21, 40), slice(31, 70))
    assert np.array_equal(snapped[inner], pixels[inner]), "the patch must be exact"
    assert not np.array_equal(snapped, pixels), "the rest is snapped"


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_a_step_of_one_is_exact(predictor: str) -> None:
    pixels = np.asarray(photo())

    assert snap(pixels, 1, predictor) is pixels, "nothing to snap"


def test_average_snapping_compresses_a_photograph() -> None:
    pixels = np.asarray(photo((256, 192)))

    snapped = snap(pixels, 8, AVERAGE)

    def size(values: np.ndarray) -> int:
        return len(
            oxipng.optimize_from_memory(
                png_bytes(Image.fromarray(values)),
                level=2,
                filter=[oxipng.RowFilter.Average],
            )
        )

    assert size(snapped) < 0.75 * size(pixels), "the snapped pixels should compress"
