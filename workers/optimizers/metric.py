"""SSIMULACRA2, the perceptual score every lossy optimizer is held to, vectorised.

The arithmetic follows the `ssimulacra2` package (the reference the tests compare
with) but runs in float32 with OpenCV's separable filters, keeps the original's
pyramid so that scoring many candidates against one original pays for the
original once (a large original only its coarser scales, so that memory stays
bounded), works through the image in pieces of rows, and computes the finest
scale only where the candidate differs.
Every tool is scored the same way: pixels are decoded to 8-bit sRGB, and alpha
is composited over white (in sRGB values, as a browser shows the image on a white
page) before scoring; an animation scores the mean over frames.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import cv2
import numpy as np
from PIL import Image

_SCALES = 6
_SIGMA = 1.5
_TRUNCATE = 3.33
_C2 = np.float32(0.0009)

_OPSIN = np.array(
    [
        [0.30, 1.0 - 0.078 - 0.30, 0.078],
        [0.23, 1.0 - 0.078 - 0.23, 0.078],
        [
            0.24342268924547819,
            0.20476744424496821,
            1.0 - 0.24342268924547819 - 0.20476744424496821,
        ],
    ],
    dtype=np.float32,
)
_BIAS = np.float32(0.0037930732552754493)
_CBRT_BIAS = np.float32(np.cbrt(0.0037930732552754493))


def _gaussian_kernel() -> np.ndarray:
    radius = int(_TRUNCATE * _SIGMA + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / _SIGMA) ** 2)
    return (taps / taps.sum()).astype(np.float32)


_RADIUS = int(_TRUNCATE * _SIGMA + 0.5)
_CHUNK_ELEMENTS = 16384
# A score works on pieces of rows of at most this many pixels (4 MB a float32
# plane), whatever the size of the image.
_PIECE_ELEMENTS = 1 << 20
# An original of more pixels than this is not kept whole for scoring: its
# REMADE_SCALES finest scales are remade at each score (see Reference).
REMAKE_FROM = 4_500_000
REMADE_SCALES = 2
_ROW_KERNEL = _gaussian_kernel()[None, :]
_COLUMN_KERNEL = _gaussian_kernel()[:, None]

# One weight per (channel, scale, norm, term); terms are ssim, ringing, blurring.
_WEIGHTS = np.array(
    [
        0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0,
        0.0004371155730107379, 0.0, 1.1041726426657346, 0.00066284834129271,
        0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0, 1.8422455520539298,
        11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
        1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072,
        0.9677937080626833, 0.0, 0.00014003424285435884, 0.9981766977854967,
        0.00031949755934435053, 0.0004550992113792063, 0.0, 0.0,
        0.0013648766163243398, 0.0, 0.0, 0.0, 0.0, 0.0, 7.466890328078848, 0.0,
        17.445833984131262, 0.0006235601634041466, 0.0, 0.0, 6.683678146179332,
        0.00037724407979611296, 1.027889937768264, 225.20515300849274, 0.0, 0.0,
        19.213238186143016, 0.0011401524586618361, 0.001237755635509985,
        176.39317598450694, 0.0, 0.0, 24.43300999870476, 0.28520802612117757,
        0.0004485436923833408, 0.0, 0.0, 0.0, 34.77906344483772, 44.835625328877896,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0008680556573291698, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0005313191874358747, 0.0, 0.00016533814161379112, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0004179171803251336, 0.0017290828234722833, 0.0,
        0.0020827005846636437, 0.0, 0.0, 8.826982764996862, 23.19243343998926, 0.0,
        95.1080498811086, 0.9863978034400682, 0.9834382792465353,
        0.0012286405048278493, 171.2667255897307, 0.9807858872435379, 0.0, 0.0, 0.0,
        0.0005130064588990679, 0.0, 0.00010854057858411537,
    ],
    dtype=np.float64,
).reshape(3, _SCALES, 2, 3)  # fmt: skip


def _linear_table() -> np.ndarray:
    v = np.arange(256, dtype=np.float64) / 255.0
    linear = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return linear.astype(np.float32)


_SRGB_TO_LINEAR = _linear_table()


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
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
    alpha = rgba[..., 3:4] / 255.0
    over_white = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return np.rint(over_white).astype(np.uint8)


def _xyb(linear: np.ndarray) -> np.ndarray:
    """Linear RGB to the positive XYB planes SSIMULACRA2 compares, (3, h, w)."""
    _, h, w = linear.shape
    mixed = _OPSIN @ linear.reshape(3, h * w)
    mixed += _BIAS
    np.maximum(mixed, 0.0, out=mixed)
    mixed = np.cbrt(mixed, out=mixed).reshape(3, h, w)
    mixed -= _CBRT_BIAS
    m0, m1, m2 = mixed
    # Written plane by plane into one array, in the order of the formulas.
    xyb = np.empty((3, h, w), dtype=np.float32)
    x, y, b = xyb
    np.subtract(m0, m1, out=x)
    x *= np.float32(0.5 * 14.0)
    x += np.float32(0.42)
    np.add(m0, m1, out=y)
    y *= np.float32(0.5)
    np.subtract(m2, y, out=b)
    b += np.float32(0.55)
    y += np.float32(0.01)
    return xyb


def _blur(planes: np.ndarray) -> np.ndarray:
    """Gaussian blur of every plane of (n, h, w).

    The reference works on transposed planes and pads their first axis with zeros,
    so beyond the left and right edges counts as zero, above and below as mirrored.
    """
    out = np.empty_like(planes)
    across = np.empty_like(planes[0])
    for index, plane in enumerate(planes):
        cv2.filter2D(plane, -1, _ROW_KERNEL, dst=across, borderType=cv2.BORDER_CONSTANT)
        cv2.filter2D(
            across, -1, _COLUMN_KERNEL, dst=out[index], borderType=cv2.BORDER_REFLECT
        )
    return out


def _halve(linear: np.ndarray) -> np.ndarray:
    """Box-average 2x2 blocks of (3, h, w); a block cut by an odd edge averages less.

    Repeating the last row or column makes the plain 2x2 mean of a cut block equal
    to the mean of the pixels it has.
    """
    _, h, w = linear.shape
    if h % 2 or w % 2:
        linear = np.pad(linear, ((0, 0), (0, h % 2), (0, w % 2)), mode="edge")
    top, bottom = linear[:, 0::2], linear[:, 1::2]
    total = top[:, :, 0::2] + top[:, :, 1::2]
    total += bottom[:, :, 0::2]
    total += bottom[:, :, 1::2]
    total *= np.float32(0.25)
    return total


class _Scale:
    """One scale of the original: its planes, their blurs, and what blurs depend on.

    Planes are blurred less their mean over the original, so that the variances
    and covariances do not cancel away float32's precision on flat planes. The zero
    padding makes a blur not shift-invariant near the left and right edges: `shift`
    and `shift_sq`, from the blur of a plane of ones, put the mean back there.
    Variances are kept for `ssim_channels` alone, the channels whose SSIM counts.
    A scale made of a band of rows is given the whole scale's `offset`.
    """

    def __init__(
        self,
        xyb: np.ndarray,
        ssim_channels: slice | np.ndarray,
        offset: np.ndarray | None = None,
    ) -> None:
        self.ssim_channels = ssim_channels
        if offset is None:
            offset = xyb.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)
        self.offset = offset[:, None, None]
        ones = np.ones((1, xyb.shape[2]), dtype=np.float32)
        weight = cv2.filter2D(ones, -1, _ROW_KERNEL, borderType=cv2.BORDER_CONSTANT)
        self.shift = self.offset[ssim_channels] * (1.0 - weight)
        self.shift_sq = self.offset[ssim_channels] * self.shift * weight
        self.weighted_offset = self.offset * weight
        self.area = xyb.shape[1] * xyb.shape[2]
        # The planes to blur, written in place: centred, then squares. Only what
        # scoring reads is kept, copied out of them, so that the rest is freed.
        self.ssim_count = len(self.offset[ssim_channels])
        planes = np.empty((3 + self.ssim_count, *xyb.shape[1:]), dtype=np.float32)
        centred = np.subtract(xyb, self.offset, out=planes[:3])
        ssim_centred = centred[ssim_channels]
        np.multiply(ssim_centred, ssim_centred, out=planes[3:])
        blurred = _blur(planes)
        self.ssim_centred = ssim_centred.copy()
        del planes, centred, ssim_centred
        mu_centred = blurred[:3]
        self.ssim_mu = mu_centred[ssim_channels].copy()
        self.variance = blurred[3:] - self.ssim_mu * self.ssim_mu
        self._put_shift_back(self.variance, self.ssim_mu, self.ssim_mu)
        edges = np.add(mu_centred, self.weighted_offset)
        np.subtract(xyb, edges, out=edges)
        np.abs(edges, out=edges)
        edges += 1.0
        self.edges = edges

    def _put_shift_back(
        self, moment: np.ndarray, mu_a: np.ndarray, mu_b: np.ndarray
    ) -> None:
        """Correct a (co)variance of the SSIM channels where the padding reaches."""
        width = moment.shape[2]
        if width <= 2 * _RADIUS:
            moment += self.shift * (mu_a + mu_b) + self.shift_sq
            return
        for edge in (slice(0, _RADIUS), slice(width - _RADIUS, width)):
            moment[:, :, edge] += (
                self.shift[:, :, edge] * (mu_a[:, :, edge] + mu_b[:, :, edge])
                + self.shift_sq[:, :, edge]
            )

    def planes_to_blur(self, xyb: np.ndarray, top: int = 0) -> np.ndarray:
        """The distorted planes less the offset, then for the SSIM channels their
        squares and their products with the original's, written in place.

        `xyb` holds the distorted rows from `top` on, all of them or a band.
        """
        count = self.ssim_count
        planes = np.empty((3 + 2 * count, *xyb.shape[1:]), dtype=np.float32)
        centred = np.subtract(xyb, self.offset, out=planes[:3])
        ssim_centred = centred[self.ssim_channels]
        np.multiply(ssim_centred, ssim_centred, out=planes[3 : 3 + count])
        original = self.ssim_centred[:, top : top + xyb.shape[1]]
        np.multiply(original, ssim_centred, out=planes[3 + count :])
        return planes

    def sums(self, xyb: np.ndarray, blurred: np.ndarray, top: int = 0) -> np.ndarray:
        """The (channel, term) sums over the rows of a distorted band from `top`
        on, whose blurs of `planes_to_blur` are `blurred`; `means` averages them.

        Rows are taken in chunks, so that the dozen elementwise steps run in
        cache. The SSIM of a channel outside `ssim_channels` weighs nothing and is
        left at zero.
        """
        _, height, width = xyb.shape
        count = self.ssim_count
        sums = np.zeros((3, 6))
        step = max(1, _CHUNK_ELEMENTS // width)
        for start in range(0, height, step):
            end = min(start + step, height)
            rows, original = slice(start, end), slice(top + start, top + end)
            mu2 = blurred[:3, rows]
            ssim = self._ssim(blurred[:, rows], original, count)
            sums[self.ssim_channels, 0] += ssim.sum(axis=(1, 2))
            np.square(ssim, out=ssim)
            np.square(ssim, out=ssim)
            sums[self.ssim_channels, 1] += ssim.sum(axis=(1, 2))
            mu2 = mu2 + self.weighted_offset
            ratio = np.abs(xyb[:, rows] - mu2, out=mu2)
            ratio += 1.0
            ratio /= self.edges[:, original]
            ratio -= 1.0
            artifact = np.maximum(ratio, 0.0)
            detail = np.maximum(-ratio, 0.0, out=ratio)
            for column, values in enumerate((artifact, detail), start=1):
                sums[:, 2 * column] += values.sum(axis=(1, 2))
                np.square(values, out=values)
                np.square(values, out=values)
                sums[:, 2 * column + 1] += values.sum(axis=(1, 2))
        return sums

    def means(self, sums: np.ndarray) -> np.ndarray:
        """The (channel, norm, term) averages over the whole scale from its sums,
        rows left out summing to zero."""
        return _means(sums, self.area)

    def _ssim(self, blurred: np.ndarray, rows: slice, count: int) -> np.ndarray:
        """1 - SSIM, at least 0, of the SSIM channels in a chunk: `blurred` holds
        the distorted blurs of the original's `rows`."""
        mu1 = self.ssim_mu[:, rows]
        mu2 = blurred[self.ssim_channels]
        covariance = blurred[3 + count :] - mu1 * mu2
        self._put_shift_back(covariance, mu1, mu2)
        variance = blurred[3 : 3 + count] - mu2 * mu2
        self._put_shift_back(variance, mu2, mu2)
        num_s = covariance
        num_s *= 2.0
        num_s += _C2
        # Summed in the order of num_s, so that identical planes give exactly 1.
        denom_s = variance
        denom_s += self.variance[:, rows]
        denom_s += _C2
        num_m = mu1 - mu2
        np.square(num_m, out=num_m)
        np.subtract(1.0, num_m, out=num_m)
        num_m *= num_s
        num_m /= denom_s
        ssim = np.subtract(1.0, num_m, out=num_m)
        return np.maximum(ssim, 0.0, out=ssim)


