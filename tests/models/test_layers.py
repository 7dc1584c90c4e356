import numpy as np
import pytest
import tensorflow as tf

from sr_tf.models import torch_to_tf_shuffle_permutation
from sr_tf.models.resized import ncnn_bicubic_resize


def torch_pixel_shuffle(x: np.ndarray, r: int) -> np.ndarray:
    """PyTorch's nn.PixelShuffle written from its definition, on NHWC arrays."""
    n, h, w, crr = x.shape
    c = crr // (r * r)
    out = np.empty((n, h * r, w * r, c), x.dtype)
    for ch in range(c):
        for i in range(r):
            for j in range(r):
                out[:, i::r, j::r, ch] = x[..., ch * r * r + i * r + j]
    return out


def test_permutation_maps_torch_shuffle_to_depth_to_space():
    rng = np.random.default_rng(0)
    for channels, r in [(3, 2), (3, 3), (3, 4), (5, 2)]:
        x = rng.random((2, 3, 4, channels * r * r)).astype(np.float32)
        perm = torch_to_tf_shuffle_permutation(channels, r)
        ours = tf.nn.depth_to_space(x[..., perm], r).numpy()
        np.testing.assert_array_equal(ours, torch_pixel_shuffle(x, r))


def reference_resize_matrix(in_size: int, out_size: int, a: float = -0.75) -> np.ndarray:
    """Dense [out, in] matrix: cubic convolution (Keys, a=-0.75), half-pixel centres, clamped borders."""
    m = np.zeros((out_size, in_size))
    for d in range(out_size):
        s = (d + 0.5) * in_size / out_size - 0.5
        for k in range(int(np.floor(s)) - 1, int(np.floor(s)) + 3):
            t = abs(s - k)
            wt = (a + 2) * t**3 - (a + 3) * t**2 + 1 if t <= 1 else a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
            m[d, min(max(k, 0), in_size - 1)] += wt
    return m


def test_ncnn_bicubic_matches_dense_reference():
    rng = np.random.default_rng(1)
    x = rng.random((1, 12, 20, 3)).astype(np.float32)
    for out_h, out_w in [(6, 10), (9, 15), (24, 7)]:
        expected = np.einsum("ih,jw,nhwc->nijc", reference_resize_matrix(12, out_h), reference_resize_matrix(20, out_w), x)
        got = ncnn_bicubic_resize(tf.constant(x), tf.constant([out_h, out_w])).numpy()
        np.testing.assert_allclose(got, expected, atol=2e-6)


