"""The JPEG optimizer: exact coefficients when lossless, the bound when lossy."""

from __future__ import annotations

import io
from pathlib import Path

import jpeglib
import numpy as np
import pytest
from PIL import Image, ImageCms

from workers.optimizers.base import Limits, Options
from workers.optimizers.errors import CorruptFile, LimitExceeded
from workers.optimizers.imaging import open_image, prepare
from workers.optimizers.jpeg import KEEP_QUALITY, JpegOptimizer, input_quality
from workers.optimizers.jpeg_encode import Setting
from workers.optimizers.jpeg_markers import split
from workers.optimizers.jpeg_search import Trial, lowest_passing, proxy_mosaic
from workers.optimizers.metric import ssimulacra2

JPEGS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "images" / "jpeg"
FLOOR = 70.0
OPTIMIZER = JpegOptimizer()

# Small and varied corpus files: EXIF orientation, ICC, CMYK, YCCK, grey, APP13.
EVERYDAY = [
    "pillow_hopper.jpg",
    "exif-samples_Canon_40D.jpg",
    "exif-samples_32-lens_data.jpeg",
    "pillow_flower.jpg",
    "sharp_concert.jpg",
    "ocrmypdf_baiona_cmyk.jpg",
    "pillow_pil_sample_cmyk.jpg",
    "pillow_app13-multiple.jpg",
    "exif-samples_portrait_6.jpg",
    "pillow_icc_profile_big.jpg",
]
ALL_FILES = sorted(path.name for path in JPEGS.glob("*.jp*g"))


def coefficients(data: bytes, tmp_path: Path) -> list[np.ndarray]:
    """Every quantised DCT coefficient of every component, and the tables."""
    path = tmp_path / "coefficients.jpg"
    path.write_bytes(data)
    jpeg = jpeglib.read_dct(str(path))
    planes = [jpeg.Y]
    if jpeg.has_chrominance:
        planes += [jpeg.Cb, jpeg.Cr]
    if getattr(jpeg, "K", None) is not None:
        planes.append(jpeg.K)
    return [*planes, jpeg.qt]


def upright_srgb(data: bytes) -> Image.Image:
    """The pixels as a viewer shows them: upright, in sRGB."""
    return prepare(open_image(data, Limits()), Options()).image


@pytest.mark.parametrize("name", EVERYDAY)
def test_lossless_keeps_every_coefficient(name: str, tmp_path: Path) -> None:
    data = (JPEGS / name).read_bytes()

    result = OPTIMIZER.optimize(data, Options(lossless=True), Limits())

    assert len(result.data) <= len(data), "never larger"
    before = coefficients(data, tmp_path)
    after = coefficients(result.data, tmp_path)
    assert len(before) == len(after), "the same components must come out"
    for index, (a, b) in enumerate(zip(before, after, strict=True)):
        assert np.array_equal(a, b), f"component {index} of {name} changed"


@pytest.mark.parametrize("name", EVERYDAY)
def test_lossy_holds_the_floor_and_never_grows(name: str) -> None:
    data = (JPEGS / name).read_bytes()

    result = OPTIMIZER.optimize(data, Options(), Limits())

    assert len(result.data) <= len(data), f"{name} grew to {len(result.data)}"
    assert result.data[:3] == b"\xff\xd8\xff", "the output must be a JPEG"
    score = ssimulacra2(upright_srgb(data), upright_srgb(result.data))
    assert score >= FLOOR, f"{name} scored {score:.1f}, below {FLOOR}"


# name, corpus file, whether the output is progressive
SCANS = [
    ("re-encoded from half a megapixel", "dacsan_BANNER5.jpg", True),  # 1500x450
    ("re-encoded below half a megapixel", "pillow_flower2.jpg", False),  # 300x225
    ("coarse input, exact copy", "pillow_flower.jpg", True),
]


@pytest.mark.parametrize(
    ("name", "progressive"),
    [row[1:] for row in SCANS],
    ids=[row[0] for row in SCANS],
)
def test_lossy_output_is_progressive_from_half_a_megapixel(
    name: str, progressive: bool
) -> None:
    data = (JPEGS / name).read_bytes()

    result = OPTIMIZER.optimize(data, Options(), Limits())

    with Image.open(io.BytesIO(result.data)) as image:
        found = bool(image.info.get("progressive"))
    assert found is progressive, f"{name}: progressive should be {progressive}"


RESIZES = [
    ("width", (100, 0), (100, 75)),
    ("height", (0, 60), (80, 60)),
    ("box", (50, 50), (50, 38)),
    ("larger than the image", (1000, 1000), (480, 360)),
]


