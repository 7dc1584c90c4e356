"""SRMD and SRMD-NF (Zhang, Zuo and Zhang, CVPR 2018): a plain conv net on the image and its degradation map.

The network sees the low-resolution RGB image concatenated with a degradation map: the blur
kernel's 15-dimensional PCA projection and (SRMD, not SRMD-NF) the noise level sigma / 255, each
stretched to a constant channel of the image's size. 3 + 15 (+ 1) channels go through `num_conv`
3x3 convolutions (ReLU after all but the last) and a pixel shuffle; there is no skip connection.

As srmd-ncnn-vulkan runs the published weights: the kernel is fixed to the bicubic degradation's
(`BICUBIC_KERNEL_PCA`, its shader's `degradation_vector`), and the image is edge-replicated by the
receptive-field radius (`num_conv` pixels, its `prepadding` of 12) before valid convolutions, so
the borders are the program's and no zero padding reaches the output.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.layers import (
    PixelShuffle,
    border_pad,
    to_output_dtype,
    validate_positive,
    validate_scale,
)

# The PCA projection of SRMD's bicubic-degradation kernel, as srmd-ncnn-vulkan's srmd_preproc.comp holds it.
BICUBIC_KERNEL_PCA = (
    -1.12360956e-08, -1.36899159e-08, 1.85637958e-02, 2.86066886e-08, 3.35292965e-02,
    8.37272935e-08, -2.54424009e-07, -3.16234976e-02, -1.35169253e-02, -1.10466090e-08,
    3.84753793e-02, 3.79465739e-08, -2.44916752e-01, -8.02213490e-01, -5.40549755e-01,
)
MAX_NOISE_LEVEL = 75.0  # SRMD was trained on noise levels 0-75 (srmd-ncnn-vulkan offers 0-10)
DEFAULT_NOISE_LEVEL = 3.0  # srmd-ncnn-vulkan's default `-n`


def _check_noise_level(noise_level) -> float:
    if isinstance(noise_level, bool) or not isinstance(noise_level, (int, float)) \
            or not 0 <= noise_level <= MAX_NOISE_LEVEL:
        raise ValueError(f"SRMD: `noise_level` must be a number in [0, {MAX_NOISE_LEVEL:g}] "
                         f"(sigma in 8-bit units). Received: noise_level={noise_level!r}")
    return float(noise_level)


@keras.saving.register_keras_serializable(package="sr_tf")
class SRMD(keras.Model):
    """SRMD: `[N, H, W, 3] float32 in [0, 1]` (+ noise level) -> `[N, s*H, s*W, 3] float32`, any H and W.

    `model(x)` uses the constructor's `noise_level`; `model(x, noise_level=v)` takes `v` as a
    scalar or one value per batch element (`[N]` or `[1]`, float, sigma of Gaussian noise in 8-bit
    units, 0-75). SRMD-NF (`noise_free=True`) has no noise input and refuses one.

    Args:
      scale: 2, 3 or 4.
      num_feat: body channels (published: 128).
      num_conv: 3x3 convolutions in all (published: 12); also the edge padding.
      noise_free: SRMD-NF (degradation map without the noise channel).
      noise_level: the noise level used when the call gives none (SRMD only).
      kernel_pca: the blur kernel's PCA projection (15 numbers; default: the bicubic kernel's).
    """

    def __init__(self, scale: int = 4, num_feat: int = 128, num_conv: int = 12, noise_free: bool = False,
                 noise_level: float = DEFAULT_NOISE_LEVEL, kernel_pca: tuple[float, ...] = BICUBIC_KERNEL_PCA,
                 **kwargs):
        super().__init__(**kwargs)
        validate_positive("SRMD", num_feat=num_feat)
        if not isinstance(num_conv, int) or num_conv < 2:
            raise ValueError(f"SRMD: `num_conv` must be an integer >= 2. Received: num_conv={num_conv!r}")
        if len(kernel_pca) != 15:
            raise ValueError(f"SRMD: `kernel_pca` must hold 15 numbers. Received: {len(kernel_pca)} of them")
        self.upscale = validate_scale("SRMD", scale)
        self.num_feat, self.num_conv, self.noise_free = int(num_feat), int(num_conv), bool(noise_free)
        self.noise_level = _check_noise_level(noise_level)
        self.kernel_pca = tuple(float(v) for v in kernel_pca)
        self.convs = [keras.layers.Conv2D(self.num_feat, 3, padding="valid", activation="relu", name=f"conv_{i}")
                      for i in range(self.num_conv - 1)]
        self.conv_last = keras.layers.Conv2D(3 * self.upscale**2, 3, padding="valid", name="conv_last")
        self.shuffle = PixelShuffle(self.upscale, name="pixel_shuffle")

    @property
    def scale(self) -> int:
        return self.upscale

    @property
    def accepts_noise_level(self) -> bool:
        """Whether `call` takes a `noise_level` (SRMD: yes; SRMD-NF: no)."""
        return not self.noise_free

    def build(self, input_shape):
        channels = 3 + 15 + (0 if self.noise_free else 1)
        shape = (None, None, None, channels)
        for conv in self.convs:
            conv.build(shape)
            shape = (None, None, None, self.num_feat)
        self.conv_last.build(shape)
        super().build(input_shape)

    def noise_per_image(self, noise_level, batch) -> tf.Tensor:
        """`noise_level` (None, a number, `[]`, `[1]` or `[N]`) as `[N] float32`, checked to lie in [0, 75]."""
        if noise_level is None:
            return tf.fill([batch], tf.constant(self.noise_level, tf.float32))
        if self.noise_free:
            raise ValueError("SRMD: an SRMD-NF model (noise_free=True) takes no noise_level. "
                             f"Received: noise_level={noise_level!r}")
        level = tf.reshape(tf.cast(noise_level, tf.float32), [-1])
        checks = [
            tf.debugging.assert_equal(
                tf.logical_or(tf.equal(tf.size(level), 1), tf.equal(tf.size(level), batch)), True,
                message="noise_level must hold one value, or one per image"),
            tf.debugging.assert_non_negative(level, message="noise_level must be >= 0"),
            tf.debugging.assert_less_equal(level, MAX_NOISE_LEVEL, message="noise_level must be <= 75"),
        ]
        with tf.control_dependencies(checks):
            return tf.broadcast_to(level, [batch])

    def degradation_input(self, x, noise_level=None) -> tf.Tensor:
        """`[N, H, W, 3]` -> `[N, H, W, 18 | 19]`: the image, the kernel's PCA and (SRMD) noise / 255."""
        shape = tf.shape(x)
        n, h, w = shape[0], shape[1], shape[2]
        maps = [tf.broadcast_to(tf.cast(tf.constant(self.kernel_pca), x.dtype), [n, h, w, 15])]
        if not self.noise_free:
            level = tf.cast(self.noise_per_image(noise_level, n) / 255.0, x.dtype)
            maps.append(tf.broadcast_to(level[:, None, None, None], [n, h, w, 1]))
        elif noise_level is not None:
            self.noise_per_image(noise_level, n)  # raises
        return tf.concat([x, *maps], axis=-1)

    def call(self, x, noise_level=None):
        x = tf.cast(x, self.compute_dtype)
        out = self.degradation_input(border_pad(x, *(self.num_conv,) * 4, "replicate"), noise_level)
        for conv in self.convs:
            out = conv(out)
        return to_output_dtype(self.shuffle(self.conv_last(out)))

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        s = self.upscale
        return (n, None if h is None else h * s, None if w is None else w * s, 3)

    def get_config(self):
        return {
            **super().get_config(),
            "scale": self.upscale,
            "num_feat": self.num_feat,
            "num_conv": self.num_conv,
            "noise_free": self.noise_free,
            "noise_level": self.noise_level,
            "kernel_pca": list(self.kernel_pca),
        }


def with_noise_level(model: SRMD, noise_level: float) -> SRMD:
    """A copy of an SRMD `model` (same weights) whose default noise level is `noise_level`.

    Raises:
      ValueError: `model` takes no noise level (SRMD-NF, or not an SRMD), or `noise_level` is out of range.
    """
    if not getattr(model, "accepts_noise_level", False):
        raise ValueError(f"`noise_level`: model {getattr(model, 'name', model)!r} takes no noise level "
                         "(only SRMD does; SRMD-NF is its noise-free variant)")
    _check_noise_level(noise_level)
    config = {**model.get_config(), "noise_level": float(noise_level)}
    copy = type(model).from_config(config)
    copy.build((None, None, None, 3))
    copy.set_weights(model.get_weights())
    return copy
