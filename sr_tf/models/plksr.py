"""PLKSR and RealPLKSR (Lee et al. 2024, "Partial Large Kernel CNNs for Efficient Super-Resolution").

A 3x3 conv, `n_blocks` PLK blocks, a 3x3 conv to `3 * scale**2` channels plus the input repeated
`scale**2` times (a nearest-neighbour skip), then a pixel shuffle. A PLK block is
`x + refine(attn(lk(channel_mixer(x))))`: the channel mixer is two convs around a GELU (CCM: 3x3 then
1x1; ICCM: 1x1 then 3x3; DCCM: 3x3 then 3x3), `lk` convolves only the first `int(dim * split_ratio)`
channels with one large `kernel_size` kernel (the rest pass through), `attn` multiplies by
`sigmoid(conv3x3(x))` (element-wise attention, `use_ea`) and `refine` is a 1x1 conv.

RealPLKSR (the community's real-world variant, as in spandrel) uses DCCM with Mish, and either a
channel LayerNorm (eps 1e-6) before the mixer (`layer_norm=True`) or a GroupNorm (`norm_groups`
groups, eps 1e-5) after `refine`. Its DySample upsampler is not implemented.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.channel_norms import channel_layer_norm
from sr_tf.models.layers import (
    PixelShuffle,
    gelu,
    to_output_dtype,
    validate_positive,
    validate_scale,
)

SCALES = (1, 2, 3, 4, 8)
CCM_TYPES = ("CCM", "ICCM", "DCCM")
_MIXER_KERNELS = {"CCM": (3, 1), "ICCM": (1, 3), "DCCM": (3, 3)}
REAL_LAYER_NORM_EPS = 1e-6
GROUP_NORM_EPS = 1e-5  # torch nn.GroupNorm's default


def _conv(filters: int, kernel: int, name: str) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, kernel, padding="same", name=name)


def _split_channels(dim: int, split_ratio: float, name: str) -> int:
    pdim = int(dim * split_ratio)
    if not 0 < pdim <= dim:
        raise ValueError(f"{name}: `split_ratio` must leave 1 to dim={dim} channels for the large kernel. "
                         f"Received: split_ratio={split_ratio!r}")
    return pdim


def mish(x):
    return x * tf.tanh(tf.nn.softplus(x))


@keras.saving.register_keras_serializable(package="sr_tf")
class PLKBlock(keras.layers.Layer):
    """`[N, H, W, dim] -> [N, H, W, dim]`; see the module docstring. `real=True` is RealPLKSR's block."""

    def __init__(self, dim: int, ccm_type: str = "CCM", kernel_size: int = 17, split_ratio: float = 0.25,
                 use_ea: bool = True, real: bool = False, layer_norm: bool = False, norm_groups: int = 4,
                 **kwargs):
        super().__init__(**kwargs)
        if ccm_type not in CCM_TYPES:
            raise ValueError(f"PLKSR: `ccm_type` must be one of {CCM_TYPES}. Received: ccm_type={ccm_type!r}")
        self.dim, self.ccm_type, self.kernel_size = int(dim), ccm_type, int(kernel_size)
        self.split_ratio, self.use_ea, self.real = float(split_ratio), bool(use_ea), bool(real)
        self.layer_norm, self.norm_groups = bool(layer_norm), int(norm_groups)
        self.pdim = _split_channels(self.dim, self.split_ratio, "PLKSR")
        k0, k2 = _MIXER_KERNELS[ccm_type]
        self.mixer_0 = _conv(2 * self.dim, k0, "channel_mixer_0")
        self.mixer_2 = _conv(self.dim, k2, "channel_mixer_2")
        self.lk = _conv(self.pdim, self.kernel_size, "lk")
        self.attn = _conv(self.dim, 3, "attn") if self.use_ea else None
        self.refine = _conv(self.dim, 1, "refine")
        self.pre_norm = channel_layer_norm(REAL_LAYER_NORM_EPS, "layer_norm") if real and layer_norm else None
        self.post_norm = (keras.layers.GroupNormalization(self.norm_groups, epsilon=GROUP_NORM_EPS, name="norm")
                          if real and not layer_norm else None)

    def call(self, x):
        skip = x
        if self.pre_norm is not None:
            x = self.pre_norm(x)
        x = self.mixer_0(x)
        x = mish(x) if self.real else gelu(x)
        x = tf.concat([self.lk(self._mixer_2_part(x, slice(None, self.pdim))),
                       self._mixer_2_part(x, slice(self.pdim, None))], axis=-1)
        if self.attn is not None:
            x = x * tf.sigmoid(self.attn(x))
        x = self.refine(x)
        if self.post_norm is not None:
            x = self.post_norm(x)
        return x + skip

    def build(self, input_shape):
        # mixer_2 is never called (see `_mixer_2_part`), so it is built here; the others build on first call
        self.mixer_2.build((None, None, None, 2 * self.dim))
        self.built = True

    def _mixer_2_part(self, x, channels: slice):
        """`self.mixer_2(x)[..., channels]`, computed as its own conv: slicing the kernel instead of the
        output saves two copies of the activations per block (11% of PLKSR's time, AMD EPYC)."""
        kernel = tf.cast(self.mixer_2.kernel[..., channels], x.dtype)
        return tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME"), tf.cast(self.mixer_2.bias[channels], x.dtype))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "ccm_type": self.ccm_type, "kernel_size": self.kernel_size,
                "split_ratio": self.split_ratio, "use_ea": self.use_ea, "real": self.real,
                "layer_norm": self.layer_norm, "norm_groups": self.norm_groups}


