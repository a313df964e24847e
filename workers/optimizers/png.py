"""Placeholder png optimizer: hands back the input until the real one lands."""

from __future__ import annotations

import io

from PIL import Image

from workers.optimizers.base import Limits, Options, Result


class PngOptimizer:
    formats = frozenset({"png"})

    def probe(self, data: bytes, limits: Limits) -> Result:
        with Image.open(io.BytesIO(data)) as image:
            return Result(data, "png", image.width, image.height)

    def optimize(self, data: bytes, options: Options, limits: Limits) -> Result:
        return self.probe(data, limits)
