"""Which JPEG encoder gives the fewest bytes at equal SSIMULACRA2 on the corpus.

For every corpus JPEG (scaled into 1 megapixel, so the sweep takes minutes) and
every encoder, bisect the quality for the lowest one scoring the target, then
print the total bytes, the median score and the median time of one encode, and
the total when each file takes the smaller of the two encoders ours searches.
Run: .venv/bin/python -m tests.benchmarks.jpeg_encoders [--target 84] [--limit N]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jpeglib
import mozjpeg_lossless_optimization
import numpy as np
import pyjpegli
from PIL import Image

from workers.optimizers.base import Limits, Options
from workers.optimizers.imaging import open_image, prepare
from workers.optimizers.metric import Reference
from workers.optimizers.search import first_passing

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
QUALITIES = list(range(30, 100))

Encoder = Callable[[np.ndarray, int], bytes]


def pillow(subsampling: int, mozjpeg_scans: bool) -> Encoder:
    def encode(pixels: np.ndarray, quality: int) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(
            buffer,
            "JPEG",
            quality=quality,
            subsampling=subsampling,
            optimize=True,
            progressive=not mozjpeg_scans,
        )
        data = buffer.getvalue()
        return mozjpeg_lossless_optimization.optimize(data) if mozjpeg_scans else data

    return encode


def jpegli(mozjpeg_scans: bool) -> Encoder:
    def encode(pixels: np.ndarray, quality: int) -> bytes:
        height, width = pixels.shape[:2]
        data = pyjpegli.encode(pixels.tobytes(), width, height, quality)
        return mozjpeg_lossless_optimization.optimize(data) if mozjpeg_scans else data

    return encode


def mozjpeg(pixels: np.ndarray, quality: int) -> bytes:
    """mozjpeg 4.0.3 itself (trellis quantisation, its scans), through jpeglib."""
    with tempfile.NamedTemporaryFile(suffix=".jpg") as file:
        with jpeglib.version("mozjpeg403"):
            jpeglib.from_spatial(np.ascontiguousarray(pixels)).write_spatial(
                file.name, qt=quality
            )
        return Path(file.name).read_bytes()


ENCODERS: dict[str, Encoder] = {
    "Pillow 4:2:0 progressive": pillow(2, mozjpeg_scans=False),
    "Pillow 4:4:4 progressive": pillow(0, mozjpeg_scans=False),
    "Pillow 4:2:0 + mozjpeg scans": pillow(2, mozjpeg_scans=True),
    "Pillow 4:4:4 + mozjpeg scans": pillow(0, mozjpeg_scans=True),
    "jpegli (pyjpegli)": jpegli(mozjpeg_scans=False),
    "jpegli + mozjpeg scans": jpegli(mozjpeg_scans=True),
    "mozjpeg 4.0.3 (jpeglib)": mozjpeg,
}


# The two the optimizer searches (workers/optimizers/jpeg_search.py), each taking
# the smaller one that holds the target: which wins depends on chroma detail.
SEARCHED = ("Pillow 4:4:4 progressive", "jpegli + mozjpeg scans")


def rgb_pixels(path: Path) -> np.ndarray:
    image = prepare(
        open_image(path.read_bytes(), Limits()), Options(resize=(1000, 1000))
    )
    return np.asarray(image.image.convert("RGB"))


def measure(
    pixels: np.ndarray, encoder: Encoder, target: float
) -> tuple[int, float, float]:
    """Bytes and score at the lowest passing quality, and the median encode time."""
    reference = Reference(pixels)
    results: dict[int, tuple[bytes, float]] = {}
    times: list[float] = []

    def score(quality: int) -> float:
        start = time.perf_counter()
        data = encoder(pixels, quality)
        times.append(time.perf_counter() - start)
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        results[quality] = data, reference.score(decoded)
        return results[quality][1]

    index = first_passing(QUALITIES, score, target)
    quality = QUALITIES[-1] if index is None else QUALITIES[index]
    data, value = results.get(quality) or (encoder(pixels, quality), score(quality))
    return len(data), value, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", type=float, default=84.0)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    files = sorted((CORPUS / "images" / "jpeg").glob("*.jp*g"))
    if args.limit:
        files = files[: args.limit]

    totals = {name: [0, [], []] for name in ENCODERS}
    paired = 0  # the smaller of the two encoders the optimizer searches, per file
    for path in files:
        pixels = rgb_pixels(path)
        row = [path.name[:34].ljust(34)]
        sizes = {}
        for name, encoder in ENCODERS.items():
            size, value, seconds = measure(pixels, encoder, args.target)
            sizes[name] = (value < args.target, size)
            totals[name][0] += size
            totals[name][1].append(value)
            totals[name][2].append(seconds)
            row.append(f"{size:>8}")
        paired += min(sizes[name] for name in SEARCHED)[1]  # a passing one first
        print(" ".join(row), flush=True)

    print(f"\nAt SSIMULACRA2 >= {args.target} on {len(files)} files (into 1 MP):")
    print(
        "| encoder | total bytes | vs Pillow 4:2:0 | median score | median s/encode |"
    )
    print("|---|---|---|---|---|")
    base = totals["Pillow 4:2:0 progressive"][0]
    for name, (size, values, seconds) in totals.items():
        print(
            f"| {name} | {size} | {size / base:.3f} | {statistics.median(values):.1f} "
            f"| {statistics.median(seconds):.4f} |"
        )
    print(f"| the smaller of {' and '.join(SEARCHED)}, per file | {paired} ", end="")
    print(f"| {paired / base:.3f} | | |")


if __name__ == "__main__":
    main()
