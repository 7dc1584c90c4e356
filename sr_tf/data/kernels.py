"""Blur kernels of Real-ESRGAN's degradation model, generated in batches with stateless RNG.

Kernels are `[N, K, K]` float32 (K = 21 by default), each summing to one and symmetric
under a half turn (`k[i, j] == k[K-1-i, K-1-j]`), so convolution and correlation agree.
A kernel of size k < K is computed on the centred k x k grid and zero-padded to K x K,
as BasicSR does. Types (Wang et al., 2021, Sec. 3.1 and BasicSR's `degradations.py`):

- `iso`, `aniso`: Gaussian `exp(-q / 2)` with `q = p^T S^-1 p`, `S = R diag(sx^2, sy^2) R^T`.
- `generalized_iso`, `generalized_aniso`: `exp(-(q)^beta / 2)`.
- `plateau_iso`, `plateau_aniso`: `1 / (1 + q^beta)`.
- sinc: the circular low-pass filter `w J1(w r) / (2 pi r)` (centre `w^2 / (4 pi)`).

`filter2d` convolves each image of a batch with its own kernel (reflect padding) through
FFTs: on a 2-core CPU that is ~5x faster than a per-sample depthwise convolution.
"""

from __future__ import annotations

import math

import tensorflow as tf

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def _uniform(seed: tf.Tensor, shape, low: float, high: float) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed, minval=low, maxval=high, dtype=tf.float32)


