"""The GIF canvas composes every frame to the pixels Pillow shows for it."""

from __future__ import annotations

import io
import subprocess
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from workers.optimizers import gif_canvas
from workers.optimizers.metric import rgb_over_white

GIFS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "images" / "gif"
# Frames of a corpus animation compared: Pillow takes seconds for a long one.
CORPUS_FRAMES = 80


def _pillow_frames(data: bytes, limit: int | None = None) -> list[np.ndarray]:
    """The first `limit` frames (all by default) as Pillow shows them."""
    with Image.open(io.BytesIO(data)) as image:
        frames = islice(ImageSequence.Iterator(image), limit)
        return [rgb_over_white(frame) for frame in frames]


def _frames(count: int, size: tuple[int, int], colours: int, seed: int) -> list:
    """Paletted frames of random colour indices, one palette for all but the last."""
    generator = np.random.default_rng(seed)
    shared = generator.integers(0, 256, 768, dtype=np.uint8).tobytes()
    frames = []
    for index in range(count):
        indices = generator.integers(0, colours, size[::-1], dtype=np.uint8)
        frame = Image.fromarray(indices, "P")
        own = generator.integers(0, 256, 768, dtype=np.uint8).tobytes()
        frame.putpalette(own if index == count - 1 else shared)
        frames.append(frame)
    return frames


def _animation(disposal: list[int], transparency: int | None, colours: int) -> bytes:
    frames = _frames(len(disposal), (23, 17), colours, seed=sum(disposal) + colours)
    params: dict[str, object] = {"disposal": disposal, "duration": 40}
    if transparency is not None:
        params["transparency"] = transparency
    out = io.BytesIO()
    frames[0].save(
        out,
        "GIF",
        save_all=True,
        append_images=frames[1:],
        optimize=False,
        background=2,
        **params,
    )
    return out.getvalue()


def _rewritten(data: bytes, *arguments: str) -> bytes:
    """The animation as gifsicle lays it out: sub-rectangles, its own disposals."""
    return subprocess.run(
        ["gifsicle", "--no-warnings", *arguments],
        input=data,
        capture_output=True,
        check=True,
    ).stdout


CASES = {
    "as is, opaque": ([0, 1, 1, 0], None, 200),
    "background, transparent": ([2, 2, 1, 2], 1, 16),
    "previous, transparent": ([3, 1, 3, 0], 0, 4),
    "background then previous": ([2, 3, 2, 3], 3, 2),
    "transparent colour past a short table": ([2, 2, 2, 1], 3, 2),
    "opaque background": ([2, 0, 2, 2], None, 16),
}
LAYOUTS = {
    "as written": (),
    "optimized": ("-O2",),
    "lossy": ("-O3", "--lossy=60"),
    "restore background": ("--disposal=bg", "-O1"),
    "restore previous": ("--disposal=previous", "-O2"),
    "interlaced": ("--interlace", "-O2"),
}


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_frames_match_pillow(case: tuple, layout: tuple[str, ...]) -> None:
    data = _animation(*case)
    if layout:
        data = _rewritten(data, *layout)
    expected = _pillow_frames(data)
    composed = gif_canvas.shown_frames(data, list(range(len(expected))))
    assert composed is not None, "a paletted animation inside its screen composes"
    for index, frame in enumerate(expected):
        assert np.array_equal(composed[index], frame), f"frame {index} differs"


@pytest.mark.parametrize("name", sorted(path.name for path in GIFS.glob("*.gif")))
def test_corpus_frames_match_pillow(name: str) -> None:
    data = (GIFS / name).read_bytes()
    expected = _pillow_frames(data, limit=CORPUS_FRAMES)
    indices = sorted({0, len(expected) // 2, len(expected) - 1})
    composed = gif_canvas.shown_frames(data, indices)
    assert composed is not None, "the corpus GIFs compose"
    for index in indices:
        assert np.array_equal(composed[index], expected[index]), f"frame {index}"


def test_greyscale_table_is_left_to_pillow() -> None:
    frame = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), "L")
    out = io.BytesIO()
    frame.save(out, "GIF")
    assert gif_canvas.shown_frames(out.getvalue(), [0]) is None