@pytest.mark.parametrize(
    ("box", "size"), [row[1:] for row in RESIZES], ids=[row[0] for row in RESIZES]
)
@pytest.mark.parametrize("lossless", [False, True], ids=["lossy", "lossless"])
def test_resize_into_the_box(
    box: tuple[int, int], size: tuple[int, int], lossless: bool
) -> None:
    data = (JPEGS / "pillow_flower.jpg").read_bytes()  # 480x360

    result = OPTIMIZER.optimize(data, Options(lossless=lossless, resize=box), Limits())

    with Image.open(io.BytesIO(result.data)) as image:
        assert image.size == size, f"expected {size}, got {image.size}"
    assert (result.width, result.height) == size, "the facts must tell the new size"


def test_orientation_is_applied_when_lossy_and_kept_when_lossless() -> None:
    data = (JPEGS / "exif-samples_portrait_6.jpg").read_bytes()  # stored 600x450

    lossy = OPTIMIZER.optimize(data, Options(), Limits())
    lossless = OPTIMIZER.optimize(data, Options(lossless=True), Limits())

    with Image.open(io.BytesIO(lossy.data)) as image:
        assert image.size == (450, 600), f"lossy turns the pixels: {image.size}"
        assert image.getexif().get(0x0112) is None, "and drops the tag"
    with Image.open(io.BytesIO(lossless.data)) as image:
        assert image.size == (600, 450), f"lossless keeps the pixels: {image.size}"
        assert image.getexif().get(0x0112) == 6, "and the tag"


def app_markers(data: bytes) -> set[tuple[int, bytes]]:
    segments, _ = split(data)
    return {(s.marker, s.payload[:4]) for s in segments if 0xE0 <= s.marker <= 0xEF}


METADATA = [
    # name, preserve, lossless, tags expected, profile expected
    ("lossy strips all", frozenset(), False, set(), False),
    ("lossless strips all", frozenset(), True, set(), False),
    ("lossy keeps datetime", frozenset({"datetime"}), False, {0x0132}, False),
    ("lossless keeps copyright", frozenset({"copyright"}), True, {0x8298}, False),
    ("lossy keeps icc", frozenset({"icc"}), False, set(), True),
]