def _means(sums: np.ndarray, area: int) -> np.ndarray:
    """The (channel, norm, term) averages over a scale of `area` pixels."""
    means = sums / area
    means[:, 1::2] **= 0.25
    return means.reshape(3, 3, 2).transpose(0, 2, 1)


def _linear(pixels: np.ndarray) -> np.ndarray:
    """Linear RGB planes (3, h, w) of 8-bit sRGB pixels."""
    return np.ascontiguousarray(np.moveaxis(cv2.LUT(pixels, _SRGB_TO_LINEAR), 2, 0))


def _scale_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """The (height, width) of each scale an image of this size is scored at."""
    shapes: list[tuple[int, int]] = []
    while len(shapes) < _SCALES and height >= 8 and width >= 8:
        shapes.append((height, width))
        height, width = (height + 1) // 2, (width + 1) // 2
    return shapes


def _pyramid(linear: np.ndarray, count: int) -> list[np.ndarray]:
    """`linear` and the `count` - 1 scales below it, each half the last."""
    scales = [linear]
    while len(scales) < count:
        scales.append(_halve(scales[-1]))
    return scales


def _scales(pixels: np.ndarray) -> list[np.ndarray]:
    """The linear planes of each scale of 8-bit sRGB pixels, finest first."""
    return _pyramid(_linear(pixels), len(_scale_shapes(*pixels.shape[:2])))


