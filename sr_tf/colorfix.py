"""Colour fix: the colours of a model's output taken from the bicubic-upscaled input.

GAN super-resolution models shift colours (Real-ESRGAN issues #285, #246, #558; ESRGAN #42).
Both fixes keep the model's detail and replace what carries the colour by the bicubic upscale of
the model's own input, as StableSR's `colorfix.py` does:

* `wavelet`: the output's low frequencies. Five levels of the à-trous (dilated) 3x3 binomial blur
  with dilations 1, 2, 4, 8, 16 and edge-replicated borders (StableSR's `wavelet_blur`); the output's
  high frequencies (output minus its five-times-blurred self) are added to the reference's blurred
  self: `out - blur5(out) + blur5(ref)`. Structures coarser than about 32 output pixels take the
  reference's colour.
* `adain`: per image and channel, the output's mean and standard deviation over the pixels become
  the reference's (adaptive instance normalisation): `(out - mean(out)) / std(out) * std(ref) +
  mean(ref)`, std from the unbiased variance plus 1e-5 (StableSR's `calc_mean_std`). A constant
  colour offset of the model is removed exactly.

Functions run eagerly or inside a `tf.function` (so `sr_tf.export` embeds them in the SavedModel);
they apply to the whole upscaled image, after tiling, so tiles share one set of statistics.
TensorFlow is imported where used, so the CLI can offer `COLOR_FIXES` cheaply.
"""

from __future__ import annotations

COLOR_FIXES = ("none", "wavelet", "adain")
WAVELET_LEVELS = 5
ADAIN_EPS = 1e-5
_BINOMIAL = ((0.0625, 0.125, 0.0625), (0.125, 0.25, 0.125), (0.0625, 0.125, 0.0625))


def check_color_fix(method: str) -> str:
    """`method` if it is one of `COLOR_FIXES`; ValueError naming `color_fix` otherwise."""
    if method not in COLOR_FIXES:
        raise ValueError(f"`color_fix` must be one of {', '.join(COLOR_FIXES)}. Received: color_fix={method!r}")
    return method


def color_fix(output, source, method: str):
    """`output` with its colours taken from `source` upscaled bicubically to its size.

    Args:
      output: `[N, sH, sW, C] float32`, the model's output for `source` (not clipped; [0, 1] scale).
      source: `[N, H, W, C] float32`, the model's input, same scale.
      method: one of `COLOR_FIXES` ("none" returns `output`).

    Returns:
      `[N, sH, sW, C] float32`, not clipped.
    """
    import tensorflow as tf

    if check_color_fix(method) == "none":
        return output
    output = tf.convert_to_tensor(output, tf.float32)
    size = tf.shape(output)[1:3]
    reference = tf.image.resize(tf.convert_to_tensor(source, tf.float32), size, method="bicubic")
    return adain(output, reference) if method == "adain" else wavelet_reconstruction(output, reference)


def adain(output, reference):
    """Per image and channel, `output`'s mean and std over H, W replaced by `reference`'s
    (`[N, H, W, C] float32` both, same shape)."""
    import tensorflow as tf

    def stats(x):  # the unbiased variance, as torch's `var` in StableSR
        mean, var = tf.nn.moments(x, axes=[1, 2], keepdims=True)
        n = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)
        return mean, tf.sqrt(var * n / tf.maximum(n - 1.0, 1.0) + ADAIN_EPS)

    output, reference = tf.convert_to_tensor(output, tf.float32), tf.convert_to_tensor(reference, tf.float32)
    out_mean, out_std = stats(output)
    ref_mean, ref_std = stats(reference)
    return (output - out_mean) / out_std * ref_std + ref_mean


def wavelet_blur(x, dilation: int):
    """The 3x3 binomial blur of `[N, H, W, C] float32` with `dilation`, borders edge-replicated."""
    import tensorflow as tf

    def replicate(t, axis):
        n = tf.shape(t)[axis]
        index = tf.clip_by_value(tf.range(-dilation, n + dilation), 0, n - 1)
        return tf.gather(t, index, axis=axis)

    x = tf.convert_to_tensor(x, tf.float32)
    channels = tf.shape(x)[-1]
    kernel = tf.tile(tf.constant(_BINOMIAL, tf.float32)[:, :, None, None], [1, 1, channels, 1])
    padded = replicate(replicate(x, 1), 2)
    return tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID", dilations=[dilation, dilation])


def low_frequencies(x, levels: int = WAVELET_LEVELS):
    """`x` blurred `levels` times with dilations 1, 2, 4, ... (the wavelet decomposition's last low band)."""
    for level in range(levels):
        x = wavelet_blur(x, 2**level)
    return x


def wavelet_reconstruction(output, reference, levels: int = WAVELET_LEVELS):
    """`output`'s high frequencies plus `reference`'s low ones (`[N, H, W, C] float32`, same shape)."""
    return output - low_frequencies(output, levels) + low_frequencies(reference, levels)
