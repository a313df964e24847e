"""The perceptual search finds the cheapest passing setting with few encodes."""

from __future__ import annotations

import pytest

from workers.optimizers.search import first_passing, search

SETTINGS = list(range(101))


class Encoder:
    """A stand-in codec: setting q gives q bytes scoring q at full size.

    Its proxy scores `bias` higher than the full size (an optimistic proxy), and it
    counts what each side was asked for.
    """

    def __init__(self, bias: float = 0.0) -> None:
        self.bias = bias
        self.encodes: list[int] = []
        self.proxies: list[int] = []

    def encode(self, setting: int) -> bytes:
        self.encodes.append(setting)
        return b"x" * setting

    def score(self, data: bytes) -> float:
        return float(len(data))

    def proxy(self, setting: int) -> float:
        self.proxies.append(setting)
        return setting + self.bias


FIRST_PASSING = [
    ("middle", 42.0, 0, 42),
    ("exact first", 0.0, 0, 0),
    ("last", 100.0, 0, 100),
    ("none", 100.5, 0, None),
    ("from low", 10.0, 50, 50),
    ("low past the end", 10.0, 101, None),
]


@pytest.mark.parametrize(
    ("target", "low", "expected"),
    [row[1:] for row in FIRST_PASSING],
    ids=[row[0] for row in FIRST_PASSING],
)
def test_first_passing_bisects_to_the_first_setting_that_holds(
    target: float, low: int, expected: int | None
) -> None:
    asked: list[int] = []

    def score(setting: int) -> float:
        asked.append(setting)
        return float(setting)

    assert first_passing(SETTINGS, score, target, low=low) == expected
    assert len(asked) <= 9, f"bisection over 101 settings asked {len(asked)} times"


GUESSES = [
    # name, start, target, expected, most scores asked
    ("guess right", 42, 42.0, 42, 3),
    ("guess a little low", 38, 42.0, 42, 5),
    ("guess a little high", 47, 42.0, 42, 4),
    ("guess far off", 95, 3.0, 3, 9),
    ("first setting", 10, 0.0, 0, 8),
    ("none passes", 50, 100.5, None, 8),
    ("start past the end", 500, 99.0, 99, 4),
]


@pytest.mark.parametrize(
    ("start", "target", "expected", "most"),
    [row[1:] for row in GUESSES],
    ids=[row[0] for row in GUESSES],
)
def test_first_passing_from_a_guess(
    start: int, target: float, expected: int | None, most: int
) -> None:
    asked: list[int] = []

    def score(setting: int) -> float:
        asked.append(setting)
        return float(setting)

    assert first_passing(SETTINGS, score, target, start=start) == expected
    assert len(asked) <= most, f"a guess at {start} asked {len(asked)} scores"
    assert len(asked) == len(set(asked)), f"a score was asked twice: {asked}"


SLOPED = [
    # name, start, target, slope of the scores, expected, most scores asked
    ("guess right", 42, 42.0, 1.0, 42, 2),
    ("guess low, prior right", 30, 42.0, 1.0, 42, 3),
    ("guess high, prior right", 60, 42.0, 1.0, 42, 4),
    ("scores twice as steep", 30, 84.0, 2.0, 42, 4),
    ("scores half as steep", 30, 21.0, 0.5, 42, 5),
    ("far off, steps capped", 95, 3.0, 1.0, 3, 9),
    ("first setting", 10, 0.0, 1.0, 0, 3),
    ("none passes", 50, 100.5, 1.0, None, 5),
    ("start past the end", 500, 99.0, 1.0, 99, 3),
]


@pytest.mark.parametrize(
    ("start", "target", "rise", "expected", "most"),
    [row[1:] for row in SLOPED],
    ids=[row[0] for row in SLOPED],
)
def test_first_passing_steps_by_the_missing_score_with_a_slope(
    start: int, target: float, rise: float, expected: int | None, most: int
) -> None:
    asked: list[int] = []

    def score(setting: int) -> float:
        asked.append(setting)
        return setting * rise

    found = first_passing(SETTINGS, score, target, start=start, stride=16, slope=1.0)
    assert found == expected, f"a sloped search from {start} found {found}"
    assert len(asked) <= most, f"a guess at {start} asked {len(asked)} scores"
    assert len(asked) == len(set(asked)), f"a score was asked twice: {asked}"


