"""Building blocks shared by several architectures.

Pixel shuffle channel order: TensorFlow's `tf.nn.depth_to_space` reads output
pixel (i, j) of channel c from input channel `(i * r + j) * C + c`; PyTorch's
`nn.PixelShuffle` (and ncnn's PixelShuffle in mode 0) reads it from
`c * r * r + i * r + j`. Our layers use the TensorFlow order (the native,
fused op); importers of PyTorch/ncnn weights permute the channels of the conv
before the shuffle with `torch_to_tf_shuffle_permutation`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools

import keras
import numpy as np
import tensorflow as tf


def torch_to_tf_shuffle_permutation(channels: int, factor: int) -> np.ndarray:
    """Index array `p` with `tf_channels = torch_channels[..., p]`.

    For a conv feeding a pixel shuffle of `factor` that outputs `channels`
    channels: position `k * channels + c` in TensorFlow order holds PyTorch
    channel `c * factor**2 + k`, where `k = i * factor + j` is the sub-pixel.

    Returns:
      int64 array of shape `[channels * factor**2]`.
    """
    r2 = factor * factor
    k, c = np.meshgrid(np.arange(r2), np.arange(channels), indexing="ij")
    return (c * r2 + k).reshape(-1)


class LazyBuild(keras.layers.Layer):
    """A layer whose sublayers build on their first call: Keras' default `build` would trace `call`
    symbolically at every level of nesting, which took ~10 s for a tiny DAT. Weights of the layer's
    own go in an overriding `build` that calls `super().build(...)`."""

    def build(self, *args, **kwargs):
        self.built = True


@keras.saving.register_keras_serializable(package="sr_tf")
class PixelShuffle(keras.layers.Layer):
    """Sub-pixel upsampling: `[N, H, W, C * r * r] -> [N, H * r, W * r, C]` (TF channel order)."""

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        return x if self.factor == 1 else tf.nn.depth_to_space(x, self.factor)  # the op refuses 1

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        r = self.factor
        return (n, None if h is None else h * r, None if w is None else w * r, c // (r * r))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


ELEMENTWISE_FORMS = ("graph", "xla", "openvino", "onednn")
_ELEMENTWISE_FORM = contextvars.ContextVar("sr_tf_elementwise_form", default="graph")


@contextlib.contextmanager
def elementwise_form(form: str):
    """The form in which what is traced inside it computes `PReLU` (the values are the same in each).

    * "graph" (the default: training, Keras' own calls): TensorFlow ops in two passes.
    * "xla": one XLA-compiled kernel, for our own runtime (`sr_tf.backends.forward_fn`).
      TensorFlow's elementwise kernels make one pass over memory per op and are not vectorised for
      bfloat16; XLA fuses the chain into one vectorised loop, while the convolutions stay oneDNN's
      (XLA's own are slower on CPUs, see field notes). SavedModels are traced without it: TF
      Serving runs XLA kernels only with `--xla_cpu_compilation_enabled`.
    * "onednn" (what exported SavedModels hold): a PReLU between two convolutions (`conv_prelu_chain`,
      the compact model) is a oneDNN depthwise product and one `Maximum`, in any dtype. A lone PReLU
      in bfloat16: two 1x1 convolutions, the first fused with a ReLU (`[relu(x), relu(-x)]`, then
      `[I; -diag(alpha)]`), so TensorFlow's CPU runs no elementwise kernel for it, only oneDNN's
      convolutions (vectorised for bfloat16); in other dtypes as "graph".
    * "openvino": Keras' `relu(x) - alpha * relu(-x)`, the pattern OpenVINO's converter recognises
      and fuses into its convolutions (it does not recognise the two-pass form: 6x slower there).
    """
    if form not in ELEMENTWISE_FORMS:
        raise ValueError(f"form must be one of {ELEMENTWISE_FORMS}. Received: form={form!r}")
    token = _ELEMENTWISE_FORM.set(form)
    try:
        yield
    finally:
        _ELEMENTWISE_FORM.reset(token)


def _prelu(x: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    return tf.where(x > 0, x, alpha * x)


def _prelu_keras(x: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    return tf.nn.relu(x) + (-alpha) * tf.nn.relu(-x)


def _prelu_onednn(x: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """PReLU as two 1x1 convolutions: `[relu(y), relu(-y)]`, then `relu(y) * 1 + relu(-y) * -alpha`.

    One of the two products is zero, the other `y` or `alpha * y` rounded once, so the values are
    those of `where(y > 0, y, alpha * y)` for any slopes (a non-finite `y` spreads NaN over its
    pixel's channels: 0 * inf). bfloat16 only, with one slope per channel; otherwise `_prelu`:
    float32's elementwise kernels are vectorised, and there the two passes were faster (compact x4
    SavedModel, 256x256, 2-core AMX Xeon: 0.327 s against 0.407 s with the convolutions).
    """
    per_channel = x.shape.rank == 4 and alpha.shape.rank == 3 and alpha.shape[0] == 1 and alpha.shape[1] == 1
    if x.dtype != tf.bfloat16 or not per_channel:
        return _prelu(x, alpha)
    channels = alpha.shape[2]
    eye = tf.eye(channels, dtype=x.dtype)
    slopes = tf.reshape(alpha, [channels])
    split = tf.concat([eye, -eye], 1)[None, None]  # [1, 1, C, 2C]
    # A zero bias computed from the weights: grappler drops a constant one, and with it the
    # Conv2D + BiasAdd + Relu fusion (a bare Relu is TensorFlow's slow bfloat16 kernel again).
    zero = tf.concat([slopes, slopes], 0) * 0
    parts = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, split, 1, "VALID"), zero))
    merge = tf.concat([eye, -tf.linalg.diag(slopes)], 0)[None, None]  # [1, 1, 2C, C]
    return tf.nn.conv2d(parts, merge, 1, "VALID")


_PRELU = {"graph": _prelu, "xla": tf.function(_prelu, jit_compile=True), "openvino": _prelu_keras,
          "onednn": _prelu_onednn}


@keras.saving.register_keras_serializable(package="sr_tf")
class PReLU(keras.layers.PReLU):
    """PyTorch's `nn.PReLU(num_parameters=C)`: one slope per channel, `[N, H, W, C] -> [N, H, W, C]`.

    `keras.layers.PReLU` (same weights, same `alpha` variable, same config) computed as
    `where(x > 0, x, alpha * x)`: the values of Keras' `relu(x) - alpha * relu(-x)` (the same
    products, bit for bit, up to the sign of zero) in two elementwise passes instead of five, and in
    one XLA kernel under `elementwise_form("xla")`. It matters on CPUs under bfloat16, where TensorFlow's
    elementwise kernels are not vectorised: a 17-layer 64-channel conv body at 256x256 on a 2-core
    AMX Xeon took 0.232 s with Keras' form, 0.123 s with this one, 0.067 s with it under XLA, and
    0.067 s with no activation at all (`benchmarks/upscale_vs_ncnn.py` times whole models).
    """

    def __init__(self, alpha_initializer=None, shared_axes=(1, 2), **kwargs):
        alpha_initializer = alpha_initializer or keras.initializers.Constant(0.25)  # nn.PReLU's start
        super().__init__(alpha_initializer=alpha_initializer, shared_axes=list(shared_axes), **kwargs)

    def call(self, inputs):
        alpha = tf.cast(self.alpha, inputs.dtype)
        return _PRELU[_ELEMENTWISE_FORM.get()](inputs, alpha)


def _plain_same_conv(layer) -> bool:
    return (type(layer) is keras.layers.Conv2D and layer.built
            and tuple(layer.strides) == (1, 1) and tuple(layer.dilation_rate) == (1, 1) and layer.groups == 1
            and layer.padding == "same" and layer.data_format == "channels_last" and layer.use_bias
            and layer.activation in (None, keras.activations.linear))


def conv_prelu_chain(x: tf.Tensor, convs, prelus) -> tf.Tensor:
    """`convs[n](prelus[n-1](convs[n-1](... prelus[0](convs[0](x)))))`: 3x3-style convolutions
    (`keras.layers.Conv2D`, stride 1, "same", with bias) with an activation between each two.

    `[N, H, W, Cin] -> [N, H, W, Cout]` in `x`'s dtype. Under `elementwise_form("onednn")` (exported
    SavedModels) each PReLU is one oneDNN depthwise 1x1 product and one `Maximum`, the same values:
    `max(y, alpha * y)` is `where(y > 0, y, alpha * y)` for a slope `alpha <= 1`, and a channel with
    `alpha > 1` is computed negated (`max(-y, -alpha * y) = -prelu(y)`), its sign folded into the
    weights: the producing convolution's kernel and bias, and the consuming convolution's input
    channels, are multiplied by -1 (exact), so every product and sum is the plain chain's, bit for bit
    (up to the sign of zero; a slope of exactly 0 times an infinity may give NaN where the plain
    form gives the infinity). It replaces TensorFlow's elementwise PReLU kernels, unvectorised for
    bfloat16, and in float32 one of their passes. The realesr-animevideov3 x4 SavedModel at 256x256
    (2-core AMX Xeon, alternating calls) took 0.080 s instead of 0.089 s in bfloat16 (against the
    two 1x1 convolutions of a lone PReLU) and 0.267 s instead of 0.296 s in float32 (two passes).
    Our runtime's XLA PReLU kernels (`elementwise_form("xla")`) stay faster there (bfloat16 0.079 s
    against 0.089 s with this form). Other forms, activations other than per-channel `PReLU`s, or
    layers outside that shape: the layers' own calls.
    """
    if len(convs) != len(prelus) + 1:
        raise ValueError(f"conv_prelu_chain: `convs` must have one more layer than `prelus`. "
                         f"Received: {len(convs)} convs, {len(prelus)} prelus")
    per_channel = all(isinstance(p, PReLU) and p.built and tuple(p.alpha.shape[:2]) == (1, 1) for p in prelus)
    if _ELEMENTWISE_FORM.get() != "onednn" or not per_channel or not all(map(_plain_same_conv, convs)):
        for conv, act in zip(convs[:-1], prelus, strict=True):
            x = act(conv(x))
        return convs[-1](x)
    x, sign_in = tf.cast(x, convs[0].compute_dtype), None
    for conv, act in zip(convs, [*prelus, None], strict=True):
        kernel, bias = tf.cast(conv.kernel, x.dtype), tf.cast(conv.bias, x.dtype)
        if sign_in is not None:
            kernel = kernel * sign_in[:, None]
        if act is None:
            return tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME"), bias)
        alpha = tf.reshape(tf.cast(act.alpha, x.dtype), [-1])
        sign = tf.where(alpha > 1, tf.constant(-1, x.dtype), tf.constant(1, x.dtype))
        y = tf.nn.bias_add(tf.nn.conv2d(x, kernel * sign, 1, "SAME"), bias * sign)
        x = tf.maximum(y, tf.nn.depthwise_conv2d(y, tf.reshape(alpha, [1, 1, -1, 1]), [1, 1, 1, 1], "VALID"))
        sign_in = sign


@functools.lru_cache(maxsize=16)
def _subpixel_kernel_index(size: int, in_ch: int, out_ch: int, factor: int) -> np.ndarray:
    """Where each entry of the low-resolution kernel of `conv_after_shuffle` comes from: an index
    into the flattened `[size, size, in_ch, out_ch]` kernel, or its length for a zero."""
    r, pad = factor, (size - 1) // 2
    half = (pad + r - 1) // r
    q = np.arange(-half, half + 1)
    sub = np.arange(r)
    # offsets (q, s: input sub-pixel, a: output sub-pixel) -> tap r*q + s - a + pad of the original kernel
    tap = r * q[:, None, None] + sub[None, :, None] - sub[None, None, :] + pad  # [taps, s, a]
    ty, tx = tap[:, None, :, None, :, None], tap[None, :, None, :, None, :]  # [qy, qx, sy, sx, a, b]
    valid = (ty >= 0) & (ty < size) & (tx >= 0) & (tx < size)
    c, o = np.arange(in_ch), np.arange(out_ch)
    flat = ((ty * size + tx)[..., None, None] * in_ch + c[:, None]) * out_ch + o  # [qy,qx,sy,sx,a,b,c,o]
    flat = np.where(valid[..., None, None], flat, size * size * in_ch * out_ch)
    # -> [qy, qx, (sy, sx, c), (a, b, o)]: TensorFlow's depth_to_space channel order on both sides
    taps = len(q)
    return flat.transpose(0, 1, 2, 3, 6, 4, 5, 7).reshape(taps, taps, r * r * in_ch, r * r * out_ch)


def conv_after_shuffle(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | None, factor: int) -> tf.Tensor:
    """`conv2d(depth_to_space(x, factor), kernel, "SAME") + bias`, computed before the shuffle.

    A stride-1 `k x k` convolution of a pixel-shuffled tensor equals, exactly (up to float
    rounding), a `k' x k'` convolution of the unshuffled tensor (`k' = 2 * ceil(pad / r) + 1`)
    with `r^2` times the channels on both sides, then the shuffle; zero padding maps onto zero
    padding. For the last convolution of a generator (few output channels at the output
    resolution, e.g. SRResNet's 9x9 conv to 3 channels) oneDNN runs the original shape at a
    fraction of its speed for wide convolutions; this form was 2.45x faster for forward +
    backward there, with the same weights.

    Args:
      x: `[N, h, w, r*r*C]` in the TensorFlow channel order of `depth_to_space`.
      kernel: `[k, k, C, Co]`, k odd. bias: `[Co]` or None. factor: r.

    Returns:
      `[N, r*h, r*w, Co]` in `x`'s dtype.
    """
    size, in_ch, out_ch = kernel.shape[0], kernel.shape[2], kernel.shape[3]
    index = _subpixel_kernel_index(int(size), int(in_ch), int(out_ch), int(factor))
    kernel = tf.cast(kernel, x.dtype)
    wide = tf.gather(tf.concat([tf.reshape(kernel, [-1]), tf.zeros([1], x.dtype)], 0), index)
    y = tf.nn.conv2d(x, wide, 1, "SAME")
    if bias is not None:
        y = y + tf.tile(tf.cast(bias, x.dtype), [factor * factor])
    return tf.nn.depth_to_space(y, factor)


def gelu(x: tf.Tensor) -> tf.Tensor:
    """torch's `nn.GELU()` (the exact erf form): `0.5 * x * (1 + erf(x / sqrt(2)))`.

    Written out rather than `tf.nn.gelu` (`erfc(-x / sqrt(2))`, a Neg more): after a conv it took
    0.65 ms where `tf.nn.gelu` took 1.5 ms on `[1, 64, 64, 128]` (AMD EPYC, 2 threads), and after a
    2-D MatMul oneDNN still fuses it (see `dense`).
    """
    return 0.5 * x * (1.0 + tf.math.erf(x * tf.cast(0.7071067811865476, x.dtype)))


def current_elementwise_form() -> str:
    """The `elementwise_form` in effect ("graph" outside any)."""
    return _ELEMENTWISE_FORM.get()


_GELU_XLA = tf.function(gelu, jit_compile=True)


def elementwise_gelu(x: tf.Tensor) -> tf.Tensor:
    """`gelu` where no op fuses it (after a convolution, a batch norm, a Keras Dense on a 3-D or 4-D
    input): one XLA kernel under `elementwise_form("xla")`, else `gelu`'s ops. The formula is the
    same; XLA's erf may round the last bit differently from TensorFlow's kernel. After a 2-D MatMul use
    `gelu` itself (oneDNN fuses it there, see `dense`)."""
    return _GELU_XLA(x) if _ELEMENTWISE_FORM.get() == "xla" else gelu(x)


def dense(layer: keras.layers.Dense, x: tf.Tensor, activation=None) -> tf.Tensor:
    """`activation(layer(x))` for a built Dense and `[..., C_in]` -> `[..., C_out]`, as one 2-D MatMul +
    BiasAdd (+ activation) that oneDNN's graph rewrite fuses into one op.

    Keras' Dense on a 3-D or 4-D input reshapes between its MatMul and BiasAdd, so nothing fuses; on
    SwinIR's MLP (`[4096, 60]`, hidden 120, exact GELU) the fused form took 20% less time (AMD EPYC,
    2 threads). `activation`: None or an activation oneDNN fuses (`gelu`, `tf.nn.relu`, ...).
    """
    shape = tf.shape(x)
    kernel = tf.cast(layer.kernel, x.dtype)
    y = tf.matmul(tf.reshape(x, [-1, kernel.shape[0]]), kernel)
    if x.dtype == tf.float16 and not tf.config.list_physical_devices("GPU"):
        # oneDNN's float16 MatMul with a fused bias ran 150x slower than the MatMul alone ([1024, 60] x
        # [60, 120]: 102 ms against 0.67 ms, AMX Xeon with AVX512-FP16; DAT-light took 11.6 s a call):
        # a reshape between them (to 3-D, which grappler cannot drop) keeps them apart (0.85 ms).
        y = tf.reshape(y, [1, -1, kernel.shape[1]])
    if layer.use_bias:
        y = tf.nn.bias_add(y, tf.cast(layer.bias, x.dtype))
    if activation is not None:
        y = activation(y)
    return tf.reshape(y, tf.concat([shape[:-1], [kernel.shape[1]]], 0))


def _mirror_indices(size: tf.Tensor, padded: tf.Tensor) -> tf.Tensor:
    idx = tf.range(padded)
    idx = tf.where(idx >= size, 2 * size - 1 - idx, idx)  # symmetric mirror at the far edge
    return tf.clip_by_value(idx, 0, size - 1)  # images smaller than the padding repeat their edge


def pad_to_multiple(x: tf.Tensor, multiple: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Pads `[N, H, W, C]` at the bottom/right (mirrored) so H and W are multiples of `multiple`.

    Works for any size, even 1x1. Returns the padded tensor and the original
    H and W (scalar int32 tensors), so callers can crop their output back.
    """
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    ph = h + (multiple - h % multiple) % multiple
    pw = w + (multiple - w % multiple) % multiple
    x = tf.gather(x, _mirror_indices(h, ph), axis=1)
    return tf.gather(x, _mirror_indices(w, pw), axis=2), h, w


