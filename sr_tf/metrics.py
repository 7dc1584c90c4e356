"""PSNR and SSIM per image, computed the way super-resolution papers report them.

The convention (BasicSR's `calculate_psnr` / `calculate_ssim`, and the MATLAB code of most papers):

* Values are compared on the 8-bit scale: inputs in `[0, max_val]` are mapped to `[0, 255]`
  first, so the peak in PSNR is 255 and SSIM's constants are `C1 = (0.01 * 255)**2`,
  `C2 = (0.03 * 255)**2`. This gives the same numbers as working in `[0, max_val]` with
  `max_val` as the peak.
* `y_channel=True` compares only the luma of BT.601 as MATLAB's `rgb2ycbcr` computes it
  (`Y = 16 + 65.481 R + 128.553 G + 24.966 B` for R, G, B in [0, 1], so Y lies in [16, 235]).
  Papers report "PSNR-Y / SSIM-Y" this way.
* Greyscale images are compared on their grey values (published tables do so: a grey image
  expanded to RGB and scored on the 16-235 Y would gain ~1.3 dB); `rgb_to_gray` gives the
  grey value of an RGB output (full-range BT.601 luma, exact for R = G = B).
* `crop_border` pixels are removed on every side before comparing; papers use the scale
  factor (4 for x4).
* SSIM uses an 11x11 Gaussian window with sigma 1.5, 'valid' filtering (no padding), and the
  mean of the SSIM map; for RGB the mean over the three channels.

Inputs are not rounded: give 8-bit quantised images (as saved files are) to reproduce numbers
computed from PNG files. Computation is in float64 like BasicSR; results are float32.

Value ranges: `max_val=None` means 255 for uint8, 65535 for uint16 and 1.0 for floating-point
inputs (float images are expected in [0, 1]); pass `max_val` explicitly for anything else,
e.g. `max_val=255` for float images in [0, 255].

All functions take TF tensors or NumPy arrays, `[H, W, C]` (one image -> a scalar) or
`[N, H, W, C]` (a batch -> `[N]` values), and work inside `tf.function` (e.g. a Keras
`test_step`). Identical images give PSNR `+inf` (no error, no NaN).

Colour difference: `ciede2000` (CIE 142-2001) of CIELAB values and `rgb_to_lab` (sRGB, D65), in
NumPy float64, checked against Sharma, Wu and Dalal's published test pairs; `mean_ciede2000` of
two sRGB images (lower is better; about 1 is just noticeable).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# MATLAB rgb2ycbcr / BT.601 luma weights for R, G, B in [0, 1] giving Y in [16, 235].
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0
# The same luma at full range (the weights above / 219): a grey pixel R = G = B = v gives v.
GRAY_WEIGHTS = (0.299, 0.587, 0.114)

SSIM_WINDOW_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

_PEAK = 255.0  # everything is compared on the 8-bit scale


def default_max_val(dtype) -> float:
    """The peak value assumed for images of `dtype` when `max_val` is not given.

    255 for uint8, 65535 for uint16, 1.0 for floating point. Raises ValueError for other
    dtypes (pass `max_val` explicitly).
    """
    dtype = tf.as_dtype(dtype)
    if dtype == tf.uint8:
        return 255.0
    if dtype == tf.uint16:
        return 65535.0
    if dtype.is_floating:
        return 1.0
    raise ValueError(
        f"Cannot tell the value range of images of dtype {dtype.name}: pass `max_val`. "
        f"Received: dtype={dtype.name}"
    )


def _resolve_max_val(dtype, max_val) -> float:
    if max_val is None:
        return default_max_val(dtype)
    value = float(max_val)
    if not value > 0 or not np.isfinite(value):
        raise ValueError(f"`max_val` must be a positive finite number. Received: max_val={max_val!r}")
    return value


def rgb_to_y(images, max_val: float | None = None) -> tf.Tensor:
    """BT.601 luma as MATLAB's `rgb2ycbcr` computes it, on the 8-bit scale.

    Args:
      images: `[..., 3]` RGB, tensor or NumPy array, values in `[0, max_val]`.
      max_val: the peak of the input range (None: from the dtype, see `default_max_val`).

    Returns:
      `[..., 1]` Y in `[16, 235]` (white -> 235, black -> 16, pure red -> 81.481), not rounded;
      float64 for float64 input, float32 otherwise.
    """
    images = tf.convert_to_tensor(images)
    if images.shape.rank is not None and images.shape[-1] is not None and images.shape[-1] != 3:
        raise ValueError(
            f"rgb_to_y needs RGB images with 3 channels in the last axis. Received: shape={images.shape}"
        )
    peak = _resolve_max_val(images.dtype, max_val)
    dtype = tf.float64 if images.dtype == tf.float64 else tf.float32
    rgb = tf.cast(images, dtype) / tf.constant(peak, dtype)
    weights = tf.constant(Y_WEIGHTS, dtype)
    return tf.reduce_sum(rgb * weights, axis=-1, keepdims=True) + tf.constant(Y_OFFSET, dtype)


def rgb_to_gray(images, max_val: float | None = None) -> tf.Tensor:
    """Full-range BT.601 luma `0.299 R + 0.587 G + 0.114 B`, on the 8-bit scale.

    How an RGB output is compared with a greyscale ground truth: a grey pixel (R = G = B = v)
    maps to v, so a grey output scores exactly as its grey values would.

    Args:
      images: `[..., 3]` RGB, values in `[0, max_val]` (None: from the dtype, see `default_max_val`).

    Returns:
      `[..., 1]` float64 in `[0, 255]`, not rounded.
    """
    images = tf.convert_to_tensor(images)
    if images.shape.rank is not None and images.shape[-1] is not None and images.shape[-1] != 3:
        raise ValueError(f"rgb_to_gray needs RGB images with 3 channels in the last axis. Received: shape={images.shape}")
    peak = _resolve_max_val(images.dtype, max_val)
    rgb = tf.cast(images, tf.float64) * (_PEAK / peak)
    return tf.reduce_sum(rgb * tf.constant(GRAY_WEIGHTS, tf.float64), axis=-1, keepdims=True)


def _prepare(a, b, max_val, crop_border: int, y_channel: bool, min_size: int, name: str):
    """Checks a pair and returns `([N, H, W, C] float64 in [0, 255]) * 2` and whether batched."""
    a = tf.convert_to_tensor(a)
    b = tf.convert_to_tensor(b)
    if a.dtype != b.dtype and not (a.dtype.is_floating and b.dtype.is_floating):
        raise ValueError(
            f"{name}: both images must have the same dtype (or both be floating point, e.g. float16 "
            f"and float32). Received: a.dtype={a.dtype.name}, b.dtype={b.dtype.name}"
        )
    if a.shape.rank not in (3, 4) or b.shape.rank != a.shape.rank:
        raise ValueError(
            f"{name}: images must both be [H, W, C] or both be [N, H, W, C]. "
            f"Received: a.shape={a.shape}, b.shape={b.shape}"
        )
    if not a.shape.is_compatible_with(b.shape):
        raise ValueError(f"{name}: the two images differ in shape. Received: a.shape={a.shape}, b.shape={b.shape}")
    if isinstance(crop_border, bool) or int(crop_border) != crop_border or crop_border < 0:
        raise ValueError(f"{name}: `crop_border` must be an integer >= 0. Received: crop_border={crop_border!r}")
    crop_border = int(crop_border)
    channels = a.shape[-1] if a.shape[-1] is not None else b.shape[-1]
    if y_channel and channels is not None and channels != 3:
        raise ValueError(
            f"{name}: y_channel=True needs RGB images (3 channels). Received: a.shape={a.shape}, b.shape={b.shape}"
        )
    for axis in (-3, -2):
        size = a.shape[axis] if a.shape[axis] is not None else b.shape[axis]
        if size is not None and size - 2 * crop_border < min_size:
            raise ValueError(
                f"{name}: images of {size} pixels along axis {axis} are too small for crop_border="
                f"{crop_border} (need at least {min_size} pixels left after cropping). "
                f"Received: a.shape={a.shape}, b.shape={b.shape}"
            )
    peak = _resolve_max_val(a.dtype, max_val)

    batched = a.shape.rank == 4
    if not batched:
        a, b = a[tf.newaxis], b[tf.newaxis]
    checks = [
        tf.debugging.assert_equal(
            tf.shape(a), tf.shape(b), message=f"{name}: the two images differ in shape"
        )
    ]
    if y_channel:
        checks.append(
            tf.debugging.assert_equal(tf.shape(a)[-1], 3, message=f"{name}: y_channel=True needs 3 channels")
        )
    size_left = tf.shape(a)[1:3] - 2 * crop_border
    checks.append(
        tf.debugging.assert_greater_equal(
            size_left, min_size, message=f"{name}: images too small for crop_border={crop_border}"
        )
    )
    with tf.control_dependencies(checks):
        scale = tf.constant(_PEAK / peak, tf.float64)
        a = tf.cast(a, tf.float64) * scale
        b = tf.cast(b, tf.float64) * scale
    if y_channel:
        a = rgb_to_y(a, max_val=_PEAK)
        b = rgb_to_y(b, max_val=_PEAK)
    if crop_border:
        a = a[:, crop_border:-crop_border, crop_border:-crop_border, :]
        b = b[:, crop_border:-crop_border, crop_border:-crop_border, :]
    return a, b, batched


def psnr(a, b, *, max_val: float | None = None, crop_border: int = 0, y_channel: bool = False) -> tf.Tensor:
    """Peak signal-to-noise ratio in dB, per image.

    Args:
      a, b: images of the same shape and dtype (or both floating point), `[H, W, C]` or
        `[N, H, W, C]`, values in `[0, max_val]`; C is 3 (RGB) or, without `y_channel`, any
        count (e.g. 1 for gray).
      max_val: peak of the input range (None: 255 for uint8, 65535 for uint16, 1.0 for floats).
      crop_border: pixels removed on each side before comparing (papers: the scale factor).
      y_channel: compare the BT.601 luma (`rgb_to_y`) instead of all channels.

    Returns:
      float32 PSNR, a scalar for one image or `[N]` for a batch; `+inf` where the images are
      identical after cropping.

    Raises:
      ValueError: shapes differ, dtypes differ (other than two float types), `crop_border` leaves
        nothing, or y_channel without RGB.
    """
    a, b, batched = _prepare(a, b, max_val, crop_border, y_channel, min_size=1, name="psnr")
    mse = tf.reduce_mean(tf.math.squared_difference(a, b), axis=[1, 2, 3])
    # 255**2 / 0 is +inf in IEEE arithmetic, so identical images give +inf, not an error.
    values = tf.constant(10.0, tf.float64) * _log10(tf.constant(_PEAK**2, tf.float64) / mse)
    values = tf.cast(values, tf.float32)
    return values if batched else values[0]


def ssim(a, b, *, max_val: float | None = None, crop_border: int = 0, y_channel: bool = False) -> tf.Tensor:
    """Structural similarity (Wang et al. 2004) per image, as BasicSR's `calculate_ssim`.

    11x11 Gaussian window (sigma 1.5), 'valid' filtering, `C1 = (0.01*255)**2`,
    `C2 = (0.03*255)**2` on the 8-bit scale, mean of the SSIM map, then the mean over channels.

    Args:
      a, b: images of the same shape and dtype (or both floating point), `[H, W, C]` or
        `[N, H, W, C]`, values in `[0, max_val]`; at least 11x11 after `crop_border`.
      max_val: peak of the input range (None: 255 for uint8, 65535 for uint16, 1.0 for floats).
      crop_border: pixels removed on each side before comparing (papers: the scale factor).
      y_channel: compare the BT.601 luma (`rgb_to_y`) instead of all channels.

    Returns:
      float32 SSIM (at most 1), a scalar for one image or `[N]` for a batch.

    Raises:
      ValueError: shapes or (non-float) dtypes differ, images too small, or y_channel without RGB.
    """
    a, b, batched = _prepare(a, b, max_val, crop_border, y_channel, min_size=SSIM_WINDOW_SIZE, name="ssim")
    # Channels become images: [N, H, W, C] -> [N * C, H, W, 1], so one 2-D filter serves all.
    shape = tf.shape(a)
    n, channels = shape[0], shape[3]

    def per_channel(x):
        x = tf.transpose(x, [0, 3, 1, 2])
        return tf.reshape(x, tf.stack([n * channels, shape[1], shape[2], 1]))

    a, b = per_channel(a), per_channel(b)
    c1 = (SSIM_K1 * _PEAK) ** 2
    c2 = (SSIM_K2 * _PEAK) ** 2
    mu_a, mu_b = _gaussian_filter(a), _gaussian_filter(b)
    mu_aa, mu_bb, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a = _gaussian_filter(a * a) - mu_aa
    var_b = _gaussian_filter(b * b) - mu_bb
    cov_ab = _gaussian_filter(a * b) - mu_ab
    ssim_map = ((2 * mu_ab + c1) * (2 * cov_ab + c2)) / ((mu_aa + mu_bb + c1) * (var_a + var_b + c2))
    per_image_channel = tf.reshape(tf.reduce_mean(ssim_map, axis=[1, 2, 3]), tf.stack([n, channels]))
    values = tf.cast(tf.reduce_mean(per_image_channel, axis=1), tf.float32)
    return values if batched else values[0]


def gaussian_window_1d(size: int = SSIM_WINDOW_SIZE, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The normalised 1-D Gaussian (as OpenCV's `getGaussianKernel`); SSIM's 2-D window is its outer product."""
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(coords**2) / (2.0 * sigma**2))
    return g / g.sum()