@pytest.mark.parametrize("size,in_ch,out_ch,factor", [(9, 32, 3, 2), (3, 8, 4, 2), (5, 4, 3, 3), (1, 4, 2, 2), (9, 6, 3, 4)])
def test_conv_after_shuffle_equals_the_conv_of_the_shuffled_tensor(size, in_ch, out_ch, factor):
    from sr_tf.models.layers import conv_after_shuffle

    rng = np.random.default_rng(size + factor)
    x = rng.normal(size=(2, 5, 3, in_ch * factor * factor)).astype(np.float32)
    kernel = rng.normal(size=(size, size, in_ch, out_ch)).astype(np.float32)
    bias = rng.normal(size=(out_ch,)).astype(np.float32)
    expected = tf.nn.conv2d(tf.nn.depth_to_space(x, factor), kernel, 1, "SAME") + bias
    got = conv_after_shuffle(tf.constant(x), tf.constant(kernel), tf.constant(bias), factor)
    assert got.shape == expected.shape
    scale = np.sqrt(size * size * in_ch)  # typical magnitude of a sum of that many unit products
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5 * scale)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_prelu_gives_keras_prelu_values_in_fewer_ops(dtype):
    """Our PReLU is Keras' (same weights and config) computed in two elementwise passes, not five."""
    import keras

    from sr_tf.models.layers import PReLU

    rng = np.random.default_rng(0)
    x = tf.cast(rng.normal(size=(2, 9, 7, 5)).astype(np.float32), dtype)
    alpha = rng.normal(size=(1, 1, 5)).astype(np.float32)  # negative and > 1 slopes too
    ours, theirs = PReLU(dtype=dtype), keras.layers.PReLU(shared_axes=[1, 2], dtype=dtype)
    for layer in (ours, theirs):
        layer(x)
        layer.alpha.assign(tf.cast(alpha, layer.alpha.dtype))
    np.testing.assert_array_equal(tf.cast(ours(x), tf.float32).numpy(), tf.cast(theirs(x), tf.float32).numpy())
    assert isinstance(ours, keras.layers.PReLU) and [w.shape for w in ours.weights] == [(1, 1, 5)]
    assert PReLU.from_config(ours.get_config()).get_config() == ours.get_config()
    graph = tf.function(ours).get_concrete_function(tf.TensorSpec([1, 4, 4, 5], dtype)).graph
    assert {op.type for op in graph.get_operations()} & {"Relu", "Neg"} == set()  # not Keras' relu/negate form


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_prelu_onednn_form_is_convolutions_with_keras_prelu_values(dtype):
    """The exports' form: in bfloat16 no elementwise kernel of TensorFlow's; Keras' values bit for bit."""
    import keras

    from sr_tf.models.layers import PReLU, elementwise_form

    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 9, 7, 6)).astype(np.float32)
    x[0, 0, 0] = 0.0
    x = tf.cast(x, dtype)
    alpha = np.array([[[-1.5, -0.25, 0.0, 0.3, 1.0, 2.75]]], np.float32)  # negative, in [0, 1], > 1
    ours, theirs = PReLU(dtype=dtype), keras.layers.PReLU(shared_axes=[1, 2], dtype=dtype)
    for layer in (ours, theirs):
        layer(x)
        layer.alpha.assign(tf.cast(alpha, layer.alpha.dtype))
    with elementwise_form("onednn"):
        fn = tf.function(lambda t: ours(t))  # traced (and so run through grappler) inside the form
        got = fn(x)
    graph_ops = {op.type for op in fn.get_concrete_function(x).graph.get_operations()}
    if dtype == "bfloat16":  # float32's elementwise kernels are vectorised: it keeps the two passes
        assert "Conv2D" in graph_ops and graph_ops & {"SelectV2", "Greater", "Maximum"} == set()
    np.testing.assert_array_equal(tf.cast(got, tf.float32).numpy(), tf.cast(theirs(x), tf.float32).numpy())


