"""The perceptual search as WebP, AVIF and PDF images use it, on one still image.

It prepares the original once at full size and once as a small proxy, steers the
shared search with scores on the proxy, and confirms on the full size; and it
picks, among outputs known to hold the bound, the smallest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from PIL import Image

from workers.optimizers.metric import Reference, rgb_over_white
from workers.optimizers.search import Found, first_passing, search

Setting = TypeVar("Setting")
# The proxy's size; an image less than twice as large is searched at full size.
PROXY_PIXELS = 40_000
# The proxy is a GRID x GRID mosaic of crops.
_GRID = 4
# Tiles encoded to estimate a full-size output before paying for it.
_TILE = 256
_TILES = 3
_ESTIMATE_FROM = 16 * _TILE * _TILE
# Full-size encodes one search may spend.
_CONFIRMS = 3
# An estimate this far above the size to beat means the full encode cannot win.
_HOPELESS = 1.1


@dataclass(frozen=True)
class Candidate:
    """One possible output: its bytes, pixel size and score against the original."""

    data: bytes
    size: tuple[int, int]
    score: float


def smallest_holding(candidates: Sequence[Candidate]) -> Candidate:
    """The smallest candidate; all of them are known to hold the bound."""
    if not candidates:
        raise ValueError("no candidate output")
    return min(candidates, key=lambda candidate: len(candidate.data))


def proxy_of(image: Image.Image, pixels: int = PROXY_PIXELS) -> Image.Image | None:
    """A mosaic of crops, about `pixels` pixels in all, or None for a small image.

    Crops keep the scale of the encoder's artifacts, which a downscaled copy
    would change; a grid of them spread over the image keeps most of its variety.
    """
    if image.width * image.height <= pixels * 2:
        return None
    return _mosaic(image, round((pixels / _GRID**2) ** 0.5))


def _mosaic(image: Image.Image, side: int) -> Image.Image:
    """A grid of GRID x GRID crops of `side` pixels, taken evenly across the image."""
    tile_w = min(side, image.width // _GRID)
    tile_h = min(side, image.height // _GRID)
    mosaic = Image.new(image.mode, (tile_w * _GRID, tile_h * _GRID))
    for row in range(_GRID):
        for column in range(_GRID):
            left = (image.width - tile_w) * (1 + 2 * column) // (2 * _GRID)
            top = (image.height - tile_h) * (1 + 2 * row) // (2 * _GRID)
            tile = image.crop((left, top, left + tile_w, top + tile_h))
            mosaic.paste(tile, (column * tile_w, row * tile_h))
    return mosaic


def still_search(
    image: Image.Image,
    settings: Sequence[Setting],
    encode: Callable[[Image.Image, Setting], bytes],
    decode: Callable[[bytes], Image.Image],
    target: float,
    size_to_beat: int | None = None,
) -> Found[Setting] | None:
    """The first of `settings` whose encoding of `image` scores `target` or more.

    `encode` turns an image and a setting into bytes, `decode` bytes into an image
    of the same size; scores are SSIMULACRA2 with alpha over white. With
    `size_to_beat`, a large image whose output is estimated (from a few tiles at
    the setting the proxy picks) to come out well above it is given up early.
    """
    reference = Reference(rgb_over_white(image))
    proxy_image = proxy_of(image)
    if proxy_image is None:
        return search(
            settings,
            lambda setting: encode(image, setting),
            lambda data: reference.score_image(decode(data)),
            target,
        )
    proxy = _Proxy(proxy_image, settings, encode, decode)
    indices = list(range(len(settings)))
    index = first_passing(indices, proxy, target)
    index = len(settings) - 1 if index is None else index
    if (
        size_to_beat is not None
        and image.width * image.height > _ESTIMATE_FROM
        and _estimated_size(image, settings[index], encode) > size_to_beat * _HOPELESS
    ):
        return None
    return _calibrated(settings, index, proxy, encode, image, reference, decode, target)


def _calibrated(
    settings: Sequence[Setting],
    index: int,
    proxy: _Proxy,
    encode: Callable[[Image.Image, Setting], bytes],
    image: Image.Image,
    reference: Reference,
    decode: Callable[[bytes], Image.Image],
    target: float,
) -> Found[Setting] | None:
    """Confirm at full size, moving the aim by the proxy's measured error either way.

    The proxy's scores are biased (a small mosaic scores unlike the whole), but
    their order holds; each confirm tells the bias, and the proxy is bisected
    again at the target shifted by it. The cheapest passing confirm wins.
    """
    indices = list(range(len(settings)))
    passing: dict[int, tuple[bytes, float]] = {}
    tried: set[int] = set()
    for _ in range(_CONFIRMS):
        tried.add(index)
        data = encode(image, settings[index])
        value = reference.score_image(decode(data))
        if value >= target:
            passing[index] = data, value
        aim = target - (value - proxy(index))
        next_index = first_passing(indices, proxy, aim)
        next_index = len(settings) - 1 if next_index is None else next_index
        if value >= target and next_index >= index:
            break
        if value < target and next_index <= index:
            next_index = index + 1
        if next_index in tried or next_index >= len(settings):
            break
        index = next_index
    if not passing:
        return None
    best = min(passing)
    data, value = passing[best]
    return Found(settings[best], data, value, len(proxy.scores), len(tried))


class _Proxy:
    """Scores of each setting on the proxy mosaic, each encoded once."""

    def __init__(
        self,
        image: Image.Image,
        settings: Sequence[Setting],
        encode: Callable[[Image.Image, Setting], bytes],
        decode: Callable[[bytes], Image.Image],
    ) -> None:
        self.image = image
        self.settings = settings
        self.encode = encode
        self.decode = decode
        self.reference = Reference(rgb_over_white(image))
        self.scores: dict[int, float] = {}

    def __call__(self, index: int) -> float:
        if index not in self.scores:
            decoded = self.decode(self.encode(self.image, self.settings[index]))
            self.scores[index] = self.reference.score_image(decoded)
        return self.scores[index]


def _estimated_size(
    image: Image.Image,
    setting: Setting,
    encode: Callable[[Image.Image, Setting], bytes],
) -> float:
    """The full-size output's bytes, extrapolated from tiles along the diagonal."""
    tile_w, tile_h = min(_TILE, image.width), min(_TILE, image.height)
    total = 0
    for step in range(_TILES):
        left = (image.width - tile_w) * (2 * step + 1) // (2 * _TILES)
        top = (image.height - tile_h) * (2 * step + 1) // (2 * _TILES)
        tile = image.crop((left, top, left + tile_w, top + tile_h))
        total += len(encode(tile, setting))
    return total * (image.width * image.height) / (tile_w * tile_h * _TILES)
