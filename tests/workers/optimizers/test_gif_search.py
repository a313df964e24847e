"""The GIF level search finds the strongest level holding the target in few scores."""

from __future__ import annotations

import pytest

from workers.optimizers.gif_lossy import FIRST_GUESS, LEVELS
from workers.optimizers.gif_search import CONFIRMS, SLACK, predicted_search

TARGET = 85.0


def _curve(scale: float, power: float, wobble: float = 0.0):
    """Scores of a file whose loss grows as scale * level ** power, with a
    wobble alternating in sign from level to level as real scores do."""

    def score(index: int) -> float:
        sign = 1 if index % 2 else -1
        return 100.0 - scale * LEVELS[index] ** power + sign * wobble

    return score


CURVES = {
    "photo, steep": _curve(5.0, 0.55),
    "recording, gentle": _curve(7.0, 0.14),
    "cartoon, wobbly": _curve(0.9, 0.5, wobble=0.4),
    "barely lossy": _curve(12.0, 0.1),
}


@pytest.mark.parametrize("score", CURVES.values(), ids=CURVES.keys())
def test_finds_a_level_that_holds_near_the_best(score) -> None:
    asked: list[int] = []

    def counted(index: int) -> float:
        asked.append(index)
        return score(index)

    found = predicted_search(LEVELS, counted, TARGET, FIRST_GUESS)
    best = min(i for i in range(len(LEVELS)) if score(i) >= TARGET)
    assert found is not None, "a level holds the target"
    assert score(found) >= TARGET, "the level found holds the target"
    assert found - best <= 2 or score(found) < TARGET + SLACK, "close to the best"
    assert len(asked) <= CONFIRMS, f"{len(asked)} scores"


def test_none_when_no_level_holds() -> None:
    found = predicted_search(LEVELS, lambda index: 60.0, TARGET, FIRST_GUESS)
    assert found is None


def test_a_larger_slack_stops_sooner() -> None:
    score = CURVES["cartoon, wobbly"]
    asked: dict[float, int] = {}
    for slack in (0.1, 3.0):
        counted: list[int] = []

        def rated(index: int, counted: list[int] = counted) -> float:
            counted.append(index)
            return score(index)

        found = predicted_search(LEVELS, rated, TARGET, FIRST_GUESS, slack)
        assert found is not None, "a level holds"
        assert score(found) >= TARGET, "the level found holds"
        asked[slack] = len(counted)
    assert asked[3.0] < asked[0.1], f"scores asked by slack: {asked}"


def _too_large_from(first: int):
    """A file whose loss is 30 at level 400 and grows with the power 1/2, where
    the copies from index `first` on are too large to win: unscored, they count
    as holding with a perfect score."""

    def score(index: int) -> float:
        if index >= first:
            return 100.0
        return 100.0 - 30.0 * (LEVELS[index] / 400) ** 0.5

    return score


def test_gives_up_where_the_target_lies_past_a_copy_too_large() -> None:
    asked: list[int] = []
    score = _too_large_from(LEVELS.index(131))

    def counted(index: int) -> float:
        asked.append(index)
        return score(index)

    found = predicted_search(LEVELS, counted, TARGET, FIRST_GUESS)
    assert found is not None
    assert score(found) == 100.0, "only copies too large to win hold"
    assert len(asked) == 2, f"the floor and the predicted level, not {asked}"


def test_goes_on_where_the_target_lies_before_a_copy_too_large() -> None:
    score = _too_large_from(LEVELS.index(70))
    found = predicted_search(LEVELS, score, TARGET, FIRST_GUESS)
    assert found is not None
    assert TARGET <= score(found) < 100.0, "a scored level holds before them"
