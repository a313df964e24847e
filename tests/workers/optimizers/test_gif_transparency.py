"""Pixels within a tolerance of the canvas turn transparent, and no shown pixel
moves further than the tolerance from the original's."""

from __future__ import annotations

import io
from itertools import islice

import numpy as np
import pytest
from PIL import Image, ImageSequence

from workers.optimizers import gif_blocks, gif_transparency
from workers.optimizers.base import Limits, Options
from workers.optimizers.gif import TARGET, GifOptimizer
from workers.optimizers.gif_frames import FrameScorer
from workers.optimizers.gif_gifsicle import Deadline
from workers.optimizers.gif_transparency import Frames
from workers.optimizers.metric import rgb_over_white

CLEAR = 255


def _video(disposal: int = 1, clear: int | None = CLEAR) -> bytes:
    """Six frames of a grey ramp with noise of up to 3 steps, index 255 clear."""
    generator = np.random.default_rng(7)
    ramp = np.add.outer(np.arange(48), np.arange(64)) * 2
    palette = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    palette[CLEAR] = (255, 0, 0)
    images = []
    for _ in range(6):
        noise = generator.integers(-3, 4, ramp.shape)
        indices = np.clip(ramp + noise, 0, CLEAR - 1).astype(np.uint8)
        image = Image.fromarray(indices, "P")
        image.putpalette(palette.tobytes())
        images.append(image)
    out = io.BytesIO()
    images[0].save(
        out,
        "GIF",
        save_all=True,
        append_images=images[1:],
        optimize=False,
        interlace=False,
        disposal=disposal,
        duration=40,
        **({} if clear is None else {"transparency": clear}),
    )
    return out.getvalue()


def _shown(data: bytes) -> list[np.ndarray]:
    """Every frame as Pillow shows it, the decoder the benchmark scores with."""
    with Image.open(io.BytesIO(data)) as image:
        frames = islice(ImageSequence.Iterator(image), None)
        return [rgb_over_white(frame).astype(int) for frame in frames]


@pytest.mark.parametrize("tolerance", [0, 2, 4, 8])
def test_shown_pixels_stay_within_the_tolerance(tolerance: int) -> None:
    data = _video()
    frames = Frames.read(data)
    assert frames is not None, "frames left in place can be made transparent"

    made, turned = frames.transparent(tolerance, Deadline(60))

    assert turned > 0, "noise within the tolerance turns transparent"
    for number, (before, after) in enumerate(
        zip(_shown(data), _shown(made), strict=True)
    ):
        error = np.abs(before - after).max()
        assert error <= tolerance, f"frame {number} moved {error} > {tolerance}"


def test_noise_within_the_tolerance_all_turns() -> None:
    data = _video()
    frames = Frames.read(data)
    assert frames is not None

    made, turned = frames.transparent(6, Deadline(60))

    assert turned == 5 * 48 * 64, "frames after the first differ by 6 at most"
    assert len(made) < len(data) / 2, f"{len(made)} bytes of {len(data)}"


def test_frames_decoded_anew_past_the_kept_pixels(monkeypatch) -> None:
    data = _video()
    kept = Frames.read(data)
    monkeypatch.setattr(gif_transparency, "KEPT_PIXELS", 0)
    anew = Frames.read(data)
    assert kept is not None
    assert anew is not None

    assert anew.decoded is None, "no indices kept past the limit"
    assert anew.transparent(4, Deadline(60)) == kept.transparent(4, Deadline(60))


def test_frames_without_a_transparent_colour_stay() -> None:
    data = _video(clear=None)
    frames = Frames.read(data)
    assert frames is not None

    made, turned = frames.transparent(8, Deadline(60))

    assert turned == 0, "no frame has a colour to turn pixels to"
    assert made == data, "a file with nothing turned is the same file"


def test_frames_restored_before_the_next_are_left_alone() -> None:
    assert Frames.read(_video(disposal=2)) is None, "other disposals are refused"


def test_lossy_keeps_the_smaller_of_levels_and_tolerance(monkeypatch) -> None:
    data = _video()

    tolerant = GifOptimizer().optimize(data, Options(), Limits()).data
    monkeypatch.setattr(gif_transparency.Frames, "read", lambda data: None)
    levels_only = GifOptimizer().optimize(data, Options(), Limits()).data

    assert len(tolerant) < len(levels_only) / 2, (
        f"{len(tolerant)} bytes with a tolerance, {len(levels_only)} without"
    )
    scorer = FrameScorer(data, gif_blocks.read_layout(data), 6, 6)
    score = scorer.score(tolerant)
    assert score >= TARGET, f"scored {score:.1f} over every frame shown"
