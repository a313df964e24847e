"""Data no viewer draws, dropped from lossy PDFs: editors' private data, thumbnails.

Illustrator and other editors keep their own copy of a document under /PieceInfo,
often larger than everything the pages draw; pages may carry /Thumb images, which
viewers draw for themselves when they are absent. Pages render the same without
them; only the editor that wrote the private data loses its way back to its layers.
"""

from __future__ import annotations

import pikepdf

from workers.optimizers import pdfstreams

_PAGE_KEYS = ("/PieceInfo", "/Thumb")


def drop_private_data(pdf: pikepdf.Pdf) -> None:
    """Remove page-piece dictionaries and thumbnails; saving drops their objects."""
    for page in pdf.pages:
        for key in _PAGE_KEYS:
            if key in page.obj:
                del page.obj[key]
    for stream in pdfstreams.streams(pdf):
        if stream.get("/Subtype") == "/Form" and "/PieceInfo" in stream:
            del stream["/PieceInfo"]
