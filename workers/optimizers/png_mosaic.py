"""Scoring a large PNG's candidates on a mosaic of its tiles.

On an image of many megapixels the metric's reference of the whole original,
and every score against it, cost hundreds of megabytes and seconds; a mosaic of a few
large tiles, chosen where the first candidates fare worst and spread over the
rest, stands for the whole at a fraction of that.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from workers.optimizers.metric import Reference, rgb_over_white

# Images above PROXY_FROM pixels are scored on a mosaic of MOSAIC_ROWS by
# MOSAIC_COLUMNS tiles TILE wide: the metric's reference of a whole image takes
# about 38 bytes a pixel (170 MB at PROXY_FROM), and each score of a search's
# candidates a quarter of a second per 4.5 megapixels. A candidate must hold
# UNCONFIRMED_MARGIN above the target there, as the mosaic only stands for the
# whole.
PROXY_FROM = 4_500_000
TILE = 512
MOSAIC_ROWS = 2
MOSAIC_COLUMNS = 3
UNCONFIRMED_MARGIN = 2.0


class Scorer:
    """Scores candidates against the original; big images also on a mosaic.

    `quick` scores a full-size candidate on the whole image, or, for a big one,
    on a mosaic of tiles that stands for it. The tiles are chosen once the first
    candidates are known: half where they differ most from the original, since
    the score dwells on the worst areas, and half spread evenly over the image.
    They are large, so that the metric's coarse scales still see what they see
    on the whole.
    """

    def __init__(self, image: Image.Image) -> None:
        self.original = rgb_over_white(image)
        height, width = self.original.shape[:2]
        self.big = height * width > PROXY_FROM and min(height, width) >= 2 * TILE
        self.tiles: list[tuple[int, int]] = []
        self.proxy = None if self.big else Reference(self.original)

    def choose_tiles(self, candidates: Sequence[Image.Image]) -> None:
        """Pick the mosaic's tiles from where these candidates are worst."""
        if not self.big:
            return
        down, across = self.original.shape[0] // TILE, self.original.shape[1] // TILE
        badness = np.zeros((down, across))
        for candidate in candidates:
            errors = _tile_errors(self.original, rgb_over_white(candidate))
            badness += errors / max(float(errors.mean()), 1e-9)
        worst = [divmod(int(i), across) for i in np.argsort(-badness, axis=None)]
        spread = [
            (int(row), int(column))
            for row in np.linspace(0, down - 1, MOSAIC_ROWS).round()
            for column in np.linspace(0, across - 1, MOSAIC_COLUMNS).round()
        ]
        count = MOSAIC_ROWS * MOSAIC_COLUMNS
        chosen = dict.fromkeys(worst[: count // 2])
        for tile in spread + worst:
            if len(chosen) == count:
                break
            chosen.setdefault(tile)
        self.tiles = list(chosen)
        self.proxy = Reference(self.mosaic(self.original))

    def mosaic(self, pixels: np.ndarray) -> np.ndarray:
        """The chosen tiles of (height, width[, n]) pixels, in rows of a mosaic."""
        if not self.tiles:
            return pixels
        tiles = [
            pixels[row * TILE : (row + 1) * TILE, column * TILE : (column + 1) * TILE]
            for row, column in self.tiles
        ]
        rows = [
            np.concatenate(tiles[i : i + MOSAIC_COLUMNS], axis=1)
            for i in range(0, len(tiles), MOSAIC_COLUMNS)
        ]
        return np.concatenate(rows)

    def quick(self, image: Image.Image) -> float:
        """The score of a full-size candidate, on the mosaic if there is one."""
        if self.proxy is None:
            raise RuntimeError("choose the mosaic's tiles before scoring on it")
        if not self.tiles:
            return self.proxy.score(rgb_over_white(image))
        tiles = Image.fromarray(self.mosaic(np.asarray(image)), image.mode)
        return self.proxy.score(rgb_over_white(tiles))


def _tile_errors(original: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """The mean squared error of each whole tile of (height, width, 3) pixels."""
    down, across = original.shape[0] // TILE, original.shape[1] // TILE
    height, width = down * TILE, across * TILE
    difference = candidate[:height, :width].astype(np.float32)
    difference -= original[:height, :width]
    squared = difference * difference
    return squared.reshape(down, TILE, across, TILE, 3).mean(axis=(1, 3, 4))
