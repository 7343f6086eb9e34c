"""Normalization layers: the layer harness, forward passes against numpy implementations of
the Keras equations, BatchNormalization's moving statistics (in eager calls and in `fit`), the
frozen-BatchNormalization rule of the FAQ, masks, configs and argument errors."""
from __future__ import annotations

import numpy as np
import pytest

import kgraph as tf
from harness import run_layer_test
from kgraph import keras

L = keras.layers
BN_KEYS = {"name", "trainable", "dtype", "axis", "momentum", "epsilon", "center", "scale",
           "beta_initializer", "gamma_initializer", "moving_mean_initializer",
           "moving_variance_initializer", "beta_regularizer", "gamma_regularizer",
           "beta_constraint", "gamma_constraint", "synchronized"}


def _data(*shape, seed=0, loc=0.0, scale=1.0):
    return np.random.default_rng(seed).normal(loc, scale, size=shape).astype("float32")


def np_batch_norm(x, mean, var, gamma, beta, axis=-1, eps=1e-3):
    shape = [1] * x.ndim
    shape[axis] = -1
    r = lambda v: np.reshape(v, shape)  # noqa: E731
    return r(gamma) * (x - r(mean)) / np.sqrt(r(var) + eps) + r(beta)


def _set_bn(layer, shape, seed=1):
    rng = np.random.default_rng(seed)
    c = shape[layer.axis]
    weights = [rng.normal(size=c), rng.normal(size=c), rng.normal(size=c),
               rng.uniform(0.5, 2.0, size=c)]
    layer.build((None,) + tuple(shape[1:]))
    layer.set_weights([w.astype("float32") for w in weights])
    return weights


# -- BatchNormalization ------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, shape, trainable", [
    ({}, (4, 3), 2),
    ({"axis": 1}, (3, 4, 2, 2), 2),
    ({"center": False}, (4, 5, 3), 1),
    ({"scale": False, "epsilon": 1e-2}, (4, 3), 1),
    ({"gamma_regularizer": "l2", "beta_constraint": "non_neg"}, (4, 3), 2),
])
def test_batch_normalization_harness(kwargs, shape, trainable):
    layer = run_layer_test(L.BatchNormalization, kwargs, shape, expected_output_shape=shape,
                           expected_num_trainable_weights=trainable,
                           expected_num_non_trainable_weights=2)
    names = [v.name for v in layer.weights]
    assert names == (["gamma"] if layer.scale else []) + (["beta"] if layer.center else []) + \
        ["moving_mean", "moving_variance"]
    assert set(layer.get_config()) == BN_KEYS


@pytest.mark.parametrize("axis, shape", [(-1, (6, 5, 4)), (1, (6, 4, 3, 3))])
def test_batch_normalization_inference_uses_moving_statistics(axis, shape):
    layer = L.BatchNormalization(axis=axis)
    gamma, beta, mean, var = _set_bn(layer, shape)
    x = _data(*shape, loc=1.0, scale=2.0)
    np.testing.assert_allclose(layer(x), np_batch_norm(x, mean, var, gamma, beta, axis),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer(x, training=False), layer(x), rtol=0, atol=0)
    np.testing.assert_allclose(layer.moving_mean.numpy(), mean.astype("float32"))


@pytest.mark.parametrize("axis, shape", [(-1, (6, 5, 4)), (1, (6, 4, 3, 3))])
def test_batch_normalization_training_uses_batch_statistics_and_updates(axis, shape):
    layer = L.BatchNormalization(axis=axis, momentum=0.8, epsilon=1e-2)
    gamma, beta, mean0, var0 = _set_bn(layer, shape)
    x = _data(*shape, loc=3.0, scale=2.0)
    axes = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
    x64 = x.astype(np.float64)
    batch_mean, batch_var = x64.mean(axes), x64.var(axes)  # biased variance
    y = layer(x, training=True)
    np.testing.assert_allclose(y, np_batch_norm(x64, batch_mean, batch_var, gamma, beta, axis,
                                                1e-2), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.8 * mean0 + 0.2 * batch_mean,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.8 * var0 + 0.2 * batch_var,
                               rtol=1e-5, atol=1e-6)
    layer(x, training=True)  # a second step moves the averages again
    np.testing.assert_allclose(layer.moving_mean.numpy(),
                               0.64 * mean0 + 0.36 * batch_mean, rtol=1e-5, atol=1e-6)


