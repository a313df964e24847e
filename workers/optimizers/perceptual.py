"""The perceptual search as WebP, AVIF and PDF images use it, on one still image.

It prepares a small proxy of the original, steers the shared search with scores
on the proxy, and confirms on the full size; and it picks, among outputs known to
hold the bound, the smallest. An image too small for a proxy is searched whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from PIL import Image

from workers.optimizers.metric import Reference, rgb_over_white
from workers.optimizers.search import Found, first_passing

Setting = TypeVar("Setting")
Mosaic = Callable[[Image.Image], Image.Image | None]
# The proxy's size; an image less than twice as large is searched at full size.
PROXY_PIXELS = 40_000
# The proxy is a GRID x GRID mosaic of crops.
_GRID = 4
# block_mosaic's default size and tile side.
BLOCK_PROXY_PIXELS = 4 * 128 * 128
BLOCK_TILE = 128
# Tiles encoded to estimate a full-size output before paying for it.
_TILE = 256
_TILES = 3
_ESTIMATE_FROM = 16 * _TILE * _TILE
# Full-size encodes one search may spend.
_CONFIRMS = 3
# The proxy's slope is measured between confirms this many points apart, and
# believed within these bounds.
_SLOPE_SPAN = 0.5
_SLOPES = (0.25, 4.0)
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


def block_mosaic(
    image: Image.Image,
    pixels: int = BLOCK_PROXY_PIXELS,
    tile: int = BLOCK_TILE,
    grid: int = 16,
) -> Image.Image | None:
    """Square tiles cut on a codec's block grid, side by side; None for a small image.

    Tiles large enough for the metric's coarser scales score much closer to the
    whole image than small crops do, and cutting them on `grid` (the codec's
    macroblock or superblock) shows the encoder the blocks it sees at full size.
    An image within twice `pixels` is searched whole instead.
    """
    if image.width * image.height <= pixels * 2:
        return None
    tile = min(tile, image.width // grid * grid, image.height // grid * grid)
    if tile < grid:
        return None
    columns, rows = image.width // tile, image.height // tile
    wanted = max(1, pixels // (tile * tile))
    down = max(1, min(rows, round((wanted * rows / columns) ** 0.5)))
    across = max(1, min(columns, -(-wanted // down)))
    lefts = _spread(image.width - tile, across, grid)
    tops = _spread(image.height - tile, down, grid)
    mosaic = Image.new(image.mode, (tile * len(lefts), tile * len(tops)))
    for row, top in enumerate(tops):
        for column, left in enumerate(lefts):
            crop = image.crop((left, top, left + tile, top + tile))
            mosaic.paste(crop, (column * tile, row * tile))
    return mosaic


def _spread(room: int, count: int, grid: int) -> list[int]:
    """`count` offsets on the grid, spread evenly over 0..`room`, without repeats."""
    offsets = {
        room * (2 * step + 1) // (2 * count) // grid * grid for step in range(count)
    }
    return sorted(offsets)


def still_search(
    image: Image.Image,
    settings: Sequence[Setting],
    encode: Callable[[Image.Image, Setting], bytes],
    decode: Callable[[bytes], Image.Image],
    target: float,
    size_to_beat: int | None = None,
    *,
    start: int | None = None,
    stride: int = 2,
    slope: float | None = None,
    mosaic: Mosaic = proxy_of,
    gains_nothing: Callable[[Setting], bool] | None = None,
    close: float = 0.0,
    settle: int = 1,
    spare_last: bool = False,
) -> Found[Setting] | None:
    """The first of `settings` whose encoding of `image` scores `target` or more.

    `encode` turns an image and a setting into bytes, `decode` bytes into an image
    of the same size; scores are SSIMULACRA2 with alpha over white. `start` is a
    guess of the answer's index, `stride` the first step away from it and
    `slope` a prior of the score's rise per setting (see `first_passing`);
    `mosaic` makes the proxy, or None to search the image whole. With
    `size_to_beat`, a large image whose output is estimated (from a few tiles at
    the setting the proxy picks) to come out well above it is given up early,
    before the full-size original is even prepared for scoring. `gains_nothing`
    tells whether a setting, and so every one above it, cannot come out smaller
    than the original; the search gives up as soon as the answer is known to
    lie there: when the setting above a miss is such, or the proxy picks one.
    A full-size pass closer than `close` to the target ends the search (see
    `calibrated`). The proxy's search stops at a bracket `settle` settings wide
    (see `first_passing`): the confirms look below its passing end where a
    lower setting may hold. With `spare_last`, a proxy search stepping past the
    last setting confirms it at full size without scoring it on the proxy.
    """
    proxy_image = mosaic(image)
    whole = proxy_image is None
    scored = _Scored(image if whole else proxy_image, settings, encode, decode)
    try:
        index = first_passing(
            list(range(len(settings))),
            scored.giving_up(target, gains_nothing),
            target,
            start=start,
            stride=stride,
            slope=slope,
            # Only a proxy's search leaves its bracket to full-size confirms.
            settle=1 if whole else settle,
            spare_last=spare_last and not whole,
        )
    except _NoGain:
        return None
    if whole:
        if index is None:
            return None
        data, value = scored.outputs[index]
        return Found(settings[index], data, value, 0, len(scored.outputs))
    proxy = scored
    index = len(settings) - 1 if index is None else index
    if gains_nothing is not None and gains_nothing(settings[index]):
        return None
    if (
        size_to_beat is not None
        and image.width * image.height > _ESTIMATE_FROM
        and _estimated_size(image, settings[index], encode) > size_to_beat * _HOPELESS
    ):
        return None
    # The proxy's pick is where the first pass is expected: if it already loses,
    # the search does too, and the full-size original need not be prepared.
    first = encode(image, settings[index])
    if size_to_beat is not None and len(first) >= size_to_beat:
        return None
    reference = Reference(rgb_over_white(image))
    encoded = {index: first}

    def full(at: int) -> tuple[bytes, float]:
        data = encoded.pop(at, None) or encode(image, settings[at])
        return data, reference.score_image(decode(data))

    found = calibrated(settings, index, proxy, full, target, size_to_beat, close=close)
    return None if found is None else replace(found, proxy_trials=len(proxy.outputs))


def calibrated(
    settings: Sequence[Setting],
    index: int,
    proxy: Callable[[int], float],
    full: Callable[[int], tuple[bytes, float]],
    target: float,
    size_to_beat: int | None = None,
    confirms: int = _CONFIRMS,
    close: float = 0.0,
) -> Found[Setting] | None:
    """Confirm at full size from `index`, moving the aim by the proxy's error.

    `proxy` scores a setting's index cheaply, `full` gives its full-size output
    and score. The proxy's scores are biased (a small mosaic scores unlike the
    whole), but their order holds. Each confirm narrows the bracket between the
    highest setting known to miss and the lowest known to pass, and tells the
    proxy's error, from which the next setting is predicted inside the bracket.
    The search ends when the prediction is the lowest pass already known, when a
    pass holds the target by less than `close` (less than a setting's rise, so
    that the setting below would miss), when a miss is already no smaller than
    `size_to_beat`, or after `confirms` full outputs. The cheapest pass wins.
    """
    passing: dict[int, tuple[bytes, float]] = {}
    confirmed: list[tuple[float, float]] = []
    failing = -1
    for _ in range(confirms):
        data, value = full(index)
        if value >= target:
            passing[index] = data, value
            if value - target < close:
                break
        else:
            failing = max(failing, index)
            if size_to_beat is not None and len(data) >= size_to_beat:
                break
        confirmed.append((proxy(index), value))
        lowest_pass = min(passing, default=len(settings))
        if lowest_pass - failing <= 1:
            break
        aim = _aim(confirmed, target)
        start = index - 1 if value >= target else index + 1
        start = min(max(start, failing + 1), lowest_pass - 1)
        candidates = list(range(lowest_pass))
        next_index = first_passing(candidates, proxy, aim, failing + 1, start=start)
        if next_index is None:
            next_index = len(settings) - 1 if not passing else lowest_pass
        if next_index in passing or next_index <= failing:
            break
        index = next_index
    if not passing:
        return None
    best = min(passing)
    data, value = passing[best]
    return Found(settings[best], data, value, 0, len(confirmed))


def _aim(confirmed: list[tuple[float, float]], target: float) -> float:
    """The proxy score predicted to mean `target` at full size.

    One confirm tells an offset; two, the slope as well (a proxy may react to
    the setting more or less steeply than the whole), if it is a sane one.
    """
    proxy_score, value = confirmed[-1]
    slope = 1.0
    if len(confirmed) > 1:
        earlier_proxy, earlier_value = confirmed[-2]
        if abs(proxy_score - earlier_proxy) > _SLOPE_SPAN:
            measured = (value - earlier_value) / (proxy_score - earlier_proxy)
            if _SLOPES[0] <= measured <= _SLOPES[1]:
                slope = measured
    return proxy_score + (target - value) / slope


class _NoGain(Exception):
    """A failing setting shows that no setting above it can gain anything."""


class _Scored:
    """Each setting's output on one image and its score, each encoded once."""

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
        self.outputs: dict[int, tuple[bytes, float]] = {}

    def __call__(self, index: int) -> float:
        if index not in self.outputs:
            data = self.encode(self.image, self.settings[index])
            self.outputs[index] = data, self.reference.score_image(self.decode(data))
        return self.outputs[index][1]

    def giving_up(
        self, target: float, gains_nothing: Callable[[Setting], bool] | None
    ) -> Callable[[int], float]:
        """These scores, raising _NoGain at a miss below a setting that gains
        nothing: the answer lies above the miss."""
        if gains_nothing is None:
            return self

        def score(index: int) -> float:
            value = self(index)
            above = index + 1
            if (
                value < target
                and above < len(self.settings)
                and gains_nothing(self.settings[above])
            ):
                raise _NoGain
            return value

        return score


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
