"""The one tiler and the one channel splitter: every path that upscales an image runs these.

`sr-tf upscale` (`sr_tf.inference.Upscaler`, executing the ops eagerly, tile by tile) and the
exported SavedModel (`sr_tf.export.SRServingModule`, the same function traced into its graph) call
the same code, so a float32 model gives the same pixels through both.

Tiling (`upscale_tiled`): an axis of length L is cut into n = ceil(L / tile) cores of balanced sizes
(`L // n` or one more); each core is run with up to `tile_pad` pixels of real context on each side.
Around each cut, the two neighbouring outputs are blended with a linear ramp over
`2 * h` input pixels (`h = min(tile_pad // 2, (L // n) // 2)`), centred on the cut; elsewhere a pixel
comes from one tile alone. The weights of two neighbours sum to one, so with `tile_pad` at least twice
the model's receptive-field radius the result equals the untiled output (up to float rounding).

Channels (`upscale_channels`): `[H, W, C]` float in [0, 1] with C = 1 (grey), 2 (grey + alpha),
3 (RGB) or 4 (RGBA). Grey is repeated to RGB for the model and the output is turned back to grey with
ITU-R BT.601 luma (as PIL's "L" conversion). Alpha goes through the model as a grey image
("model", as Real-ESRGAN does) or is resized bicubically ("bicubic"); a fully opaque alpha stays
opaque without running the model.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

ALPHA_MODES = ("model", "bicubic")
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's "L" conversion


def _cuts(length, count):
    """Core boundaries `[count + 1]` int32: balanced sizes `length // count` or one more."""
    return (tf.range(count + 1) * length) // count


def _ramp(start, stop, cut_before, cut_after, half, scale):
    """Blend weights `[(stop - start) * scale]` float32 for output pixels of input span [start, stop).

    Rises from 0 to 1 across `[cut_before - half, cut_before + half]` (when there is a neighbour
    before), falls across `[cut_after - half, cut_after + half]` (neighbour after); 1 elsewhere.
    A flag of -1 for a cut means "no neighbour on that side".
    """
    s = tf.cast(scale, tf.float32)
    u = (tf.cast(tf.range((stop - start) * scale), tf.float32) + 0.5) / s + tf.cast(start, tf.float32)
    width = tf.cast(tf.maximum(2 * half, 1), tf.float32)
    ones = tf.ones_like(u)
    hb = tf.cast(half, tf.float32)
    rise = tf.clip_by_value((u - (tf.cast(cut_before, tf.float32) - hb)) / width, 0.0, 1.0)
    fall = tf.clip_by_value(((tf.cast(cut_after, tf.float32) + hb) - u) / width, 0.0, 1.0)
    # With no blend band (half == 0) the span is the core itself: every pixel is this tile's alone.
    has_band = half > 0
    w = tf.where(tf.logical_and(cut_before >= 0, has_band), tf.minimum(ones, rise), ones)
    return tf.where(tf.logical_and(cut_after >= 0, has_band), tf.minimum(w, fall), w)


def _grid(height, width, tile):
    """(rows, columns, row cuts `[rows + 1]`, column cuts `[columns + 1]`) of the tiles' cores."""
    ny, nx = (height + tile - 1) // tile, (width + tile - 1) // tile
    return ny, nx, _cuts(height, ny), _cuts(width, nx)


def tile_boxes(height, width, tile: int, tile_pad: int) -> tf.Tensor:
    """The input crops `upscale_tiled` runs `forward` on, in the order it runs them (row by row).

    Args:
      height, width: the image's size in pixels (Python ints or int32 scalars).
      tile, tile_pad: as `upscale_tiled`'s (`tile` >= 1).

    Returns:
      `[rows * columns, 4] int32`: (y0, y1, x0, x1) of each crop, its core with up to `tile_pad`
      pixels of context on each side (clipped at the border); `x[:, y0:y1, x0:x1, :]` is the tile.
      A caller that runs the tiles itself (e.g. as concurrent requests to a server) hands their
      outputs back to `upscale_tiled` through `forward`, in this order, to blend them.
    """
    if tile < 1 or tile_pad < 0:
        raise ValueError(f"tile must be >= 1 and tile_pad >= 0. Received: tile={tile}, tile_pad={tile_pad}")
    ny, nx, ys, xs = _grid(height, width, tile)
    k = tf.range(ny * nx)
    i, j = k // nx, k % nx
    return tf.stack([
        tf.maximum(tf.gather(ys, i) - tile_pad, 0), tf.minimum(tf.gather(ys, i + 1) + tile_pad, height),
        tf.maximum(tf.gather(xs, j) - tile_pad, 0), tf.minimum(tf.gather(xs, j + 1) + tile_pad, width),
    ], axis=1)


