"""Lossy PDF: images down to 150 dpi where they are drawn, pages that still look the
same, text that stays text, and what cannot be re-encoded faithfully left alone."""

from __future__ import annotations

import functools
import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pikepdf
import pypdfium2
import pytest
from PIL import Image

from workers.optimizers.base import Limits, Options
from workers.optimizers.metric import Reference
from workers.optimizers.pdf_placements import find_placements
from workers.optimizers.registry import optimize

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus"
PDFS = CORPUS / "pdf"
PHOTO = CORPUS / "images" / "jpeg" / "ocrmypdf_baiona_color.jpg"
CMYK_PHOTO = CORPUS / "images" / "jpeg" / "ocrmypdf_baiona_cmyk.jpg"
GREY_PHOTO = CORPUS / "images" / "jpeg" / "sharp_concert.jpg"
LOSSY = Options()
FLOOR = 70.0
PAGE = (300.0, 300.0)


def _render(data: bytes) -> list[np.ndarray]:
    document = pypdfium2.PdfDocument(data)
    try:
        return [page.render(scale=1.0).to_numpy()[:, :, :3].copy() for page in document]
    finally:
        document.close()


def _text(data: bytes) -> list[str]:
    document = pypdfium2.PdfDocument(data)
    try:
        return [page.get_textpage().get_text_range() for page in document]
    finally:
        document.close()


def _scores(original: bytes, optimized: bytes) -> list[float]:
    """SSIMULACRA2 of every optimized page against the original's, at 72 dpi."""
    scores = []
    for before, after in zip(_render(original), _render(optimized), strict=True):
        identical = before.shape == after.shape and np.array_equal(before, after)
        scores.append(100.0 if identical else Reference(before).score(after))
    return scores


def _image_stream(
    pdf: pikepdf.Pdf, data: bytes, space: str, size: tuple[int, int], **extra
) -> pikepdf.Stream:
    stream = pikepdf.Stream(pdf, data)
    stream.update(
        {
            "/Type": pikepdf.Name.XObject,
            "/Subtype": pikepdf.Name.Image,
            "/Width": size[0],
            "/Height": size[1],
            "/ColorSpace": pikepdf.Name(space),
            "/BitsPerComponent": extra.pop("bits", 8),
            **{f"/{key}": value for key, value in extra.items()},
        }
    )
    return pdf.make_indirect(stream)


def _raw(image: Image.Image, space: str, pdf: pikepdf.Pdf, **extra) -> pikepdf.Stream:
    """A lossless (Flate) image XObject of the image's samples."""
    data = zlib.compress(image.tobytes(), 6)
    return _image_stream(
        pdf, data, space, image.size, Filter=pikepdf.Name.FlateDecode, **extra
    )


def _jpeg(path: Path, space: str, pdf: pikepdf.Pdf, **extra) -> pikepdf.Stream:
    with Image.open(path) as image:
        size = image.size
    return _image_stream(
        pdf, path.read_bytes(), space, size, Filter=pikepdf.Name.DCTDecode, **extra
    )


def _page(
    pdf: pikepdf.Pdf,
    images: dict[str, pikepdf.Stream],
    content: bytes,
    fonts: pikepdf.Dictionary | None = None,
) -> None:
    page = pdf.add_blank_page(page_size=PAGE)
    resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(images))
    if fonts is not None:
        resources.Font = fonts
    page.obj.Resources = resources
    page.obj.Contents = pdf.make_stream(content)


def _saved(pdf: pikepdf.Pdf) -> bytes:
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _draw(
    name: str, width: float, height: float, x: float = 10, y: float = 10
) -> bytes:
    return f"q {width} 0 0 {height} {x} {y} cm /{name} Do Q\n".encode()


def _alpha(size: tuple[int, int]) -> Image.Image:
    """A soft round mask: opaque in the middle, fading out to the corners."""
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]]
    distance = np.hypot(xs / size[0] - 0.5, ys / size[1] - 0.5)
    alpha = np.clip((0.6 - distance) * 600, 0, 255).astype(np.uint8)
    return Image.fromarray(alpha, "L")


def _photo() -> Image.Image:
    with Image.open(PHOTO) as image:
        return image.convert("RGB")


# The photo is 640x682: 96 pt wide places it at 480 dpi, 150 dpi needs 200 pixels.
PLACED = 96.0
AT_150 = (200, 213)


def photo_raw() -> bytes:
    pdf = pikepdf.new()
    _page(pdf, {"/Im0": _raw(_photo(), "/DeviceRGB", pdf)}, _draw("Im0", 96, 102.3))
    return _saved(pdf)


def photo_jpeg() -> bytes:
    pdf = pikepdf.new()
    image = _jpeg(PHOTO, "/DeviceRGB", pdf)
    _page(pdf, {"/Im0": image}, _draw("Im0", 96, 102.3))
    return _saved(pdf)


def photo_with_smask() -> bytes:
    pdf = pikepdf.new()
    photo = _photo()
    mask = _raw(_alpha(photo.size), "/DeviceGray", pdf)
    image = _raw(photo, "/DeviceRGB", pdf, SMask=mask)
    _page(pdf, {"/Im0": image}, _draw("Im0", 96, 102.3))
    return _saved(pdf)


