"""keras.ops.image.rgb_to_hsv/hsv_to_rgb/gaussian_blur/sobel_edges, keras.ops(.nn)
.adaptive_average_pool/adaptive_max_pool and keras.ops(.nn).unfold: eager against real Keras
(JAX backend) in both data formats, traced on an unknown batch (onnxruntime), under
kgraph.function and in a functional model at two batch sizes, gradients against jax.grad through
real Keras."""
from __future__ import annotations

import jax
import keras as real_keras
import numpy as np
import pytest

import kgraph as tf
from kgraph import keras
from kgraph.compiler.build import compile_graph
from kgraph.ir.graph import Graph, tracing
from kgraph.ops.api_util import StaticShapeRequiredError

ops = keras.ops
RNG = np.random.default_rng(7)


def images(*shape, lo=0.0, hi=1.0):
    return RNG.uniform(lo, hi, size=shape).astype("float32")


def channels_first(x):
    return np.ascontiguousarray(np.moveaxis(x, -1, 1 if x.ndim == 4 else 0))


def resolve(module, name):
    for part in name.split("."):
        module = getattr(module, part)
    return module


def run_traced(fn, array):
    """Trace `fn` on a placeholder with an unknown first dim and run it on onnxruntime."""
    graph = Graph("windows")
    ph = graph.placeholder("x", (None,) + array.shape[1:], array.dtype)
    with tracing(graph):
        out = fn(ph)
    graph.set_outputs({"out": out})
    compiled = compile_graph(graph)
    return compiled.to_numpy(compiled.run({"x": array})[0])


# (keras.ops name, input maker, keyword arguments); the inputs are (batch, h, w, c) or
# channels first when data_format says so.
CASES = [
    ("image.rgb_to_hsv", lambda n: images(n, 5, 6, 3), {"data_format": "channels_last"}),
    ("image.rgb_to_hsv", lambda n: channels_first(images(n, 5, 6, 3)),
     {"data_format": "channels_first"}),
    ("image.hsv_to_rgb", lambda n: images(n, 5, 6, 3, lo=-1.5, hi=2.5),
     {"data_format": "channels_last"}),
    ("image.hsv_to_rgb", lambda n: channels_first(images(n, 5, 6, 3)),
     {"data_format": "channels_first"}),
    ("image.gaussian_blur", lambda n: images(n, 7, 6, 2),
     {"kernel_size": (3, 5), "sigma": (0.8, 1.7), "data_format": "channels_last"}),
    ("image.gaussian_blur", lambda n: channels_first(images(n, 7, 6, 2)),
     {"data_format": "channels_first"}),
    ("image.sobel_edges", lambda n: images(n, 6, 5, 3), {"data_format": "channels_last"}),
    ("image.sobel_edges", lambda n: channels_first(images(n, 6, 5, 3)),
     {"data_format": "channels_first"}),
    ("adaptive_average_pool", lambda n: images(n, 7, 5, 3, lo=-1), {"output_size": (3, 2)}),
    ("nn.adaptive_average_pool", lambda n: channels_first(images(n, 7, 9, 2, lo=-1)),
     {"output_size": (4, 9), "data_format": "channels_first"}),
    ("adaptive_average_pool", lambda n: images(n, 9, 3, lo=-1), {"output_size": 4}),
    ("adaptive_max_pool", lambda n: images(n, 7, 5, 3, lo=-1), {"output_size": (3, 2)}),
    ("nn.adaptive_max_pool", lambda n: channels_first(images(n, 7, 9, 2, lo=-1)),
     {"output_size": (4, 6), "data_format": "channels_first"}),
    ("adaptive_max_pool", lambda n: images(n, 4, 5, 6, 2, lo=-1), {"output_size": (2, 3, 4)}),
    ("unfold", lambda n: images(n, 2, 6, 7, lo=-1), {"kernel_size": 2, "stride": 2}),
    ("nn.unfold", lambda n: images(n, 3, 7, 6, lo=-1),
     {"kernel_size": (3, 2), "dilation": (1, 2), "padding": (1, 2), "stride": (2, 1)}),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]


def want(name, x, kwargs):
    return np.asarray(resolve(real_keras.ops, name)(x, **kwargs))


@pytest.mark.parametrize("name, make, kwargs", CASES, ids=IDS)
def test_eager_equals_real_keras(name, make, kwargs):
    x = make(3)
    np.testing.assert_allclose(resolve(ops, name)(x, **kwargs), want(name, x, kwargs),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, make, kwargs", CASES, ids=IDS)
def test_traced_on_an_unknown_batch_and_in_a_model_at_two_batch_sizes(name, make, kwargs):
    fn = resolve(ops, name)
    x = make(5)
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, fn(inputs, **kwargs))
    compiled = tf.function(lambda t: fn(t, **kwargs))  # kgraph.function
    for batch in (2, 5):
        expected = want(name, x[:batch], kwargs)
        np.testing.assert_allclose(run_traced(lambda t: fn(t, **kwargs), x[:batch]), expected,
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(model.predict(x[:batch], verbose=0), expected,
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(compiled(x[:batch])), expected,
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, make, kwargs", CASES, ids=IDS)
def test_gradient_equals_jax_grad_through_real_keras(name, make, kwargs):
    x = make(2)
    weights = RNG.normal(size=want(name, x, kwargs).shape).astype("float32")
    variable = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = ops.sum(resolve(ops, name)(variable, **kwargs) * weights)
    (grad,) = tape.gradient(loss, [variable])
    expected = jax.grad(lambda v: (resolve(real_keras.ops, name)(v, **kwargs) * weights).sum())(x)
    np.testing.assert_allclose(grad, np.asarray(expected), rtol=1e-4, atol=1e-4)


def test_one_image_and_the_known_colours():
    rgb = np.array([[[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]]], "float32")
    hsv = ops.image.rgb_to_hsv(rgb)
    np.testing.assert_allclose(hsv[0], [[0, 1, 1], [1 / 3, 1, 1], [2 / 3, 1, 1], [0, 0, 0.5]],
                               atol=1e-6)
    np.testing.assert_allclose(ops.image.hsv_to_rgb(hsv), rgb, atol=1e-6)
    one = images(6, 5, 2)
    np.testing.assert_allclose(ops.image.gaussian_blur(one, data_format="channels_last"),
                               want("image.gaussian_blur", one,
                                    {"data_format": "channels_last"}), rtol=1e-5, atol=1e-6)


def test_typed_errors_quote_the_bad_value():
    with pytest.raises(ValueError, match="expected float dtype"):
        ops.image.rgb_to_hsv(np.ones((2, 2, 3), "int32"))
    with pytest.raises(ValueError, match="images.shape"):
        ops.image.hsv_to_rgb(np.ones((2, 2), "float32"))
    with pytest.raises(ValueError, match="output_size=\\(2, 0\\)"):
        ops.adaptive_average_pool(np.ones((1, 4, 4, 1), "float32"), (2, 0))
    with pytest.raises(ValueError, match="Input must be a 4D|input must be a 4D"):
        ops.unfold(np.ones((2, 4, 4), "float32"), 2)


def test_adaptive_pool_needs_static_spatial_sizes():
    graph = Graph("unknown_spatial")
    x = graph.placeholder("x", (None, None, 8, 3), "float32")
    with tracing(graph), pytest.raises(StaticShapeRequiredError, match="adaptive_max_pool"):
        ops.adaptive_max_pool(x, 2)
