"""SSIMULACRA2, the perceptual score every lossy optimizer is held to.

The arithmetic is metric_terms.py's. This module keeps an original's pyramid, so
that scoring many candidates against one original pays for the original once (a
large original only its coarser scales, so that memory stays bounded), works
through the image in pieces of rows, and computes the finest scale only where
the candidate differs. Every tool is scored the same way: pixels are decoded to
8-bit sRGB, and alpha is composited over white (in sRGB values, as a browser
shows the image on a white page) before scoring; an animation scores the mean
over frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import cv2
import numpy as np
from PIL import Image

from workers.optimizers.metric_terms import (
    PERFECT,
    RADIUS,
    SCALES,
    Scale,
    blur,
    final_score,
    halve,
    linear_planes,
    means,
    ssim_channels,
    xyb_planes,
)

# A score works on pieces of rows of at most this many pixels (4 MB a float32
# plane), whatever the size of the image.
_PIECE_ELEMENTS = 1 << 20
# An original of more pixels than this is not kept whole for scoring: its
# REMADE_SCALES finest scales are remade at each score (see Reference).
REMAKE_FROM = 4_500_000
REMADE_SCALES = 2


def rgb_over_white(image: Image.Image) -> np.ndarray:
    """The 8-bit sRGB pixels (height, width, 3) of one frame, alpha over white.

    This is the one view of an image that every score is computed on.
    """
    if image.mode == "RGB":
        return np.asarray(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    if not has_alpha:
        return np.asarray(image.convert("RGB"))
    rgba = np.asarray(image.convert("RGBA"))
    pixels = rgba[..., :3].copy()
    # An opaque pixel is its own colour; only the others are composited.
    seen_through = rgba[..., 3] < 255
    if seen_through.any():
        colour = rgba[seen_through].astype(np.float32)
        alpha = colour[:, 3:4] / 255.0
        over_white = colour[:, :3] * alpha + 255.0 * (1.0 - alpha)
        pixels[seen_through] = np.rint(over_white).astype(np.uint8)
    return pixels


def _scale_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """The (height, width) of each scale an image of this size is scored at."""
    shapes: list[tuple[int, int]] = []
    while len(shapes) < SCALES and height >= 8 and width >= 8:
        shapes.append((height, width))
        height, width = (height + 1) // 2, (width + 1) // 2
    return shapes


def _pyramid(linear: np.ndarray, count: int) -> list[np.ndarray]:
    """`linear` and the `count` - 1 scales below it, each half the last."""
    scales = [linear]
    while len(scales) < count:
        scales.append(halve(scales[-1]))
    return scales


def _scales(pixels: np.ndarray) -> list[np.ndarray]:
    """The linear planes of each scale of 8-bit sRGB pixels, finest first."""
    return _pyramid(linear_planes(pixels), len(_scale_shapes(*pixels.shape[:2])))


def _linear_rows(pixels: np.ndarray, scale: int, top: int, bottom: int) -> np.ndarray:
    """Rows `top` to `bottom` of the linear planes of a scale, made from the rows
    of 8-bit sRGB pixels they average. A scale's row pairs start on even rows of
    the one above, so that the halvings pair and pad rows as the whole image's."""
    size = 1 << scale
    linear = linear_planes(pixels[top * size : bottom * size])
    for _ in range(scale):
        linear = halve(linear)
    return linear


def _linear_scale(pixels: np.ndarray, scale: int) -> np.ndarray:
    """The linear planes of one scale, made in pieces of _PIECE_ELEMENTS pixels."""
    height, width = _scale_shapes(*pixels.shape[:2])[scale]
    linear = np.empty((3, height, width), dtype=np.float32)
    for piece in _pieces([slice(0, height)], width << 2 * scale):
        linear[:, piece] = _linear_rows(pixels, scale, piece.start, piece.stop)
    return linear