def upscale_tiled(
    x: tf.Tensor,
    forward: Callable[[tf.Tensor], tf.Tensor],
    scale: int,
    tile: int,
    tile_pad: int,
    on_tile: Callable[[int, int], None] | None = None,
) -> tf.Tensor:
    """Runs `forward` on tiles of `x` and blends them; works eagerly and inside a `tf.function`.

    Args:
      x: `[N, H, W, C] float32`.
      forward: `[N, h, w, C] -> [N, scale*h, scale*w, C']` float32 (a tensor or anything convertible).
      scale: the model's upscaling factor (a Python int).
      tile: core edge in input pixels; 0 runs `forward(x)` once.
      tile_pad: context pixels on each side of a core (clipped at the image's border).
      on_tile: `on_tile(done, total)` after each tile; called only when executing eagerly.

    Returns:
      `[N, scale*H, scale*W, C'] float32`.
    """
    if tile < 0 or tile_pad < 0:
        raise ValueError(f"tile and tile_pad must be >= 0. Received: tile={tile}, tile_pad={tile_pad}")
    x = tf.convert_to_tensor(x, tf.float32)
    h, w = tf.shape(x)[1], tf.shape(x)[2]

    def run(inputs):
        return tf.cast(tf.convert_to_tensor(forward(inputs)), tf.float32)

    if tile == 0:
        out = run(x)
        if on_tile is not None and tf.executing_eagerly():
            on_tile(1, 1)
        return out
    s = scale
    ny, nx, ys, xs = _grid(h, w, tile)
    boxes = tile_boxes(h, w, tile, tile_pad)
    hy = tf.minimum(tile_pad // 2, (h // ny) // 2)
    hx = tf.minimum(tile_pad // 2, (w // nx) // 2)
    eager = tf.executing_eagerly()
    total = ny * nx

    def region(cuts, i, n, half):
        """The output span of tile i (its core widened by `half` where it has a neighbour)."""
        lo = tf.where(i > 0, cuts[i] - half, cuts[i])
        hi = tf.where(i < n - 1, cuts[i + 1] + half, cuts[i + 1])
        return lo, hi

    # Pass 1: every tile's blended contribution over its region (shapes differ: no fixed element shape).
    pieces = tf.TensorArray(tf.float32, size=total, infer_shape=False, clear_after_read=False,
                            element_shape=tf.TensorShape(None))
    for k in tf.range(total):
        i, j = k // nx, k % nx
        y0, y1 = region(ys, i, ny, hy)
        x0, x1 = region(xs, j, nx, hx)
        py0, py1, px0, px1 = tf.unstack(boxes[k])
        out = run(x[:, py0:py1, px0:px1, :])
        out = out[:, (y0 - py0) * s:(y1 - py0) * s, (x0 - px0) * s:(x1 - px0) * s, :]
        wy = _ramp(y0, y1, tf.where(i > 0, ys[i], -1), tf.where(i < ny - 1, ys[i + 1], -1), hy, s)
        wx = _ramp(x0, x1, tf.where(j > 0, xs[j], -1), tf.where(j < nx - 1, xs[j + 1], -1), hx, s)
        mask = wy[:, None] * wx[None, :]
        # A lone tile's weights are all 1: skip the pass over the output (the product is the same).
        pieces = pieces.write(k, tf.cond(total > 1, lambda o=out, w=mask: o * w[None, :, :, None], lambda o=out: o))
        if on_tile is not None and eager:
            on_tile(int(k) + 1, int(total))

    # Pass 2: each row of tiles joined along the width, then the rows along the height. A tile keeps
    # its region minus the overlap with the neighbour before, to which that overlap is added.
    def join(get, n, half, axis):
        """Joins `get(0..n-1)` along `axis` (1: height, 2: width), adding the overlapping strips."""
        strip = 2 * half * s

        def joined():
            parts = tf.TensorArray(tf.float32, size=2 * n, infer_shape=False, element_shape=tf.TensorShape(None))
            for m in tf.range(n):
                cur, prev = _to_front(get(m), axis), get(tf.maximum(m - 1, 0))
                head = tf.where(m > 0, strip, 0)
                tail = tf.where(m < n - 1, strip, 0)
                prev = _to_front(_last(prev, head, axis), axis)  # only the strip is transposed
                parts = parts.write(2 * m, cur[:head] + prev)
                parts = parts.write(2 * m + 1, cur[head:tf.shape(cur)[0] - tail])
            return _from_front(parts.concat(), axis)

        # One piece is its own join: no transposes and no copies of the whole output.
        return tf.cond(n > 1, joined, lambda: get(0))

    rows = tf.TensorArray(tf.float32, size=ny, infer_shape=False, clear_after_read=False,
                          element_shape=tf.TensorShape(None))
    for i in tf.range(ny):
        rows = rows.write(i, join(lambda m, i=i: pieces.read(i * nx + m), nx, hx, 2))
    out = join(lambda m: rows.read(m), ny, hy, 1)
    return tf.reshape(out, [tf.shape(x)[0], h * s, w * s, tf.shape(out)[3]])


def _last(t: tf.Tensor, count, axis: int) -> tf.Tensor:
    """The last `count` entries of a 4-D tensor along `axis` (1 or 2)."""
    start = tf.shape(t)[axis] - count
    return t[:, start:] if axis == 1 else t[:, :, start:]


def _to_front(t: tf.Tensor, axis: int) -> tf.Tensor:
    """Moves `axis` of a 4-D tensor to the front (TensorArray.concat joins along the first axis)."""
    return tf.transpose(t, [axis] + [a for a in range(4) if a != axis])


def _from_front(t: tf.Tensor, axis: int) -> tf.Tensor:
    perm = [axis] + [a for a in range(4) if a != axis]
    return tf.transpose(t, [perm.index(a) for a in range(4)])


# --- pixels <-> [0, 1] and channels ------------------------------------------------------------
def to_unit(pixels: tf.Tensor, peak) -> tf.Tensor:
    """`pixels` in [0, peak] (any real dtype) -> float32 in [0, 1], clipped."""
    peak = tf.cast(peak, tf.float32)
    return tf.clip_by_value(tf.cast(pixels, tf.float32), 0.0, peak) / peak


def from_unit(y: tf.Tensor, peak) -> tf.Tensor:
    """float32 in [0, 1] -> whole numbers in [0, peak] (float32; round half to even)."""
    peak = tf.cast(peak, tf.float32)
    return tf.round(tf.clip_by_value(y * peak, 0.0, peak))


def rgb_to_grey(rgb: tf.Tensor) -> tf.Tensor:
    """`[..., 3] -> [..., 1]` with BT.601 luma weights."""
    rgb = tf.cast(rgb, tf.float32)
    return LUMA[0] * rgb[..., 0:1] + LUMA[1] * rgb[..., 1:2] + LUMA[2] * rgb[..., 2:3]


def upscale_channels(
    image: tf.Tensor,
    run_rgb: Callable[[tf.Tensor], tf.Tensor],
    scale: int,
    alpha_mode: str = "model",
) -> tf.Tensor:
    """`[H, W, C] float32 in [0, 1]` (C = 1, 2, 3, 4) -> `[sH, sW, C] float32` (not clipped).

    `run_rgb` maps `[N, H, W, 3] -> [N, sH, sW, 3]` float32 (e.g. tiled `forward`); the colour and, when
    present and not fully opaque with `alpha_mode="model"`, the alpha go through it in one call.
    Works eagerly and inside a `tf.function` (C may be unknown there).
    """
    if alpha_mode not in ALPHA_MODES:
        raise ValueError(f"alpha_mode must be one of {ALPHA_MODES}. Received: alpha_mode={alpha_mode!r}")
    image = tf.convert_to_tensor(image, tf.float32)
    c = tf.shape(image)[2]
    hs, ws = tf.shape(image)[0] * scale, tf.shape(image)[1] * scale
    color = tf.cond(c >= 3, lambda: image[:, :, :3], lambda: tf.tile(image[:, :, :1], [1, 1, 3]))
    has_alpha = tf.logical_or(tf.equal(c, 2), tf.equal(c, 4))
    alpha = image[:, :, c - 1:c]
    opaque = tf.reduce_all(tf.equal(alpha, 1.0))
    through_model = tf.logical_and(has_alpha, tf.logical_not(opaque))
    if alpha_mode != "model":
        through_model = tf.constant(False)
    batch = tf.cond(through_model, lambda: tf.stack([color, tf.tile(alpha, [1, 1, 3])]),
                    lambda: color[tf.newaxis])
    out = tf.cast(run_rgb(batch), tf.float32)
    main = tf.cond(c >= 3, lambda: out[0], lambda: rgb_to_grey(out[0]))

    def alpha_out():
        if alpha_mode == "model":
            return tf.cond(opaque, lambda: tf.ones([hs, ws, 1]), lambda: rgb_to_grey(out[-1]))
        resized = tf.image.resize(alpha[tf.newaxis], [hs, ws], method="bicubic", antialias=True)[0]
        return tf.cond(opaque, lambda: tf.ones([hs, ws, 1]), lambda: resized)

    return tf.cond(has_alpha, lambda: tf.concat([main, alpha_out()], axis=-1), lambda: main)