@pytest.mark.parametrize(
    ("preserve", "lossless", "tags", "profile"),
    [row[1:] for row in METADATA],
    ids=[row[0] for row in METADATA],
)
def test_metadata_follows_preserve_metas(
    preserve: frozenset[str], lossless: bool, tags: set[int], profile: bool
) -> None:
    # copyright, artist, dates, GPS, XMP; an sRGB profile is added for the test
    with Image.open(JPEGS / "exif-samples_32-lens_data.jpeg") as source:
        exif = source.getexif()
        buffer = io.BytesIO()
        with Image.open(JPEGS / "dacsan_web3.jpg") as srgb:
            icc = srgb.info["icc_profile"]
        source.save(buffer, "JPEG", quality=95, exif=exif, icc_profile=icc)
    data = buffer.getvalue()

    result = OPTIMIZER.optimize(
        data, Options(lossless=lossless, preserve=preserve), Limits()
    )

    with Image.open(io.BytesIO(result.data)) as image:
        kept = set(image.getexif().keys()) - {0x8769, 0x8825}
        has_profile = bool(image.info.get("icc_profile"))
        has_xmp = bool(image.info.get("xmp"))
    assert tags <= kept, f"expected tags {tags} among {kept}"
    assert kept <= tags | {0x013B}, f"unexpected tags kept: {kept - tags}"
    assert has_profile is profile, f"ICC profile kept should be {profile}"
    assert not has_xmp, "XMP is never kept"
    if not tags:
        assert (0xE1, b"Exif") not in app_markers(result.data), "no EXIF segment"


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header claims another size."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (9, 9, 9)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def truncated(name: str = "pillow_flower.jpg") -> bytes:
    data = (JPEGS / name).read_bytes()
    return data[: len(data) * 9 // 10]


# name, bytes, error, whether reading the header alone (probe) finds it
HOSTILE = [
    ("bomb header 50000x50000", jpeg_claiming(50000, 50000), LimitExceeded, True),
    ("garbage after SOI", b"\xff\xd8\xff" + bytes(range(256)) * 8, CorruptFile, True),
    ("truncated", truncated(), CorruptFile, False),
    ("truncated progressive", truncated("dacsan_web3.jpg"), CorruptFile, False),
    ("SOI only", b"\xff\xd8\xff", CorruptFile, True),
]


@pytest.mark.parametrize(
    ("data", "error", "in_header"),
    [row[1:] for row in HOSTILE],
    ids=[row[0] for row in HOSTILE],
)
@pytest.mark.parametrize("lossless", [False, True], ids=["lossy", "lossless"])
def test_hostile_files_raise_typed_errors(
    data: bytes, error: type[Exception], in_header: bool, lossless: bool
) -> None:
    with pytest.raises(error):
        OPTIMIZER.optimize(data, Options(lossless=lossless), Limits())
    if in_header:
        with pytest.raises(error):
            OPTIMIZER.probe(data, Limits())


def test_probe_reads_the_size() -> None:
    data = (JPEGS / "pillow_flower.jpg").read_bytes()

    facts = OPTIMIZER.probe(data, Limits())

    assert (facts.width, facts.height, facts.format) == (480, 360, "jpeg")
    assert facts.data == data, "probe hands back the input"


MOSAICS = [
    ("small image is its own proxy", (200, 150), (200, 150)),
    ("wide image", (3000, 500), None),
    ("tall image", (500, 3000), None),
]


@pytest.mark.parametrize(
    ("size", "expected"), [row[1:] for row in MOSAICS], ids=[row[0] for row in MOSAICS]
)
def test_proxy_mosaic_follows_the_block_grid(
    size: tuple[int, int], expected: tuple[int, int] | None
) -> None:
    image = Image.new("RGB", size)

    mosaic = proxy_mosaic(image)

    if expected is not None:
        assert mosaic.size == expected, f"expected {expected}, got {mosaic.size}"
        return
    assert mosaic.width % 16 == 0, "tiles must follow the 16-pixel grid"
    assert mosaic.height % 16 == 0, "tiles must follow the 16-pixel grid"
    assert mosaic.width * mosaic.height < size[0] * size[1] / 4, "a proxy must be small"


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_FILES)
def test_whole_corpus_lossless_and_lossy(name: str, tmp_path: Path) -> None:
    data = (JPEGS / name).read_bytes()

    lossless = OPTIMIZER.optimize(data, Options(lossless=True), Limits())
    lossy = OPTIMIZER.optimize(data, Options(), Limits())

    assert len(lossless.data) <= len(data), "lossless never larger"
    assert len(lossy.data) <= len(data), "lossy never larger"
    for a, b in zip(
        coefficients(data, tmp_path), coefficients(lossless.data, tmp_path), strict=True
    ):
        assert np.array_equal(a, b), f"lossless changed a coefficient of {name}"
    score = ssimulacra2(upright_srgb(data), upright_srgb(lossy.data))
    assert score >= FLOOR, f"{name} scored {score:.1f}, below {FLOOR}"


def jpeg_at(image: Image.Image, quality: int, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, **save)
    return buffer.getvalue()


def photo() -> Image.Image:
    """A small photograph, wider than tall, so every turn shows in its size."""
    with Image.open(JPEGS / "pillow_hopper.jpg") as image:
        return image.convert("RGB").crop((0, 16, 128, 112))


@pytest.mark.parametrize("quality", [30, 50, 75, 90, 95])
def test_input_quality_reads_the_luminance_table(quality: int) -> None:
    data = jpeg_at(Image.new("RGB", (16, 16), (90, 120, 150)), quality)

    with Image.open(io.BytesIO(data)) as image:
        estimate = input_quality(image)

    assert estimate is not None, "a JPEG has quantisation tables"
    assert abs(estimate - quality) <= 1, f"saved at {quality}, read {estimate:.1f}"


def test_a_coarse_input_comes_back_exact_when_lossy(tmp_path: Path) -> None:
    data = jpeg_at(photo(), int(KEEP_QUALITY) - 10)

    result = OPTIMIZER.optimize(data, Options(), Limits())

    assert len(result.data) <= len(data), "never larger"
    before = coefficients(data, tmp_path)
    after = coefficients(result.data, tmp_path)
    for a, b in zip(before, after, strict=True):
        assert np.array_equal(a, b), "re-encoding a coarse JPEG only adds loss"


def test_noise_that_overflows_pillows_buffer_still_encodes() -> None:
    rng = np.random.default_rng(5)
    noise = Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    data = jpeg_at(noise, 95, subsampling=0)  # over a byte a pixel at any quality

    result = OPTIMIZER.optimize(data, Options(), Limits())

    assert len(result.data) <= len(data), "never larger"
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.size == (256, 256), f"the output decodes: {image.size}"