def changed_bands(original: np.ndarray, distorted: np.ndarray) -> list[slice]:
    """The rows of the finest scale whose terms a difference between two images
    reaches, as bands: changed rows and RADIUS around them.

    A pixel's terms depend only on the pixels within RADIUS of it, so that
    elsewhere they are those of identical images, exactly zero. Changed rows
    closer than four radii share a band: apart, each band would blur the rows
    between them anyway.
    """
    height = original.shape[0]
    changed = _changed_rows(original, distorted)
    if not len(changed):
        return []
    cuts = np.flatnonzero(np.diff(changed) > 4 * RADIUS + 1)
    firsts = changed[np.r_[0, cuts + 1]]
    lasts = changed[np.r_[cuts, len(changed) - 1]]
    return [
        slice(max(int(first) - RADIUS, 0), min(int(last) + 1 + RADIUS, height))
        for first, last in zip(firsts, lasts, strict=True)
    ]


def _changed_rows(original: np.ndarray, distorted: np.ndarray) -> np.ndarray:
    """The indices of the rows that differ, compared a piece of rows at a time."""
    row = original[0].size
    step = max(1, _PIECE_ELEMENTS // row)
    changed = []
    for top in range(0, original.shape[0], step):
        rows = slice(top, top + step)
        difference = cv2.absdiff(original[rows], distorted[rows]).reshape(-1, row)
        changed.append(np.flatnonzero(difference.max(axis=1)) + top)
    return np.concatenate(changed) if changed else np.zeros(0, dtype=np.intp)


def _pieces(bands: list[slice], width: int) -> list[slice]:
    """`bands` cut into pieces of at most _PIECE_ELEMENTS pixels, rows `width` long."""
    rows = max(1, _PIECE_ELEMENTS // width)
    return [
        slice(start, min(start + rows, band.stop))
        for band in bands
        for start in range(band.start, band.stop, rows)
    ]


# The original's scale over rows `top` to `bottom` of a scale, the distorted XYB
# planes of those rows, and the index of `top` among the planes of that scale.
Rows = Callable[[int, int], tuple[Scale, np.ndarray, int]]


def _band_sums(
    rows: Rows, bands: list[slice], shape: tuple[int, int], piece_width: int
) -> np.ndarray:
    """The sums of a scale of `shape` over `bands` of its rows; the rest sum to zero.

    The bands are taken in pieces of bounded size (`piece_width` is what a row
    counts), so that a score's working memory does not grow with the image.
    Each piece is blurred with RADIUS rows of context on either side (or the
    image's own edge), so that its rows blur as they do in the whole image.
    """
    height = shape[0]
    sums = np.zeros((3, 6))
    for band in _pieces(bands, piece_width):
        top = max(band.start - RADIUS, 0)
        original, xyb, origin = rows(top, min(band.stop + RADIUS, height))
        blurred = blur(original.planes_to_blur(xyb, origin))
        inner = slice(band.start - top, band.stop - top)
        sums += original.sums(xyb[:, inner], blurred[:, inner], origin + inner.start)
    return sums


def kept_bytes(height: int, width: int) -> int:
    """About the bytes a Reference keeps of an original this size kept whole: its
    pixels, and at every scale the SSIM channels' centred planes, means and
    variances and the three edge planes."""
    shapes = _scale_shapes(height, width)
    channels = ssim_channels(len(shapes))
    planes = [3 * len(np.arange(3)[chosen]) + 3 for chosen in channels]
    areas = [h * w for h, w in shapes]
    scales = sum(4 * area * count for area, count in zip(areas, planes, strict=True))
    return 3 * height * width + scales


class Reference:
    """An original prepared once, to score any number of candidates against it.

    `pixels` is (height, width, 3) uint8 sRGB, as `rgb_over_white` gives. An
    original of up to REMAKE_FROM pixels keeps every scale (`kept_bytes`, about
    43 bytes a pixel). A larger one, or any told to `remake`, keeps its scales
    from REMADE_SCALES on, a sixteenth of that besides its pixels, and remakes
    the finer ones from its pixels, piece by piece, at every score, which then
    takes about 1.5 times as long: memory stays bounded whatever the size of the
    image.
    """

    def __init__(self, pixels: np.ndarray, remake: bool | None = None) -> None:
        self.pixels = pixels
        self.shape = pixels.shape
        self.shapes = _scale_shapes(*pixels.shape[:2])
        if remake is None:
            remake = pixels.shape[0] * pixels.shape[1] > REMAKE_FROM
        remakes = remake and len(self.shapes) > REMADE_SCALES
        self.remade = REMADE_SCALES if remakes else 0
        channels = ssim_channels(len(self.shapes))[self.remade :]
        self._scales = [
            Scale(xyb_planes(linear), channels[index])
            for index, linear in enumerate(self._kept_linear(pixels))
        ]
        # Remade scales are centred on the coarser mean, near enough to their own.
        self._offset = self._scales[0].offset.reshape(3) if self._scales else None

    def _kept_linear(self, pixels: np.ndarray) -> list[np.ndarray]:
        """The linear planes of the scales kept, of pixels shaped as the original."""
        if not self.remade:
            return _scales(pixels)
        linear = _linear_scale(pixels, self.remade)
        return _pyramid(linear, len(self.shapes) - self.remade)

    def score(self, pixels: np.ndarray) -> float:
        """SSIMULACRA2 of `pixels` (same shape as the original) against the original.

        The finest scale, three-quarters of the work, is computed over the bands
        of rows that differ: an animation's frames often change in a few.
        """
        if pixels.shape != self.shape:
            raise ValueError(f"shape {pixels.shape} differs from {self.shape}")
        bands = changed_bands(self.pixels, pixels)
        if not bands:
            return PERFECT
        kept = self._kept_linear(pixels)
        terms = np.zeros((3, len(self.shapes), 2, 3))
        for index, shape in enumerate(self.shapes):
            rows = bands if index == 0 else [slice(0, shape[0])]
            if index < self.remade:
                sums = self._remade_sums(index, pixels, rows)
            else:
                sums = self._kept_sums(index, kept, rows)
            terms[:, index] = means(sums, shape[0] * shape[1])
        return final_score(terms)

    def _kept_sums(
        self, index: int, linear: list[np.ndarray], bands: list[slice]
    ) -> np.ndarray:
        """The sums of a kept scale; `linear` holds the distorted kept scales."""
        scale = self._scales[index - self.remade]
        planes = linear[index - self.remade]

        def rows(top: int, bottom: int) -> tuple[Scale, np.ndarray, int]:
            return scale, xyb_planes(planes[:, top:bottom]), top

        return _band_sums(rows, bands, self.shapes[index], self.shapes[index][1])

    def _remade_sums(
        self, index: int, pixels: np.ndarray, bands: list[slice]
    ) -> np.ndarray:
        """The sums of a scale not kept, remade from both images' pixels."""
        channels = ssim_channels(len(self.shapes))[index]

        def rows(top: int, bottom: int) -> tuple[Scale, np.ndarray, int]:
            original = xyb_planes(_linear_rows(self.pixels, index, top, bottom))
            distorted = xyb_planes(_linear_rows(pixels, index, top, bottom))
            return Scale(original, channels, self._offset), distorted, 0

        shape = self.shapes[index]
        return _band_sums(rows, bands, shape, shape[1] << 2 * index)

    def score_image(self, image: Image.Image) -> float:
        """Score a decoded candidate image, alpha over white."""
        return self.score(rgb_over_white(image))


def ssimulacra2(original: Image.Image, distorted: Image.Image) -> float:
    """SSIMULACRA2 of one distorted frame against its original (100 is identical)."""
    return Reference(rgb_over_white(original)).score_image(distorted)


def mean_over_frames(
    originals: Iterable[Image.Image], distorted: Iterable[Image.Image]
) -> float:
    """The mean SSIMULACRA2 over the frames of an animation, frame by frame."""
    scores = [ssimulacra2(a, b) for a, b in zip(originals, distorted, strict=True)]
    if not scores:
        raise ValueError("no frames to score")
    return float(np.mean(scores))
