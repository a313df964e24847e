"""Lossy work on a PDF's images: downsampling and JPEG re-encoding by the bound."""

from __future__ import annotations

import pikepdf

from workers.optimizers.base import Limits


def reduce_images(pdf: pikepdf.Pdf, limits: Limits) -> None:
    """Bring every image down to what its largest placement needs."""
