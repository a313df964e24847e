"""convert: any raster image to WebP or AVIF, or its own format when that fails."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageSequence

from workers.optimizers.base import Options
from workers.optimizers.errors import CorruptFile
from workers.optimizers.metric import ssimulacra2
from workers.optimizers.registry import optimize

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus"
IMAGES = CORPUS / "images"
FLOOR = 70.0


def photo(width: int = 160, height: int = 120) -> Image.Image:
    """A picture with smooth gradients and fine texture, like a small photo."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 12, (height, width))
    red = (x * 200 // width + noise).clip(0, 255)
    green = (y * 200 // height + noise).clip(0, 255)
    blue = (128 + 60 * np.sin(x / 7.0) * np.cos(y / 5.0) + noise).clip(0, 255)
    return Image.fromarray(np.dstack([red, green, blue]).astype(np.uint8), "RGB")


def drawing() -> Image.Image:
    """Flat shapes, a line and text on a plain ground, like a logo or a chart."""
    image = Image.new("RGB", (160, 120), (250, 250, 245))
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 10, 90, 90), fill=(200, 40, 40))
    draw.rectangle((70, 40, 150, 110), fill=(40, 90, 200))
    draw.line((0, 119, 159, 0), fill=(20, 20, 20), width=3)
    draw.text((20, 95), "Squeezer", fill=(0, 0, 0))
    return image


def encoded(image: Image.Image, fmt: str, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def png_with_alpha() -> bytes:
    image = photo().convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize(image.size))
    return encoded(image, "PNG")


def animated_gif(loop: int | None = 2) -> bytes:
    frames = []
    for index in range(4):
        frame = photo(64, 48)
        frame.paste((255, index * 60, 0), (index * 12, 8, index * 12 + 12, 20))
        frames.append(frame.quantize(64))
    extra = {} if loop is None else {"loop": loop}
    return encoded(
        frames[0],
        "GIF",
        save_all=True,
        append_images=frames[1:],
        duration=[50, 100, 150, 200],
        **extra,
    )


INPUTS = [
    ("jpeg", lambda: encoded(photo(), "JPEG", quality=95)),
    ("png", lambda: encoded(photo(), "PNG")),
    ("png with alpha", png_with_alpha),
    ("gif", lambda: encoded(drawing().quantize(16), "GIF")),
    ("webp", lambda: encoded(photo(), "WEBP", lossless=True)),
    (
        "corpus jpeg",
        lambda: (IMAGES / "jpeg" / "pillow_flower.jpg").read_bytes(),
    ),
]
CONVERSIONS = [
    (f"{name} to {target}", make, target)
    for name, make in INPUTS
    for target in ("webp", "avif")
]


