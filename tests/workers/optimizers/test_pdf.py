"""The PDF optimizer: pages draw the same, text stays text, hostile files refused."""

from __future__ import annotations

import base64
import binascii
import io
import random
import time
import zlib
from pathlib import Path

import numpy as np
import pikepdf
import pypdfium2
import pytest

from workers.optimizers.base import Limits, Options
from workers.optimizers.errors import CorruptFile, LimitExceeded
from workers.optimizers.pdf import PdfOptimizer
from workers.optimizers.pdffilters import Budget, decode

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "pdf"
CORPUS_PDFS = sorted(path.name for path in CORPUS.glob("*.pdf"))
LOSSLESS = Options(lossless=True)
EVERY_FILTER = pikepdf.StreamDecodeLevel.all
# Varied enough that LZW's codes grow from 9 to 12 bits, short of a full table.
_LETTERS_SOURCE = random.Random(7)  # noqa: S311 - test data, not a secret
LETTERS = bytes(_LETTERS_SOURCE.choice(b"abcdefgh ") for _ in range(6000))


def _pages(data: bytes, scale: float = 1.0) -> list[np.ndarray]:
    document = pypdfium2.PdfDocument(data)
    try:
        return [page.render(scale=scale).to_numpy().copy() for page in document]
    finally:
        document.close()


def _text(data: bytes) -> list[str]:
    document = pypdfium2.PdfDocument(data)
    try:
        return [page.get_textpage().get_text_range() for page in document]
    finally:
        document.close()


def _pdf_bytes(pdf: pikepdf.Pdf) -> bytes:
    """The file as written, every stream's encoding left as it was made."""
    out = io.BytesIO()
    pdf.save(
        out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none
    )
    return out.getvalue()


def _lzw(data: bytes) -> bytes:
    """PDF's LZW (early change) of up to ~3,800 codes: streams only it can read."""
    table = {bytes([n]): n for n in range(256)}
    codes, width, word = [256], 9, b""
    widths = [9]
    for byte in data:
        candidate = word + bytes([byte])
        if candidate in table:
            word = candidate
            continue
        codes.append(table[word])
        widths.append(width)
        table[candidate] = len(table) + 2
        if len(table) + 2 >= 1 << width:
            width += 1
        word = bytes([byte])
    codes += [table[word], 257]
    widths += [width, width]
    bits = "".join(
        format(code, f"0{size}b") for code, size in zip(codes, widths, strict=True)
    )
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def _blank_pdf(pages: int) -> pikepdf.Pdf:
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=(200, 100))
    return pdf


def _pdf_with_stream(raw: bytes, filters: list[str]) -> bytes:
    """A one-page PDF whose page carries an extra stream with the given filters."""
    pdf = _blank_pdf(1)
    stream = pikepdf.Stream(pdf, raw)
    names = [pikepdf.Name(name) for name in filters]
    stream["/Filter"] = names[0] if len(names) == 1 else pikepdf.Array(names)
    pdf.pages[0].obj["/PieceInfo"] = pikepdf.Dictionary(Data=pdf.make_indirect(stream))
    return _pdf_bytes(pdf)


@pytest.mark.parametrize("name", CORPUS_PDFS)
def test_lossless_pages_render_exactly_the_same(name: str) -> None:
    original = (CORPUS / name).read_bytes()
    result = PdfOptimizer().optimize(original, LOSSLESS, Limits())
    before, after = _pages(original), _pages(result.data)
    assert len(after) == len(before) == result.pages, "page count changed"
    changed = [
        number
        for number, (old, new) in enumerate(zip(before, after, strict=True))
        if old.shape != new.shape or not np.array_equal(old, new)
    ]
    assert not changed, f"pages {changed} of {name} render differently"
    assert _text(result.data) == _text(original), "extracted text changed"


@pytest.mark.parametrize(
    "name", ["pdfjs_cmykjpeg.pdf", "ocrmypdf_c02-22.pdf", "pdfjs_firefox_logo.pdf"]
)
def test_lossless_jpeg_streams_render_the_same_at_full_size(name: str) -> None:
    original = (CORPUS / name).read_bytes()
    result = PdfOptimizer().optimize(original, LOSSLESS, Limits())
    for old, new in zip(_pages(original, 3.0), _pages(result.data, 3.0), strict=True):
        assert np.array_equal(old, new), f"{name} renders differently at 216 dpi"


@pytest.mark.parametrize(
    ("name", "at_most"),
    [("pdfjs_tracemonkey.pdf", 0.8), ("pdfjs_prefilled_f1040.pdf", 0.5)],
    ids=["pdftex-paper", "form"],
)
def test_lossless_is_smaller_than_the_original(name: str, at_most: float) -> None:
    original = (CORPUS / name).read_bytes()
    result = PdfOptimizer().optimize(original, LOSSLESS, Limits())
    ratio = len(result.data) / len(original)
    assert ratio <= at_most, f"{name}: {ratio:.2f} of the original, expected {at_most}"


def test_the_same_pdf_gives_the_same_bytes_a_second_later() -> None:
    original = (CORPUS / "pdfjs_TAMReview.pdf").read_bytes()
    first = PdfOptimizer().optimize(original, LOSSLESS, Limits())
    # qpdf's own /ID mixes in the time, to the second.
    time.sleep(1.1)
    second = PdfOptimizer().optimize(original, LOSSLESS, Limits())
    assert first.data == second.data