def test_batch_normalization_training_gradients_match_closed_form():
    """d/dgamma sum(y*r) = sum(xhat*r), d/dbeta = sum(r), with xhat from batch statistics."""
    layer = L.BatchNormalization()
    x = _data(8, 3, loc=2.0)
    layer(x)
    r = _data(8, 3, seed=5)
    with tf.GradientTape() as tape:
        loss = keras.ops.sum(layer(x, training=True) * r)
    g_gamma, g_beta = tape.gradient(loss, layer.trainable_weights)
    xhat = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3)
    np.testing.assert_allclose(g_gamma, (xhat * r).sum(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g_beta, r.sum(0), rtol=1e-5, atol=1e-6)


def _bn_model(momentum=0.9, trainable=True):
    bn = L.BatchNormalization(momentum=momentum, name="bn", trainable=trainable)
    model = keras.Sequential([keras.Input((5, 3)), bn])
    return model, bn


def test_fit_updates_moving_statistics_inside_the_train_step():
    model, bn = _bn_model(momentum=0.9)
    model.compile(keras.optimizers.SGD(0.0), "mse")  # lr 0: only the moving stats change
    x, y = _data(16, 5, 3, loc=1.0, scale=3.0), _data(16, 5, 3, seed=2)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    mean, var = np.zeros(3), np.ones(3)
    for batch in (x[:8], x[8:]):
        mean = 0.9 * mean + 0.1 * batch.mean((0, 1))
        var = 0.9 * var + 0.1 * batch.var((0, 1))
    np.testing.assert_allclose(bn.moving_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), var, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bn.gamma.numpy(), np.ones(3, "float32"))
    before = bn.moving_mean.numpy().copy()
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)  # inference: no update
    np.testing.assert_allclose(model.predict(x, verbose=0), np_batch_norm(
        x, mean, var, np.ones(3), np.zeros(3)), rtol=1e-4, atol=1e-4)


def test_frozen_batch_normalization_runs_in_inference_mode():
    """FAQ: `bn.trainable = False` also forces inference mode, even with training=True."""
    layer = L.BatchNormalization()
    gamma, beta, mean, var = _set_bn(layer, (6, 4))
    x = _data(6, 4, loc=5.0)
    layer(x, training=True)  # traced in training mode first: freezing must invalidate it
    layer.set_weights([gamma, beta, mean, var])
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 4
    expected = np_batch_norm(x, mean, var, gamma, beta)
    np.testing.assert_allclose(layer(x, training=True), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean.numpy(), mean.astype("float32"))
    np.testing.assert_allclose(layer.moving_variance.numpy(), var.astype("float32"))


def test_frozen_batch_normalization_in_fit_keeps_everything():
    model, bn = _bn_model(trainable=False)
    assert model.trainable_weights == [] and len(model.non_trainable_weights) == 4
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x, y = _data(8, 5, 3, loc=2.0), _data(8, 5, 3, seed=3)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), np.zeros(3, "float32"))
    np.testing.assert_array_equal(bn.moving_variance.numpy(), np.ones(3, "float32"))
    np.testing.assert_allclose(model(x, training=True), x / np.sqrt(1 + 1e-3), rtol=1e-5)


