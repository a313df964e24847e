"""The still search gives up early where nothing can be gained, and stops close."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from workers.optimizers.perceptual import calibrated, still_search

QUALITIES = list(range(20, 101))


def photo(width: int = 600, height: int = 400) -> Image.Image:
    """Noise over a gradient: detail that a lossy encode has to spend on."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width]
    base = np.dstack([x * 255 // width, y * 255 // height, (x + y) % 256])
    noise = rng.integers(-40, 40, (height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


class Codec:
    """JPEG through Pillow, counting the sizes it was asked to encode."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def encode(self, image: Image.Image, quality: int) -> bytes:
        self.sizes.append(image.size)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        return out.getvalue()

    def decode(self, data: bytes) -> Image.Image:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")


def test_a_miss_that_gains_nothing_ends_the_search_at_once() -> None:
    codec = Codec()

    found = still_search(
        photo(),
        QUALITIES,
        codec.encode,
        codec.decode,
        99.0,
        start=0,
        gains_nothing=lambda setting: True,
    )

    assert found is None, "given up"
    assert len(codec.sizes) == 1, f"one trial, not {len(codec.sizes)}"


def test_a_pick_that_gains_nothing_is_not_encoded_at_full_size() -> None:
    codec = Codec()
    picture = photo()

    found = still_search(
        picture,
        QUALITIES,
        codec.encode,
        codec.decode,
        40.0,
        start=len(QUALITIES) - 1,
        gains_nothing=lambda setting: True,
    )

    assert found is None, "given up"
    assert picture.size not in codec.sizes, "no full-size encode"


def flat_proxy(index: int) -> float:
    """A proxy that barely tells neighbouring settings apart."""
    return index / 20


def test_a_pass_closer_than_close_ends_the_confirms() -> None:
    asked: list[int] = []

    def full(index: int) -> tuple[bytes, float]:
        asked.append(index)
        return b"x" * index, 50.2 + index

    found = calibrated(QUALITIES, 30, flat_proxy, full, 80.1, close=0.2)

    assert found is not None
    assert found.setting == QUALITIES[30]
    assert asked == [30], "one confirm: the index below would miss"


def test_without_close_a_pass_is_followed_by_a_look_below() -> None:
    asked: list[int] = []

    def full(index: int) -> tuple[bytes, float]:
        asked.append(index)
        return b"x" * index, 50.2 + index

    calibrated(QUALITIES, 30, flat_proxy, full, 80.1)

    assert len(asked) > 1, "the index below was confirmed too"
