"""MATLAB-compatible bicubic `imresize`, as used to make DIV2K and the benchmark LR images.

MATLAB's `imresize(img, 1/s, 'bicubic')` (the default method) resizes each axis with
Keys' cubic kernel (a = -0.5). When downscaling it stretches the kernel by `s` (width
4 -> 4s) and scales it by 1/s, so it also low-pass filters (antialiasing). Input pixel
centres are mapped with `u = x * s + 0.5 * (1 - s)` (1-based), the weights of each output
pixel are normalised to sum to one, and taps outside the image are mirrored
(`[1..n, n..1]`, i.e. symmetric border handling). The output size is `ceil(n / s)`.

Each axis is one linear map, so we build it as a dense `[out, in]` matrix (taps that
mirror onto the same input pixel are summed) and apply it with two batched matmuls.
This is exact to float32 rounding (~1e-4/255 against a float64 reference) and on a
2-core CPU costs ~0.1 ms per 128x128 RGB patch. For images of 384+ pixels and integer
scales the matrices would be mostly zeros, so each axis is instead cut into blocks of 64
outputs that read consecutive (mirror-extended) rows: one small matmul per block, same
result, ~0.15 s instead of ~2 s for a x2 downscale of a 2040x1356 DIV2K image. `tf.image.resize(..., "bicubic",
antialias=True)` is identical in the interior but renormalises truncated kernels at
the borders instead of mirroring: up to 0.4/255 off on photos and >10/255 on noise
within 4 pixels of the edges, so it is not used.
"""

from __future__ import annotations

import math

import tensorflow as tf

_KERNEL_WIDTH = 4.0  # Keys cubic support, in input pixels at scale 1.


def _keys_cubic(x: tf.Tensor) -> tf.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's `cubic`)."""
    ax = tf.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    inner = 1.5 * ax3 - 2.5 * ax2 + 1.0
    outer = -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    return tf.where(ax <= 1.0, inner, tf.where(ax <= 2.0, outer, tf.zeros_like(ax)))


def _mirror(index: tf.Tensor, length: tf.Tensor) -> tf.Tensor:
    """0-based indices mirrored into `[0, length)` like MATLAB's `aux = [1:n, n:-1:1]`."""
    period = 2 * length
    m = tf.math.floormod(index, period)
    return tf.where(m < length, m, period - 1 - m)


def resize_matrix(
    in_length: int | tf.Tensor,
    out_length: int | tf.Tensor,
    scale: float,
    antialias: bool = True,
    prefilter: tf.Tensor | None = None,
    dtype: tf.DType = tf.float32,
) -> tf.Tensor:
    """The `[out_length, in_length]` matrix of MATLAB's bicubic resize along one axis.

    Args:
      in_length: input size along the axis (Python int or scalar int tensor).
      out_length: output size along the axis.
      scale: input pixels per output pixel (`s` = 4 for a x4 downscale, 0.5 for x2 upscaling).
      antialias: stretch the kernel when downscaling (MATLAB's default, `'Antialiasing', true`).
      prefilter: optional `[in_length, in_length]` matrix applied before resizing (e.g. a blur);
        the result is then `resize @ prefilter`.
      dtype: of the result (computed in float64; MATLAB uses double).

    Returns:
      `[out_length, in_length]` of `dtype`; each row sums to 1.
    """
    s = float(scale)
    if s <= 0:
        raise ValueError(f"resize_matrix needs a positive scale. Received: scale={scale!r}")
    shrink = s > 1.0 and antialias
    width = _KERNEL_WIDTH * s if shrink else _KERNEL_WIDTH
    taps = int(math.ceil(width)) + 2
    in_length = tf.cast(in_length, tf.int64)
    out_length = tf.cast(out_length, tf.int64)
    x = tf.cast(tf.range(1, out_length + 1), tf.float64)
    u = x * s + 0.5 * (1.0 - s)  # 1-based input coordinate of each output centre
    left = tf.floor(u - width / 2.0)
    index = left[:, None] + tf.range(taps, dtype=tf.float64)[None, :]
    distance = u[:, None] - index
    weights = _keys_cubic(distance / s) / s if shrink else _keys_cubic(distance)
    weights = weights / tf.reduce_sum(weights, axis=1, keepdims=True)
    columns = _mirror(tf.cast(index, tf.int64) - 1, in_length)
    rows = tf.broadcast_to(tf.range(out_length)[:, None], tf.shape(columns, out_type=tf.int64))
    coords = tf.stack([tf.reshape(rows, [-1]), tf.reshape(columns, [-1])], axis=1)
    matrix = tf.scatter_nd(coords, tf.reshape(weights, [-1]), tf.stack([out_length, in_length]))
    if prefilter is not None:
        matrix = tf.linalg.matmul(matrix, tf.cast(prefilter, tf.float64))
    return tf.cast(matrix, dtype)