def test_trainable_flag_takes_effect_at_compile():
    """Keras: a trainable change after compile() counts only after compile() is called again."""
    model, bn = _bn_model()
    model.compile(keras.optimizers.SGD(0.0), "mse")
    bn.trainable = False  # not recompiled: fit still trains the layer
    x = _data(8, 5, 3, loc=2.0)
    model.fit(x, x, batch_size=8, verbose=0)
    assert np.all(bn.moving_mean.numpy() != 0)
    model.compile(keras.optimizers.SGD(0.0), "mse")
    before = bn.moving_mean.numpy().copy()
    model.fit(x, x, batch_size=8, verbose=0)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)


def test_masked_batch_normalization_ignores_padded_steps():
    x = _data(4, 6, 3, loc=1.0)
    mask = np.ones((4, 6), bool)
    mask[:, 4:] = False
    x[~mask] = 100.0  # padding far from the data: any leak shows
    layer = L.BatchNormalization(momentum=0.0, epsilon=1e-3)
    y = layer(x, mask=mask, training=True)
    kept = x[mask]
    mean, var = kept.mean(0), kept.var(0)
    np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), var, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(y[mask], (kept - mean) / np.sqrt(var + 1e-3), rtol=1e-4,
                               atol=1e-4)
    with pytest.raises(ValueError, match="one dimension less"):
        L.BatchNormalization()(x, mask=np.ones((4, 6, 3), bool), training=True)


def test_batch_normalization_config_round_trip_and_symbolic_shapes():
    layer = L.BatchNormalization(axis=1, momentum=0.5, epsilon=0.01, center=False,
                                 gamma_initializer="random_normal", name="b1")
    config = layer.get_config()
    assert config["axis"] == 1 and config["momentum"] == 0.5 and config["center"] is False
    clone = L.BatchNormalization.from_config(config)
    assert clone.get_config() == config
    out = L.BatchNormalization(axis=1)(keras.Input((3, None, None)))
    assert out.shape == (None, 3, None, None)
    legacy = L.BatchNormalization(axis=[3])  # tf.keras configs list the axis
    assert legacy.axis == 3


@pytest.mark.parametrize("kwargs, match", [
    ({"momentum": 1.5}, "momentum=1.5"),
    ({"momentum": "high"}, "momentum='high'"),
    ({"epsilon": -1e-3}, "epsilon=-0.001"),
    ({"axis": "last"}, "axis='last'"),
    ({"axis": [1, 2]}, r"axis=\[1, 2\]"),
    ({"renorm": True}, "renorm=True"),
])
def test_batch_normalization_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.BatchNormalization(**kwargs)


def test_batch_normalization_bad_axis_for_input():
    with pytest.raises(ValueError, match="axis=3"):
        L.BatchNormalization(axis=3)(np.ones((2, 3), "float32"))
    with pytest.raises(ValueError, match="known length"):
        L.BatchNormalization()(keras.Input((4, None)))


# -- LayerNormalization ------------------------------------------------------------------------
def np_layer_norm(x, axes, gamma=None, beta=None, eps=1e-3, rms=False):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    out = x / np.sqrt(var + eps) if rms else (x - mean) / np.sqrt(var + eps)
    return out * (1 if gamma is None else gamma) + (0 if beta is None else beta)


@pytest.mark.parametrize("kwargs, shape, trainable", [
    ({}, (3, 5), 2),
    ({"axis": [1, 2]}, (2, 3, 4), 2),
    ({"axis": 1, "center": False}, (2, 3, 4), 1),
    ({"rms_scaling": True}, (3, 5), 1),
    ({"scale": False, "center": False}, (3, 5), 0),
])
def test_layer_normalization_harness_and_numerics(kwargs, shape, trainable):
    layer = run_layer_test(L.LayerNormalization, kwargs, shape, expected_output_shape=shape,
                           expected_num_trainable_weights=trainable)
    rng = np.random.default_rng(3)
    layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.weights])
    x = _data(*shape, loc=2.0, scale=3.0)
    axes = tuple(a % len(shape) for a in (layer.axis if isinstance(layer.axis, list)
                                          else [layer.axis]))
    bshape = [shape[a] if a in axes else 1 for a in range(len(shape))]
    weights = {v.name: v.numpy().reshape(bshape) for v in layer.weights}
    expected = np_layer_norm(x.astype(np.float64), axes, weights.get("gamma"),
                             weights.get("beta"), rms=kwargs.get("rms_scaling", False))
    np.testing.assert_allclose(layer(x), expected, rtol=1e-4, atol=1e-4)