def _linear_rows(pixels: np.ndarray, scale: int, top: int, bottom: int) -> np.ndarray:
    """Rows `top` to `bottom` of the linear planes of a scale, made from the rows
    of 8-bit sRGB pixels they average. A scale's row pairs start on even rows of
    the one above, so that the halvings pair and pad rows as the whole image's."""
    size = 1 << scale
    linear = _linear(pixels[top * size : bottom * size])
    for _ in range(scale):
        linear = _halve(linear)
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
    reaches, as bands: changed rows and _RADIUS around them.

    A pixel's terms depend only on the pixels within _RADIUS of it, so that
    elsewhere they are those of identical images, exactly zero. Changed rows
    closer than four radii share a band: apart, each band would blur the rows
    between them anyway.
    """
    height = original.shape[0]
    changed = _changed_rows(original, distorted)
    if not len(changed):
        return []
    cuts = np.flatnonzero(np.diff(changed) > 4 * _RADIUS + 1)
    firsts = changed[np.r_[0, cuts + 1]]
    lasts = changed[np.r_[cuts, len(changed) - 1]]
    return [
        slice(max(int(first) - _RADIUS, 0), min(int(last) + 1 + _RADIUS, height))
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


def _weights(scales: int) -> np.ndarray:
    """The (channel, scale, norm, term) weights of an image with `scales` scales."""
    # Like the reference, fewer scales take the leading weights, not each scale's own.
    return _WEIGHTS.reshape(-1)[: 3 * scales * 2 * 3].reshape(3, scales, 2, 3)


@functools.cache
def _ssim_channels(scales: int) -> tuple[slice | np.ndarray, ...]:
    """The channels whose SSIM terms weigh anything, at each of `scales` scales.

    The others need no variance or covariance blurred, only the mean the edge
    terms use: at the finest of six scales, three-quarters of the work, only Y's
    SSIM counts.
    """
    weights = _weights(scales)
    return tuple(
        _channels(np.flatnonzero(weights[:, scale, :, 0].any(axis=1)))
        for scale in range(scales)
    )


def _channels(chosen: np.ndarray) -> slice | np.ndarray:
    """A run of neighbouring channels as a slice, which picks views, not copies."""
    if len(chosen) and chosen[-1] - chosen[0] == len(chosen) - 1:
        return slice(int(chosen[0]), int(chosen[-1]) + 1)
    return chosen


PERFECT = 100.0


def _final_score(terms: np.ndarray) -> float:
    """Map weighted (channel, scale, norm, term) averages to the 0-100 score."""
    weights = _weights(terms.shape[1])
    raw = float(np.sum(weights * np.abs(terms))) * 0.9562382616834844
    raw = (
        2.326765642916932 * raw
        - 0.020884521182843837 * raw * raw
        + 6.248496625763138e-05 * raw * raw * raw
    )
    if raw <= 0:
        return PERFECT
    return PERFECT - 10.0 * raw**0.6276336467831387


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
Rows = Callable[[int, int], tuple[_Scale, np.ndarray, int]]


def _band_sums(
    rows: Rows, bands: list[slice], shape: tuple[int, int], piece_width: int
) -> np.ndarray:
    """The sums of a scale of `shape` over `bands` of its rows; the rest sum to zero.

    The bands are taken in pieces of bounded size (`piece_width` is what a row
    counts), so that a score's working memory does not grow with the image.
    Each piece is blurred with _RADIUS rows of context on either side (or the
    image's own edge), so that its rows blur as they do in the whole image.
    """
    height = shape[0]
    sums = np.zeros((3, 6))
    for band in _pieces(bands, piece_width):
        top = max(band.start - _RADIUS, 0)
        original, xyb, origin = rows(top, min(band.stop + _RADIUS, height))
        blurred = _blur(original.planes_to_blur(xyb, origin))
        inner = slice(band.start - top, band.stop - top)
        sums += original.sums(xyb[:, inner], blurred[:, inner], origin + inner.start)
    return sums


def kept_bytes(height: int, width: int) -> int:
    """About the bytes a Reference keeps of an original this size kept whole: its
    pixels, and at every scale the SSIM channels' centred planes, means and
    variances and the three edge planes."""
    shapes = _scale_shapes(height, width)
    channels = _ssim_channels(len(shapes))
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
        channels = _ssim_channels(len(self.shapes))[self.remade :]
        self._scales = [
            _Scale(_xyb(linear), channels[index])
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
            terms[:, index] = _means(sums, shape[0] * shape[1])
        return _final_score(terms)

    def _kept_sums(
        self, index: int, linear: list[np.ndarray], bands: list[slice]
    ) -> np.ndarray:
        """The sums of a kept scale; `linear` holds the distorted kept scales."""
        scale = self._scales[index - self.remade]
        planes = linear[index - self.remade]

        def rows(top: int, bottom: int) -> tuple[_Scale, np.ndarray, int]:
            return scale, _xyb(planes[:, top:bottom]), top

        return _band_sums(rows, bands, self.shapes[index], self.shapes[index][1])

    def _remade_sums(
        self, index: int, pixels: np.ndarray, bands: list[slice]
    ) -> np.ndarray:
        """The sums of a scale not kept, remade from both images' pixels."""
        channels = _ssim_channels(len(self.shapes))[index]

        def rows(top: int, bottom: int) -> tuple[_Scale, np.ndarray, int]:
            original = _xyb(_linear_rows(self.pixels, index, top, bottom))
            distorted = _xyb(_linear_rows(pixels, index, top, bottom))
            return _Scale(original, channels, self._offset), distorted, 0

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
