"""NIQE (Mittal et al., "Making a 'completely blind' image quality analyzer", 2013), as BasicSR computes it.

NIQE needs no reference image: it fits a multivariate Gaussian to natural-scene statistics of
96x96 blocks of the image (at full and half resolution) and measures its distance to the Gaussian
of pristine natural images. **Lower is better** (sharper, more natural-looking); it does not say
whether the output is faithful to the ground truth, which is what PSNR/SSIM measure.

The pristine model (`mu_pris_param [1, 36]`, `cov_pris_param [36, 36]` and the 7x7
`gaussian_window`, from the authors' MATLAB release) is read from `basicsr/metrics/niqe_pris_params.npz`
inside BasicSR's source archive on PyPI (`basicsr-1.4.2.tar.gz`, Apache-2.0), looked for in sr-tf's
cache folder like RealSR's archive (`pip download --no-deps basicsr==1.4.2 -d ~/.cache/sr_tf`);
BasicSR itself is never installed or imported.

The computation follows BasicSR's `calculate_niqe` (which matches MATLAB's `niqe` to 1e-7 on its
test image) step by step, with its number types: the Y channel (MATLAB's `rgb2ycbcr`) rounded to
integers, held in float32; 7x7 Gaussian local mean and deviation with edge replication; per block
the AGGD fits of the normalised coefficients and of their products with the four neighbours (18
features), then MATLAB's antialiased bicubic x1/2 and the same 18 features again; the distance
`sqrt((mu_p - mu_d) pinv((C_p + C_d) / 2) (mu_p - mu_d)^T)`. NIQE is sensitive to the last bit:
each AGGD shape is the nearest of a 0.001-step grid, so a one-ulp change of an input can move a
block's feature by a grid step. The half-size image is therefore summed in float32 in the order of
BasicSR's `torch.mv` calls under MKL's reproducible code path (`MKL_CBWR=COMPATIBLE`; see
`_half_size`): bit for bit its half-size image, and its NIQE to ~1e-13. MKL's default (AVX2,
AVX-512) paths sum in other orders, and BasicSR's own NIQE then moves by up to ~2e-3 with the CPU.
The test compares with BasicSR's own `niqe.py`, run on the same images under `MKL_CBWR=COMPATIBLE`.
"""

from __future__ import annotations

import functools
import io
import math
import os
import tarfile
from pathlib import Path

import numpy as np

from sr_tf.pretrained.entries import Source

BASICSR = Source("basicsr", "1.4.2", "", "Apache-2.0", "BasicSR's license (XPixel group); NIQE by Mittal et al.",
                 archive="basicsr-1.4.2.tar.gz")
PARAMS_MEMBER = "basicsr-1.4.2/basicsr/metrics/niqe_pris_params.npz"
BLOCK_SIZE = 96  # the authors' recommended block size (the pristine model was fitted on 96x96 blocks)

# The AGGD shape parameters searched (BasicSR's and MATLAB's grid) and the ratio they give.
_GAMMA_GRID = np.arange(0.2, 10.001, 0.001)


@functools.lru_cache(maxsize=1)
def _ratio_table() -> np.ndarray:
    g = np.array([math.gamma(v) for v in np.concatenate([2 / _GAMMA_GRID, 1 / _GAMMA_GRID, 3 / _GAMMA_GRID])])
    two, one, three = np.split(g, 3)
    return np.square(two) / (one * three)


def _gamma(x) -> np.float64:
    return np.float64(math.gamma(float(x)))


