"""SSIMULACRA2's arithmetic: sRGB to XYB, the blurred moments of one scale of an
original, the SSIM and edge terms of a distorted band of rows against them, and
the weighted score of those terms.

It follows the `ssimulacra2` package (the reference the tests compare with) but
runs in float32 with OpenCV's separable filters; metric.py decides which scales
and rows are computed, and keeps what is reused.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from workers.optimizers.imaging import SRGB_TO_LINEAR

SCALES = 6
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


RADIUS = int(_TRUNCATE * _SIGMA + 0.5)
_CHUNK_ELEMENTS = 16384
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
).reshape(3, SCALES, 2, 3)  # fmt: skip


def xyb_planes(linear: np.ndarray) -> np.ndarray:
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


def blur(planes: np.ndarray) -> np.ndarray:
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


def halve(linear: np.ndarray) -> np.ndarray:
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


class Scale:
    """One scale of the original: its planes, their blurs, and what blurs depend on.

    Planes are blurred less their mean over the original, so that the variances
    and covariances do not cancel away float32's precision on flat planes. The zero
    padding makes a blur not shift-invariant near the left and right edges: `shift`
    and `shift_sq`, from the blur of a plane of ones, put the mean back there.
    Variances are kept for `ssim_channels` alone, the channels whose SSIM counts.
    A scale made of a band of rows is given an `offset` near the whole scale's
    mean, which any centring constant close to it serves as well.
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
        # The planes to blur, written in place: centred, then squares. Only what
        # scoring reads is kept, copied out of them, so that the rest is freed.
        self.ssim_count = len(self.offset[ssim_channels])
        planes = np.empty((3 + self.ssim_count, *xyb.shape[1:]), dtype=np.float32)
        centred = np.subtract(xyb, self.offset, out=planes[:3])
        ssim_centred = centred[ssim_channels]
        np.multiply(ssim_centred, ssim_centred, out=planes[3:])
        blurred = blur(planes)
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
        if width <= 2 * RADIUS:
            moment += self.shift * (mu_a + mu_b) + self.shift_sq
            return
        for edge in (slice(0, RADIUS), slice(width - RADIUS, width)):
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


def means(sums: np.ndarray, area: int) -> np.ndarray:
    """The (channel, norm, term) averages over a scale of `area` pixels."""
    means = sums / area
    means[:, 1::2] **= 0.25
    return means.reshape(3, 3, 2).transpose(0, 2, 1)


def linear_planes(pixels: np.ndarray) -> np.ndarray:
    """Linear RGB planes (3, h, w) of 8-bit sRGB pixels."""
    return np.ascontiguousarray(np.moveaxis(cv2.LUT(pixels, SRGB_TO_LINEAR), 2, 0))


def _weights(scales: int) -> np.ndarray:
    """The (channel, scale, norm, term) weights of an image with `scales` scales."""
    # Like the reference, fewer scales take the leading weights, not each scale's own.
    return _WEIGHTS.reshape(-1)[: 3 * scales * 2 * 3].reshape(3, scales, 2, 3)


@functools.cache
def ssim_channels(scales: int) -> tuple[slice | np.ndarray, ...]:
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


def final_score(terms: np.ndarray) -> float:
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
