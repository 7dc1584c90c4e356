import keras
import numpy as np
import pytest

from sr_tf.models import GENERATORS, SRCNN, RRDBNet, SRResNet, SRVGGNetCompact, model_scale
from tests.model_checks import check_generator

TINY = {
    "srcnn": dict(filters=(8, 4)),
    "srresnet": dict(num_feat=8, num_block=1),
    "rrdbnet": dict(num_feat=8, num_block=1, num_grow_ch=4),
    "srvgg_compact": dict(num_feat=8, num_conv=1),
    "span": dict(feature_channels=4),
    "upcunet": dict(num_feat=4),
    "cunet": dict(num_feat=4),
    "upconv7": dict(num_feat=2),
    "srmd": dict(num_feat=8, num_conv=3),
}
FIXED_X2 = ("cunet", "upconv7")  # published as x2 only


def _make(name, scale):
    kwargs = dict(TINY[name])
    if name not in FIXED_X2:
        kwargs["upscale" if name in ("srvgg_compact", "span") else "scale"] = scale
    return GENERATORS[name](**kwargs)


# every generator at every scale it has (x2-only models at x2 alone: no case to skip)
SCALES = [(name, scale) for name in sorted(GENERATORS) for scale in ((2,) if name in FIXED_X2 else (2, 3, 4))]


@pytest.mark.parametrize("name, scale", SCALES)
def test_generator_contract(name, scale, tmp_path):
    model = _make(name, scale)
    assert model_scale(model) == scale
    check_generator(model, scale, tmp_path)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_any_input_size_including_odd_and_tiny(name):
    model = _make(name, 2)
    for h, w in [(1, 1), (7, 5), (9, 20)]:
        assert tuple(model(np.zeros((1, h, w, 3), np.float32)).shape) == (1, 2 * h, 2 * w, 3)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: RRDBNet(scale=5), "scale=5"),
        (lambda: SRResNet(num_block=0), "num_block=0"),
        (lambda: SRVGGNetCompact(act_type="gelu"), "act_type='gelu'"),
        (lambda: SRCNN(filters=(8,)), "filters=(8,)"),
        (lambda: SRResNet(input_skip="nearest"), "input_skip='nearest'"),
        (lambda: SRResNet(num_out_ch=1, input_skip="bilinear"), "num_out_ch=1"),
    ],
)
def test_bad_arguments_name_the_problem(factory, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        factory()


def test_rrdbnet_published_structure():
    model = RRDBNet()
    model(np.zeros((1, 8, 8, 3), np.float32))
    assert len(model.body) == 23 and all(len(b.rdbs) == 3 for b in model.body)
    # 23 * 3 * 5 dense convs + first, body, 2 upsampling, hr, last
    convs = [v for v in model.weights if v.path.endswith("kernel")]
    assert len(convs) == 23 * 15 + 6
    # x0.1 Kaiming init: std of the dense-block kernels is about 0.1 * sqrt(2 / fan_in)
    kernel = model.body[0].rdbs[0].convs[0].kernel.numpy()
    expected = 0.1 * np.sqrt(2 / (3 * 3 * 64))
    assert 0.8 * expected < kernel.std() < 1.2 * expected


def test_srvgg_zero_body_is_nearest_upsampling():
    model = SRVGGNetCompact(num_feat=4, num_conv=1, upscale=3)
    x = np.random.default_rng(1).random((1, 5, 4, 3), dtype=np.float32)
    model(x)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    np.testing.assert_array_equal(model(x).numpy(), x.repeat(3, axis=1).repeat(3, axis=2))


def test_srcnn_starts_from_bicubic_upsampling():
    model = SRCNN(scale=2, filters=(4, 4))
    x = np.random.default_rng(2).random((1, 6, 6, 3), dtype=np.float32)
    model(x)
    weights = [np.zeros_like(w) for w in model.get_weights()]
    # conv1 passes the image through one channel at a time (identity 9x9 kernels at the centre),
    # conv2 and conv3 likewise: with ReLU on non-negative values, the output is the bicubic input.
    weights[0][4, 4, :3, :3] = np.eye(3)
    weights[2][0, 0, :3, :3] = np.eye(3)
    weights[4][2, 2, :3, :3] = np.eye(3)
    model.set_weights(weights)
    import tensorflow as tf

    expected = tf.nn.relu(tf.image.resize(x, [12, 12], "bicubic")).numpy()
    np.testing.assert_allclose(model(x).numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3])
def test_srresnet_without_bn_and_with_input_skip_keeps_the_contract(scale, tmp_path):
    model = SRResNet(num_feat=8, num_block=1, scale=scale, batch_norm=False, input_skip="bicubic")
    check_generator(model, scale, tmp_path)
    assert not [w for w in model.weights if "bn" in w.path]