def _grid(size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """`(x, y)` coordinates `[size, size]` centred at zero (x along columns)."""
    ax = tf.range(size, dtype=tf.float32) - (size - 1) / 2.0
    y, x = tf.meshgrid(ax, ax, indexing="ij")
    return x, y


def _size_mask(sizes: tf.Tensor, full: int) -> tf.Tensor:
    """`[N, full, full]` 1.0 inside the centred `sizes[n] x sizes[n]` square."""
    x, y = _grid(full)
    half = tf.cast(sizes, tf.float32)[:, None, None] / 2.0
    return tf.cast((tf.abs(x)[None] < half) & (tf.abs(y)[None] < half), tf.float32)


def _normalise(kernels: tf.Tensor) -> tf.Tensor:
    return kernels / tf.reduce_sum(kernels, axis=[1, 2], keepdims=True)


def quadratic_form(sigma_x: tf.Tensor, sigma_y: tf.Tensor, theta: tf.Tensor, size: int) -> tf.Tensor:
    """`q = p^T S^-1 p` on the `size x size` grid for each `(sigma_x, sigma_y, theta)`: `[N, size, size]`."""
    x, y = _grid(size)
    c, s = tf.cos(theta)[:, None, None], tf.sin(theta)[:, None, None]
    # Coordinates in the rotated frame: S^-1 = R diag(1/sx^2, 1/sy^2) R^T.
    xr = c * x + s * y
    yr = -s * x + c * y
    return tf.square(xr) / tf.square(sigma_x)[:, None, None] + tf.square(yr) / tf.square(sigma_y)[:, None, None]


def gaussian_kernels(sigma_x, sigma_y, theta, size: int = 21) -> tf.Tensor:
    """Anisotropic Gaussian kernels `[N, size, size]` (isotropic when `sigma_x == sigma_y`)."""
    return _normalise(tf.exp(-0.5 * quadratic_form(sigma_x, sigma_y, theta, size)))


def sinc_kernels(cutoff: tf.Tensor, sizes: tf.Tensor, full: int = 21) -> tf.Tensor:
    """Circular low-pass (2-D sinc) kernels.

    Args:
      cutoff: `[N]` cutoff frequencies in radians (pi is the Nyquist frequency).
      sizes: `[N]` odd kernel sizes <= `full`.
      full: the padded kernel size.

    Returns:
      `[N, full, full]` float32, each summing to one.
    """
    x, y = _grid(full)
    r = tf.sqrt(tf.square(x) + tf.square(y))[None]
    w = tf.cast(cutoff, tf.float32)[:, None, None]
    safe_r = tf.where(r > 0, r, tf.ones_like(r))
    values = w * tf.math.special.bessel_j1(w * safe_r) / (2.0 * math.pi * safe_r)
    values = tf.where(r > 0, values, tf.square(w) / (4.0 * math.pi))
    return _normalise(values * _size_mask(sizes, full))


def pulse_kernels(n: tf.Tensor, full: int = 21) -> tf.Tensor:
    """Identity kernels `[n, full, full]` (a one in the centre)."""
    centre = tf.one_hot([(full // 2) * full + full // 2], full * full)[0]
    return tf.tile(tf.reshape(centre, [1, full, full]), [n, 1, 1])


def _random_beta(seed: tf.Tensor, n, low: float, high: float) -> tf.Tensor:
    """BasicSR's shape parameter: uniform in [low, 1) or [1, high) with equal chance."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    below = _uniform(seeds[0], [n], 0.0, 1.0) < 0.5
    t = _uniform(seeds[1], [n], 0.0, 1.0)
    return tf.where(below, low + t * (1.0 - low), 1.0 + t * (high - 1.0))


def random_kernels(
    seed: tf.Tensor,
    n: int | tf.Tensor,
    kernel_prob: tuple[float, ...],
    sigma_range: tuple[float, float],
    betag_range: tuple[float, float],
    betap_range: tuple[float, float],
    sinc_prob: float,
    sizes: tuple[int, ...] = tuple(range(7, 22, 2)),
    full: int = 21,
) -> tf.Tensor:
    """A batch of Real-ESRGAN blur kernels (`random_mixed_kernels` or, with `sinc_prob`, a sinc).

    Args:
      seed: `[2]` int stateless seed.
      n: number of kernels.
      kernel_prob: probabilities of `KERNEL_TYPES`, in that order.
      sigma_range: `(low, high)` of sigma_x and sigma_y (pixels).
      betag_range: shape range of the generalized Gaussian kernels.
      betap_range: shape range of the plateau kernels.
      sinc_prob: chance of a sinc kernel instead (cutoff in [pi/3, pi] for sizes < 13,
        else [pi/5, pi]).
      sizes: odd kernel sizes to choose from uniformly.
      full: padded size.

    Returns:
      `[n, full, full]` float32.
    """
    if len(kernel_prob) != len(KERNEL_TYPES):
        raise ValueError(f"kernel_prob needs {len(KERNEL_TYPES)} values for {KERNEL_TYPES}. Received: kernel_prob={kernel_prob!r}")
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 10)
    size_table = tf.constant(sizes, tf.int32)
    size = tf.gather(size_table, tf.random.stateless_uniform([n], seeds[0], 0, len(sizes), dtype=tf.int32))
    kind = tf.random.stateless_categorical(tf.math.log(tf.constant([list(kernel_prob)], tf.float32)), n, seeds[1], dtype=tf.int32)[0]
    isotropic = tf.math.floormod(kind, 2) == 0  # iso, generalized_iso, plateau_iso are even
    sigma_x = _uniform(seeds[2], [n], *sigma_range)
    sigma_y = tf.where(isotropic, sigma_x, _uniform(seeds[3], [n], *sigma_range))
    theta = tf.where(isotropic, tf.zeros([n]), _uniform(seeds[4], [n], -math.pi, math.pi))
    beta_g = _random_beta(seeds[5], n, *betag_range)
    beta_p = _random_beta(seeds[6], n, *betap_range)
    q = quadratic_form(sigma_x, sigma_y, theta, full)
    family = (kind // 2)[:, None, None]  # 0 Gaussian, 1 generalized, 2 plateau
    bg = beta_g[:, None, None]
    bp = beta_p[:, None, None]
    values = tf.where(
        family == 0,
        tf.exp(-0.5 * q),
        tf.where(family == 1, tf.exp(-0.5 * tf.pow(q, bg)), 1.0 / (tf.pow(q, bp) + 1.0)),
    )
    blur = _normalise(values * _size_mask(size, full))
    wide = size >= 13
    cutoff = tf.where(
        wide, _uniform(seeds[7], [n], math.pi / 5, math.pi), _uniform(seeds[8], [n], math.pi / 3, math.pi)
    )
    sinc = sinc_kernels(cutoff, size, full)
    use_sinc = _uniform(seeds[9], [n], 0.0, 1.0) < sinc_prob
    return tf.where(use_sinc[:, None, None], sinc, blur)


def random_final_sinc(seed: tf.Tensor, n, prob: float, sizes: tuple[int, ...] = tuple(range(7, 22, 2)), full: int = 21) -> tf.Tensor:
    """Real-ESRGAN's final filter: a sinc (cutoff in [pi/3, pi]) with chance `prob`, else identity."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    size = tf.gather(tf.constant(sizes, tf.int32), tf.random.stateless_uniform([n], seeds[0], 0, len(sizes), dtype=tf.int32))
    sinc = sinc_kernels(_uniform(seeds[1], [n], math.pi / 3, math.pi), size, full)
    use = _uniform(seeds[2], [n], 0.0, 1.0) < prob
    return tf.where(use[:, None, None], sinc, pulse_kernels(n, full))


# 5-smooth sizes make the CPU FFT fast (a prime factor such as 37 in 148 makes it ~2x slower).
_SMOOTH = sorted({2**a * 3**b * 5**c for a in range(14) for b in range(9) for c in range(6) if 2**a * 3**b * 5**c <= 16384})


def _fft_length(n: tf.Tensor) -> tf.Tensor:
    table = tf.constant(_SMOOTH, tf.int32)
    return tf.gather(table, tf.searchsorted(table, tf.reshape(tf.cast(n, tf.int32), [1]), side="left"))[0]


def _reflect_indices(length: tf.Tensor, pad: int) -> tf.Tensor:
    period = tf.maximum(2 * length - 2, 1)
    i = tf.math.floormod(tf.range(-pad, length + pad), period)
    return tf.where(i < length, i, period - i)


def reflect_pad_planes(planes: tf.Tensor, pad: int) -> tf.Tensor:
    """Reflect padding (`dcb|abcd|cba`, PyTorch's `reflect`) of the last two axes, for any size.

    Unlike `tf.pad(..., "REFLECT")` it also works when `pad >= size` (indices keep reflecting).

    Args:
      planes: `[..., H, W]`.
      pad: pixels added on every side.

    Returns:
      `[..., H + 2 pad, W + 2 pad]`.
    """
    rank = planes.shape.rank
    h, w = planes.shape[-2], planes.shape[-1]
    if h is not None and w is not None and min(h, w) > pad:  # known to fit: the faster op
        return tf.pad(planes, [[0, 0]] * (rank - 2) + [[pad, pad], [pad, pad]], mode="REFLECT")
    # (A tf.cond choosing between the two trips a noisy Grappler error in larger graphs.)
    shape = tf.shape(planes)
    out = tf.gather(planes, _reflect_indices(shape[-2], pad), axis=rank - 2)
    return tf.gather(out, _reflect_indices(shape[-1], pad), axis=rank - 1)


def filter_planes(planes: tf.Tensor, kernels: tf.Tensor) -> tf.Tensor:
    """`filter2d` on channel-first planes: `[N, C, H, W]` with `[N, K, K]` kernels -> `[N, C, H, W]`."""
    k = kernels.shape[-1]
    if k is None or k % 2 == 0:
        raise ValueError(f"filter2d needs odd, static kernel sizes. Received: kernels.shape={kernels.shape}")
    pad = k // 2
    shape = tf.shape(planes)
    h, w = shape[2], shape[3]
    padded = reflect_pad_planes(planes, pad)
    length = tf.stack([_fft_length(h + 2 * pad), _fft_length(w + 2 * pad)])
    spectrum = tf.signal.rfft2d(padded, fft_length=length)
    kernel_spectrum = tf.signal.rfft2d(kernels, fft_length=length)[:, None]
    full = tf.signal.irfft2d(spectrum * kernel_spectrum, fft_length=length)
    # Circular convolution: output (i, j) of the padded image sits at (i + 2p, j + 2p).
    return full[:, :, 2 * pad : 2 * pad + h, 2 * pad : 2 * pad + w]


def filter2d(images: tf.Tensor, kernels: tf.Tensor) -> tf.Tensor:
    """Filters each image with its own kernel, reflect-padded, keeping the size (BasicSR's `filter2D`).

    Args:
      images: `[N, H, W, C]` float32.
      kernels: `[N, K, K]` float32 with K odd, half-turn symmetric (so correlation = convolution).

    Returns:
      `[N, H, W, C]` float32.
    """
    out = filter_planes(tf.transpose(images, [0, 3, 1, 2]), kernels)
    return tf.transpose(out, [0, 2, 3, 1])
