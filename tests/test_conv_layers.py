"""Convolution layers: the layer harness on several configs each, forward against numpy written
from the Keras equations (tests/op_rows_conv.py), TF 'SAME'/causal padding by hand, Keras 3
configs (the golden Conv2D config), bad arguments, symbolic shapes, the FAQ's feature
extraction block, Keras weight files, and the ONNX of each layer on TVM."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from faq_blocks import block
from harness import run_layer_test
from kgraph import keras
from kgraph.keras import layers
from op_rows_conv import np_keras_conv, np_keras_conv_transpose, np_keras_depthwise_kernel

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
RNG = np.random.default_rng(0)

# (class, kwargs, input shape, output shape, trainable weights)
CASES = [
    (layers.Conv1D, dict(filters=3, kernel_size=3, padding="causal", dilation_rate=2),
     (2, 9, 2), (2, 9, 3), 2),
    (layers.Conv1D, dict(filters=4, kernel_size=2, strides=2, padding="same"),
     (2, 7, 3), (2, 4, 4), 2),
    (layers.Conv1D, dict(filters=4, kernel_size=3, groups=2, use_bias=False),
     (2, 8, 4), (2, 6, 4), 1),
    (layers.Conv1D, dict(filters=3, kernel_size=3, data_format="channels_first"),
     (2, 2, 8), (2, 3, 6), 2),
    (layers.Conv2D, dict(filters=4, kernel_size=3, strides=2, padding="same"),
     (2, 7, 6, 3), (2, 4, 3, 4), 2),
    (layers.Conv2D, dict(filters=4, kernel_size=(3, 2), dilation_rate=(2, 1),
                         padding="same", activation="tanh"), (2, 7, 6, 2), (2, 7, 6, 4), 2),
    (layers.Conv2D, dict(filters=6, kernel_size=3, groups=3), (2, 6, 5, 3), (2, 4, 3, 6), 2),
    (layers.Conv2D, dict(filters=2, kernel_size=3, strides=(2, 1), use_bias=False,
                         data_format="channels_first"), (2, 3, 7, 5), (2, 2, 3, 3), 1),
    (layers.Conv3D, dict(filters=2, kernel_size=2, strides=(1, 2, 1), padding="same"),
     (2, 4, 5, 3, 2), (2, 4, 3, 3, 2), 2),
    (layers.Conv3D, dict(filters=2, kernel_size=(2, 1, 2), groups=2,
                         data_format="channels_first"), (2, 4, 3, 3, 3), (2, 2, 2, 3, 2), 2),
    (layers.DepthwiseConv1D, dict(kernel_size=3, depth_multiplier=2, padding="same"),
     (2, 7, 3), (2, 7, 6), 2),
    (layers.DepthwiseConv2D, dict(kernel_size=3, strides=2, padding="same",
                                  depth_multiplier=2), (2, 7, 6, 3), (2, 4, 3, 6), 2),
    (layers.DepthwiseConv2D, dict(kernel_size=(2, 3), dilation_rate=2,
                                  data_format="channels_first"), (2, 2, 6, 7), (2, 2, 4, 3), 2),
    (layers.SeparableConv1D, dict(filters=4, kernel_size=3, strides=2, padding="same",
                                  depth_multiplier=2), (2, 9, 3), (2, 5, 4), 3),
    (layers.SeparableConv2D, dict(filters=3, kernel_size=3, dilation_rate=(1, 2)),
     (2, 6, 7, 2), (2, 4, 3, 3), 3),
    (layers.SeparableConv2D, dict(filters=3, kernel_size=2, use_bias=False,
                                  data_format="channels_first"), (2, 2, 5, 4), (2, 3, 4, 3), 2),
    (layers.Conv1DTranspose, dict(filters=3, kernel_size=3, strides=2, padding="same"),
     (2, 4, 2), (2, 8, 3), 2),
    (layers.Conv1DTranspose, dict(filters=2, kernel_size=2, strides=3, output_padding=1),
     (2, 4, 3), (2, 12, 2), 2),
    (layers.Conv2DTranspose, dict(filters=2, kernel_size=3, strides=2, output_padding=(1, 0)),
     (2, 3, 4, 3), (2, 8, 9, 2), 2),
    (layers.Conv2DTranspose, dict(filters=3, kernel_size=(2, 3), dilation_rate=(2, 1),
                                  padding="same", data_format="channels_first"),
     (2, 2, 4, 3), (2, 3, 4, 3), 2),
    (layers.Conv3DTranspose, dict(filters=2, kernel_size=2, strides=(2, 1, 1), padding="same"),
     (2, 2, 3, 2, 2), (2, 4, 3, 2, 2), 2),
]
IDS = [f"{cls.__name__}-{i}" for i, (cls, *_rest) in enumerate(CASES)]


@pytest.mark.parametrize("cls, kwargs, shape, out_shape, n_weights", CASES, ids=IDS)
def test_layer_harness(cls, kwargs, shape, out_shape, n_weights):
    run_layer_test(cls, kwargs, shape, out_shape, expected_num_trainable_weights=n_weights)


# -- forward against numpy written from the Keras equations -----------------------------------
def _with_random_weights(layer, x):
    layer(x)
    layer.set_weights([RNG.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    return [w.astype("float64") for w in layer.get_weights()]


def _keras_numpy(layer, weights, x):
    """What Keras computes for `layer` (channels per data_format, bias, linear activation)."""
    k = dict(strides=layer.strides, padding=layer.padding, dilation=layer.dilation_rate,
             data_format=layer.data_format)
    bias = weights[-1] if layer.use_bias else None
    if isinstance(layer, (layers.Conv1DTranspose, layers.Conv2DTranspose,
                          layers.Conv3DTranspose)):
        return np_keras_conv_transpose(x, weights[0], output_padding=layer.output_padding,
                                       bias=bias, **k)
    if isinstance(layer, (layers.SeparableConv1D, layers.SeparableConv2D)):
        depth = np_keras_conv(x, np_keras_depthwise_kernel(weights[0]), **k)
        return np_keras_conv(depth, weights[1], data_format=layer.data_format, bias=bias)
    if isinstance(layer, (layers.DepthwiseConv1D, layers.DepthwiseConv2D)):
        return np_keras_conv(x, np_keras_depthwise_kernel(weights[0]), bias=bias, **k)
    return np_keras_conv(x, weights[0], bias=bias, **k)


@pytest.mark.parametrize("cls, kwargs, shape, out_shape, n_weights", CASES, ids=IDS)
def test_forward_matches_the_keras_equations(cls, kwargs, shape, out_shape, n_weights):
    kwargs = {k: v for k, v in kwargs.items() if k != "activation"}
    layer = cls(**kwargs)
    x = RNG.normal(size=shape).astype("float32")
    weights = _with_random_weights(layer, x)
    want = _keras_numpy(layer, weights, x.astype("float64"))
    np.testing.assert_allclose(layer(x), want, rtol=1e-4, atol=1e-4)


def _ones_layer(cls, **kwargs):
    return cls(1, kernel_initializer="ones", use_bias=False, **kwargs)


@pytest.mark.parametrize("kwargs, length, want", [
    (dict(kernel_size=3, strides=2, padding="same"), 5, [3, 9, 9]),  # pads (1, 1)
    (dict(kernel_size=4, padding="same"), 6, [6, 10, 14, 18, 15, 11]),  # pads (1, 2)
    (dict(kernel_size=2, strides=2, padding="same"), 4, [3, 7]),  # no padding
    (dict(kernel_size=2, padding="causal"), 5, [1, 3, 5, 7, 9]),
    (dict(kernel_size=2, padding="causal", dilation_rate=2), 5, [1, 2, 4, 6, 8]),
])
def test_same_padding_puts_the_odd_element_at_the_end_as_tf(kwargs, length, want):
    x = np.arange(1, length + 1, dtype="float32").reshape(1, length, 1)
    np.testing.assert_array_equal(_ones_layer(layers.Conv1D, **kwargs)(x)[0, :, 0], want)


@pytest.mark.parametrize("kwargs, want", [
    (dict(kernel_size=3, strides=2), [1, 1, 3, 2, 2]),
    (dict(kernel_size=3, strides=2, padding="same"), [1, 1, 3, 2]),
    (dict(kernel_size=2, strides=3, output_padding=2), [1, 1, 0, 2, 2, 0, 0]),
])
def test_transposed_convolution_by_hand(kwargs, want):
    x = np.asarray([1, 2], dtype="float32").reshape(1, 2, 1)
    np.testing.assert_array_equal(_ones_layer(layers.Conv1DTranspose, **kwargs)(x)[0, :, 0],
                                  want)


# -- configs, weights and shapes ---------------------------------------------------------------
def test_conv2d_config_is_the_golden_keras_config():
    with open(os.path.join(GOLDEN, "cnn.json")) as f:
        golden = next(layer for layer in json.load(f)["config"]["layers"]
                      if layer["class_name"] == "Conv2D")
    layer = layers.Conv2D.from_config(golden["config"])
    layer(np.zeros((1, 10, 10, 2), "float32"))
    assert json.loads(json.dumps(layer.get_config())) == golden["config"]
    assert list(layer.get_config()) == list(golden["config"])  # the same key order too


def test_config_keys_of_each_family_follow_keras_3():
    conv_t = layers.Conv2DTranspose(2, 3, output_padding=1, strides=2).get_config()
    assert list(conv_t)[3:8] == ["filters", "kernel_size", "strides", "padding",
                                 "output_padding"]
    assert conv_t["output_padding"] == (1, 1) and "groups" not in conv_t
    depthwise = layers.DepthwiseConv2D(3).get_config()
    assert list(depthwise)[3:5] == ["depth_multiplier", "kernel_size"]
    assert "depthwise_initializer" in depthwise and "kernel_initializer" not in depthwise
    separable = layers.SeparableConv2D(4, 3).get_config()
    assert {"pointwise_initializer", "pointwise_regularizer", "pointwise_constraint"} <= set(
        separable)


def test_weights_keep_the_keras_layouts_and_order():
    x = np.zeros((1, 6, 6, 3), "float32")
    checks = [(layers.Conv2D(6, (3, 2), groups=3), [(3, 2, 1, 6), (6,)]),
              (layers.DepthwiseConv2D(3, depth_multiplier=2), [(3, 3, 3, 2), (6,)]),
              (layers.SeparableConv2D(5, 3, depth_multiplier=2),
               [(3, 3, 3, 2), (1, 1, 6, 5), (5,)]),
              (layers.Conv2DTranspose(4, 3), [(3, 3, 4, 3), (4,)])]
    for layer, want in checks:
        layer(x)
        assert [tuple(w.shape) for w in layer.weights] == want, layer.name
    names = [w.path.split("/")[-1] for w in checks[2][0].weights]
    assert names == ["depthwise_kernel", "pointwise_kernel", "bias"]


def test_golden_keras_cnn_loads_and_reproduces_keras_outputs():
    model = keras.models.load_model(os.path.join(GOLDEN, "cnn.keras"))
    x = np.load(os.path.join(GOLDEN, "cnn_x.npy"))
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               np.load(os.path.join(GOLDEN, "cnn_y.npy")), atol=1e-5)


@pytest.mark.parametrize("padding, strides, want", [("valid", 1, (None, None, None, 4)),
                                                    ("same", 1, (None, None, None, 4))])
def test_unknown_spatial_dims_stay_symbolic(padding, strides, want):
    out = layers.Conv2D(4, 3, strides=strides, padding=padding)(keras.Input((None, None, 3)))
    assert tuple(out.shape) == want


def test_fully_convolutional_model_with_unknown_spatial_dims_trains():
    inputs = keras.Input((None, None, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="tanh")(inputs)
    x = layers.DepthwiseConv2D(2, dilation_rate=2)(x)
    model = keras.Model(inputs, layers.Conv2D(1, 3)(x))
    model.compile(keras.optimizers.SGD(0.05), "mse")
    data, target = RNG.normal(size=(4, 9, 8, 3)), RNG.normal(size=(4, 5, 4, 1))
    before = model.evaluate(data, target, verbose=0)
    model.fit(data, target, epochs=3, batch_size=4, verbose=0)
    assert model.evaluate(data, target, verbose=0) < before
    assert model.predict(np.zeros((2, 7, 6, 3)), verbose=0).shape == (2, 3, 2, 1)


def test_symbolic_output_shapes_in_a_functional_model():
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2)(x)
    x = layers.SeparableConv2D(6, 3, padding="same")(x)
    y = layers.Conv2DTranspose(3, 3, strides=2, padding="same")(x)
    assert [tuple(t.shape) for t in (x, y)] == [(None, 6, 6, 6), (None, 12, 12, 3)]
    model = keras.Model(inputs, y)
    assert model.predict(np.zeros((5, 16, 16, 3), "float32"), verbose=0).shape == (5, 12, 12, 3)


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, kwargs, quoted", [
    (layers.Conv2D, dict(filters=0, kernel_size=3), "filters=0"),
    (layers.Conv2D, dict(filters=-2, kernel_size=3), "filters=-2"),
    (layers.Conv2D, dict(filters=4, kernel_size=3, padding="bogus"), "padding='bogus'"),
    (layers.Conv2D, dict(filters=4, kernel_size=3, padding="causal"), "padding='causal'"),
    (layers.Conv2D, dict(filters=4, kernel_size=0), "kernel_size=0"),
    (layers.Conv2D, dict(filters=4, kernel_size=(3, 3, 3)), "kernel_size=(3, 3, 3)"),
    (layers.Conv1D, dict(filters=4, kernel_size=3, strides=(0,)), "strides=(0,)"),
    (layers.Conv2D, dict(filters=4, kernel_size=3, data_format="nhwc"), "data_format='nhwc'"),
    (layers.Conv2D, dict(filters=4, kernel_size=3, groups=0), "groups=0"),
    (layers.Conv2D, dict(filters=4, kernel_size=3, groups=3), "groups=3"),
    (layers.Conv2D, dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), "strides=(2, 2)"),
    (layers.DepthwiseConv2D, dict(kernel_size=3, depth_multiplier=0), "depth_multiplier=0"),
    (layers.SeparableConv1D, dict(filters=0, kernel_size=3), "filters=0"),
    (layers.Conv2DTranspose, dict(filters=2, kernel_size=3, strides=2, output_padding=2),
     "output_padding=(2, 2)"),
    (layers.Conv1DTranspose, dict(filters=2, kernel_size=3, padding="causal"),
     "padding='causal'"),
])
def test_bad_arguments_raise_value_error_quoting_the_value(cls, kwargs, quoted):
    with pytest.raises(ValueError, match=quoted.replace("(", r"\(").replace(")", r"\)")):
        cls(**kwargs)


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="divisible by the number of groups"):
        layers.Conv2D(4, 3, groups=2)(keras.Input((8, 8, 3)))
    with pytest.raises(ValueError, match="min_ndim=4"):
        layers.Conv2D(4, 3)(keras.Input((8, 3)))
    layer = layers.Conv1D(2, 3)
    layer(np.zeros((1, 5, 3), "float32"))
    with pytest.raises(ValueError, match="incompatible"):
        layer(np.zeros((1, 5, 6), "float32"))  # same groups arithmetic, other channel count
    with pytest.raises(ValueError, match="window"):
        layers.Conv2D(2, 5)(np.zeros((1, 3, 3, 1), "float32"))


# -- the FAQ's feature-extraction block --------------------------------------------------------
def test_faq_feature_extraction_block_runs():
    namespace = {}
    code = ("from kgraph.keras import Sequential\nimport numpy as np\n"
            "data = np.random.rand(2, 28, 28, 1).astype('float32')\n")
    exec(code + block("intermediate layer", 0), namespace)
    features = namespace["features"]
    assert [tuple(np.shape(f)) for f in features] == [
        (2, 26, 26, 32), (2, 24, 24, 32), (2, 12, 12, 32), (2, 10, 10, 32), (2, 8, 8, 32),
        (2, 32), (2, 10)]
    first = namespace["model"].layers[0]
    want = np.maximum(_keras_numpy(first, [w.astype("float64") for w in first.get_weights()],
                                   namespace["data"].astype("float64")), 0)
    np.testing.assert_allclose(features[0], want, rtol=1e-4, atol=1e-5)


# -- each layer's ONNX on TVM --------------------------------------------------------------------
TVM_CASES = [CASES[1], CASES[5], CASES[9], CASES[12], CASES[14], CASES[18], CASES[20]]


@pytest.mark.tvm
@pytest.mark.parametrize("cls, kwargs, shape, out_shape, n_weights", TVM_CASES,
                         ids=[f"{c[0].__name__}" for c in TVM_CASES])
def test_layer_onnx_runs_on_tvm(cls, kwargs, shape, out_shape, n_weights):
    from tvm_helper import run_tvm

    from kgraph.compiler.passes import optimize
    from kgraph.compiler.program import trace_graph

    layer = cls(**kwargs)
    x = RNG.normal(size=shape).astype("float32")
    want = np.asarray(layer(x))
    graph = optimize(trace_graph("layer", [("x", (None,) + shape[1:], "float32")],
                                 lambda v: {"y": layer(v)}))
    feeds = {"x": x, **{v.node.attrs["name"]: var.numpy() for var, v in graph.variables.items()}}
    got = run_tvm(graph, feeds, optimized=True)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# -- real Keras, where it is installed ------------------------------------------------------------
def _json(config):
    return json.loads(json.dumps({k: v for k, v in config.items() if k != "name"}))


@pytest.mark.parametrize("cls, kwargs, shape, out_shape, n_weights", CASES, ids=IDS)
def test_outputs_and_config_match_real_keras(cls, kwargs, shape, out_shape, n_weights):
    """Same config, same weights, same outputs as real Keras. Channels-first cases are run by
    real Keras in channels last on moved axes: its TensorFlow backend on CPU gives
    channels-first results that disagree with its own channels-last ones (and with its torch
    backend, which agrees with kgraph) for grouped or non-square kernels."""
    real = pytest.importorskip("keras")
    ours = cls(**kwargs)
    x = RNG.normal(size=shape).astype("float32")
    _with_random_weights(ours, x)
    theirs = getattr(real.layers, cls.__name__)(**kwargs)
    theirs.build(shape)
    assert _json(ours.get_config()) == _json(theirs.get_config())
    first = kwargs.get("data_format") == "channels_first"
    last = getattr(real.layers, cls.__name__)(**{**kwargs, "data_format": "channels_last"})
    moved = np.moveaxis(x, 1, -1) if first else x
    last.build(moved.shape)
    last.set_weights(ours.get_weights())
    want = real.ops.convert_to_numpy(last(moved))
    np.testing.assert_allclose(ours(x), np.moveaxis(want, -1, 1) if first else want,
                               rtol=1e-4, atol=1e-4)


# -- convolution_op: the Keras hook for a custom convolution ---------------------------------------
def _standardized_conv_class(base, ops):
    class StandardizedConv(base):
        def convolution_op(self, inputs, kernel):
            kernel = ops.convert_to_tensor(kernel)  # Keras' jax moments reject a Variable
            mean, var = ops.moments(kernel, axes=[0, 1, 2], keepdims=True)
            return super().convolution_op(inputs, (kernel - mean) / ops.sqrt(var + 1e-10))

    return StandardizedConv


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_overridden_convolution_op_keeps_bias_and_activation(data_format):
    layer = _standardized_conv_class(layers.Conv2D, keras.ops)(
        4, 3, padding="same", activation="relu", data_format=data_format)
    x = RNG.normal(size=(2, 3, 6, 6) if data_format == "channels_first" else (2, 6, 6, 3))
    kernel, bias = _with_random_weights(layer, x.astype("float32"))
    standardized = (kernel - kernel.mean((0, 1, 2))) / np.sqrt(kernel.var((0, 1, 2)) + 1e-10)
    want = np.maximum(np_keras_conv(x, standardized, padding="same", data_format=data_format,
                                    bias=bias), 0)
    np.testing.assert_allclose(layer(x.astype("float32")), want, rtol=1e-4, atol=1e-4)
    # the base op is the layer's convolution without bias or activation
    plain = layers.Conv2D(4, 3, data_format=data_format)
    plain(x.astype("float32"))
    np.testing.assert_allclose(plain.convolution_op(x.astype("float32"), plain.kernel),
                               np_keras_conv(x, plain.get_weights()[0].astype("float64"),
                                             data_format=data_format), rtol=1e-4, atol=1e-4)


def test_overridden_convolution_op_matches_real_keras():
    """Conv2D (Keras 3's Conv1D.call does not go through `convolution_op`, a Keras quirk kgraph
    does not copy: its Conv1D/2D/3D all call the override, as tf.keras 2 did)."""
    real = pytest.importorskip("keras")
    ours = _standardized_conv_class(layers.Conv2D, keras.ops)(5, 3, activation="tanh")
    theirs = _standardized_conv_class(real.layers.Conv2D, real.ops)(5, 3, activation="tanh")
    x = RNG.normal(size=(2, 7, 6, 3)).astype("float32")
    _with_random_weights(ours, x)
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x), real.ops.convert_to_numpy(theirs(x)), rtol=1e-4,
                               atol=1e-5)