@pytest.mark.parametrize("method", ["bilinear", "bicubic"])
def test_srresnet_input_skip_adds_the_interpolated_input(method):
    import tensorflow as tf

    model = SRResNet(num_feat=4, num_block=1, scale=2, batch_norm=False, input_skip=method)
    x = np.random.default_rng(3).random((1, 6, 5, 3), dtype=np.float32)
    model(x)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])  # the residual branch is 0
    want = tf.image.resize(x, (12, 10), method=method).numpy()
    np.testing.assert_allclose(model(x).numpy(), want, atol=1e-6)
    # untrained, the residual starts small (0.1x Kaiming last conv), so the output is near `want`
    fresh = SRResNet(num_feat=4, num_block=1, scale=2, batch_norm=False, input_skip=method)
    assert np.abs(fresh(x).numpy() - want).mean() < 0.1


@pytest.mark.parametrize("scale,batch_norm", [(2, True), (3, False), (4, False)])
def test_srresnet_last_conv_before_the_shuffle_equals_the_plain_layers(scale, batch_norm):
    keras.utils.set_random_seed(scale)
    model = SRResNet(num_feat=8, num_block=1, scale=scale, batch_norm=batch_norm)
    x = np.random.default_rng(scale).random((2, 7, 5, 3), dtype=np.float32)
    out = model(x, training=False).numpy()
    # the network written layer by layer, as the paper draws it
    head = model.act_first(model.conv_first(x))
    feat = model.body[0](head, training=False)
    feat = head + (model.bn_body(model.conv_body(feat), training=False) if batch_norm else model.conv_body(feat))
    for layer in model.upsample:
        feat = layer(feat)
    np.testing.assert_allclose(out, model.conv_last(feat).numpy(), atol=1e-5)
    names = [w.path.split("/", 1)[1] for w in model.weights]
    assert names.count("prelu_up1/alpha") == 1 and "conv_last/kernel" in names


def test_srresnet_build_creates_every_weight_without_a_warning():
    import warnings

    built = SRResNet(num_feat=8, num_block=1, scale=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras warns when build() leaves sublayers unbuilt
        built.build((None, None, None, 3))
    called = SRResNet(num_feat=8, num_block=1, scale=2)
    called(np.zeros((1, 5, 5, 3), np.float32))
    assert len(built.weights) == len(called.weights) > 0


@pytest.mark.parametrize("scale,unshuffle,stages", [(1, 4, 2), (1, 1, 0), (2, 1, 1), (8, 1, 3), (4, 2, 3)])
def test_rrdbnet_scales_and_unshuffle_keep_the_contract(scale, unshuffle, stages, tmp_path):
    """x1 / x8 and an explicit pixel-unshuffle factor (community ESRGAN checkpoints use them all)."""
    model = RRDBNet(num_feat=4, num_block=1, num_grow_ch=4, scale=scale, unshuffle=unshuffle)
    assert len(model.conv_ups) == stages and model.unshuffle == unshuffle
    check_generator(model, scale, tmp_path, size=(7, 5))


def test_rrdbnet_configs_without_unshuffle_keep_basicsr_defaults():
    """Configs saved before `unshuffle` existed: x2 unshuffles by 2, x3/x4 do not."""
    for scale, unshuffle in [(2, 2), (3, 1), (4, 1), (1, 4)]:
        assert RRDBNet.from_config({"num_feat": 4, "num_block": 1, "scale": scale}).unshuffle == unshuffle


def test_rrdbnet_bad_unshuffle_names_it():
    with pytest.raises(ValueError, match="unshuffle=3"):
        RRDBNet(scale=4, unshuffle=3)
    with pytest.raises(ValueError, match="unshuffle=4"):
        RRDBNet(scale=8, unshuffle=4)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_compact_model_in_the_exports_form_gives_its_own_outputs_bit_for_bit(dtype):
    """SRVGGNetCompact traced as exports trace it (`conv_prelu_chain`'s folded PReLUs) returns exactly what
    its plain call returns, with slopes below 0, in [0, 1] and above 1 in every layer."""
    import tensorflow as tf

    from sr_tf.models.layers import elementwise_form

    keras.utils.set_random_seed(6)
    model = SRVGGNetCompact(num_feat=6, num_conv=2, upscale=2, dtype=dtype)
    x = np.random.default_rng(6).random((1, 7, 9, 3)).astype(np.float32)
    model(x)
    slopes = np.array([-0.7, 0.0, 0.25, 1.0, 1.6, 3.0], np.float32)
    for i, act in enumerate(model.acts):
        act.alpha.assign(tf.cast(np.roll(slopes, i).reshape(1, 1, 6), act.alpha.dtype))
    plain = tf.function(lambda t: model(t))(x).numpy()
    with elementwise_form("onednn"):
        fn = tf.function(lambda t: model(t))
        ops = [op.type for op in fn.get_concrete_function(tf.TensorSpec([1, None, None, 3])).graph.get_operations()]
        folded = fn(x).numpy()
    assert ops.count("DepthwiseConv2dNative") == len(model.acts)
    assert np.isfinite(plain).all()
    np.testing.assert_array_equal(folded, plain)