def test_a_coarse_cmyk_input_still_becomes_rgb() -> None:
    data = (JPEGS / "ocrmypdf_baiona_cmyk.jpg").read_bytes()  # Adobe CMYK, coarse
    with Image.open(io.BytesIO(data)) as image:
        assert (input_quality(image) or 100) <= KEEP_QUALITY, "the input is coarse"

    lossy = OPTIMIZER.optimize(data, Options(), Limits())
    lossless = OPTIMIZER.optimize(data, Options(lossless=True), Limits())

    with Image.open(io.BytesIO(lossy.data)) as image:
        assert image.mode == "RGB", f"CMYK should come out RGB, not {image.mode}"
    assert len(lossy.data) < len(lossless.data), "three channels cost less than four"


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


@pytest.mark.parametrize("orientation", sorted(STORED_AS))
def test_every_orientation_is_shown_upright_or_kept(orientation: int) -> None:
    upright = photo()
    transpose = STORED_AS[orientation]
    stored = upright if transpose is None else upright.transpose(transpose)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = jpeg_at(stored, 95, subsampling=0, exif=exif.tobytes())

    lossy = OPTIMIZER.optimize(data, Options(), Limits())
    lossless = OPTIMIZER.optimize(data, Options(lossless=True), Limits())

    with Image.open(io.BytesIO(lossy.data)) as image:
        assert image.getexif().get(0x0112) is None, "lossy applies the tag, drops it"
        score = ssimulacra2(upright, image)
    assert score >= FLOOR, f"orientation {orientation} shows wrong: {score:.1f}"
    with Image.open(io.BytesIO(lossless.data)) as image:
        assert image.size == stored.size, "lossless keeps the stored pixels"
        kept = image.getexif().get(0x0112)
    assert kept == (None if orientation == 1 else orientation), "and the tag"


def test_a_wide_gamut_profile_is_converted_before_it_is_dropped() -> None:
    with Image.open(JPEGS / "pillow_xmp_test.jpg") as source:
        adobe_rgb = source.info["icc_profile"]
    picture = Image.new("RGB", (64, 64), (60, 160, 60))
    data = jpeg_at(picture, 95, icc_profile=adobe_rgb)
    shown = ImageCms.profileToProfile(
        picture,
        ImageCms.ImageCmsProfile(io.BytesIO(adobe_rgb)),
        ImageCms.createProfile("sRGB"),
    )

    result = OPTIMIZER.optimize(data, Options(), Limits())

    with Image.open(io.BytesIO(result.data)) as image:
        assert not image.info.get("icc_profile"), "the profile goes"
        red, green, _ = image.convert("RGB").getpixel((32, 32))
    expected = shown.getpixel((32, 32))
    assert abs(red - expected[0]) <= 4, f"red {red}, as shown {expected}"
    assert abs(green - expected[1]) <= 4, f"green {green}, as shown {expected}"


def test_the_proxy_takes_flat_and_busy_tiles_alike() -> None:
    rng = np.random.default_rng(3)
    pixels = np.full((1024, 1024), 128, dtype=np.uint8)
    pixels[:, 768:] = rng.integers(0, 256, (1024, 256), dtype=np.uint8)
    image = Image.fromarray(pixels, "L")  # a quarter busy, at one side

    mosaic = np.asarray(proxy_mosaic(image), dtype=np.int16)

    tiles = mosaic.reshape(mosaic.shape[0] // 64, 64, mosaic.shape[1] // 64, 64)
    busy = (tiles.std(axis=(1, 3)) > 10).mean()
    assert 0.15 <= busy <= 0.35, f"a quarter of the tiles should be busy: {busy:.2f}"


class Curve:
    """A quality ladder whose trial at quality q scores q and takes q bytes."""

    def __init__(self) -> None:
        self.tried: list[int] = []

    def __call__(self, setting: Setting) -> Trial:
        self.tried.append(setting.quality)
        return Trial(setting.quality, float(setting.quality))


# name, aim, start, expected quality (None: no passing one), most trials
LADDERS = [
    ("start on the answer", 80.0, 80, 80, 1),
    ("start below", 80.0, 60, 80, 4),
    ("start above", 50.0, 90, 50, 4),
    ("between two steps", 80.5, 70, 81, 4),
    ("out of reach", 120.0, 80, None, 4),
    ("lower bound", 10.0, 80, 30, 4),
]


@pytest.mark.parametrize(
    ("aim", "start", "expected", "most"),
    [row[1:] for row in LADDERS],
    ids=[row[0] for row in LADDERS],
)
def test_lowest_passing_finds_the_first_quality_in_few_trials(
    aim: float, start: int, expected: int | None, most: int
) -> None:
    curve = Curve()

    found = lowest_passing(curve, "444", aim, start)

    quality = None if found is None else found.quality
    assert quality == expected, f"expected {expected}, found {quality}"
    assert len(curve.tried) <= most, f"{len(curve.tried)} trials: {curve.tried}"