def test_prelu_forms_are_one_xla_kernel_or_keras_pattern_with_the_same_values():
    from sr_tf.models.layers import PReLU, elementwise_form

    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(1, 6, 5, 4)), tf.bfloat16)
    layer = PReLU(dtype="bfloat16")
    layer(x)
    layer.alpha.assign(tf.constant(rng.normal(size=(1, 1, 4)), tf.bfloat16))
    spec = tf.TensorSpec([None, None, None, 4], tf.bfloat16)
    plain = tf.function(lambda t: layer(t)).get_concrete_function(spec)
    with elementwise_form("xla"):
        fused = tf.function(lambda t: layer(t)).get_concrete_function(spec)
    with elementwise_form("openvino"):
        pattern = tf.function(lambda t: layer(t)).get_concrete_function(spec)

    def compiled(f):
        return [fn.signature.name for fn in f.graph.as_graph_def().library.function if fn.attr["_XlaMustCompile"].b]

    assert compiled(fused) and not compiled(plain)
    assert {"Relu", "Neg"} <= {op.type for op in pattern.graph.get_operations()}
    for f in (fused, pattern):
        np.testing.assert_array_equal(tf.cast(f(x), tf.float32).numpy(), tf.cast(plain(x), tf.float32).numpy())
    with pytest.raises(ValueError, match="form must be one of"), elementwise_form("fast"):
        pass


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_gelu_and_layer_norm_are_one_xla_kernel_each_in_our_runtime(dtype):
    """Under `elementwise_form("xla")` the unfused GELU and the LayerNorm compile to XLA kernels and give the
    graph form's values to float rounding (XLA's erf is its own); outside it, no XLA at all."""
    from sr_tf.models.channel_norms import LayerNorm
    from sr_tf.models.layers import elementwise_form, elementwise_gelu

    rng = np.random.default_rng(2)
    x = tf.cast(rng.normal(size=(1, 6, 5, 8)).astype(np.float32) * 3, dtype)
    norm = LayerNorm(axis=-1, epsilon=1e-5, dtype=dtype)
    norm(x)
    norm.gamma.assign(rng.normal(size=8).astype(np.float32))
    norm.beta.assign(rng.normal(size=8).astype(np.float32))
    spec = tf.TensorSpec([None, None, None, 8], dtype)
    block = lambda t: norm(elementwise_gelu(t))  # noqa: E731
    plain = tf.function(block).get_concrete_function(spec)
    with elementwise_form("xla"):
        fused = tf.function(block).get_concrete_function(spec)

    def compiled(f):
        return [fn.signature.name for fn in f.graph.as_graph_def().library.function if fn.attr["_XlaMustCompile"].b]

    assert len(compiled(fused)) == 2 and not compiled(plain)
    tol = 1e-5 if dtype == "float32" else 2 ** -7  # bfloat16: one unit in the last place at |y| ~ 1
    got, expected = (tf.cast(f(x), tf.float32).numpy() for f in (fused, plain))
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
    keras_norm = __import__("keras").layers.LayerNormalization(epsilon=1e-5, dtype=dtype)
    keras_norm(x)
    keras_norm.set_weights(norm.get_weights())
    np.testing.assert_allclose(tf.cast(norm(x), tf.float32).numpy(), tf.cast(keras_norm(x), tf.float32).numpy(),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_conv_prelu_chain_folded_form_gives_the_layers_values_bit_for_bit(dtype):
    """The exports' form of conv-PReLU-conv stacks: depthwise products and `Maximum`, slopes > 1 computed
    negated with the signs folded into the neighbouring kernels; the same outputs as the layers' calls."""
    import keras

    from sr_tf.models.layers import PReLU, conv_prelu_chain, elementwise_form

    keras.utils.set_random_seed(4)
    convs = [keras.layers.Conv2D(6, 3, padding="same", dtype=dtype) for _ in range(3)]
    prelus = [PReLU(dtype=dtype) for _ in range(2)]
    x = tf.cast(np.random.default_rng(4).normal(size=(2, 9, 7, 3)), dtype)
    conv_prelu_chain(x, convs, prelus)  # builds the layers
    slopes = np.array([[[-1.5, -0.25, 0.0, 0.3, 1.0, 2.75]]], np.float32)  # negative, in [0, 1], > 1
    for prelu, alpha in zip(prelus, (slopes, slopes[..., ::-1]), strict=True):
        prelu.alpha.assign(tf.cast(alpha, prelu.alpha.dtype))
    plain = tf.function(lambda t: conv_prelu_chain(t, convs, prelus))
    with elementwise_form("onednn"):
        folded = tf.function(lambda t: conv_prelu_chain(t, convs, prelus))
        ops = folded.get_concrete_function(x).graph.get_operations()
    types = [op.type for op in ops]
    assert types.count("DepthwiseConv2dNative") == types.count("Maximum") == 2
    assert all(op.outputs[0].shape.rank == 1 for op in ops if op.type == "SelectV2")  # only the signs
    want = tf.cast(plain(x), tf.float32).numpy()
    assert np.isfinite(want).all() and (want < 0).any()
    np.testing.assert_array_equal(tf.cast(folded(x), tf.float32).numpy(), want)
    with pytest.raises(ValueError, match="one more layer than `prelus`"):
        conv_prelu_chain(x, convs[:2], prelus)


def test_dense_keeps_float16_bias_unfused_on_cpus_and_gives_keras_values():
    """oneDNN's float16 MatMul + BiasAdd fusion is ~150x slower on CPUs: `dense` keeps a Reshape between
    them there (in float32 the MatMul feeds the BiasAdd directly, for the fusion); values are Keras'."""
    import keras

    from sr_tf.models.layers import dense

    x = tf.constant(np.random.default_rng(5).normal(size=(2, 3, 4, 6)), tf.float32)
    for dtype in ("float32", "float16"):
        layer = keras.layers.Dense(5, dtype=dtype)
        want = layer(tf.cast(x, dtype))
        fn = tf.function(lambda t, layer=layer: dense(layer, t, tf.nn.relu))
        graph = fn.get_concrete_function(tf.cast(x, dtype)).graph
        (bias_add,) = [op for op in graph.get_operations() if op.type == "BiasAdd"]
        fed_by = bias_add.inputs[0].op.type
        assert fed_by == ("MatMul" if dtype == "float32" or tf.config.list_physical_devices("GPU") else "Reshape")
        np.testing.assert_allclose(tf.cast(fn(tf.cast(x, dtype)), tf.float32).numpy(),
                                   tf.nn.relu(tf.cast(want, tf.float32)).numpy(), rtol=2e-3, atol=2e-3)
