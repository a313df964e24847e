"""WebP: exact lossless copies, lossy within the target, animations, metadata."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from workers.optimizers import webp_encode, webp_search, webpriff
from workers.optimizers.base import Limits, Options
from workers.optimizers.errors import CorruptFile, LimitExceeded
from workers.optimizers.metric import ssimulacra2
from workers.optimizers.registry import optimize
from workers.optimizers.webp import WebpOptimizer

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "images"
WEBPS = CORPUS / "webp"
FLOOR = 70.0
ORIENTATION = 0x0112


def corpus(name: str) -> bytes:
    return (WEBPS / name).read_bytes()


def webp_bytes(image: Image.Image, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", **save)
    return buffer.getvalue()


def gradient(width: int = 96, height: int = 64, alpha: bool = False) -> Image.Image:
    """A smooth picture with detail, so that a lossy encode has work to do."""
    y, x = np.mgrid[0:height, 0:width]
    red = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    green = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    blue = ((x * y) % 256).astype(np.uint8)
    planes = [red, green, blue]
    if alpha:
        planes.append(np.where(x < width // 4, 0, 255).astype(np.uint8))
    return Image.fromarray(np.dstack(planes), "RGBA" if alpha else "RGB")


def animation(loop: int = 3) -> tuple[bytes, list[int]]:
    """A lossless animated WebP of five different frames with varied durations."""
    durations = [40, 80, 120, 60, 200]
    frames = []
    for index in range(len(durations)):
        frame = gradient(48, 32, alpha=True)
        frame.paste((255, 0, 0, 255), (index * 8, 4, index * 8 + 8, 12))
        frames.append(frame)
    data = webp_bytes(
        frames[0],
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=loop,
        lossless=True,
    )
    return data, durations


def timeline(data: bytes) -> list[tuple[bytes, int]]:
    """(pixels, duration) of each frame shown, runs of identical frames merged."""
    shown: list[tuple[bytes, int]] = []
    with Image.open(io.BytesIO(data)) as image:
        for frame in ImageSequence.Iterator(image):
            pixels = frame.convert("RGBA").tobytes()
            duration = int(frame.info.get("duration") or 0)
            if shown and shown[-1][0] == pixels:
                shown[-1] = (pixels, shown[-1][1] + duration)
            else:
                shown.append((pixels, duration))
    return shown


def frames_rgba(data: bytes) -> list[np.ndarray]:
    with Image.open(io.BytesIO(data)) as image:
        return [np.asarray(f.convert("RGBA")) for f in ImageSequence.Iterator(image)]


def visible(pixels: np.ndarray) -> np.ndarray:
    """RGBA pixels with the colour of fully transparent ones zeroed.

    An animation's frames are composited canvases, where the colour under alpha 0
    is whatever the compositing left: nobody sees it, as the benchmark agrees.
    """
    shown = pixels.copy()
    shown[shown[:, :, 3] == 0] = 0
    return shown


def score(original: bytes, output: bytes) -> float:
    with Image.open(io.BytesIO(original)) as a, Image.open(io.BytesIO(output)) as b:
        return ssimulacra2(a.convert("RGBA"), b.convert("RGBA"))


def exif_orientation(data: bytes) -> int | None:
    with Image.open(io.BytesIO(data)) as image:
        return image.getexif().get(ORIENTATION)


LOSSLESS = [
    ("lossy with icc, exif, xmp", lambda: corpus("pillow_flower2.webp")),
    ("lossy with alpha", lambda: corpus("pillow_transparent.webp")),
    ("lossless photo", lambda: corpus("libwebp_lossless_color_transform.webp")),
    ("lossless animation", lambda: corpus("pillow_iss634.webp")),
    (
        "lossless with hidden colour",
        lambda: webp_bytes(gradient(alpha=True), lossless=True, exact=True),
    ),
]


@pytest.mark.parametrize(
    "make", [row[1] for row in LOSSLESS], ids=[row[0] for row in LOSSLESS]
)
def test_lossless_keeps_every_pixel_of_every_frame(make) -> None:
    data = make()

    result = optimize(data, Options(lossless=True))

    assert result.format == "webp"
    assert len(result.data) <= len(data), "the optimized file is never larger"
    before, after = frames_rgba(data), frames_rgba(result.data)
    assert len(after) == len(before), "every frame is kept"
    for index, (a, b) in enumerate(zip(before, after, strict=True)):
        assert np.array_equal(visible(a), visible(b)), f"frame {index} changed"


def test_lossless_keeps_the_colour_under_transparent_pixels_of_a_still() -> None:
    data = webp_bytes(gradient(alpha=True), lossless=True, exact=True)

    result = optimize(data, Options(lossless=True, resize=(400, 400)))

    assert np.array_equal(frames_rgba(data)[0], frames_rgba(result.data)[0])


def test_lossless_strips_metadata_of_a_lossy_file_without_touching_its_image() -> None:
    data = corpus("pillow_flower2.webp")

    result = optimize(data, Options(lossless=True))

    tags = [chunk.tag for chunk in webpriff.chunks(result.data)]
    assert b"XMP " not in tags, f"XMP left: {tags}"
    assert b"EXIF" not in tags, f"EXIF left: {tags}"
    image_chunks = [c for c in webpriff.chunks(data) if c.tag == b"VP8 "]
    assert image_chunks[0] in webpriff.chunks(result.data), "VP8 data byte for byte"


LOSSY = [
    ("photo", "pillow_flower.webp"),
    ("lossy alpha", "pillow_transparent.webp"),
    ("lossless source", "libwebp_lossless_color_transform.webp"),
    ("already small", "pillow_flower2.webp"),
]


@pytest.mark.parametrize(
    "name", [row[1] for row in LOSSY], ids=[row[0] for row in LOSSY]
)
def test_lossy_holds_the_floor_and_never_grows(name: str) -> None:
    data = corpus(name)

    result = optimize(data, Options())

    assert len(result.data) <= len(data), "the optimized file is never larger"
    value = score(data, result.data)
    assert value >= FLOOR, f"{name} scored {value:.1f}, below {FLOOR}"
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.size == (result.width, result.height)
        assert image.format == "WEBP"


def test_lossy_keeps_alpha() -> None:
    data = webp_bytes(gradient(alpha=True), lossless=True)

    result = optimize(data, Options())

    with Image.open(io.BytesIO(result.data)) as image:
        alpha = np.asarray(image.convert("RGBA"))[:, :, 3]
    assert alpha[:, :20].max() <= 8, "the transparent band stays transparent"
    assert alpha[:, 30:].min() >= 247, "the opaque part stays opaque"


ANIMATED = [("lossless", True), ("lossy", False)]


@pytest.mark.parametrize(
    "lossless", [row[1] for row in ANIMATED], ids=[row[0] for row in ANIMATED]
)
def test_an_animation_keeps_its_frames_timing_and_loop(lossless: bool) -> None:
    data, durations = animation(loop=3)

    result = optimize(data, Options(lossless=lossless))

    before, after = timeline(data), timeline(result.data)
    assert [d for _, d in after] == [d for _, d in before] == durations, (
        "every frame keeps its duration"
    )
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.info["loop"] == 3, "the loop count is kept"
        assert image.n_frames == len(durations)
    if lossless:
        for index, ((a, _), (b, _)) in enumerate(zip(before, after, strict=True)):
            shown = [
                visible(np.frombuffer(p, np.uint8).reshape(32, 48, 4)) for p in (a, b)
            ]
            assert np.array_equal(*shown), f"frame {index} changed"
    else:
        for index, ((a, _), (b, _)) in enumerate(zip(before, after, strict=True)):
            original = Image.frombytes("RGBA", (48, 32), a)
            shown = Image.frombytes("RGBA", (48, 32), b)
            value = ssimulacra2(original, shown)
            assert value >= FLOOR, f"frame {index} scored {value:.1f}"


def test_a_lossy_animation_resized_into_the_box() -> None:
    data, durations = animation(loop=0)

    result = optimize(data, Options(resize=(24, 0)))

    with Image.open(io.BytesIO(result.data)) as image:
        assert image.size == (24, 16) == (result.width, result.height)
        assert image.n_frames == len(durations)
        assert image.info["loop"] == 0


def oriented(value: int) -> bytes:
    """A lossless WebP stored turned a quarter, with EXIF orientation `value`."""
    exif = Image.Exif()
    exif[ORIENTATION] = value
    stored = gradient(96, 64).transpose(Image.Transpose.ROTATE_90)
    return webp_bytes(stored, lossless=True, exif=exif.tobytes())


ORIENTED = [
    ("lossy applies it", False, frozenset(), (96, 64), None),
    ("lossy keeps it if asked", False, frozenset({"orientation"}), (64, 96), 6),
    ("lossless keeps the tag", True, frozenset(), (64, 96), 6),
]


@pytest.mark.parametrize(
    ("lossless", "preserve", "size", "tag"),
    [row[1:] for row in ORIENTED],
    ids=[row[0] for row in ORIENTED],
)
def test_orientation_is_applied_before_its_tag_goes(
    lossless: bool, preserve: frozenset[str], size: tuple[int, int], tag: int | None
) -> None:
    data = oriented(6)

    result = optimize(data, Options(lossless=lossless, preserve=preserve))

    with Image.open(io.BytesIO(result.data)) as image:
        assert image.size == size, f"stored {image.size}, expected {size}"
    assert exif_orientation(result.data) == tag


def adobe_rgb_profile() -> bytes:
    with Image.open(CORPUS / "jpeg" / "pillow_xmp_test.jpg") as image:
        return image.info["icc_profile"]


PROFILED = [
    ("lossy converts it", False, False),
    ("lossless keeps it", True, True),
]


@pytest.mark.parametrize(
    ("lossless", "kept"),
    [row[1:] for row in PROFILED],
    ids=[row[0] for row in PROFILED],
)
def test_a_foreign_profile_is_converted_before_it_goes(
    lossless: bool, kept: bool
) -> None:
    picture = Image.new("RGB", (64, 64), (60, 160, 60))
    data = webp_bytes(picture, quality=95, icc_profile=adobe_rgb_profile())

    result = optimize(data, Options(lossless=lossless))

    with Image.open(io.BytesIO(result.data)) as image:
        has_profile = bool(image.info.get("icc_profile"))
        green = image.convert("RGB").getpixel((32, 32))
    assert has_profile is kept, f"profile kept should be {kept}"
    if not kept:
        assert green[0] < 50, f"Adobe RGB green is purer in sRGB: {green}"
        assert green[1] > 160, f"Adobe RGB green is brighter in sRGB: {green}"


RESIZES = [
    ("into a wide box", (48, 0), (48, 32)),
    ("height bound", (0, 16), (24, 16)),
    ("never enlarges", (400, 400), (96, 64)),
]


@pytest.mark.parametrize(
    ("box", "size"), [row[1:] for row in RESIZES], ids=[row[0] for row in RESIZES]
)
def test_resize_fits_the_box_without_enlarging(
    box: tuple[int, int], size: tuple[int, int]
) -> None:
    data = webp_bytes(gradient(), lossless=True)

    for lossless in (True, False):
        result = optimize(data, Options(lossless=lossless, resize=box))
        with Image.open(io.BytesIO(result.data)) as image:
            assert image.size == size == (result.width, result.height)


def riff(*chunks: tuple[bytes, bytes], size: int | None = None) -> bytes:
    body = b"WEBP" + b"".join(
        tag + struct.pack("<I", len(payload)) + payload for tag, payload in chunks
    )
    return b"RIFF" + struct.pack("<I", size if size is not None else len(body)) + body


def truncated() -> bytes:
    data = corpus("pillow_flower.webp")
    return data[: len(data) // 2]


def huge_canvas() -> bytes:
    canvas = (20000 - 1).to_bytes(3, "little") * 2
    vp8x = b"\x10\0\0\0" + canvas
    return riff((b"VP8X", vp8x), (b"VP8L", b"\x2f" + b"\0" * 20))


HOSTILE = [
    ("truncated", truncated, Limits(), CorruptFile),
    ("no image chunk", lambda: riff((b"EXIF", b"Exif")), Limits(), CorruptFile),
    (
        "chunk past the end",
        lambda: riff((b"VP8 ", b"\0" * 10), size=4 + 8 + 5000),
        Limits(),
        CorruptFile,
    ),
    ("garbage bitstream", lambda: riff((b"VP8 ", b"\x9d" * 64)), Limits(), CorruptFile),
    (
        "canvas over the limit",
        huge_canvas,
        Limits(max_pixels=10_000_000),
        LimitExceeded,
    ),
    (
        "too many frames",
        lambda: animation()[0],
        Limits(max_frames=3),
        LimitExceeded,
    ),
]


@pytest.mark.parametrize(
    ("make", "limits", "error"),
    [row[1:] for row in HOSTILE],
    ids=[row[0] for row in HOSTILE],
)
def test_hostile_files_are_refused_with_typed_errors(make, limits, error) -> None:
    data = make()

    for lossless in (True, False):
        with pytest.raises(error):
            WebpOptimizer().optimize(data, Options(lossless=lossless), limits)
        with pytest.raises(error):
            WebpOptimizer().probe(data, limits)


REPACKS = [
    # name, image, save options, profile to add, tags expected, alpha flag
    (
        "lossless alpha gains a profile",
        lambda: Image.new("RGBA", (20, 10), (255, 0, 0, 128)),
        {"lossless": True},
        True,
        [b"VP8X", b"ICCP", b"VP8L"],
        True,
    ),
    (
        "lossy alpha loses its exif",
        lambda: gradient(alpha=True),
        {"quality": 80, "exif": b"Exif\0\0MM\0*\0\0\0\x08\0\0"},
        False,
        [b"VP8X", b"ALPH", b"VP8 "],
        True,
    ),
    (
        "opaque lossy becomes simple",
        lambda: gradient(),
        {"quality": 80, "exif": b"Exif\0\0MM\0*\0\0\0\x08\0\0"},
        False,
        [b"VP8 "],
        False,
    ),
]


@pytest.mark.parametrize(
    ("make", "save", "icc", "tags", "alpha"),
    [row[1:] for row in REPACKS],
    ids=[row[0] for row in REPACKS],
)
def test_a_repack_keeps_the_image_chunks_and_flags_what_it_holds(
    make, save, icc: bool, tags: list[bytes], alpha: bool
) -> None:
    data = webp_bytes(make(), **save)
    profile = adobe_rgb_profile() if icc else None

    repacked = webpriff.repack(data, None, profile)

    found = webpriff.chunks(repacked)
    assert [chunk.tag for chunk in found] == tags
    if found[0].tag == b"VP8X":
        assert bool(found[0].payload[0] & 0x10) is alpha, "VP8X alpha flag"
    assert np.array_equal(frames_rgba(data)[0], frames_rgba(repacked)[0])


# Qualities in pairs, a coarser and a finer one.
QUALITY_PAIRS = [(0, 20), (20, 50), (50, 75), (75, 90), (90, 100)]


@pytest.mark.parametrize(("coarser", "finer"), QUALITY_PAIRS)
def test_the_quantizer_read_follows_the_quality_coded_at(
    coarser: int, finer: int
) -> None:
    picture = gradient(256, 256)

    low = webpriff.quantizer(webp_bytes(picture, quality=coarser))
    high = webpriff.quantizer(webp_bytes(picture, quality=finer))

    assert low is not None
    assert high is not None
    assert low > high, f"q {coarser} reads {low}, q {finer} reads {high}"


def test_the_quantizer_spans_vp8s_whole_range() -> None:
    picture = gradient(256, 256)

    assert webpriff.quantizer(webp_bytes(picture, quality=0)) == 127, "coarsest"
    assert webpriff.quantizer(webp_bytes(picture, quality=100)) == 0, "finest"
    assert webpriff.quantizer(corpus("sharp_4.webp")) == 41, "a file found"


NO_QUANTIZER = [
    ("lossless", lambda: webp_bytes(gradient(), lossless=True)),
    ("animation", lambda: animation()[0]),
    (
        "start code broken",
        lambda: riff((b"VP8 ", b"\0" * 3 + b"\x9d\x01\x2b" + b"\0" * 8)),
    ),
    ("inter frame", lambda: riff((b"VP8 ", b"\x01\0\0\x9d\x01\x2a" + b"\0" * 8))),
]


@pytest.mark.parametrize(
    "make", [row[1] for row in NO_QUANTIZER], ids=[row[0] for row in NO_QUANTIZER]
)
def test_no_quantizer_is_read_where_no_lossy_still_is(make) -> None:
    assert webpriff.quantizer(make()) is None


def test_a_header_cut_short_reads_as_zeros_without_raising() -> None:
    whole = webp_bytes(gradient(256, 256), quality=50)
    frame = next(c for c in webpriff.chunks(whole) if c.tag == b"VP8 ").payload

    value = webpriff.quantizer(riff((b"VP8 ", frame[:12])))

    assert value is not None
    assert 0 <= value <= 127, "a quantizer index"


def test_an_original_coded_coarser_than_the_target_needs_is_kept_unencoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Image.open(CORPUS / "kodak" / "kodim13.png") as photo:
        picture = photo.convert("RGB")
    data = webp_bytes(picture, quality=50)
    sizes = []
    encode = webp_encode.encode

    def counted(image: Image.Image, *rest: object) -> bytes:
        sizes.append(image.size)
        return encode(image, *rest)

    monkeypatch.setattr(webp_search, "encode", counted)
    monkeypatch.setattr(webp_encode, "encode", counted)

    result = optimize(data, Options())

    assert result.data == data, "the original, as it was"
    assert sizes, "a search ran"
    assert picture.size not in sizes, "no full-size encode was paid for"


@pytest.mark.parametrize("quality", [20, 35, 50, 65, 72, 75, 80, 85, 90, 95, 100])
def test_libwebps_quantizer_is_predicted_for_a_quality(quality: int) -> None:
    coded = webp_bytes(gradient(256, 256), quality=quality, method=5)

    assert webpriff.quantizer(coded) == webp_search.libwebp_quantizer(quality)


@pytest.mark.parametrize("quantizer", [0, 6, 20, 33, 36, 41, 64, 78, 127])
def test_quality_of_a_quantizer_is_the_highest_that_codes_as_coarsely(
    quantizer: int,
) -> None:
    quality = webp_search.quality_of(quantizer)

    if quality > 20:
        assert webp_search.libwebp_quantizer(quality) >= quantizer, "as coarse"
    if quality < 100:
        finer = webp_search.libwebp_quantizer(quality + 1)
        assert finer < quantizer, "the next is finer"
