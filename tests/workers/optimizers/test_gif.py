"""The GIF optimizer: frames, timing and loop kept; bound held; bad files refused."""

from __future__ import annotations

import io
import struct
from bisect import bisect_right
from itertools import accumulate
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageSequence

from workers.optimizers.base import Limits, Options
from workers.optimizers.errors import CorruptFile, LimitExceeded
from workers.optimizers.gif import GifOptimizer
from workers.optimizers.metric import Reference, rgb_over_white

GIFS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "images" / "gif"
FLOOR = 70.0
OPTIMIZER = GifOptimizer()
LOSSLESS = Options(lossless=True)
LOSSY = Options()


def _gif(frames: list[Image.Image], **params: object) -> bytes:
    out = io.BytesIO()
    frames[0].save(
        out, "GIF", save_all=len(frames) > 1, append_images=frames[1:], **params
    )
    return out.getvalue()


def _scene(step: int, size: tuple[int, int] = (96, 64)) -> Image.Image:
    """An RGBA frame: a gradient, a moving disc, and a transparent corner."""
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    red = np.broadcast_to(x, (height, width))
    green = np.broadcast_to(y, (height, width))
    blue = np.full((height, width), 40.0 * step % 256, dtype=np.float32)
    alpha = np.full((height, width), 255.0, dtype=np.float32)
    alpha[: height // 4, : width // 4] = 0
    pixels = np.stack([red, green, blue, alpha], axis=2).astype(np.uint8)
    image = Image.fromarray(pixels, "RGBA")
    draw = ImageDraw.Draw(image)
    left = 10 + 15 * step
    draw.ellipse((left, 20, left + 24, 44), fill=(250, 250, 250, 255))
    return image


def _animated_with_transparency() -> bytes:
    frames = [_scene(step).quantize(64).convert("RGBA") for step in range(4)]
    return _gif(frames, duration=[100, 200, 50, 300], loop=0, disposal=[2, 1, 2, 1])


def _interlaced_loop_twice() -> bytes:
    frames = [_scene(step).convert("RGB") for step in range(3)]
    return _gif(frames, duration=80, loop=2, interlace=True)


def _grey_still() -> bytes:
    grey = np.add.outer(np.arange(80), np.arange(120)).astype(np.uint8)
    return _gif([Image.fromarray(grey, "L")])


def _still_with_comment() -> bytes:
    return _gif([_scene(0).convert("RGB")], comment=b"Copyright 2024 Squeezer tests")


MADE = {
    "animated-transparent-disposal": _animated_with_transparency,
    "interlaced-loop-twice": _interlaced_loop_twice,
    "grey-still": _grey_still,
    "still-with-comment": _still_with_comment,
}
CORPUS = ["pillow_chi.gif", "pillow_hopper.gif", "pillow_iss634.gif"]


def _sample(name: str) -> bytes:
    if name in MADE:
        return MADE[name]()
    return (GIFS / name).read_bytes()


SAMPLES = [*MADE, *CORPUS]


def timeline(data: bytes) -> list[tuple[bytes, int]]:
    """Each frame as shown (RGBA, invisible colours zeroed) with its duration;
    consecutive equal frames merged, their durations added, as a viewer plays them.
    """
    runs: list[tuple[bytes, int]] = []
    with Image.open(io.BytesIO(data)) as image:
        for frame in ImageSequence.Iterator(image):
            pixels = np.asarray(frame.convert("RGBA")).copy()
            pixels[pixels[..., 3] == 0] = 0
            key = f"{frame.size}".encode() + pixels.tobytes()
            duration = int(frame.info.get("duration") or 0)
            if runs and runs[-1][0] == key:
                runs[-1] = (key, runs[-1][1] + duration)
            else:
                runs.append((key, duration))
    return runs


def loop_of(data: bytes) -> int | None:
    with Image.open(io.BytesIO(data)) as image:
        return image.info.get("loop")


def shown(data: bytes) -> tuple[list[np.ndarray], list[int]]:
    """Every frame as shown, RGB over white, and when each starts."""
    frames, durations = [], []
    with Image.open(io.BytesIO(data)) as image:
        for frame in ImageSequence.Iterator(image):
            frames.append(rgb_over_white(frame))
            durations.append(int(frame.info.get("duration") or 0))
    return frames, [0, *accumulate(durations)][:-1]


def mean_score(original: bytes, output: bytes) -> float:
    """SSIMULACRA2 over every original frame, against the output's frame on screen
    when it starts (the same frame when none were merged)."""
    before, starts = shown(original)
    after, output_starts = shown(output)
    scores = []
    for index, (pixels, start) in enumerate(zip(before, starts, strict=True)):
        if len(after) == len(before):
            match = index
        else:
            match = max(bisect_right(output_starts, start) - 1, 0)
        scores.append(Reference(pixels).score(after[match]))
    return float(np.mean(scores))


@pytest.mark.parametrize("name", SAMPLES)
def test_lossless_keeps_every_frame_its_timing_and_loop(name: str) -> None:
    data = _sample(name)

    result = OPTIMIZER.optimize(data, LOSSLESS, Limits())

    assert len(result.data) <= len(data), f"{name} grew to {len(result.data)}"
    assert timeline(result.data) == timeline(data), f"{name}: frames or timing changed"
    assert loop_of(result.data) == loop_of(data), f"{name}: loop count changed"


@pytest.mark.parametrize("name", SAMPLES)
def test_lossy_holds_the_floor_and_never_grows(name: str) -> None:
    data = _sample(name)

    result = OPTIMIZER.optimize(data, LOSSY, Limits())

    assert len(result.data) <= len(data), f"{name} grew to {len(result.data)}"
    score = mean_score(data, result.data)
    assert score >= FLOOR, f"{name} scored {score:.1f}, below {FLOOR}"
    assert loop_of(result.data) == loop_of(data), f"{name}: loop count changed"


def test_lossy_saves_on_an_animation() -> None:
    data = (GIFS / "pillow_iss634.gif").read_bytes()

    lossless = OPTIMIZER.optimize(data, LOSSLESS, Limits())
    lossy = OPTIMIZER.optimize(data, LOSSY, Limits())

    assert len(lossy.data) < len(lossless.data), "lossy should beat lossless here"


RESIZES = [
    ("width", (160, 0), (160, 120)),
    ("height", (0, 60), (80, 60)),
    ("box", (100, 100), (100, 75)),
    ("larger than the image", (1000, 1000), (320, 240)),
]


@pytest.mark.parametrize(
    ("box", "size"), [row[1:] for row in RESIZES], ids=[row[0] for row in RESIZES]
)
@pytest.mark.parametrize("lossless", [False, True], ids=["lossy", "lossless"])
def test_resize_into_the_box(
    box: tuple[int, int], size: tuple[int, int], lossless: bool
) -> None:
    data = (GIFS / "pillow_chi.gif").read_bytes()  # 320x240, 31 frames

    result = OPTIMIZER.optimize(data, Options(lossless=lossless, resize=box), Limits())

    with Image.open(io.BytesIO(result.data)) as image:
        assert image.size == size, f"expected {size}, got {image.size}"
        assert image.n_frames > 1, "the animation must stay animated"
    assert (result.width, result.height) == size, "the facts must tell the new size"
    assert loop_of(result.data) == loop_of(data), "the loop count must stay"


@pytest.mark.parametrize(
    ("preserve", "kept"),
    [(frozenset(), False), (frozenset({"copyright"}), True)],
    ids=["stripped", "copyright-kept"],
)
def test_comments_go_unless_copyright_is_kept(
    preserve: frozenset[str], kept: bool
) -> None:
    data = _still_with_comment()

    result = OPTIMIZER.optimize(
        data, Options(lossless=True, preserve=preserve), Limits()
    )

    assert (b"Copyright 2024" in result.data) is kept


def _application(identifier: bytes, payload: bytes) -> bytes:
    """An application extension block carrying `payload` in one sub-block."""
    return b"!\xff\x0b" + identifier + bytes([len(payload)]) + payload + b"\x00"


def _with_applications() -> bytes:
    """An animation looping twice, with an XMP packet and a Photoshop block."""
    data = _interlaced_loop_twice()
    blocks = _application(b"XMP DataXMP", b"<x:xmpmeta>Copyright Squeezer</x:xmpmeta>")
    blocks += _application(b"MGK8BIM0000", b"8BIM resources")
    screen_end = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    return data[:screen_end] + blocks + data[screen_end:]


@pytest.mark.parametrize(
    ("preserve", "xmp_kept"),
    [(frozenset(), False), (frozenset({"copyright"}), True)],
    ids=["stripped", "copyright-kept"],
)
@pytest.mark.parametrize("lossless", [False, True], ids=["lossy", "lossless"])
def test_application_blocks_go_but_the_loop_stays(
    preserve: frozenset[str], xmp_kept: bool, lossless: bool
) -> None:
    data = _with_applications()
    options = Options(lossless=lossless, preserve=preserve)

    result = OPTIMIZER.optimize(data, options, Limits())

    assert (b"Copyright Squeezer" in result.data) is xmp_kept, "XMP follows copyright"
    assert b"8BIM" not in result.data, "other applications' blocks always go"
    assert loop_of(result.data) == 2, "the loop count must stay"


def test_probe_reads_the_logical_screen() -> None:
    data = (GIFS / "pillow_iss634.gif").read_bytes()

    result = OPTIMIZER.probe(data, Limits())

    assert (result.width, result.height, result.format) == (245, 245, "gif")
    assert result.data == data


def _truncated() -> bytes:
    data = (GIFS / "pillow_chi.gif").read_bytes()
    return data[: len(data) // 2]


def _garbage_after_header() -> bytes:
    header = (GIFS / "pillow_chi.gif").read_bytes()[:13]
    return header + bytes(range(7, 250)) * 20


def _screen(width: int, height: int) -> bytes:
    """A GIF header and logical screen without a colour table."""
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)


def _frame(left: int, top: int, width: int, height: int) -> bytes:
    """An image block whose LZW data is a clear code and an end code."""
    descriptor = b"," + struct.pack("<HHHHB", left, top, width, height, 0)
    return descriptor + b"\x02\x02\x44\x01\x00"


def _huge_screen() -> bytes:
    return _screen(60000, 60000) + _frame(0, 0, 1, 1) + b";"


def _frame_outside_the_screen() -> bytes:
    return _screen(1, 1) + _frame(60000, 60000, 1, 1) + _frame(0, 0, 1, 1) + b";"


def _short_image_data() -> bytes:
    """A 4x4 frame whose LZW data ends after its first pixel."""
    palette = bytes([0, 0, 0, 255, 255, 255])
    screen = b"GIF89a" + struct.pack("<HHBBB", 4, 4, 0x80, 0, 0) + palette
    return screen + _frame(0, 0, 4, 4) + b";"


def _frame_bomb() -> bytes:
    return _screen(100, 100) + _frame(0, 0, 100, 100) * 1500 + b";"


HOSTILE = [
    ("truncated", _truncated, CorruptFile),
    ("garbage after the header", _garbage_after_header, CorruptFile),
    ("not a gif", lambda: b"GIF89a", CorruptFile),
    ("image data short of its frame", _short_image_data, CorruptFile),
    ("huge logical screen", _huge_screen, LimitExceeded),
    ("frame past the screen", _frame_outside_the_screen, LimitExceeded),
    ("too many frames", _frame_bomb, LimitExceeded),
]


@pytest.mark.parametrize(
    ("make", "error"), [row[1:] for row in HOSTILE], ids=[row[0] for row in HOSTILE]
)
@pytest.mark.parametrize("lossless", [False, True], ids=["lossy", "lossless"])
def test_hostile_files_are_refused_with_a_typed_error(
    make, error: type[Exception], lossless: bool
) -> None:
    with pytest.raises(error):
        OPTIMIZER.optimize(make(), Options(lossless=lossless), Limits())


def test_a_time_limit_too_short_is_refused() -> None:
    data = (GIFS / "pillow_iss634.gif").read_bytes()

    with pytest.raises(LimitExceeded):
        OPTIMIZER.optimize(data, LOSSY, Limits(time_limit=1e-6))


def test_probe_checks_the_limits() -> None:
    with pytest.raises(LimitExceeded):
        OPTIMIZER.probe(_frame_bomb(), Limits())
