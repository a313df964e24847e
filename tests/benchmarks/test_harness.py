"""The benchmark harness's own parts: table sums, exactness checks, target verdicts."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image

from tests.benchmarks import memory, peers, pixels, quality, report
from tests.benchmarks.report import FileResult


def result(name="a", fmt="png", mode="lossy", tool="t", size_in=100, **fields):
    fields.setdefault("ok", True)
    return FileResult(name, fmt, mode, tool, size_in, **fields)


def png(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def gradient(mode: str = "RGBA") -> Image.Image:
    values = np.arange(16 * 16 * 4, dtype=np.uint32).reshape(16, 16, 4) % 256
    image = Image.fromarray(values.astype(np.uint8), "RGBA")
    return image.convert(mode)


@pytest.mark.parametrize(
    ("outputs", "savings", "savings_kept", "larger"),
    [
        pytest.param([50, 50], 50.0, 50.0, 0, id="both-halved"),
        pytest.param([150, 50], 0.0, 25.0, 1, id="one-grown-kept"),
        pytest.param([100, 100], 0.0, 0.0, 0, id="unchanged"),
    ],
)
def test_summary_sums_bytes_and_counts_grown_files(
    outputs, savings, savings_kept, larger
):
    rows = [result(f"f{i}", bytes_out=size) for i, size in enumerate(outputs)]
    row = report.summarize(rows)
    assert row.savings == pytest.approx(savings), "plain savings over the ok files"
    assert row.savings_kept == pytest.approx(savings_kept), "grown files count as kept"
    assert row.larger == larger, f"expected {larger} outputs larger"


def test_summary_leaves_failed_files_out_and_counts_unscored_below_floor():
    rows = [
        result("ok", bytes_out=50, seconds=1.0, score=80.0),
        result("low", bytes_out=50, seconds=3.0, score=60.0),
        result("unscored", bytes_out=50, seconds=2.0, score_error="size changed"),
        result("failed", ok=False, error="refused"),
    ]
    row = report.summarize(rows)
    assert (row.ok, row.files) == (3, 4), "failed files are not ok"
    assert row.bytes_in == 300, "bytes in counts the ok files only"
    assert row.median_seconds == 2.0, "median over the ok files"
    assert (row.median_score, row.worst_score) == (70.0, 60.0)
    assert row.below_floor == 2, "one score below 70 and one file unscored"


def test_table_row_shows_check_column_per_format():
    lossless = report.summarize([result(fmt="pdf", mode="lossless", exact=True)])
    lossy = report.summarize(
        [result(fmt="pdf", pages_kept=True, text_kept=False, score=90.0)]
    )
    assert report.check_cell(lossless) == "pages 1/1"
    assert report.check_cell(lossy) == "pages 1/1, text 0/1"
    assert "| pdf | t | lossy | 1/1 |" in report.markdown_table([lossy])


def test_same_image_pixels_when_only_the_encoding_changed():
    image = gradient()
    assert pixels.same_image_pixels(
        png(image, compress_level=1), png(image, compress_level=9, optimize=True)
    ), "a PNG re-encoded without changing pixels is exact"


def test_same_image_pixels_across_modes_with_equal_values():
    grey = gradient("L")
    assert pixels.same_image_pixels(png(grey), png(grey.convert("RGB")))


def test_changed_pixel_is_not_exact():
    image = gradient()
    changed = image.copy()
    changed.putpixel((3, 3), (1, 2, 3, 255))
    assert not pixels.same_image_pixels(png(image), png(changed))


def test_colour_under_full_transparency_does_not_count_but_alpha_does():
    image = gradient()
    hidden, alpha_changed = image.copy(), image.copy()
    image.putpixel((0, 0), (10, 20, 30, 0))
    hidden.putpixel((0, 0), (99, 99, 99, 0))
    alpha_changed.putpixel((0, 0), (10, 20, 30, 1))
    assert pixels.same_image_pixels(png(image), png(hidden))
    assert not pixels.same_image_pixels(png(image), png(alpha_changed))


def gif(frames: list[Image.Image], durations: list[int]) -> bytes:
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        "GIF",
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=0,
        optimize=False,
        disposal=1,
    )
    return buffer.getvalue()


RED, BLUE = Image.new("P", (8, 8), 0), Image.new("P", (8, 8), 1)
for _frame in (RED, BLUE):
    _frame.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)


@pytest.mark.parametrize(
    ("frames", "durations", "exact"),
    [
        pytest.param([RED, BLUE], [200, 100], True, id="same-frames-same-play"),
        pytest.param([RED, BLUE], [100, 100], False, id="shorter-first-frame"),
        pytest.param([BLUE, RED], [200, 100], False, id="other-frames"),
    ],
)
def test_animation_compared_as_it_plays(frames, durations, exact):
    original = gif([RED, RED, BLUE], [100, 100, 100])
    assert pixels.same_image_pixels(original, gif(frames, durations)) is exact


@pytest.mark.parametrize(
    ("frames", "runs"),
    [
        pytest.param(
            [("a", 100), ("a", 50), ("b", 100)], [("a", 150), ("b", 100)], id="merged"
        ),
        pytest.param(
            [("a", 100), ("b", 50), ("a", 100)],
            [("a", 100), ("b", 50), ("a", 100)],
            id="apart-stay-apart",
        ),
    ],
)
def test_identical_consecutive_frames_merge(frames, runs):
    assert pixels.merge_runs(frames) == runs


def pdf(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "PDF", resolution=72)
    return buffer.getvalue()


def test_pdf_pages_rendering_the_same_after_restructuring():
    original = pdf(gradient().resize((64, 64)))
    buffer = io.BytesIO()
    with pikepdf.open(io.BytesIO(original)) as document:
        document.save(buffer, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    restructured = buffer.getvalue()
    assert restructured != original, "the test needs a different file"
    assert pixels.same_pdf_pages(original, restructured)


def test_pdf_page_drawn_differently_is_not_exact():
    image = gradient("RGB").resize((64, 64))
    changed = image.copy()
    changed.paste((255, 255, 255), (0, 0, 32, 32))
    assert not pixels.same_pdf_pages(pdf(image), pdf(changed))


@pytest.mark.parametrize(
    ("count", "limit", "expected"),
    [
        pytest.param(3, 5, [0, 1, 2], id="fewer-than-limit"),
        pytest.param(9, 3, [0, 4, 8], id="spread-with-ends"),
        pytest.param(5, None, [0, 1, 2, 3, 4], id="no-limit"),
        pytest.param(5, 1, [0], id="one"),
    ],
)
def test_frame_sample(count, limit, expected):
    assert pixels.frame_sample(count, limit) == expected


def test_score_of_identical_files_is_100_and_of_other_sizes_fails():
    image = gradient("RGB")
    assert quality.score_pair("png", png(image), png(image, compress_level=9)) == 100.0
    with pytest.raises(quality.ScoreFailed):
        quality.score_pair("png", png(image), png(image.resize((8, 8))))


def test_page_sizes_one_pixel_apart_are_cropped_to_match():
    a, b = np.zeros((10, 12, 3)), np.zeros((11, 12, 3))
    assert quality.crop_to_common(a, b, 2)[1].shape == (10, 12, 3)
    assert quality.crop_to_common(a, np.zeros((20, 12, 3)), 2)[1].shape == (20, 12, 3)


def lossy_pair(ours_out, peer_out, ours_score=85.0, peer_score=84.0, seconds=1.0):
    ours = [result("f", bytes_out=ours_out, score=ours_score, seconds=seconds)]
    peer = [result("f", bytes_out=peer_out, score=peer_score, seconds=1.0)]
    return ours, peer


def verdict(verdicts: list[report.Verdict], criterion: str) -> bool | None:
    return next(v.passed for v in verdicts if v.criterion == criterion)


@pytest.mark.parametrize(
    ("fmt", "ours", "peer", "criterion", "passed"),
    [
        pytest.param("jpeg", 85, 100, "bytes", True, id="jpeg-at-0.85"),
        pytest.param("jpeg", 86, 100, "bytes", False, id="jpeg-over-0.85"),
        pytest.param("png", 100, 100, "bytes", True, id="png-equal"),
        pytest.param("png", 101, 100, "bytes", False, id="png-over"),
        pytest.param("webp", 100, 150, "bytes", True, id="webp-peer-grown-kept"),
        pytest.param("webp", 101, 150, "bytes", False, id="webp-over-kept"),
    ],
)
def test_bytes_target(fmt, ours, peer, criterion, passed):
    ours_results, peer_results = lossy_pair(ours, peer)
    for r in ours_results + peer_results:
        r.fmt = fmt
    verdicts = report.judge(fmt, "lossy", ours_results, peer_results)
    assert verdict(verdicts, criterion) is passed


@pytest.mark.parametrize(
    ("fmt", "ours_score", "peer_score", "passed"),
    [
        pytest.param("jpeg", 83.0, 84.0, True, id="one-point-below-peer"),
        pytest.param("jpeg", 82.9, 84.0, False, id="more-than-one-below"),
        pytest.param("png", 76.5, 77.1, False, id="png-floor-77"),
        pytest.param("png", 77.0, 77.1, True, id="png-at-floor"),
        pytest.param("gif", 71.0, 60.0, True, id="weak-peer-floor-70"),
    ],
)
def test_median_target(fmt, ours_score, peer_score, passed):
    ours, peer = lossy_pair(50, 100, ours_score, peer_score)
    assert verdict(report.judge(fmt, "lossy", ours, peer), "median") is passed


@pytest.mark.parametrize(
    ("seconds", "passed"),
    [pytest.param(3.0, True, id="three-times"), pytest.param(3.1, False, id="over")],
)
def test_time_target(seconds, passed):
    ours, peer = lossy_pair(50, 100, seconds=seconds)
    assert verdict(report.judge("png", "lossy", ours, peer), "time") is passed


def test_lossless_target_needs_every_file_exact():
    ours = [
        result("a", mode="lossless", bytes_out=90, exact=True),
        result("b", mode="lossless", bytes_out=90, exact=False),
    ]
    peer = [result(n, mode="lossless", bytes_out=95) for n in ("a", "b")]
    verdicts = report.judge("png", "lossless", ours, peer)
    assert verdict(verdicts, "exact") is False
    assert verdict(verdicts, "bytes") is True
    assert report.overall("png", "lossless", verdicts).startswith("FAIL")


def test_floor_fails_on_any_file_below_70():
    ours = [result("a", score=95.0), result("b", score=69.9)]
    assert verdict(report.judge("gif", "lossy", ours, None), "floor") is False


def test_missing_peer_program_is_reported():
    tool = peers.Tool(
        "x", "x", "png", "lossy", lambda data, workdir: data, programs=("no-such-xyz",)
    )
    assert peers.missing_peers([tool]) == ["no-such-xyz"]


def test_failing_program_raises_tool_failed(tmp_path: Path):
    with pytest.raises(peers.ToolFailed, match="exited 1"):
        peers.run_program(["false"])


def test_memory_is_measured_in_a_process_of_its_own() -> None:
    chi = memory.CORPUS / "images" / "gif" / "pillow_chi.gif"
    ours = memory.measure("squeezer", "gif", "lossy", chi)
    floor = memory.measure(memory.BASELINE, "gif", "lossy", chi)

    assert 0 < ours.bytes_out < chi.stat().st_size
    assert ours.seconds > 0
    assert floor.bytes_out == 0
    assert ours.process_mb >= floor.process_mb > 10
    assert "| pillow_chi.gif | lossy | squeezer |" in memory.table(
        [("pillow_chi.gif", "lossy", ours)]
    )