def test_first_passing_settles_on_the_top_of_a_narrow_bracket() -> None:
    asked: list[int] = []

    def score(setting: int) -> float:
        asked.append(setting)
        return float(setting)

    found = first_passing(
        SETTINGS, score, 42.5, start=30, stride=16, slope=1.0, settle=3
    )

    assert found is not None
    assert 43 <= found <= 45, f"a pass at most 2 above the answer, not {found}"
    assert max(known for known in asked if known < 43) >= found - 3, "bracketed"
    settled = len(asked)
    asked.clear()
    first_passing(SETTINGS, score, 42.5, start=30, stride=16, slope=1.0)
    assert settled <= len(asked), "settling asks no more scores"


def test_first_passing_spares_a_last_setting_it_would_step_past() -> None:
    asked: list[int] = []

    def score(setting: int) -> float:
        asked.append(setting)
        return float(setting)

    found = first_passing(
        SETTINGS, score, 150.0, start=90, stride=16, slope=1.0, spare_last=True
    )

    assert found is None, "no setting reaches the target"
    assert asked == [90], f"the last setting is left unscored, asked {asked}"


def test_first_passing_scores_a_last_setting_it_steps_onto() -> None:
    asked: list[int] = []

    def score(setting: int) -> float:
        asked.append(setting)
        return float(setting)

    found = first_passing(
        SETTINGS, score, 100.0, start=90, stride=16, slope=1.0, spare_last=True
    )

    assert found == 100, "the last setting reached, and scored"


SEARCHES = [
    # name, proxy bias, target, expected setting, most full encodes
    ("exact proxy", 0.0, 70.0, 70, 1),
    ("optimistic proxy steps up", 6.0, 70.0, 70, 2),
    ("pessimistic proxy keeps its safe pick", -4.0, 70.0, 74, 1),
    ("unreachable target", 0.0, 120.0, None, 1),
]


@pytest.mark.parametrize(
    ("bias", "target", "expected", "most_encodes"),
    [row[1:] for row in SEARCHES],
    ids=[row[0] for row in SEARCHES],
)
def test_search_confirms_at_full_size(
    bias: float, target: float, expected: int | None, most_encodes: int
) -> None:
    codec = Encoder(bias)

    found = search(SETTINGS, codec.encode, codec.score, target, proxy=codec.proxy)

    if expected is None:
        assert found is None, f"nothing holds {target}, yet {found} was found"
    else:
        assert found is not None, f"expected setting {expected}, found none"
        assert found.setting == expected, f"expected {expected}, got {found.setting}"
        assert found.score >= target, f"confirmed score {found.score} < {target}"
        assert found.data == b"x" * expected, "the data must be the confirmed encode"
        assert found.full_trials == len(set(codec.encodes))
    assert len(codec.encodes) <= most_encodes, (
        f"expected at most {most_encodes} full encodes, made {codec.encodes}"
    )
    assert len(codec.proxies) <= 20, f"too many proxy trials: {len(codec.proxies)}"


def test_search_without_a_proxy_bisects_at_full_size() -> None:
    codec = Encoder()

    found = search(SETTINGS, codec.encode, codec.score, 33.0)

    assert found is not None, "setting 33 holds 33"
    assert found.setting == 33, f"expected 33, got {found.setting}"
    assert len(codec.encodes) <= 9, f"bisection encoded {len(codec.encodes)} times"
    assert len(codec.encodes) == len(set(codec.encodes)), "an encode was repeated"


def test_search_gives_up_after_its_confirms() -> None:
    codec = Encoder()

    def proxy(setting: int) -> float:
        return 100.0  # a proxy that always claims the target holds

    found = search(
        SETTINGS, codec.encode, lambda data: 0.0, 50.0, proxy=proxy, max_confirms=3
    )

    assert found is None, "no full-size output scores 50, so none may be returned"
    assert len(codec.encodes) == 3, f"expected 3 confirms, made {codec.encodes}"
