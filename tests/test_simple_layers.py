"""Reshaping, merge and activation layers: the layer harness, numpy expectations, real Keras 3
where it is installed, symbolic shapes, config round trips and argument errors."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from harness import run_layer_test
from kgraph import keras, ops
from kgraph.compiler.autodiff import gradients
from kgraph.compiler.build import compile_graph
from kgraph.ir.graph import Graph, tracing
from kgraph.keras.layers import activation, merge, reshaping
from kgraph.keras.layers.core import Input

L = keras.layers


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _unit(x, axis):
    return x / np.sqrt(np.sum(x * x, axis=axis, keepdims=True))


def _keras_relu(x, max_value=None, negative_slope=0.0, threshold=0.0):
    out = np.where(x > threshold, x, 0.0)
    if max_value is not None:
        out = np.minimum(out, max_value)
    return out - negative_slope * np.maximum(threshold - x, 0.0)


CONSTANT_025 = {"class_name": "Constant", "config": {"value": 0.25}}

# (id, class, constructor kwargs, input shapes with batch, numpy expectation)
CASES = [
    ("flatten", reshaping.Flatten, {}, [(2, 3, 4)], lambda x: x.reshape(2, 12)),
    ("flatten_channels_first", reshaping.Flatten, {"data_format": "channels_first"},
     [(2, 3, 4, 5)], lambda x: np.transpose(x, (0, 2, 3, 1)).reshape(2, 60)),
    ("flatten_2d", reshaping.Flatten, {}, [(3, 5)], lambda x: x),
    ("reshape", reshaping.Reshape, {"target_shape": (4, 3)}, [(2, 3, 4)],
     lambda x: x.reshape(2, 4, 3)),
    ("reshape_inferred", reshaping.Reshape, {"target_shape": (-1, 2)}, [(2, 3, 4)],
     lambda x: x.reshape(2, 6, 2)),
    ("permute", reshaping.Permute, {"dims": (2, 1)}, [(2, 3, 4)],
     lambda x: np.transpose(x, (0, 2, 1))),
    ("permute_3", reshaping.Permute, {"dims": (3, 1, 2)}, [(2, 3, 4, 5)],
     lambda x: np.transpose(x, (0, 3, 1, 2))),
    ("repeat_vector", reshaping.RepeatVector, {"n": 3}, [(2, 4)],
     lambda x: np.repeat(x[:, None, :], 3, axis=1)),
    ("add", merge.Add, {}, [(2, 3), (2, 3), (2, 3)], lambda a, b, c: a + b + c),
    ("add_broadcast", merge.Add, {}, [(2, 3, 4), (2, 1, 4)], lambda a, b: a + b),
    ("add_lower_rank", merge.Add, {}, [(2, 3, 4), (2, 4)], lambda a, b: a + b[:, None, :]),
    ("subtract", merge.Subtract, {}, [(2, 3), (2, 3)], lambda a, b: a - b),
    ("multiply", merge.Multiply, {}, [(2, 3), (2, 3), (2, 3)], lambda a, b, c: a * b * c),
    ("average", merge.Average, {}, [(2, 3), (2, 3), (2, 3)], lambda a, b, c: (a + b + c) / 3),
    ("maximum", merge.Maximum, {}, [(2, 3), (2, 3)], np.maximum),
    ("minimum", merge.Minimum, {}, [(2, 3), (2, 3)], np.minimum),
    ("concatenate", merge.Concatenate, {}, [(2, 3), (2, 4)],
     lambda a, b: np.concatenate([a, b], -1)),
    ("concatenate_axis1", merge.Concatenate, {"axis": 1}, [(2, 1, 4), (2, 3, 4)],
     lambda a, b: np.concatenate([a, b], 1)),
    ("dot", merge.Dot, {"axes": 1}, [(2, 3), (2, 3)],
     lambda a, b: np.sum(a * b, axis=1, keepdims=True)),
    ("dot_3d", merge.Dot, {"axes": (2, 2)}, [(2, 3, 4), (2, 5, 4)],
     lambda a, b: np.einsum("bik,bjk->bij", a, b)),
    ("dot_mixed_axes", merge.Dot, {"axes": [1, 2]}, [(2, 4, 3), (2, 5, 4)],
     lambda a, b: np.einsum("bki,bjk->bij", a, b)),
    ("dot_normalize", merge.Dot, {"axes": -1, "normalize": True}, [(2, 3, 4), (2, 5, 4)],
     lambda a, b: np.einsum("bik,bjk->bij", _unit(a, -1), _unit(b, -1))),
    ("relu", activation.ReLU, {}, [(3, 4)], lambda x: np.maximum(x, 0)),
    ("relu_max_value", activation.ReLU, {"max_value": 0.5}, [(3, 4)],
     lambda x: np.clip(x, 0, 0.5)),
    ("relu_all_args", activation.ReLU,
     {"max_value": 1.0, "negative_slope": 0.1, "threshold": 0.3}, [(3, 4)],
     lambda x: _keras_relu(x, 1.0, 0.1, 0.3)),
    ("leaky_relu", activation.LeakyReLU, {}, [(3, 4)], lambda x: np.where(x > 0, x, 0.3 * x)),
    ("leaky_relu_slope", activation.LeakyReLU, {"negative_slope": 0.05}, [(3, 4)],
     lambda x: np.where(x > 0, x, 0.05 * x)),
    ("elu", activation.ELU, {}, [(3, 4)], lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    ("elu_alpha", activation.ELU, {"alpha": 0.5}, [(3, 4)],
     lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
    ("softmax", activation.Softmax, {}, [(3, 4)], _softmax),
    ("softmax_axis1", activation.Softmax, {"axis": 1}, [(2, 3, 4)], lambda x: _softmax(x, 1)),
    ("softmax_two_axes", activation.Softmax, {"axis": (1, 2)}, [(2, 3, 4)],
     lambda x: np.exp(x) / np.exp(x).sum(axis=(1, 2), keepdims=True)),
    ("prelu", activation.PReLU, {"alpha_initializer": CONSTANT_025}, [(3, 4)],
     lambda x: np.where(x > 0, x, 0.25 * x)),
    ("prelu_shared", activation.PReLU,
     {"alpha_initializer": CONSTANT_025, "shared_axes": [1]}, [(2, 3, 4)],
     lambda x: np.where(x > 0, x, 0.25 * x)),
]
IDS = [c[0] for c in CASES]


def _data(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s).astype(np.float32) for s in shapes]


def _arg(data):
    return data if len(data) > 1 else data[0]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_layer_harness(case):
    _, cls, kwargs, shapes, expect = case
    data = _data(shapes)
    want_shape = np.shape(expect(*data))
    run_layer_test(cls, kwargs, shapes if len(shapes) > 1 else shapes[0],
                   expected_output_shape=want_shape)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_eager_call_matches_numpy(case):
    _, cls, kwargs, shapes, expect = case
    data = _data(shapes)
    got = cls(**kwargs)(_arg(data))
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_allclose(got, expect(*[d.astype(np.float64) for d in data]),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_config_round_trip(case):
    _, cls, kwargs, shapes, _ = case
    layer = cls(**kwargs, name=f"layer_{case[0]}")
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == json.loads(json.dumps(config))  # JSON-able
    clone = cls.from_config(json.loads(json.dumps(config)))
    assert clone.name == layer.name
    assert json.dumps(clone.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    data = _data(shapes)
    np.testing.assert_array_equal(clone(_arg(data)), layer(_arg(data)))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_real_keras(case):
    """Same outputs and same layer-specific config as Keras 3 (skipped without Keras)."""
    real_keras = pytest.importorskip("keras")
    name, cls, kwargs, shapes, _ = case
    data = _data(shapes)
    theirs = getattr(real_keras.layers, cls.__name__)(**kwargs)
    ours = cls(**kwargs)
    np.testing.assert_allclose(ours(_arg(data)), np.asarray(theirs(_arg(data))),
                               rtol=1e-5, atol=1e-6)
    common = {"name", "trainable", "dtype"}
    their_config = json.loads(json.dumps({k: v for k, v in theirs.get_config().items()
                                          if k not in common}))
    our_config = json.loads(json.dumps({k: v for k, v in ours.get_config().items()
                                        if k not in common}))
    assert our_config == their_config


# -- symbolic shapes ---------------------------------------------------------------------------
@pytest.mark.parametrize("make, shapes, expected", [
    (lambda: L.Flatten(), [(3, 4)], (None, 12)),
    (lambda: L.Flatten(), [(None, 4)], (None, None)),
    (lambda: L.Flatten(), [()], (None, 1)),
    (lambda: L.Reshape((-1, 2)), [(3, 4)], (None, 6, 2)),
    (lambda: L.Reshape((2, -1)), [(None, 4)], (None, 2, None)),
    (lambda: L.Permute((2, 1)), [(None, 4)], (None, 4, None)),
    (lambda: L.RepeatVector(5), [(4,)], (None, 5, 4)),
    (lambda: L.Add(), [(1, 4), (3, 4)], (None, 3, 4)),
    (lambda: L.Multiply(), [(3, 4), (4,)], (None, 3, 4)),
    (lambda: L.Concatenate(), [(3,), (4,)], (None, 7)),
    (lambda: L.Concatenate(), [(None,), (4,)], (None, None)),
    (lambda: L.Concatenate(axis=1), [(2, 5), (None, 5)], (None, None, 5)),
    (lambda: L.Dot(axes=1), [(3,), (3,)], (None, 1)),
    (lambda: L.Dot(axes=(1, 2)), [(4, 3), (5, 4)], (None, 3, 5)),
    (lambda: L.ReLU(6.0), [(None, 3)], (None, None, 3)),
    (lambda: L.Softmax(axis=1), [(2, 3)], (None, 2, 3)),
    (lambda: L.PReLU(shared_axes=[1]), [(None, 3)], (None, None, 3)),
])
def test_symbolic_output_shapes(make, shapes, expected):
    inputs = [Input(shape=s) for s in shapes]
    out = make()(inputs if len(inputs) > 1 else inputs[0])
    assert tuple(out.shape) == expected


def test_functional_forms_make_the_layers():
    a, b = _data([(2, 3), (2, 3)])
    for fn, cls in [(merge.add, merge.Add), (merge.subtract, merge.Subtract),
                    (merge.multiply, merge.Multiply), (merge.average, merge.Average),
                    (merge.maximum, merge.Maximum), (merge.minimum, merge.Minimum),
                    (merge.concatenate, merge.Concatenate)]:
        np.testing.assert_array_equal(fn([a, b]), cls()([a, b]))
        kt = fn([Input(shape=(3,)), Input(shape=(3,))], name=f"fn_{cls.__name__.lower()}")
        assert kt._keras_history[0].name == f"fn_{cls.__name__.lower()}"
        assert isinstance(kt._keras_history[0], cls)
    np.testing.assert_allclose(merge.dot([a, b], axes=1), np.sum(a * b, 1, keepdims=True),
                               rtol=1e-6)
    np.testing.assert_array_equal(merge.concatenate([a, b], axis=0), np.concatenate([a, b]))
    assert L.add is merge.add and L.Dot is merge.Dot and L.ReLU is activation.ReLU


def test_merge_layers_in_a_functional_model():
    a, b = Input(shape=(3,)), Input(shape=(3,))
    joined = L.Concatenate()([L.Add()([a, b]), L.Maximum()([a, b])])
    model = keras.Model([a, b], L.Dot(axes=1)([joined, joined]))
    x, y = _data([(5, 3), (5, 3)])
    want = np.concatenate([x + y, np.maximum(x, y)], 1)
    np.testing.assert_allclose(model.predict([x, y], verbose=0),
                               np.sum(want * want, 1, keepdims=True), rtol=1e-5)


def test_softmax_mask_gives_masked_positions_zero():
    x = _data([(2, 4)])[0]
    mask = np.array([[True, True, False, True], [False, True, True, True]])
    got = L.Softmax()(x, mask=mask)
    want = np.where(mask, np.exp(x), 0.0)
    np.testing.assert_allclose(got, want / want.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_prelu_weight_shape_and_training():
    layer = run_layer_test(L.PReLU, {"shared_axes": [1, 2]}, (2, 3, 4, 5),
                           expected_output_shape=(2, 3, 4, 5), expected_num_trainable_weights=1)
    assert layer.weights[0].shape == (1, 1, 5) and layer.weights[0].path.endswith("/alpha")


# -- unknown non-batch dims at run time ----------------------------------------------------------
def _run_traced(layer, shape, batches, grad_scale):
    """Run `layer` on a (None, None, 4) input through onnxruntime for several run-time shapes,
    with d sum(out**2) / d x, which is `grad_scale * x` for these layers."""
    graph = Graph(f"dynamic_{layer.name}")
    x = graph.placeholder("x", shape, "float32")
    with tracing(graph):
        out = layer(x)
        (gx,) = gradients(graph, ops.sum(ops.square(out)), [x])
    graph.set_outputs({"out": out, "gx": gx})
    compiled = compile_graph(graph)
    results = []
    for run_shape in batches:
        data = np.random.default_rng(0).normal(size=run_shape).astype(np.float32)
        out_value, gx_value = [compiled.to_numpy(o) for o in compiled.run({"x": data})]
        np.testing.assert_allclose(gx_value, grad_scale * data, rtol=1e-5)
        results.append((data, out_value))
    return results


def test_flatten_and_reshape_with_unknown_non_batch_dims():
    for data, out in _run_traced(L.Flatten(), (None, None, 4), [(2, 5, 4), (3, 1, 4)], 2.0):
        np.testing.assert_array_equal(out, data.reshape(len(data), -1))
    for data, out in _run_traced(L.Reshape((-1, 2)), (None, None, 4), [(2, 5, 4), (1, 2, 4)],
                                 2.0):
        np.testing.assert_array_equal(out, data.reshape(len(data), -1, 2))


def test_repeat_vector_with_any_batch_size():
    for data, out in _run_traced(L.RepeatVector(3), (None, 4), [(1, 4), (6, 4)], 6.0):
        np.testing.assert_array_equal(out, np.repeat(data[:, None], 3, axis=1))


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, quoted", [
    (lambda: L.Flatten(data_format="channels_middle"), "data_format='channels_middle'"),
    (lambda: L.Reshape((2, -1, -1)), "target_shape=(2, -1, -1)"),
    (lambda: L.Reshape((0, 3)), "target_shape=(0, 3)"),
    (lambda: L.Reshape("ab"), "target_shape='ab'"),
    (lambda: L.Permute((1, 3)), "dims=(1, 3)"),
    (lambda: L.Permute((0, 1)), "dims=(0, 1)"),
    (lambda: L.RepeatVector(0), "n=0"),
    (lambda: L.RepeatVector(2.5), "n=2.5"),
    (lambda: L.Concatenate(axis="x"), "axis='x'"),
    (lambda: L.Dot(axes=(1, 2, 3)), "axes=(1, 2, 3)"),
    (lambda: L.Dot(axes="1"), "axes='1'"),
    (lambda: L.ReLU(max_value=-1.0), "max_value=-1.0"),
    (lambda: L.ReLU(negative_slope=-0.1), "negative_slope=-0.1"),
    (lambda: L.ReLU(threshold=-2), "threshold=-2"),
    (lambda: L.ReLU(max_value="big"), "max_value='big'"),
    (lambda: L.LeakyReLU(negative_slope=-0.5), "negative_slope=-0.5"),
    (lambda: L.LeakyReLU(negative_slope=None), "negative_slope=None"),
    (lambda: L.ELU(alpha="one"), "alpha='one'"),
    (lambda: L.Softmax(axis="last"), "axis='last'"),
    (lambda: L.PReLU(shared_axes=[0]), "shared_axes=[0]"),
])
def test_bad_arguments_raise_value_error_quoting_the_value(make, quoted):
    with pytest.raises(ValueError, match=re.escape(quoted)):
        make()


@pytest.mark.parametrize("make, shapes, quoted", [
    (lambda: L.Add(), [(3,), (4,)], "[(None, 3), (None, 4)]"),
    (lambda: L.Maximum(), [(2, 3), (3, 3)], "[(None, 2, 3), (None, 3, 3)]"),
    (lambda: L.Subtract(), [(3,), (3,), (3,)], "(None, 3), (None, 3), (None, 3)"),
    (lambda: L.Concatenate(), [(3, 4), (5, 6)], "[(None, 3, 4), (None, 5, 6)]"),
    (lambda: L.Concatenate(), [(3, 4), (4,)], "[(None, 3, 4), (None, 4)]"),
    (lambda: L.Dot(axes=1), [(3,), (4,)], "3 (at axis 1) != 4 (at axis 1)"),
    (lambda: L.Dot(axes=0), [(3,), (3,)], "axes=0"),
    (lambda: L.Reshape((5,)), [(3, 4)], "input_shape=(None, 3, 4), target_shape=(5,)"),
    (lambda: L.Permute((2, 1)), [(3,)], "Full shape received: (None, 3)"),
    (lambda: L.RepeatVector(2), [(3, 4)], "Full shape received: (None, 3, 4)"),
])
def test_incompatible_inputs_raise_value_error_quoting_the_shapes(make, shapes, quoted):
    inputs = [Input(shape=s) for s in shapes]
    with pytest.raises(ValueError, match=re.escape(quoted)):
        make()(inputs if len(inputs) > 1 else inputs[0])


def test_merge_layers_need_a_list_and_one_batch_size():
    with pytest.raises(ValueError, match="should be called on a list of inputs"):
        L.Add()(Input(shape=(3,)))
    a = Input(shape=(3,), batch_size=2)
    b = Input(shape=(3,), batch_size=5)
    with pytest.raises(ValueError, match=re.escape("[(2, 3), (5, 3)]")):
        L.Add()([a, b])
    with pytest.raises(ValueError, match="exactly 2"):
        L.Dot(axes=1)([Input(shape=(3,))])


def test_dot_with_an_open_middle_dim():
    # pointnet_segmentation.py: Dot(axes=(2, 1)) of (batch, points, 3) with (batch, 3, 3) on
    # `Input(shape=(None, 3))`, run at two point counts
    points = keras.Input((None, 3))
    transform = keras.Input((3, 3))
    model = keras.Model([points, transform], keras.layers.Dot(axes=(2, 1))([points, transform]))
    rng = np.random.default_rng(8)
    for n in (5, 9):
        x, t = rng.normal(size=(2, n, 3)).astype("f4"), rng.normal(size=(2, 3, 3)).astype("f4")
        np.testing.assert_allclose(model.predict([x, t], verbose=0), x @ t, rtol=1e-5,
                                   atol=1e-5)