def validate_scale(name: str, scale: int, allowed: tuple[int, ...] = (2, 3, 4)) -> int:
    if int(scale) != scale or int(scale) not in allowed:
        raise ValueError(f"{name} supports scales {allowed}. Received: scale={scale!r}")
    return int(scale)


def validate_positive(name: str, **values: int) -> None:
    for key, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: `{key}` must be a positive integer. Received: {key}={value!r}")


def to_output_dtype(x: tf.Tensor) -> tf.Tensor:
    """Generators return float32 (the usual choice under mixed precision)."""
    return tf.cast(x, "float32")


def small_kaiming() -> keras.initializers.Initializer:
    """BasicSR's `default_init_weights(scale=0.1)`: PyTorch `kaiming_normal_` (fan_in, gain sqrt(2))
    times 0.1, i.e. variance `2 * 0.01 / fan_in`. Keeps residual branches near zero at the start."""
    return keras.initializers.VarianceScaling(scale=0.02, mode="fan_in", distribution="untruncated_normal")


BORDERS = ("reflect", "replicate")


def _border_indices(size: tf.Tensor, before, after, mode: str) -> tf.Tensor:
    idx = tf.range(-before, size + after)
    if mode == "replicate":
        return tf.clip_by_value(idx, 0, size - 1)
    # reflect without repeating the edge (numpy's "reflect", ncnn's BORDER_REFLECT); images
    # smaller than the padding keep reflecting back and forth, so every size is defined.
    period = tf.maximum(2 * (size - 1), 1)
    m = tf.math.floormod(idx, period)
    return tf.where(m < size, m, period - m)


def border_pad(x: tf.Tensor, top, bottom, left, right, mode: str) -> tf.Tensor:
    """Pads `[N, H, W, C]` by mirroring ("reflect", edge not repeated) or repeating the edge ("replicate").

    The amounts may be Python ints or scalar int32 tensors; any H and W >= 1 work (`tf.pad`'s
    REFLECT needs H, W > padding).
    """
    if mode not in BORDERS:
        raise ValueError(f"border_pad: mode must be one of {BORDERS}. Received: mode={mode!r}")
    x = tf.gather(x, _border_indices(tf.shape(x)[1], top, bottom, mode), axis=1)
    return tf.gather(x, _border_indices(tf.shape(x)[2], left, right, mode), axis=2)


def crop_border(x: tf.Tensor, n: int) -> tf.Tensor:
    """Removes `n` pixels on every side of `[N, H, W, C]`."""
    return x[:, n:-n, n:-n, :] if n else x
