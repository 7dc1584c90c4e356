"""LPIPS-VGG against the lpips package (torch) with the same random VGG16 backbone and its own linear layers."""

import numpy as np
import pytest

from sr_tf.perceptual import LPIPS, linear_weights
from tests.checkpoints.oracle import lpips_package, state_of, torch


@pytest.fixture(scope="module")
def pair():
    """The lpips package's LPIPS-VGG on a seeded random backbone, and ours on the same weights."""
    lpips = lpips_package()
    t = torch()
    oracle = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False).eval()
    gen = t.Generator().manual_seed(0)
    with t.no_grad():  # He-scaled random weights, so that every layer's features still tell images apart
        for p in oracle.net.parameters():
            fan_in = p[0].numel() if p.ndim == 4 else 1
            p.copy_(t.randn(p.shape, generator=gen) * (np.sqrt(2 / fan_in) if p.ndim == 4 else 0.05))
    # lpips splits torchvision's `features` into slices that keep the layer indices: slice1.0 ... slice5.28
    backbone = {f"features.{k.split('.', 2)[1]}.{k.split('.', 2)[2]}": v for k, v in state_of(oracle.net).items()}
    return oracle, LPIPS.from_torchvision(backbone)


def run_oracle(oracle, a: np.ndarray, b: np.ndarray):
    """The package's LPIPS of `[N, H, W, 3]` float32 in [0, 1]: `([N] total, its five [N] layer terms)`."""
    t = torch()
    to_torch = lambda x: t.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # noqa: E731
    with t.no_grad():
        total, layers = oracle(to_torch(a), to_torch(b), retPerLayer=True, normalize=True)
    return total.numpy().reshape(-1), [x.numpy().reshape(-1) for x in layers]


def test_lpips_is_the_lpips_packages(pair):
    oracle, ours = pair
    rng = np.random.default_rng(0)
    a = rng.random((2, 50, 38, 3), dtype=np.float32)  # odd sizes: every pooling drops a row or column
    b = np.clip(a + rng.normal(0, 0.1, a.shape).astype(np.float32), 0, 1)
    total, expected = run_oracle(oracle, a, b)
    got = [x.numpy() for x in ours.layer_distances(2 * a - 1, 2 * b - 1)]
    for layer, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g.shape == (2,) and np.all(e > 5e-4), layer  # every layer takes part
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-6, err_msg=f"layer {layer}")
    np.testing.assert_allclose(sum(got), total, rtol=0, atol=1e-5)  # what __call__ returns (next test)


def test_uint8_images_and_single_images(pair):
    oracle, ours = pair
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    expected = run_oracle(oracle, a[None].astype(np.float32) / 255, b[None].astype(np.float32) / 255)[0][0]
    assert float(ours(a, b)) == pytest.approx(expected, abs=1e-5)
    assert float(ours(a, a)) == 0.0


def test_linear_layers_are_the_packages():
    lpips = lpips_package()
    oracle = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)
    for ours, lin in zip(linear_weights(), oracle.lins, strict=True):
        np.testing.assert_array_equal(ours, lin.model[1].weight.detach().numpy().reshape(-1))


def test_bad_inputs_are_refused(pair):
    _, ours = pair
    with pytest.raises(ValueError, match="same shape"):
        ours(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 21, 3), np.uint8))
    with pytest.raises(ValueError, match="at least 16x16"):
        ours(np.zeros((8, 20, 3), np.uint8), np.zeros((8, 20, 3), np.uint8))
    with pytest.raises(ValueError, match="features.0.weight"):
        LPIPS.from_torchvision({"features.0.weight": np.zeros((64, 3, 5, 5), np.float32)})


def test_keras_backbone_layout_and_preprocessing():
    """Keras's VGG16 (random here: its ImageNet file is a download) maps onto the 13 convolutions, fed as Keras feeds it."""
    import keras

    from sr_tf.perceptual.lpips import VGG16_CONVS, keras_vgg16_kernels

    kernels = keras_vgg16_kernels(weights=None)
    channels_in = 3
    for (kernel, bias), (_, out) in zip(kernels, VGG16_CONVS, strict=True):
        assert kernel.shape == (3, 3, channels_in, out) and bias.shape == (out,)
        channels_in = out
    caffe = LPIPS(kernels, linear=[np.ones(c, np.float32) for c in (64, 128, 256, 512, 512)], input_mode="caffe")
    x = np.random.default_rng(2).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    expected = keras.applications.vgg16.preprocess_input((x + 1) * 127.5)
    np.testing.assert_allclose(caffe.backbone_input(x).numpy(), expected, atol=1e-4)