def _gaussian_filter(x: tf.Tensor) -> tf.Tensor:
    """'valid' 11x11 Gaussian filtering of `[M, H, W, 1]` float64, as two 1-D passes (separable)."""
    g = tf.constant(gaussian_window_1d(), tf.float64)
    vertical = tf.reshape(g, [SSIM_WINDOW_SIZE, 1, 1, 1])
    horizontal = tf.reshape(g, [1, SSIM_WINDOW_SIZE, 1, 1])
    x = tf.nn.conv2d(x, vertical, strides=1, padding="VALID")
    return tf.nn.conv2d(x, horizontal, strides=1, padding="VALID")


def _log10(x: tf.Tensor) -> tf.Tensor:
    return tf.math.log(x) / tf.math.log(tf.constant(10.0, x.dtype))


# --- colour difference ------------------------------------------------------------------------
# sRGB (IEC 61966-2-1) to CIE XYZ with the D65 white, and that white (the reference of CIELAB here).
SRGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
D65_WHITE = (0.95047, 1.0, 1.08883)


def rgb_to_lab(images, max_val: float | None = None) -> np.ndarray:
    """CIELAB (D65) of sRGB pixels: `[..., 3]` in `[0, max_val]` -> `[..., 3]` float64 L* a* b*
    (L* in [0, 100]). `max_val` as in `psnr`. NumPy (not graph ops), as `ciede2000`."""
    images = np.asarray(images)
    peak = _resolve_max_val(tf.as_dtype(images.dtype), max_val)
    c = images.astype(np.float64) / peak
    linear = np.where(c <= 0.04045, c / 12.92, ((np.maximum(c, 0.04045) + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.asarray(SRGB_TO_XYZ).T / np.asarray(D65_WHITE)
    delta = 6.0 / 29.0
    f = np.where(xyz > delta**3, np.cbrt(xyz), xyz / (3 * delta**2) + 4.0 / 29.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def ciede2000(lab1, lab2) -> np.ndarray:
    """CIEDE2000 colour difference (CIE 142-2001) of CIELAB values `[..., 3]` -> `[...]` float64,
    kL = kC = kH = 1; about 1 is a just-noticeable difference.

    NumPy in float64, hues in radians, the cases in the order of Sharma, Wu and Dalal's reference
    implementation (2005): their test pairs whose hues are exactly 180 degrees apart depend on the
    last bit of `arctan2`, and TensorFlow's differs from the C library's NumPy and MATLAB use.
    """
    lab1, lab2 = np.asarray(lab1, np.float64), np.asarray(lab2, np.float64)
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    pi = np.pi
    c_mean7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(c_mean7 / (c_mean7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)

    def hue(ap, b):  # in [0, 2 pi); 0 where a' = b = 0
        h = np.arctan2(b, ap)
        return np.where(h < 0, h + 2 * pi, h)

    h1p, h2p = hue(a1p, b1), hue(a2p, b2)
    chroma0 = c1p * c2p == 0.0
    dh = h2p - h1p
    dh = np.where(dh > pi, dh - 2 * pi, np.where(dh < -pi, dh + 2 * pi, dh))
    dh = np.where(chroma0, 0.0, dh)
    dL, dC = L2 - L1, c2p - c1p
    dH = 2 * np.sqrt(c1p * c2p) * np.sin(dh / 2)
    L_mean, c_mean = (L1 + L2) / 2, (c1p + c2p) / 2
    h_sum, far = h1p + h2p, np.abs(h1p - h2p) > pi
    h_mean = np.where(far, np.where(h_sum < 2 * pi, h_sum + 2 * pi, h_sum - 2 * pi), h_sum) / 2
    h_mean = np.where(chroma0, h_sum, h_mean)
    t = (1 - 0.17 * np.cos(h_mean - pi / 6) + 0.24 * np.cos(2 * h_mean)
         + 0.32 * np.cos(3 * h_mean + pi / 30) - 0.20 * np.cos(4 * h_mean - 63 * pi / 180))
    d_theta = (30 * pi / 180) * np.exp(-(((180 / pi * h_mean - 275) / 25) ** 2))
    c_mean7 = c_mean**7
    r_c = 2 * np.sqrt(c_mean7 / (c_mean7 + 25.0**7))
    s_l = 1 + 0.015 * (L_mean - 50) ** 2 / np.sqrt(20 + (L_mean - 50) ** 2)
    s_c = 1 + 0.045 * c_mean
    s_h = 1 + 0.015 * c_mean * t
    r_t = -np.sin(2 * d_theta) * r_c
    terms = (dL / s_l) ** 2 + (dC / s_c) ** 2 + (dH / s_h) ** 2 + r_t * (dC / s_c) * (dH / s_h)
    return np.sqrt(np.maximum(terms, 0.0))


def mean_ciede2000(a, b, *, max_val: float | None = None) -> np.ndarray:
    """Mean CIEDE2000 over the pixels of sRGB images `[H, W, 3]` (a float) or `[N, H, W, 3]` (`[N]`),
    values in `[0, max_val]` (as `psnr`)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise ValueError(f"mean_ciede2000 wants two RGB images of one shape. Received: shapes {a.shape} and {b.shape}")
    return ciede2000(rgb_to_lab(a, max_val), rgb_to_lab(b, max_val)).mean(axis=(-2, -1))