def shown(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.convert("RGBA")


@pytest.mark.parametrize(
    ("make", "target"),
    [row[1:] for row in CONVERSIONS],
    ids=[row[0] for row in CONVERSIONS],
)
def test_a_still_converts_within_the_floor(make, target: str) -> None:
    data = make()

    result = optimize(data, Options(convert=target))

    assert result.format == target, f"asked for {target}, got {result.format}"
    assert len(result.data) < len(data), "a conversion that grows is not kept"
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.format == target.upper()
        assert image.size == (result.width, result.height)
    value = ssimulacra2(shown(data), shown(result.data))
    assert value >= FLOOR, f"{target} of the input scored {value:.1f}"


LOSSLESS = [
    ("png", lambda: encoded(photo(), "PNG")),
    ("png with alpha", png_with_alpha),
    ("palette gif", lambda: encoded(photo().quantize(256), "GIF")),
]


@pytest.mark.parametrize(
    "make", [row[1] for row in LOSSLESS], ids=[row[0] for row in LOSSLESS]
)
def test_lossless_conversion_to_webp_keeps_every_pixel(make) -> None:
    data = make()

    result = optimize(data, Options(lossless=True, convert="webp"))

    assert result.format == "webp"
    before = np.asarray(shown(data))
    after = np.asarray(shown(result.data))
    assert np.array_equal(before, after), "lossless WebP must keep every pixel"


def test_lossless_avif_answers_the_input_losslessly_in_its_own_format() -> None:
    data = encoded(photo(), "PNG")

    result = optimize(data, Options(lossless=True, convert="avif"))

    assert result.format == "png", "libavif cannot keep every pixel: PNG stays"
    assert np.array_equal(np.asarray(shown(data)), np.asarray(shown(result.data)))


def timeline(data: bytes) -> list[tuple[bytes, int]]:
    frames: list[tuple[bytes, int]] = []
    with Image.open(io.BytesIO(data)) as image:
        for frame in ImageSequence.Iterator(image):
            pixels = frame.convert("RGBA").tobytes()
            duration = int(frame.info.get("duration") or 0)
            if frames and frames[-1][0] == pixels:
                frames[-1] = (pixels, frames[-1][1] + duration)
            else:
                frames.append((pixels, duration))
    return frames


ANIMATED = [
    ("lossless, repeats twice", True, 2, 3),
    ("lossy, loops forever", False, 0, 0),
    ("no loop count plays once", True, None, 1),
]


@pytest.mark.parametrize(
    ("lossless", "loop", "webp_loop"),
    [row[1:] for row in ANIMATED],
    ids=[row[0] for row in ANIMATED],
)
def test_an_animated_gif_becomes_an_animated_webp(
    lossless: bool, loop: int | None, webp_loop: int
) -> None:
    data = animated_gif(loop)

    result = optimize(data, Options(lossless=lossless, convert="webp"))

    assert result.format == "webp"
    before, after = timeline(data), timeline(result.data)
    assert [d for _, d in after] == [d for _, d in before] == [50, 100, 150, 200]
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.is_animated
        assert image.info["loop"] == webp_loop
    for index, ((a, _), (b, _)) in enumerate(zip(before, after, strict=True)):
        first = Image.frombytes("RGBA", (64, 48), a)
        second = Image.frombytes("RGBA", (64, 48), b)
        if lossless:
            assert a == b, f"frame {index} changed in lossless mode"
        else:
            value = ssimulacra2(first, second)
            assert value >= FLOOR, f"frame {index} scored {value:.1f}"


def test_an_animation_asked_as_avif_stays_an_animation() -> None:
    data = animated_gif(0)

    result = optimize(data, Options(convert="avif"))

    assert result.format == "gif", "no AVIF sequence: the GIF optimized as a GIF"
    assert len(result.data) <= len(data)


def test_orientation_and_resize_apply_before_conversion() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = photo(120, 160)
    data = encoded(stored, "JPEG", quality=95, exif=exif.tobytes())

    result = optimize(data, Options(convert="webp", resize=(80, 0)))

    with Image.open(io.BytesIO(result.data)) as image:
        assert image.size == (80, 60), f"upright and boxed, not {image.size}"
        assert image.getexif().get(0x0112) is None, "the applied tag goes"


CANNOT_SHRINK = [
    # Fine detail that 4:2:0 WebP cannot hold at any quality, and no lossless try
    # for a JPEG: the JPEG optimizer answers.
    ("jpeg to webp", "jpeg/exif-samples_32-lens_data.jpeg", "webp", "jpeg"),
    # Dithered colour noise: no AVIF holding the target is smaller than the GIF.
    ("gif to avif", "dithered noise", "avif", "gif"),
]


@pytest.mark.parametrize(
    ("name", "target", "fmt"),
    [row[1:] for row in CANNOT_SHRINK],
    ids=[row[0] for row in CANNOT_SHRINK],
)
def test_a_conversion_that_cannot_shrink_answers_the_input_format(
    name: str, target: str, fmt: str
) -> None:
    if name == "dithered noise":
        data = encoded(photo().quantize(256), "GIF")
    else:
        data = (IMAGES / name).read_bytes()

    result = optimize(data, Options(convert=target))

    assert result.format == fmt, f"no {target} smaller than the input: {fmt} stays"
    assert len(result.data) <= len(data), "never larger than the input"
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.format == fmt.upper()


def test_a_pdf_is_optimized_as_a_pdf() -> None:
    data = (CORPUS / "pdf" / "ocrmypdf_vector.pdf").read_bytes()

    result = optimize(data, Options(lossless=True, convert="webp"))

    assert result.format == "pdf"


def test_a_truncated_input_is_refused() -> None:
    data = encoded(photo(), "PNG")

    with pytest.raises(CorruptFile):
        optimize(data[: len(data) // 2], Options(convert="webp"))