def test_identical_streams_are_merged() -> None:
    pdf = _blank_pdf(2)
    picture = bytes(range(256)) * 64
    for page in pdf.pages:
        image = pikepdf.Stream(pdf, zlib.compress(picture, 1))
        image.update(
            {
                "/Type": pikepdf.Name.XObject,
                "/Subtype": pikepdf.Name.Image,
                "/Width": 128,
                "/Height": 128,
                "/ColorSpace": pikepdf.Name.DeviceGray,
                "/BitsPerComponent": 8,
                "/Filter": pikepdf.Name.FlateDecode,
            }
        )
        page.obj["/Resources"] = pikepdf.Dictionary(
            XObject=pikepdf.Dictionary(Im0=pdf.make_indirect(image))
        )
        page.obj["/Contents"] = pdf.make_stream(b"q 100 0 0 100 0 0 cm /Im0 Do Q")
    original = _pdf_bytes(pdf)
    result = PdfOptimizer().optimize(original, LOSSLESS, Limits())
    with pikepdf.open(io.BytesIO(result.data)) as optimized:
        images = [
            obj
            for obj in optimized.objects
            if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == "/Image"
        ]
        assert len(images) == 1, f"expected one merged image, found {len(images)}"
    for old, new in zip(_pages(original), _pages(result.data), strict=True):
        assert np.array_equal(old, new), "merged pages render differently"


@pytest.mark.parametrize(
    ("raw", "filters"),
    [
        (base64.a85encode(b"hello " * 500) + b"~>", ["/ASCII85Decode"]),
        (binascii.hexlify(b"hello " * 500) + b">", ["/ASCIIHexDecode"]),
        (b"\x05hello " + b"\x81!" * 200 + b"\x80", ["/RunLengthDecode"]),
        (_lzw(LETTERS), ["/LZWDecode"]),
        (
            base64.a85encode(zlib.compress(b"abc" * 999)) + b"~>",
            ["/ASCII85Decode", "/FlateDecode"],
        ),
    ],
    ids=["ascii85", "asciihex", "runlength", "lzw", "ascii85-flate"],
)
def test_general_filters_decode_as_qpdf_does(raw: bytes, filters: list[str]) -> None:
    original = _pdf_with_stream(raw, filters)
    result = PdfOptimizer().optimize(original, LOSSLESS, Limits())
    with (
        pikepdf.open(io.BytesIO(original)) as before,
        pikepdf.open(io.BytesIO(result.data)) as after,
    ):
        expected = before.pages[0].obj.PieceInfo.Data.read_bytes(EVERY_FILTER)
        stream = after.pages[0].obj.PieceInfo.Data
        assert stream.read_bytes(EVERY_FILTER) == expected, (
            "the stream's content changed"
        )
        assert stream.get("/Filter") in (None, "/FlateDecode"), "not re-encoded"


def test_lzw_decoder_reads_the_specification_example() -> None:
    decoded = decode(bytes.fromhex("800B6050220C0C8501"), "/LZWDecode", {}, Budget(99))
    assert decoded == b"-----A---B", f"decoded {decoded!r}"


def _encrypted(user: str) -> bytes:
    pdf = _blank_pdf(1)
    out = io.BytesIO()
    pdf.save(out, encryption=pikepdf.Encryption(owner="owner", user=user))
    return out.getvalue()


def _bomb(decoded_bytes: int, nested: bool) -> bytes:
    inner = zlib.compress(bytes(decoded_bytes), 9)
    if nested:
        return _pdf_with_stream(zlib.compress(inner, 9), ["/FlateDecode"] * 2)
    return _pdf_with_stream(inner, ["/FlateDecode"])


FOUR_PAGES = Limits(max_pdf_pages=4)
HOSTILE = [
    ("not-a-pdf", b"%PDF-1.4\nthis is not a pdf", Limits(), CorruptFile),
    (
        "truncated",
        (CORPUS / "pdfjs_wikipedia.pdf").read_bytes()[:100_000],
        Limits(),
        CorruptFile,
    ),
    ("user-password", _encrypted("user"), Limits(), CorruptFile),
    ("owner-password-only", _encrypted(""), Limits(), CorruptFile),
    (
        "too-many-pages",
        _pdf_bytes(_blank_pdf(5)),
        Limits(max_pdf_pages=4),
        LimitExceeded,
    ),
    (
        "flate-bomb",
        _bomb(20_000_000, nested=False),
        Limits(max_decoded_stream_bytes=10_000_000),
        LimitExceeded,
    ),
    (
        "nested-flate-bomb",
        _bomb(20_000_000, nested=True),
        Limits(max_decoded_stream_bytes=10_000_000),
        LimitExceeded,
    ),
    (
        "over-the-time-limit",
        (CORPUS / "pdfjs_freeculture.pdf").read_bytes(),
        Limits(time_limit=0.05),
        LimitExceeded,
    ),
]


@pytest.mark.parametrize(
    ("data", "limits", "error"),
    [case[1:] for case in HOSTILE],
    ids=[case[0] for case in HOSTILE],
)
@pytest.mark.parametrize("lossless", [True, False], ids=["lossless", "lossy"])
def test_hostile_pdfs_are_refused_with_a_typed_error(
    data: bytes, limits: Limits, error: type[Exception], lossless: bool
) -> None:
    with pytest.raises(error):
        PdfOptimizer().optimize(data, Options(lossless=lossless), limits)


def test_probe_reads_the_first_page_and_the_page_count() -> None:
    facts = PdfOptimizer().probe(
        (CORPUS / "pdfjs_tracemonkey.pdf").read_bytes(), Limits()
    )
    assert (facts.width, facts.height, facts.pages) == (612, 792, 14), facts