class _PLKNet(keras.Model):
    """Shared body: head conv, blocks, tail conv plus the repeated input, pixel shuffle."""

    _NAME = "PLKSR"

    def _build_net(self, dim, n_blocks, upscaling_factor, block_kwargs):
        validate_positive(self._NAME, dim=dim, n_blocks=n_blocks)
        self.dim, self.n_blocks = int(dim), int(n_blocks)
        self.upscaling_factor = validate_scale(self._NAME, upscaling_factor, SCALES)
        self.head = _conv(self.dim, 3, "feats_0")
        self.blocks = [PLKBlock(self.dim, name=f"feats_{i + 1}", **block_kwargs) for i in range(self.n_blocks)]
        self.tail = _conv(3 * self.upscaling_factor**2, 3, "feats_tail")
        self.shuffle = PixelShuffle(self.upscaling_factor, name="to_img")

    @property
    def scale(self) -> int:
        return self.upscaling_factor

    def call(self, x):
        out = self.head(x)
        for block in self.blocks:
            out = block(out)
        # torch repeats each channel scale**2 times (channel c * s**2 + k); in TF's depth_to_space order
        # (channel k * 3 + c) that is the input tiled.
        out = self.tail(out) + tf.tile(tf.cast(x, out.dtype), [1, 1, 1, self.upscaling_factor**2])
        return to_output_dtype(self.shuffle(out))


@keras.saving.register_keras_serializable(package="sr_tf")
class PLKSR(_PLKNet):
    """`[N, H, W, 3] float32 in [0, 1] -> [N, s*H, s*W, 3] float32 (about [0, 1])`, any H and W.

    Args:
      dim: feature width (published: 64; "tiny" 64 with 12 blocks).
      n_blocks: PLK blocks (published: 28; tiny 12).
      upscaling_factor: 1, 2, 3, 4 or 8.
      ccm_type: "CCM", "ICCM" or "DCCM" (the channel mixer's kernel sizes).
      kernel_size: the partial large kernel (published: 17; tiny 13).
      split_ratio: share of the channels the large kernel convolves (0.25).
      use_ea: element-wise attention.
    """

    def __init__(self, dim: int = 64, n_blocks: int = 28, upscaling_factor: int = 4, ccm_type: str = "CCM",
                 kernel_size: int = 17, split_ratio: float = 0.25, use_ea: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.ccm_type, self.kernel_size, self.split_ratio = ccm_type, int(kernel_size), float(split_ratio)
        self.use_ea = bool(use_ea)
        self._build_net(dim, n_blocks, upscaling_factor, dict(ccm_type=ccm_type, kernel_size=kernel_size,
                                                              split_ratio=split_ratio, use_ea=use_ea))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "n_blocks": self.n_blocks,
                "upscaling_factor": self.upscaling_factor, "ccm_type": self.ccm_type,
                "kernel_size": self.kernel_size, "split_ratio": self.split_ratio, "use_ea": self.use_ea}


@keras.saving.register_keras_serializable(package="sr_tf")
class RealPLKSR(_PLKNet):
    """`[N, H, W, 3] float32 in [0, 1] -> [N, s*H, s*W, 3] float32 (about [0, 1])`, any H and W.

    Args:
      dim, n_blocks, upscaling_factor, kernel_size, split_ratio, use_ea: as `PLKSR` (mixer always DCCM/Mish).
      layer_norm: a channel LayerNorm before each block's mixer instead of a GroupNorm after `refine`.
      norm_groups: the GroupNorm's groups (4; not stored in checkpoints).
    """

    _NAME = "RealPLKSR"

    def __init__(self, dim: int = 64, n_blocks: int = 28, upscaling_factor: int = 4, kernel_size: int = 17,
                 split_ratio: float = 0.25, use_ea: bool = True, layer_norm: bool = False, norm_groups: int = 4,
                 **kwargs):
        super().__init__(**kwargs)
        self.kernel_size, self.split_ratio, self.use_ea = int(kernel_size), float(split_ratio), bool(use_ea)
        self.layer_norm, self.norm_groups = bool(layer_norm), int(norm_groups)
        if not self.layer_norm and (self.norm_groups < 1 or int(dim) % self.norm_groups):
            raise ValueError(f"RealPLKSR: `norm_groups` must divide dim={dim}. Received: norm_groups={norm_groups!r}")
        self._build_net(dim, n_blocks, upscaling_factor, dict(
            ccm_type="DCCM", kernel_size=kernel_size, split_ratio=split_ratio, use_ea=use_ea, real=True,
            layer_norm=layer_norm, norm_groups=norm_groups))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "n_blocks": self.n_blocks,
                "upscaling_factor": self.upscaling_factor, "kernel_size": self.kernel_size,
                "split_ratio": self.split_ratio, "use_ea": self.use_ea, "layer_norm": self.layer_norm,
                "norm_groups": self.norm_groups}
