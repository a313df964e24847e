"""Placeholder PDF optimizer: hands back the input until the real one lands."""

from __future__ import annotations

import io

import pikepdf

from workers.optimizers.base import Limits, Options, Result


class PdfOptimizer:
    formats = frozenset({"pdf"})

    def probe(self, data: bytes, limits: Limits) -> Result:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            box = pdf.pages[0].mediabox
            width = round(float(box[2]) - float(box[0]))
            height = round(float(box[3]) - float(box[1]))
            return Result(data, "pdf", width, height, len(pdf.pages))

    def optimize(self, data: bytes, options: Options, limits: Limits) -> Result:
        return self.probe(data, limits)