@functools.lru_cache(maxsize=4)
def _load_params(path: str) -> dict[str, np.ndarray]:
    try:
        with tarfile.open(path, "r:gz") as tar:
            member = tar.extractfile(PARAMS_MEMBER)
            if member is None:
                raise KeyError(PARAMS_MEMBER)
            data = member.read()
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            params = {k: np.asarray(npz[k], np.float64) for k in ("mu_pris_param", "cov_pris_param", "gaussian_window")}
    except (tarfile.TarError, KeyError, OSError, EOFError, ValueError) as e:
        raise FileNotFoundError(f"Cannot read {PARAMS_MEMBER} from {path!r} ({e}): download it again: "
                                f"{BASICSR.install_hint(str(_cache_dir()))}") from e
    if params["mu_pris_param"].shape != (1, 36) or params["cov_pris_param"].shape != (36, 36) \
            or params["gaussian_window"].shape != (7, 7):
        raise FileNotFoundError(f"{PARAMS_MEMBER} in {path!r} has unexpected shapes "
                                f"{ {k: v.shape for k, v in params.items()} }: download it again.")
    return params


def _cache_dir():
    from sr_tf.pretrained.locate import cache_dir

    return cache_dir()


def pristine_params(archive: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The pristine model: `{"mu_pris_param": [1, 36], "cov_pris_param": [36, 36], "gaussian_window": [7, 7]}` float64.

    Args:
      archive: path of `basicsr-1.4.2.tar.gz` (None: the one in sr-tf's cache folder).

    Raises:
      FileNotFoundError: the archive is missing or unreadable (the message says how to get it).
    """
    path = _cache_dir() / BASICSR.archive if archive is None else Path(archive)
    if not path.is_file():
        raise FileNotFoundError(f"NIQE's pristine parameters are read from BasicSR's source archive {str(path)!r}, "
                                f"which is not there: {BASICSR.install_hint(str(_cache_dir()))}")
    return _load_params(str(path))


def niqe_available() -> bool:
    """Whether the archive with the pristine parameters is in the cache folder (no reading)."""
    return (_cache_dir() / BASICSR.archive).is_file()


# --- the computation (BasicSR's number types throughout: see the module doc) -----------------------


def _convolve_nearest(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """`scipy.ndimage.convolve(image, window, mode="nearest")` for `[H, W] float32`: summed in float64, float32 out."""
    kh, kw = window.shape
    ph, pw = kh // 2, kw // 2
    padded = np.pad(image.astype(np.float64), ((ph, ph), (pw, pw)), mode="edge")
    flipped = window[::-1, ::-1]  # convolution, not correlation
    h, w = image.shape
    out = np.zeros((h, w), np.float64)
    for i in range(kh):
        for j in range(kw):
            out += flipped[i, j] * padded[i:i + h, j:j + w]
    return out.astype(np.float32)


def _aggd(block: np.ndarray) -> tuple[np.float64, np.float64, np.float64]:
    """Asymmetric generalised Gaussian fit of a block's values: `(alpha, beta_left, beta_right)`.

    Moment matching (Lasmar et al. 2009): the one-sided RMS values give the asymmetry, the ratio of
    the squared mean magnitude to the mean square, corrected for it, picks the shape on the grid.
    """
    values = block.ravel()
    sigma_left = np.sqrt(np.mean(values[values < 0] ** 2))
    sigma_right = np.sqrt(np.mean(values[values > 0] ** 2))
    asym = sigma_left / sigma_right
    moments = np.mean(np.abs(values)) ** 2 / np.mean(values ** 2)
    target = moments * (asym**3 + 1) * (asym + 1) / (asym**2 + 1) ** 2
    alpha = _GAMMA_GRID[np.argmin((_ratio_table() - target) ** 2)]
    spread = np.sqrt(_gamma(1 / alpha) / _gamma(3 / alpha))
    return alpha, sigma_left * spread, sigma_right * spread


_NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _block_features(block: np.ndarray) -> list:
    """The 18 features of one block of normalised coefficients."""
    alpha, beta_l, beta_r = _aggd(block)
    features = [alpha, (beta_l + beta_r) / 2]
    for shift in _NEIGHBOURS:  # products with the neighbour to the right, below and on both diagonals
        alpha, beta_l, beta_r = _aggd(block * np.roll(block, shift, axis=(0, 1)))
        mean = (beta_r - beta_l) * (_gamma(2 / alpha) / _gamma(1 / alpha))
        features.extend([alpha, mean, beta_l, beta_r])
    return features


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic kernel (a = -0.5), MATLAB's `cubic`."""
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _half_taps(length: int) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's antialiased bicubic x1/2 along one axis as taps: `(indices [out, K] int, weights [out, K] float32)`.

    Indices are 0-based into the axis, mirrored at the ends (`[1..n, n..1]`); taps are kept
    separate even where two mirror onto one pixel, in the order BasicSR's `imresize` sums them.
    """
    out_length = -(-length // 2)
    u = np.arange(1, out_length + 1, dtype=np.float64) * 2 - 0.5  # input coordinate of each output centre
    left = np.floor(u - 4)  # the kernel is 8 input pixels wide when halving
    index = left[:, None] + np.arange(10)[None, :]
    weights = 0.5 * _cubic(0.5 * (u[:, None] - index))
    weights /= weights.sum(axis=1, keepdims=True)
    if (weights[:, 0] == 0).any():  # drop an edge tap that no output uses, as MATLAB does
        index, weights = index[:, 1:], weights[:, 1:]
    if (weights[:, -1] == 0).any():
        index, weights = index[:, :-1], weights[:, :-1]
    index = index.astype(np.int64) - 1
    index = np.where(index < 0, -index - 1, np.where(index >= length, 2 * length - 1 - index, index))
    return index, weights.astype(np.float32)


def _half_rows(image: np.ndarray) -> np.ndarray:
    """Halves axis 0 of `[H, W] float32`, summing the taps in order in float32 as BasicSR's torch loop does."""
    index, weights = _half_taps(image.shape[0])
    out = np.zeros((index.shape[0], image.shape[1]), np.float32)
    for k in range(index.shape[1]):
        out = out + weights[:, k:k + 1] * image[index[:, k]]
    return out


def _half_cols(image: np.ndarray) -> np.ndarray:
    """Halves axis 1 of `[H, W] float32`, each output a float32 dot product of 8 taps in MKL's order.

    BasicSR's column pass is `torch.mv` of a row-major `[H, 8]` slice, i.e. MKL's `sgemv('T')`. In
    MKL's reproducible code path (`MKL_CBWR=COMPATIBLE`) that sums the rounded products of rows in
    groups of four as `((((p0 + p1) + p3) + (p2 + p4)) + p5 + p6) + p7` and the last `H % 4` rows tap
    by tap (measured with cancelling probes; NIQE's H is a multiple of 48, so it only meets the first).
    """
    index, weights = _half_taps(image.shape[1])
    if index.shape[1] != 8:  # MATLAB's kernel when halving is 8 taps wide, at any length
        raise AssertionError(f"x1/2 bicubic has 8 taps, not {index.shape[1]}")
    p = [weights[:, k] * image[:, index[:, k]] for k in range(8)]  # [H, W/2] float32 each, rounded products
    grouped = ((((p[0] + p[1]) + p[3]) + (p[2] + p[4])) + p[5] + p[6]) + p[7]
    tail = image.shape[0] - image.shape[0] % 4
    in_order = functools.reduce(np.add, (q[tail:] for q in p))
    return np.concatenate([grouped[:tail], in_order])


def _half_size(image: np.ndarray) -> np.ndarray:
    """MATLAB's `imresize(image, 0.5, 'bicubic')` (antialiased) of `[H, W] float32`, rows first, float32.

    As BasicSR's `imresize`, which NIQE's published numbers come from: float32 weights, each pass a
    float32 `torch.mv` per output line, summed in the order of MKL's reproducible code path
    (`MKL_CBWR=COMPATIBLE`): the rows tap by tap, the columns as `_half_cols`. The result is then
    bit for bit BasicSR's under `MKL_CBWR=COMPATIBLE`; MKL's faster paths (AVX2, AVX-512) sum in
    other orders, which changes ~half the pixels by an ulp and BasicSR's own NIQE by up to ~1e-3.
    """
    return _half_cols(_half_rows(image))


def y_channel(image: np.ndarray) -> np.ndarray:
    """BT.601 Y (MATLAB's `rgb2ycbcr`, 16-235) of `[H, W, 3]` RGB in [0, 255], rounded: `[H, W] float32`.

    The same Y as `sr_tf.metrics.rgb_to_y`, computed with BasicSR's number types (float32 in,
    float64 sum, float32 out) so that the rounding to integers agrees with BasicSR's on every pixel.
    """
    bgr = np.asarray(image, np.float32)[..., ::-1] / 255.0
    y = ((np.dot(bgr, [24.966, 128.553, 65.481]) + 16.0) / 255.0).astype(np.float32)
    return (y * 255.0).round()


def niqe_of_gray(image: np.ndarray, params: dict[str, np.ndarray], block_size: int = BLOCK_SIZE,
                 half_size=_half_size) -> float:
    """NIQE of `[H, W]` grey values in [0, 255], already rounded (float32, as BasicSR holds them).

    `half_size` makes the x1/2 image (`[H, W] float32 in [0, 1]` -> `[ceil(H/2), ceil(W/2)] float32`);
    the test swaps in BasicSR's to check the rest alone. The image is cropped to whole blocks.
    """
    image = np.asarray(image, np.float32)
    blocks_h, blocks_w = image.shape[0] // block_size, image.shape[1] // block_size
    if blocks_h * blocks_w < 2:
        raise ValueError(f"NIQE needs at least two {block_size}x{block_size} blocks (its covariance is fitted "
                         f"over blocks). Received: image of shape {image.shape}")
    image = image[: blocks_h * block_size, : blocks_w * block_size]
    window = params["gaussian_window"]
    per_scale = []
    for scale in (1, 2):
        mu = _convolve_nearest(image, window)
        sigma = np.sqrt(np.abs(_convolve_nearest(np.square(image), window) - np.square(mu)))
        normalised = (image - mu) / (sigma + 1)
        size = block_size // scale
        per_scale.append(np.array([
            _block_features(normalised[bh * size:(bh + 1) * size, bw * size:(bw + 1) * size])
            for bw in range(blocks_w) for bh in range(blocks_h)  # column by column, as BasicSR
        ]))
        if scale == 1:
            image = half_size(image / 255.0) * 255.0
    features = np.concatenate(per_scale, axis=1)
    mu_d = np.nanmean(features, axis=0)
    cov_d = np.cov(features[~np.isnan(features).any(axis=1)], rowvar=False)
    diff = params["mu_pris_param"] - mu_d
    inv = np.linalg.pinv((params["cov_pris_param"] + cov_d) / 2)
    return float(np.squeeze(np.sqrt(diff @ inv @ diff.T)))


def niqe(image, *, crop_border: int = 0, params: dict[str, np.ndarray] | None = None) -> float:
    """NIQE of one image: lower is better (more natural); typical photos score 2-6.

    Args:
      image: `[H, W, 3]` RGB or `[H, W]` / `[H, W, 1]` grey, uint8 (or float in [0, 255]); RGB is
        scored on its Y channel (MATLAB's `rgb2ycbcr`, 16-235), grey on its values, both rounded
        to integers as BasicSR does. At least two 96x96 blocks after cropping.
      crop_border: pixels removed on each side first (papers: the scale factor).
      params: the pristine model (None: `pristine_params()` from the cache folder).

    Returns:
      NIQE as a Python float.

    Raises:
      ValueError: a bad shape, or fewer than two 96x96 blocks. FileNotFoundError: no archive.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise ValueError(f"niqe takes [H, W, 3] RGB or [H, W] grey images. Received: shape={image.shape}")
    if isinstance(crop_border, bool) or int(crop_border) != crop_border or crop_border < 0:
        raise ValueError(f"`crop_border` must be an integer >= 0. Received: crop_border={crop_border!r}")
    params = pristine_params() if params is None else params
    gray = y_channel(image) if image.ndim == 3 else np.round(image.astype(np.float32))
    if crop_border:
        gray = gray[crop_border:-crop_border, crop_border:-crop_border]
    return niqe_of_gray(gray, params)
