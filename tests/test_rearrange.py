"""keras.ops.rearrange (einops patterns: names, groups split and merged, sizes by keyword):
eager against real Keras (JAX backend), traced on an unknown batch (onnxruntime), under
kgraph.function and in a functional model at two batch sizes, gradients against jax.grad,
typed errors."""
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
X = np.random.default_rng(3).normal(size=(4, 6, 8, 3)).astype("float32")

PATTERNS = [
    ("b h w c -> b c h w", {}),
    ("b h w c -> b (c h w)", {}),
    ("b (h h1) (w w1) c -> b h w (c h1 w1)", {"h1": 2, "w1": 2}),
    ("b (h h1) w c -> b h h1 w c", {"h": 3}),
    ("b h w c -> b w h c", {}),
    ("b h (w w1) c -> b (w1 h) w c", {"w1": 4}),
]
IDS = [p for p, _ in PATTERNS]
# patterns that move or merge the batch need its size: eager only
BATCH_PATTERNS = [
    ("b h w c -> (b h) w c", {}),
    ("b h w c -> h (b w) c", {}),
    ("b (h1 h) (w1 w) c -> (b h1 w1) h w c", {"h1": 2, "w1": 2}),
]


def run_traced(fn, array):
    graph = Graph("rearrange")
    ph = graph.placeholder("x", (None,) + array.shape[1:], array.dtype)
    with tracing(graph):
        out = fn(ph)
    graph.set_outputs({"out": out})
    compiled = compile_graph(graph)
    return compiled.to_numpy(compiled.run({"x": array})[0])


def want(x, pattern, sizes):
    return np.asarray(real_keras.ops.rearrange(x, pattern, **sizes))


@pytest.mark.parametrize("pattern, sizes", PATTERNS + BATCH_PATTERNS,
                         ids=IDS + [p for p, _ in BATCH_PATTERNS])
def test_eager_equals_real_keras(pattern, sizes):
    np.testing.assert_array_equal(ops.rearrange(X, pattern, **sizes), want(X, pattern, sizes))


@pytest.mark.parametrize("pattern, sizes", PATTERNS, ids=IDS)
def test_traced_on_an_unknown_batch_and_in_a_model_at_two_batch_sizes(pattern, sizes):
    inputs = keras.Input(X.shape[1:])
    model = keras.Model(inputs, ops.rearrange(inputs, pattern, **sizes))
    compiled = tf.function(lambda t: ops.rearrange(t, pattern, **sizes))  # kgraph.function
    for batch in (2, 4):
        expected = want(X[:batch], pattern, sizes)
        np.testing.assert_array_equal(
            run_traced(lambda t: ops.rearrange(t, pattern, **sizes), X[:batch]), expected)
        np.testing.assert_array_equal(model.predict(X[:batch], verbose=0), expected)
        np.testing.assert_array_equal(np.asarray(compiled(X[:batch])), expected)


@pytest.mark.parametrize("pattern, sizes", PATTERNS[2:4], ids=IDS[2:4])
def test_gradient_equals_jax_grad(pattern, sizes):
    weights = np.random.default_rng(4).normal(size=want(X, pattern, sizes).shape)
    weights = weights.astype("float32")
    variable = tf.Variable(X)
    with tf.GradientTape() as tape:
        loss = ops.sum(ops.rearrange(variable, pattern, **sizes) * weights)
    (grad,) = tape.gradient(loss, [variable])
    expected = jax.grad(lambda v: (real_keras.ops.rearrange(v, pattern, **sizes)
                                   * weights).sum())(X)
    np.testing.assert_allclose(grad, np.asarray(expected), rtol=1e-6)


@pytest.mark.parametrize("pattern, sizes, message", [
    ("b h w c -> b h w", {}, "same axes"),
    ("b h w -> b h w", {}, "rank 4"),
    ("... c -> c ...", {}, "no ellipsis"),
    ("b (h h1) w c -> b h h1 w c", {"h1": 4}, "cannot be split"),
    ("b (h h1) w c -> b h h1 w c", {}, "all but one axis"),
    ("b h w c -> b h w c", {"z": 2}, "not in the pattern"),
    ("b h h c -> b h c", {}, "twice"),
])
def test_typed_errors_quote_the_pattern(pattern, sizes, message):
    with pytest.raises(ValueError, match=message):
        ops.rearrange(X, pattern, **sizes)


def test_two_unknown_groups_need_static_sizes():
    graph = Graph("unknown")
    x = graph.placeholder("x", (None, None, 8), "float32")
    with tracing(graph):
        assert ops.rearrange(x, "b t c -> t b c").shape == (None, None, 8)
        with pytest.raises(StaticShapeRequiredError, match="rearrange"):
            ops.rearrange(x, "b t (c c1) -> b t c c1", c1=2)
