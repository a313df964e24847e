"""The PDF optimizer: a smaller file whose pages draw the same, through pikepdf.

Lossless changes only structure and stream encodings: unused objects and resources
dropped, identical streams merged, streams re-encoded, objects packed into object
streams. Lossy also brings images down to what their place on the page needs (see
pdfimages). The work runs in a child process under the time limit, after the page
count and the decoded size of every stream have been checked against the limits.
"""

from __future__ import annotations

import io

import pikepdf

from workers.optimizers import pdf_private, pdfimages, pdfstreams
from workers.optimizers.base import Limits, Options, Result
from workers.optimizers.deadline import run_with_time_limit
from workers.optimizers.errors import CorruptFile, LimitExceeded
from workers.optimizers.pdffilters import Budget

# Object streams are compressed by qpdf itself, at this zlib level.
_OBJECT_STREAM_LEVEL = 9


class PdfOptimizer:
    """Optimizes PDF files; `convert` and `resize` do not apply to them."""

    formats = frozenset({"pdf"})

    def probe(self, data: bytes, limits: Limits) -> Result:
        """The first page's size in points and the page count, limits checked."""
        return run_with_time_limit(limits.time_limit, _probe, data, limits)

    def optimize(self, data: bytes, options: Options, limits: Limits) -> Result:
        """The optimized copy; CorruptFile or LimitExceeded for a file we refuse."""
        return run_with_time_limit(limits.time_limit, _optimize, data, options, limits)


def _probe(data: bytes, limits: Limits) -> Result:
    with open_checked(data, limits) as pdf:
        return _facts(pdf, data)


def _optimize(data: bytes, options: Options, limits: Limits) -> Result:
    pikepdf.settings.set_flate_compression_level(_OBJECT_STREAM_LEVEL)
    with open_checked(data, limits) as pdf:
        check_decoded_size(pdf, limits)
        if not options.lossless:
            pdf_private.drop_private_data(pdf)
            pdfimages.reduce_images(pdf, limits)
        pdf.remove_unreferenced_resources()

        unlimited = Budget(1 << 62)
        for stream in pdfstreams.streams(pdf):
            pdfstreams.recompress(stream, unlimited)
        pdfstreams.merge_duplicates(pdf)

        out = io.BytesIO()
        pdf.save(
            out,
            object_stream_mode=pikepdf.ObjectStreamMode.generate,
            compress_streams=True,
            stream_decode_level=pikepdf.StreamDecodeLevel.none,
            recompress_flate=False,
            fix_metadata_version=False,
            # The same input gives the same bytes: /ID from the content, not
            # from the clock.
            deterministic_id=True,
        )
        return _facts(pdf, out.getvalue())


def open_checked(data: bytes, limits: Limits) -> pikepdf.Pdf:
    """Open a PDF we are willing to work on: parsable, not encrypted, few pages."""
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError as error:
        raise CorruptFile("This PDF is encrypted with a password.") from error
    except (pikepdf.PdfError, ValueError, RuntimeError) as error:
        raise CorruptFile("This PDF is damaged and cannot be read.") from error
    if pdf.is_encrypted:
        pdf.close()
        raise CorruptFile("This PDF is encrypted; encrypted PDFs are not optimized.")
    try:
        pages = len(pdf.pages)
    except (pikepdf.PdfError, RuntimeError) as error:
        pdf.close()
        raise CorruptFile("This PDF's page tree is damaged.") from error
    if pages > limits.max_pdf_pages:
        pdf.close()
        raise LimitExceeded(
            f"This PDF has {pages} pages, over the limit of {limits.max_pdf_pages}."
        )
    if pages == 0:
        pdf.close()
        raise CorruptFile("This PDF has no pages.")
    return pdf


def check_decoded_size(pdf: pikepdf.Pdf, limits: Limits) -> None:
    """Decode every stream's general filters once, stopping at the limit."""
    budget = Budget(limits.max_decoded_stream_bytes)
    try:
        for stream in pdfstreams.streams(pdf):
            pdfstreams.decoded_general(stream, budget)
    except pikepdf.PdfError as error:
        raise CorruptFile("This PDF's streams cannot be read.") from error


def _facts(pdf: pikepdf.Pdf, data: bytes) -> Result:
    page = pdf.pages[0]
    try:
        box = [float(value) for value in page.mediabox]
        rotate = int(page.obj.get("/Rotate", 0))
    except (TypeError, ValueError, pikepdf.PdfError):
        box, rotate = [0.0, 0.0, 612.0, 792.0], 0
    width = round(abs(box[2] - box[0]))
    height = round(abs(box[3] - box[1]))
    if rotate % 180:
        width, height = height, width
    return Result(data, "pdf", width, height, len(pdf.pages))
