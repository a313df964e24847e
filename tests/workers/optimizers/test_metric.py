"""The fast SSIMULACRA2 agrees with the reference package and scores what it should."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from ssimulacra2 import compute_ssimulacra2

from workers.optimizers import metric
from workers.optimizers.metric import (
    Reference,
    changed_bands,
    mean_over_frames,
    rgb_over_white,
    ssimulacra2,
)

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "images"

# The reference is slow, so it is compared on small copies; sizes cover odd edges
# and images too small for all six scales.
AGREEMENT = [
    ("jpeg/exif-samples_DSCN0010.jpg", (160, 120), 30),
    ("jpeg/exif-samples_DSCN0010.jpg", (160, 120), 90),
    ("jpeg/pillow_flower.jpg", (161, 121), 60),
    ("jpeg/sharp_concert.jpg", (150, 100), 75),
    ("jpeg/exif-samples_Canon_40D.jpg", (100, 68), 50),
    ("png/pillow_test-card.png", (128, 128), 20),
    ("jpeg/dacsan_BANNER5.jpg", (200, 60), 85),
    ("jpeg/ocrmypdf_congress.jpg", (33, 50), 40),
]


def _small(name: str, size: tuple[int, int]) -> Image.Image:
    with Image.open(CORPUS / name) as image:
        return rgb_image(image).resize(size, Image.Resampling.BICUBIC)


def rgb_image(image: Image.Image) -> Image.Image:
    return Image.fromarray(rgb_over_white(image))


def _jpeg_round_trip(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return decoded.convert("RGB")


def _png_file(image: Image.Image) -> io.BytesIO:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    ("name", "size", "quality"),
    AGREEMENT,
    ids=[f"{n.split('/')[-1]}-{s[0]}x{s[1]}-q{q}" for n, s, q in AGREEMENT],
)
def test_agrees_with_the_reference_package(
    name: str, size: tuple[int, int], quality: int
) -> None:
    original = _small(name, size)
    distorted = _jpeg_round_trip(original, quality)

    expected = compute_ssimulacra2(_png_file(original), _png_file(distorted))
    ours = ssimulacra2(original, distorted)

    assert ours == pytest.approx(expected, abs=0.02), (
        f"reference says {expected:.4f}, ours {ours:.4f}"
    )


def test_identical_images_score_100() -> None:
    original = _small("jpeg/pillow_flower.jpg", (120, 90))

    assert ssimulacra2(original, original.copy()) == pytest.approx(100.0, abs=1e-6)


@pytest.mark.parametrize(
    ("low", "high"), [(20, 50), (50, 80), (80, 95)], ids=["20-50", "50-80", "80-95"]
)
def test_more_quality_scores_higher(low: int, high: int) -> None:
    original = _small("jpeg/exif-samples_DSCN0010.jpg", (320, 240))
    reference = Reference(rgb_over_white(original))

    worse = reference.score_image(_jpeg_round_trip(original, low))
    better = reference.score_image(_jpeg_round_trip(original, high))

    assert better > worse, f"q{high} scored {better:.2f}, not above q{low} {worse:.2f}"


def test_a_reference_scores_like_the_one_shot_function() -> None:
    original = _small("jpeg/pillow_flower.jpg", (200, 150))
    reference = Reference(rgb_over_white(original))
    candidates = [_jpeg_round_trip(original, q) for q in (40, 70)]

    for candidate in candidates:
        assert reference.score_image(candidate) == pytest.approx(
            ssimulacra2(original, candidate), abs=1e-9
        ), "a kept reference must score exactly as a fresh one"


def test_a_different_shape_is_refused() -> None:
    reference = Reference(np.zeros((20, 30, 3), dtype=np.uint8))

    with pytest.raises(ValueError, match="differs"):
        reference.score(np.zeros((30, 20, 3), dtype=np.uint8))


ALPHA_CASES = [
    ("RGBA transparent", Image.new("RGBA", (2, 1), (0, 0, 0, 0)), (255, 255, 255)),
    ("RGBA half", Image.new("RGBA", (2, 1), (0, 0, 0, 128)), (127, 127, 127)),
    ("RGBA opaque", Image.new("RGBA", (2, 1), (10, 20, 30, 255)), (10, 20, 30)),
    ("LA transparent", Image.new("LA", (2, 1), (0, 0)), (255, 255, 255)),
    ("L", Image.new("L", (2, 1), 40), (40, 40, 40)),
]


@pytest.mark.parametrize(
    ("image", "expected"),
    [(image, expected) for _, image, expected in ALPHA_CASES],
    ids=[name for name, _, _ in ALPHA_CASES],
)
def test_alpha_is_composited_over_white(
    image: Image.Image, expected: tuple[int, int, int]
) -> None:
    pixels = rgb_over_white(image)

    assert pixels.shape == (1, 2, 3), (
        f"expected one row of two RGB pixels: {pixels.shape}"
    )
    assert tuple(pixels[0, 0]) == expected, f"expected {expected}, got {pixels[0, 0]}"


def test_every_alpha_over_every_value_rounds_to_the_nearest() -> None:
    alpha, value = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    rgba = np.stack([value, 255 - value, value, alpha], axis=-1).astype(np.uint8)
    pixels = rgb_over_white(Image.fromarray(rgba, "RGBA"))

    over = rgba[..., :3] * (alpha[..., None] / 255) + 255 * (1 - alpha[..., None] / 255)
    assert np.abs(pixels - over).max() <= 0.5 + 1e-4
    assert np.array_equal(pixels[255], rgba[255, :, :3]), "opaque pixels unchanged"


def test_palette_transparency_is_composited_over_white() -> None:
    image = Image.new("P", (2, 1), 0)
    image.putpalette([0, 0, 0, 200, 0, 0])
    image.info["transparency"] = 0

    assert tuple(rgb_over_white(image)[0, 0]) == (255, 255, 255), (
        "the transparent palette entry must show the white page"
    )


def test_mean_over_frames_is_the_mean_of_each_frame() -> None:
    original = _small("jpeg/pillow_flower.jpg", (120, 90))
    frames = [_jpeg_round_trip(original, q) for q in (30, 90)]
    each = [ssimulacra2(original, frame) for frame in frames]

    assert mean_over_frames([original, original], frames) == pytest.approx(
        sum(each) / 2
    ), "the animation's score is the mean of its frames' scores"


def test_mean_over_no_frames_is_refused() -> None:
    with pytest.raises(ValueError, match="no frames"):
        mean_over_frames([], [])


def _with_rows_changed(pixels: np.ndarray, rows: list[slice]) -> np.ndarray:
    changed = pixels.copy()
    for band in rows:
        changed[band, 10:-10] = np.roll(changed[band, 10:-10], 3, axis=1) // 2 + 60
    return changed


# Rows changed: one row, the first and last rows, two bands far apart, two close.
BANDS = {
    "one row": [slice(70, 71)],
    "both edges": [slice(0, 4), slice(146, 150)],
    "far apart": [slice(20, 30), slice(100, 104)],
    "close": [slice(40, 44), slice(52, 56)],
}


@pytest.mark.parametrize("rows", BANDS.values(), ids=BANDS.keys())
def test_changed_bands_score_as_the_whole_image(
    rows: list[slice], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = rgb_over_white(_small("jpeg/pillow_flower.jpg", (200, 150)))
    distorted = _with_rows_changed(original, rows)
    banded = Reference(original).score(distorted)

    def whole(original: np.ndarray, distorted: np.ndarray) -> list[slice]:
        return [slice(0, original.shape[0])]

    monkeypatch.setattr(metric, "changed_bands", whole)
    assert banded < 100.0
    assert banded == pytest.approx(Reference(original).score(distorted), abs=1e-4)


def test_changed_bands_reach_a_radius_around_the_changes() -> None:
    original = np.zeros((200, 40, 3), dtype=np.uint8)
    distorted = original.copy()
    distorted[[3, 100, 110], 5, 1] = 1
    radius = metric.RADIUS
    assert changed_bands(original, distorted) == [
        slice(0, 4 + radius),
        slice(100 - radius, 111 + radius),
    ]
    assert changed_bands(original, original.copy()) == []


@pytest.mark.parametrize("rows", [1, 7, 64])
def test_a_score_taken_in_pieces_of_rows_equals_the_whole(
    rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = rgb_over_white(_small("jpeg/pillow_flower.jpg", (200, 150)))
    distorted = _with_rows_changed(original, [slice(30, 120)])
    whole = Reference(original).score(distorted)
    monkeypatch.setattr(metric, "_PIECE_ELEMENTS", rows * 200)
    assert metric._pieces([slice(30, 120)], 200)[0] == slice(30, 30 + rows)
    assert Reference(original).score(distorted) == pytest.approx(whole, abs=1e-4)


REMADE_SIZES = [(161, 121), (200, 150), (97, 333), (64, 64)]


@pytest.mark.parametrize(
    "size", REMADE_SIZES, ids=[f"{w}x{h}" for w, h in REMADE_SIZES]
)
def test_a_large_original_remakes_its_finest_scales_and_scores_the_same(
    size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = _small("jpeg/exif-samples_DSCN0010.jpg", size)
    candidates = [
        rgb_over_white(_jpeg_round_trip(original, quality)) for quality in (30, 85)
    ]
    kept = Reference(rgb_over_white(original))
    monkeypatch.setattr(metric, "REMAKE_FROM", 0)
    monkeypatch.setattr(metric, "_PIECE_ELEMENTS", 2000)
    remade = Reference(rgb_over_white(original))

    assert (kept.remade, remade.remade) == (0, metric.REMADE_SCALES)
    for candidate in candidates:
        assert remade.score(candidate) == pytest.approx(kept.score(candidate), abs=1e-4)


def test_a_large_original_keeps_a_fraction_of_the_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = rgb_over_white(_small("jpeg/exif-samples_DSCN0010.jpg", (640, 480)))

    def kept_bytes() -> int:
        tracemalloc.start()
        reference = Reference(original)
        kept = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert reference.shape == original.shape
        return kept

    whole = kept_bytes()
    monkeypatch.setattr(metric, "REMAKE_FROM", 0)
    assert kept_bytes() < whole / 8


@pytest.mark.parametrize("size", [(640, 480), (97, 333), (161, 121)])
def test_kept_bytes_tells_what_a_reference_keeps(size: tuple[int, int]) -> None:
    original = rgb_over_white(_small("jpeg/exif-samples_DSCN0010.jpg", size))
    tracemalloc.start()
    reference = Reference(original)
    kept = tracemalloc.get_traced_memory()[0] + original.nbytes
    tracemalloc.stop()

    assert reference.remade == 0
    assert metric.kept_bytes(*original.shape[:2]) == pytest.approx(kept, rel=0.05)