def apply_separable(images: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """`out[n] = rows @ images[n] @ cols^T` per channel.

    Args:
      images: `[N, H, W, C]` float32.
      rows: `[H', H]` float32.
      cols: `[W', W]` float32.

    Returns:
      `[N, H', W', C]` float32.
    """
    shape = tf.shape(images)
    n, h, w, c = shape[0], shape[1], shape[2], shape[3]
    out_h, out_w = tf.shape(rows)[0], tf.shape(cols)[0]
    y = tf.linalg.matmul(rows, tf.reshape(images, [n, h, w * c]))  # [N, H', W*C]
    y = tf.linalg.matmul(cols, tf.reshape(y, [n * out_h, w, c]))  # [N*H', W', C]
    return tf.reshape(y, [n, out_h, out_w, c])


def imresize(images: tf.Tensor, scale: float, antialias: bool = True) -> tf.Tensor:
    """MATLAB `imresize(images, 1/scale, 'bicubic')` on float images, before any rounding.

    Args:
      images: `[H, W, C]` or `[N, H, W, C]` float32 (any range; [0, 1] for images).
      scale: input pixels per output pixel: 2, 3, 4 downscale; 0.5 upscales x2. The output
        size is `ceil(H / scale)` x `ceil(W / scale)`, as MATLAB computes it.
      antialias: MATLAB's `'Antialiasing'` option (on by default; only matters when shrinking).

    Returns:
      float32 with the input's rank; values are not clipped (bicubic overshoots slightly).
    """
    images = tf.convert_to_tensor(images)
    if images.dtype != tf.float32:
        raise TypeError(f"imresize expects float32 images. Received: dtype={images.dtype.name}")
    rank = images.shape.rank
    if rank not in (3, 4):
        raise ValueError(f"imresize expects [H, W, C] or [N, H, W, C]. Received: shape={images.shape}")
    batch = images if rank == 4 else images[None]
    if _use_banded(batch.shape[1], scale, antialias) or _use_banded(batch.shape[2], scale, antialias):
        # Large images: the dense matrices would multiply mostly zeros (x2 on 2040x1356: 10x the work).
        out = _banded_rows(batch, int(scale))
        out = tf.transpose(_banded_rows(tf.transpose(out, [0, 2, 1, 3]), int(scale)), [0, 2, 1, 3])
    else:
        h, w = tf.shape(batch)[1], tf.shape(batch)[2]
        out_h, out_w = _output_length(h, scale), _output_length(w, scale)
        rows = resize_matrix(h, out_h, scale, antialias)
        cols = resize_matrix(w, out_w, scale, antialias)
        out = apply_separable(batch, rows, cols)
    out = tf.ensure_shape(out, [None, _static_output(batch.shape[1], scale), _static_output(batch.shape[2], scale), batch.shape[3]])
    return out if rank == 4 else out[0]


def imresize_uint8(image, scale: float):
    """MATLAB's `imresize(image, 1/scale, 'bicubic')` of a uint8 image, byte for byte as MATLAB writes it.

    For uint8 input MATLAB resizes one axis at a time (rows first when both scales are equal),
    in double precision, and rounds each pass back to uint8 (half away from zero, saturated):
    the intermediate image is 8-bit too. Benchmark LR images (and the papers' "Bicubic" rows)
    were made this way; `imresize` above is the same resize without the roundings.

    Args:
      image: `[H, W]` or `[H, W, C]` uint8 (NumPy).
      scale: input pixels per output pixel: 2, 3, 4 downscale; 1/s upscales by s.

    Returns:
      uint8 NumPy array of `ceil(H / scale)` x `ceil(W / scale)` (x C).
    """
    import numpy as np

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"imresize_uint8 expects an [H, W] or [H, W, C] uint8 image. Received: {image.dtype} {image.shape}")

    def to_uint8(x):
        return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)

    def taps(matrix):
        """The nonzero weights of each row of a resize matrix: `(indices [out, K], weights [out, K])`."""
        k = int((matrix != 0).sum(axis=1).max())
        order = np.argsort(matrix == 0, axis=1, kind="stable")[:, :k]  # nonzero columns first
        return order, np.take_along_axis(matrix, order, axis=1)

    def resize_axis0(x, matrix):  # out[i] = sum_k w[i, k] * x[idx[i, k]]: the band only, in double
        idx, weights = taps(matrix)
        extra = (1,) * (x.ndim - 1)
        out = np.zeros((matrix.shape[0], *x.shape[1:]), np.float64)
        for k in range(idx.shape[1]):
            out += weights[:, k].reshape(-1, *extra) * x[idx[:, k]]
        return to_uint8(out)

    h, w = image.shape[:2]
    factor = 1.0 / scale
    if scale < 1 and abs(factor - round(factor)) < 1e-9:  # integer upscaling: exactly s * length
        out_h, out_w = h * round(factor), w * round(factor)
    else:
        out_h, out_w = _static_output(h, scale), _static_output(w, scale)
    rows = resize_matrix(h, out_h, scale, dtype=tf.float64).numpy()
    cols = resize_matrix(w, out_w, scale, dtype=tf.float64).numpy()
    x = resize_axis0(image, rows)  # rows first, as MATLAB orders equal scales
    x = resize_axis0(np.swapaxes(x, 0, 1), cols)
    return np.ascontiguousarray(np.swapaxes(x, 0, 1))