def grey_photo() -> bytes:
    # 400x267 at 48 pt: 600 dpi, down to 100 pixels wide.
    pdf = pikepdf.new()
    image = _jpeg(GREY_PHOTO, "/DeviceGray", pdf)
    _page(pdf, {"/Im0": image}, _draw("Im0", 48, 32.04))
    return _saved(pdf)


def cmyk_jpeg() -> bytes:
    # An Adobe CMYK JPEG stores inverted samples; /Decode turns them back.
    pdf = pikepdf.new()
    inverted = pikepdf.Array([1, 0] * 4)
    image = _jpeg(CMYK_PHOTO, "/DeviceCMYK", pdf, Decode=inverted)
    _page(pdf, {"/Im0": image}, _draw("Im0", 96, 102.3))
    return _saved(pdf)


def placed_twice() -> bytes:
    # At 1 and at 2 inches across two pages: the larger needs 300 pixels.
    pdf = pikepdf.new()
    image = _raw(_photo(), "/DeviceRGB", pdf)
    _page(pdf, {"/Im0": image}, _draw("Im0", 72, 76.725))
    _page(pdf, {"/Im0": image}, _draw("Im0", 144, 153.45))
    return _saved(pdf)


def in_a_form() -> bytes:
    # Drawn 192 pt wide inside a form scaled by a half: 96 pt on the page.
    pdf = pikepdf.new()
    image = _raw(_photo(), "/DeviceRGB", pdf)
    form = pdf.make_stream(
        _draw("Im0", 192, 204.6, 0, 0),
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Form,
        BBox=[0, 0, 200, 210],
        Matrix=[0.5, 0, 0, 0.5, 0, 0],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
    )
    _page(pdf, {"/Fm0": form}, b"q 1 0 0 1 20 20 cm /Fm0 Do Q")
    return _saved(pdf)


def text_page() -> bytes:
    pdf = pikepdf.new()
    font = pikepdf.Dictionary(
        Type=pikepdf.Name.Font,
        Subtype=pikepdf.Name.Type1,
        BaseFont=pikepdf.Name.Helvetica,
    )
    content = b"BT /F1 14 Tf 20 250 Td (Squeezer keeps text as text.) Tj ET"
    _page(pdf, {}, content, pikepdf.Dictionary(F1=font))
    return _saved(pdf)


def small_image() -> bytes:
    # 48x48 at 480 dpi: too few pixels to be worth touching.
    pdf = pikepdf.new()
    image = _raw(_photo().resize((48, 48)), "/DeviceRGB", pdf)
    _page(pdf, {"/Im0": image}, _draw("Im0", 7.2, 7.2))
    return _saved(pdf)


def one_bit_scan() -> bytes:
    # 1-bit samples at 600 dpi are left alone.
    pdf = pikepdf.new()
    bits = (np.asarray(_photo().convert("L")) > 128).astype(np.uint8)
    scan = Image.fromarray(bits * 255, "L").convert("1")
    image = _raw(scan, "/DeviceGray", pdf, bits=1)
    _page(pdf, {"/Im0": image}, _draw("Im0", 76.8, 81.8))
    return _saved(pdf)


@dataclass(frozen=True)
class Case:
    """A PDF, and each image's pixel size expected after, by page and name."""

    make: Callable[[], bytes]
    sizes: dict[tuple[int, str], tuple[int, int]]


CASES = {
    "photo-raw-480dpi": Case(photo_raw, {(0, "/Im0"): AT_150}),
    "photo-jpeg-480dpi": Case(photo_jpeg, {(0, "/Im0"): AT_150}),
    "photo-with-smask": Case(photo_with_smask, {(0, "/Im0"): AT_150}),
    "grey-jpeg-600dpi": Case(grey_photo, {(0, "/Im0"): (100, 67)}),
    "cmyk-jpeg-480dpi": Case(cmyk_jpeg, {(0, "/Im0"): AT_150}),
    "placed-twice": Case(placed_twice, {(0, "/Im0"): (300, 320)}),
    "in-a-scaled-form": Case(in_a_form, {}),
    "text-only": Case(text_page, {}),
    "small-image": Case(small_image, {(0, "/Im0"): (48, 48)}),
    "one-bit-scan": Case(one_bit_scan, {(0, "/Im0"): (640, 682)}),
}


@functools.cache
def _made(name: str) -> bytes:
    return CASES[name].make()


@functools.cache
def _optimized(name: str) -> bytes:
    return optimize(_made(name), LOSSY, Limits()).data


@functools.cache
def _opened(data: bytes) -> pikepdf.Pdf:
    """The PDF, kept open for as long as the tests look at its objects."""
    return pikepdf.open(io.BytesIO(data))


def _images(data: bytes) -> dict[tuple[int, str], pikepdf.Stream]:
    pdf = _opened(data)
    found = {}
    for number, page in enumerate(pdf.pages):
        for name, xobject in page.obj.Resources.get("/XObject", {}).items():
            found[number, name] = xobject
    return found