def test_layer_normalization_config_and_errors():
    layer = L.LayerNormalization(epsilon=1e-5)
    layer(np.ones((2, 3), "float32"))
    assert layer.get_config()["axis"] == [-1]  # as Keras: a list once built
    assert set(layer.get_config()) >= {"axis", "epsilon", "center", "scale", "rms_scaling"}
    with pytest.raises(TypeError, match="axis='x'"):
        L.LayerNormalization(axis="x")
    with pytest.raises(ValueError, match="epsilon=-1"):
        L.LayerNormalization(epsilon=-1)
    with pytest.raises(ValueError, match=r"axis=\[3\]"):
        L.LayerNormalization(axis=[3])(np.ones((2, 3), "float32"))


def test_layer_normalization_with_unknown_sequence_length():
    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, L.LayerNormalization()(inputs))
    x = _data(2, 7, 4)
    np.testing.assert_allclose(model.predict(x, verbose=0), np_layer_norm(x, (-1,)),
                               rtol=1e-4, atol=1e-5)


# -- GroupNormalization ------------------------------------------------------------------------
def np_group_norm(x, groups, axis=-1, eps=1e-3):
    moved = np.moveaxis(x, axis, -1)
    g = moved.reshape(moved.shape[:-1] + (groups, -1))
    axes = tuple(range(1, g.ndim - 2)) + (g.ndim - 1,)
    out = (g - g.mean(axes, keepdims=True)) / np.sqrt(g.var(axes, keepdims=True) + eps)
    return np.moveaxis(out.reshape(moved.shape), -1, axis)


@pytest.mark.parametrize("kwargs, shape, groups", [
    ({"groups": 2}, (2, 5, 4), 2),
    ({"groups": -1}, (2, 5, 4), 4),
    ({"groups": 1}, (2, 3, 3, 6), 1),
    ({"groups": 3, "axis": 1}, (2, 6, 3, 2), 3),
    ({"groups": 2}, (3, 4), 2),
])
def test_group_normalization_harness_and_numerics(kwargs, shape, groups):
    layer = run_layer_test(L.GroupNormalization, kwargs, shape, expected_output_shape=shape,
                           expected_num_trainable_weights=2)
    x = _data(*shape, loc=1.0, scale=2.0)
    axis = kwargs.get("axis", -1)
    gamma, beta = _data(shape[axis], seed=7), _data(shape[axis], seed=8)
    layer.set_weights([gamma, beta])
    bshape = [1] * len(shape)
    bshape[axis] = -1
    expected = np_group_norm(x.astype(np.float64), groups, axis) * gamma.reshape(bshape) + \
        beta.reshape(bshape)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-4, atol=1e-4)
    assert layer.groups == groups


def test_group_normalization_with_unknown_dims_and_errors():
    inputs = keras.Input((None, None, 4))
    model = keras.Model(inputs, L.GroupNormalization(groups=2, center=False, scale=False)(inputs))
    x = _data(2, 3, 5, 4)
    np.testing.assert_allclose(model.predict(x, verbose=0), np_group_norm(x, 2), rtol=1e-4,
                               atol=1e-4)
    with pytest.raises(ValueError, match="groups=0"):
        L.GroupNormalization(groups=0)
    with pytest.raises(ValueError, match=r"\(3\).*\(4\)"):
        L.GroupNormalization(groups=3)(np.ones((2, 4), "float32"))
    with pytest.raises(ValueError, match=r"\(8\).*\(4\)"):
        L.GroupNormalization(groups=8)(np.ones((2, 4), "float32"))
    config = L.GroupNormalization(groups=4, epsilon=0.1).get_config()
    assert config["groups"] == 4 and config["epsilon"] == 0.1
    assert L.GroupNormalization.from_config(config).get_config() == config


