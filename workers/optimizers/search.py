"""The perceptual search: the cheapest encoder setting whose output holds a score.

Settings are ordered from the smallest output (lowest quality) to the largest, and
the score is assumed to rise along them. The search bisects on a cheap proxy (a
downscaled or cropped copy of the image), then confirms the pick once at full size,
stepping up by the shortfall the confirm measured until the full-size score holds.
Any format can use it: the caller supplies how to encode and how to score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Setting = TypeVar("Setting")


@dataclass(frozen=True)
class Found(Generic[Setting]):
    """The setting picked, its full-size output and score, and what it cost."""

    setting: Setting
    data: bytes
    score: float
    proxy_trials: int
    full_trials: int


def first_passing(
    settings: Sequence[Setting],
    score: Callable[[Setting], float],
    target: float,
    low: int = 0,
) -> int | None:
    """The index of the first setting from `low` on that scores `target` or more.

    Bisects, so it asks for about log2(len(settings) - low) scores; None when even
    the last setting falls short.
    """
    high = len(settings) - 1
    if low > high or score(settings[high]) < target:
        return None
    while low < high:
        middle = (low + high) // 2
        if score(settings[middle]) >= target:
            high = middle
        else:
            low = middle + 1
    return low


def search(
    settings: Sequence[Setting],
    encode: Callable[[Setting], bytes],
    score: Callable[[bytes], float],
    target: float,
    proxy: Callable[[Setting], float] | None = None,
    max_confirms: int = 3,
) -> Found[Setting] | None:
    """Find the first setting whose full-size output scores `target` or more.

    `encode` makes the full-size output of a setting and `score` rates it against
    the original; `proxy`, if given, rates a setting on a cheap copy and steers the
    bisection, so that the full size is encoded only to confirm. None when no
    setting holds the target within `max_confirms` full-size encodes.
    """
    proxy_scores: dict[int, float] = {}
    outputs: dict[int, tuple[bytes, float]] = {}

    def full(index: int) -> tuple[bytes, float]:
        if index not in outputs:
            data = encode(settings[index])
            outputs[index] = data, score(data)
        return outputs[index]

    def proxy_score(index: int) -> float:
        if proxy is None:
            return full(index)[1]
        if index not in proxy_scores:
            proxy_scores[index] = proxy(settings[index])
        return proxy_scores[index]

    indices = list(range(len(settings)))
    index = first_passing(indices, proxy_score, target)
    if index is None:
        index = len(settings) - 1
    for _ in range(max_confirms):
        data, value = full(index)
        if value >= target:
            return Found(settings[index], data, value, len(proxy_scores), len(outputs))
        if proxy is None or index + 1 >= len(settings):
            return None
        # The proxy was optimistic by the shortfall: aim the proxy that much higher.
        aim = proxy_score(index) + (target - value)
        next_index = first_passing(indices, proxy_score, aim, low=index + 1)
        index = index + 1 if next_index is None else next_index
    return None