@pytest.mark.parametrize("name", CASES)
def test_pages_look_the_same_and_keep_their_text(name: str) -> None:
    original, optimized = _made(name), _optimized(name)
    assert len(optimized) <= len(original), f"{name} grew"
    scores = _scores(original, optimized)
    assert min(scores) > FLOOR, f"{name} pages scored {scores}"
    assert _text(optimized) == _text(original), "the extracted text changed"


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.sizes])
def test_images_come_down_to_150_dpi_at_their_largest(name: str) -> None:
    images = _images(_optimized(name))
    for key, expected in CASES[name].sizes.items():
        image = images[key]
        found = (int(image.Width), int(image.Height))
        assert found == expected, f"{name} {key}: {found}, expected {expected}"


def test_smask_comes_down_with_its_image() -> None:
    image = _images(_optimized("photo-with-smask"))[0, "/Im0"]
    mask = image.SMask
    assert (int(mask.Width), int(mask.Height)) == AT_150, "the SMask kept its size"
    assert image.ColorSpace == "/DeviceRGB", "the colour space changed"


def test_an_image_in_a_scaled_form_is_sized_for_the_page() -> None:
    pdf = _opened(_optimized("in-a-scaled-form"))
    image = pdf.pages[0].obj.Resources.XObject.Fm0.Resources.XObject.Im0
    assert (int(image.Width), int(image.Height)) == AT_150


def test_an_image_placed_twice_stays_one_image() -> None:
    images = _images(_optimized("placed-twice"))
    assert images[0, "/Im0"].objgen == images[1, "/Im0"].objgen, "image split"


def test_cmyk_stays_cmyk_with_its_decode() -> None:
    image = _images(_optimized("cmyk-jpeg-480dpi"))[0, "/Im0"]
    assert image.ColorSpace == "/DeviceCMYK"
    assert list(image.Decode) == [1, 0] * 4


@pytest.mark.parametrize("name", ["small-image", "one-bit-scan"])
def test_what_is_not_worth_it_or_not_faithful_keeps_its_samples(name: str) -> None:
    before = _images(_made(name))[0, "/Im0"]
    after = _images(_optimized(name))[0, "/Im0"]
    assert after.read_bytes() == before.read_bytes(), f"{name}: samples changed"


# Small corpus files: an image with an SMask at 398 dpi; an Illustrator file with
# private data and a CMYK JPEG; a CCITT fax scan.
CORPUS_CASES = [
    ("pdfjs_firefox_logo.pdf", 0.3),
    ("pdfjs_cmykjpeg.pdf", 0.3),
    ("ocrmypdf_epson.pdf", 1.0),
]


@pytest.mark.parametrize(
    ("name", "at_most"), CORPUS_CASES, ids=[case[0] for case in CORPUS_CASES]
)
def test_corpus_pdfs_shrink_and_look_the_same(name: str, at_most: float) -> None:
    original = (PDFS / name).read_bytes()
    result = optimize(original, LOSSY, Limits())
    ratio = len(result.data) / len(original)
    assert ratio <= at_most, f"{name}: {ratio:.2f} of the original, expected {at_most}"
    assert result.pages == len(_render(original)), "page count changed"
    scores = _scores(original, result.data)
    assert min(scores) > FLOOR, f"{name} pages scored {scores}"
    assert _text(result.data) == _text(original), "the extracted text changed"


def _pattern_pdf() -> pikepdf.Pdf:
    """A page drawing one image directly and another only inside a tiling pattern."""
    pdf = pikepdf.new()
    drawn = _raw(Image.new("RGB", (100, 100)), "/DeviceRGB", pdf)
    tiled = _raw(Image.new("RGB", (100, 100)), "/DeviceRGB", pdf)
    pattern = pdf.make_stream(
        _draw("Im1", 10, 10, 0, 0),
        PatternType=1,
        PaintType=1,
        TilingType=1,
        BBox=[0, 0, 10, 10],
        XStep=10,
        YStep=10,
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im1=tiled)),
    )
    page = pdf.add_blank_page(page_size=PAGE)
    page.obj.Resources = pikepdf.Dictionary(
        XObject=pikepdf.Dictionary(Im0=drawn),
        Pattern=pikepdf.Dictionary(P0=pattern),
    )
    page.obj.Contents = pdf.make_stream(
        b"q 2 0 0 3 0 0 cm q 10 0 0 20 5 5 cm /Im0 Do Q Q "
        b"q 0.5 0 0 0.5 0 0 cm /Im0 Do Q "
        b"/Pattern cs /P0 scn 0 0 100 100 re f"
    )
    return pdf


def test_placements_follow_the_matrices_and_distrust_patterns() -> None:
    pdf = _pattern_pdf()
    placements = find_placements(pdf)
    resources = pdf.pages[0].obj.Resources
    drawn = resources.XObject.Im0.objgen
    tiled = resources.Pattern.P0.Resources.XObject.Im1.objgen
    assert placements.extents[drawn] == pytest.approx((20.0, 60.0))
    assert tiled in placements.unmeasured, "an image in a pattern was measured"
    assert tiled not in placements.measured()