# -- UnitNormalization -------------------------------------------------------------------------
@pytest.mark.parametrize("axis, shape", [(-1, (3, 4)), ([1, 2], (2, 3, 4)), (1, (2, 3, 4))])
def test_unit_normalization(axis, shape):
    run_layer_test(L.UnitNormalization, {"axis": axis}, shape, expected_output_shape=shape,
                   expected_num_trainable_weights=0)
    x = _data(*shape)
    axes = tuple(axis) if isinstance(axis, list) else axis
    np.testing.assert_allclose(L.UnitNormalization(axis=axis)(x),
                               x / np.sqrt((x ** 2).sum(axes, keepdims=True)), rtol=1e-5)


def test_unit_normalization_zero_vector_and_errors():
    y = L.UnitNormalization()(np.array([[0.0, 0.0], [3.0, 4.0]], "float32"))
    np.testing.assert_allclose(y, [[0, 0], [0.6, 0.8]], rtol=1e-6)
    with pytest.raises(TypeError, match="axis=1.5"):
        L.UnitNormalization(axis=1.5)
    assert L.UnitNormalization(axis=[1, 2]).get_config()["axis"] == [1, 2]


def test_moments_with_several_unknown_dims():
    from kgraph.compiler.build import compile_graph
    from kgraph.ir.graph import Graph, tracing
    from kgraph.ops import nn as ops_nn

    graph = Graph("moments")
    x = graph.placeholder("x", (None, None, 3), "float32")
    with tracing(graph):
        mean, variance = ops_nn.moments(x, axes=-1)
        kept_mean, _ = ops_nn.moments(x, axes=(0, 1))
    assert mean.shape == (None, None) and kept_mean.shape == (3,)
    graph.set_outputs({"mean": mean, "variance": variance, "kept": kept_mean})
    data = _data(2, 5, 3, loc=4.0)
    got = compile_graph(graph, "numpy").run({"x": data})
    for g, w in zip(got, [data.mean(-1), data.var(-1), data.mean((0, 1))]):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


# -- one train step through every backend ------------------------------------------------------
def _norm_step_graph():
    from kgraph.compiler.passes import optimize

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6, 4)), L.LayerNormalization(), L.GaussianNoise(0.1),
        L.SpatialDropout1D(0.25), L.BatchNormalization(), L.GroupNormalization(2),
        L.AlphaDropout(0.1), L.UnitNormalization(), L.GaussianDropout(0.2), L.Dense(1),
        L.ActivityRegularization(l1=0.01)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    x, y = _data(8, 6, 4, loc=1.0), _data(8, 6, 1, seed=1)
    graph = optimize(model.trace_step("train", x, y))
    assert any("moving_mean" in n for n in graph.input_names)
    feeds = {"x_0": x, "y_0": y, "rng_key": np.uint32(7)}
    feeds.update({v.node.attrs["name"]: var.numpy() for var, v in graph.variables.items()})
    return graph, feeds


@pytest.mark.onnx
def test_train_step_with_every_layer_on_onnxruntime():
    from kgraph.compiler.build import compile_graph

    graph, feeds = _norm_step_graph()
    want = compile_graph(graph, "numpy", optimized=True).run(feeds)
    compiled = compile_graph(graph, optimized=True)
    got = [compiled.to_numpy(o) for o in compiled.run(feeds)]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.tvm
def test_train_step_with_every_layer_on_tvm():
    from tvm_helper import assert_outputs_close, run_tvm

    from kgraph.compiler.build import compile_graph

    graph, feeds = _norm_step_graph()
    want = compile_graph(graph, "numpy", optimized=True).run(feeds)
    assert_outputs_close(run_tvm(graph, feeds, optimized=True), want)