_BANDED_MIN_LENGTH = 384  # below this the dense matrices are faster (e.g. 128-pixel training patches)
_BLOCK = 64  # outputs per block of the banded form


def _use_banded(length: int | None, scale: float, antialias: bool) -> bool:
    # Unknown lengths (whole images inside tf.data) take the banded form too: it is exact for
    # any length, and the dense one would be ~10x slower on photo-sized images.
    return (length is None or length >= _BANDED_MIN_LENGTH) and float(scale).is_integer() and scale >= 2 and antialias


def _integer_taps(scale: int) -> tuple[list[float], int]:
    """For an integer downscale every output has the same weights: `(weights, 0-based offset of output 0's first tap)`."""
    width = _KERNEL_WIDTH * scale
    taps = int(math.ceil(width)) + 2
    u = scale + 0.5 * (1.0 - scale)  # output 1, 1-based
    left = math.floor(u - width / 2.0)

    def cubic(x):
        ax = abs(x)
        if ax <= 1:
            return 1.5 * ax**3 - 2.5 * ax**2 + 1.0
        return -0.5 * ax**3 + 2.5 * ax**2 - 4.0 * ax + 2.0 if ax <= 2 else 0.0

    weights = [cubic((u - (left + p)) / scale) / scale for p in range(taps)]
    total = sum(weights)
    return [v / total for v in weights], left - 1


def _banded_rows(images: tf.Tensor, scale: int) -> tf.Tensor:
    """Downscales axis 1 of `[N, H, W, C]` by an integer `scale`, block by block.

    Output `j` reads mirrored input rows `offset + j*scale + p` with the same weights for every
    `j`; a block of `_BLOCK` outputs reads `L = (_BLOCK - 1) * scale + taps` consecutive rows,
    so each block is one `[_BLOCK, L]` matmul instead of a slice of an `[out, H]` matmul.
    """
    weights, offset = _integer_taps(scale)
    taps = len(weights)
    span = (_BLOCK - 1) * scale + taps
    local = [[0.0] * span for _ in range(_BLOCK)]
    for j in range(_BLOCK):
        for p, v in enumerate(weights):
            local[j][j * scale + p] = v
    shape = tf.shape(images)
    n, h, w, c = shape[0], shape[1], shape[2], shape[3]
    out_h = (h + scale - 1) // scale
    blocks = (out_h + _BLOCK - 1) // _BLOCK
    rows = _mirror(tf.range(offset, offset + (blocks - 1) * _BLOCK * scale + span, dtype=tf.int64), tf.cast(h, tf.int64))
    frames = tf.signal.frame(tf.gather(images, rows, axis=1), span, _BLOCK * scale, axis=1)  # [N, blocks, span, W, C]
    y = tf.linalg.matmul(tf.constant(local, tf.float32), tf.reshape(frames, [n * blocks, span, w * c]))
    return tf.reshape(y, [n, blocks * _BLOCK, w, c])[:, :out_h]


def _output_length(length: tf.Tensor, scale: float) -> tf.Tensor:
    """`ceil(length / scale)`, exact for integer scales (MATLAB: `ceil(length * (1/scale))`)."""
    s = float(scale)
    if s.is_integer():
        return (length + int(s) - 1) // int(s)
    return tf.cast(tf.math.ceil(tf.cast(length, tf.float64) / s), tf.int32)


def _static_output(length: int | None, scale: float) -> int | None:
    if length is None:
        return None
    s = float(scale)
    return -(-length // int(s)) if s.is_integer() else int(math.ceil(length / s))
