"""Pooling layers: MaxPooling/AveragePooling 1D/2D/3D and the global poolings.

Every case goes through the layer harness, is checked against a numpy implementation written
from the Keras definitions (window bounds clipped to the input instead of padding; TF "SAME"
geometry), against real Keras 3 where it is installed (outputs and config), and has its input
gradient checked against float64 central differences and run through onnxruntime with an
unknown batch dim. The helpers at the top are shared with tests/test_spatial_layers.py."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from harness import run_layer_test
from kgraph import keras, ops
from kgraph.compiler.autodiff import gradients
from kgraph.compiler.build import compile_graph
from kgraph.ir.graph import Graph, tracing
from kgraph.keras.layers import pooling

L = keras.layers


# -- shared checks -----------------------------------------------------------------------------
def distinct(shape, seed=0):
    """Distinct multiples of 1/8 in random order: no tied maxima, exact in float32."""
    n = int(np.prod(shape))
    return ((np.random.default_rng(seed).permutation(n) - n // 2) / 8.0).reshape(shape)


def input_gradient_graph(layer, shape, dtype, mask_shape=None):
    """Graph (batch dim unknown) with outputs `out`, `loss` = sum(out * W) and `grad` =
    d loss / d input, for a layer called on a placeholder."""
    graph = Graph(f"grad_{layer.name}_{dtype}")
    x = graph.placeholder("x", (None,) + tuple(shape[1:]), dtype)
    # as Keras, a layer casts float inputs to its compute dtype (float32); the float64
    # finite-difference check needs the layer's math in float64, so no input cast here
    layer._convert_input_args = False
    kwargs = {}
    if mask_shape is not None:
        kwargs["mask"] = graph.placeholder("mask", (None,) + tuple(mask_shape[1:]), "bool")
    with tracing(graph):
        out = layer(x, **kwargs)
        weights = np.random.default_rng(1).normal(size=(1,) + tuple(out.shape[1:]))
        loss = ops.sum(out * graph.constant(weights.astype(dtype)))
        (grad,) = gradients(graph, loss, [x])
    graph.set_outputs({"out": out, "loss": loss, "grad": grad})
    return graph


def check_input_gradient(layer, x, mask=None, eps=1e-6):
    """d sum(layer(x) * W) / dx: float64 analytic vs central differences (numpy interpreter),
    then the float32 graph on onnxruntime against the numpy interpreter."""
    feeds = {"x": x} if mask is None else {"x": x, "mask": mask}
    mask_shape = None if mask is None else mask.shape
    compiled = compile_graph(input_gradient_graph(layer, x.shape, "float64", mask_shape), "numpy")
    _, _, analytic = compiled.run(feeds)
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        probe = []
        for sign in (1, -1):
            shifted = x.copy()
            shifted[index] += sign * eps
            probe.append(compiled.run({**feeds, "x": shifted})[1])
        numeric[index] = (probe[0] - probe[1]) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)
    graph = input_gradient_graph(layer, x.shape, "float32", mask_shape)
    feeds32 = {**feeds, "x": x.astype(np.float32)}
    want = compile_graph(graph, "numpy").run(feeds32)
    ort = compile_graph(graph)
    for name, w, g in zip(graph.output_names, want, ort.run(feeds32)):
        np.testing.assert_allclose(ort.to_numpy(g), w, rtol=1e-5, atol=1e-6, err_msg=name)


def check_training_lowers_loss(make_layer, shape):
    """Input -> Dense -> layer -> Flatten -> Dense, a few SGD steps through `fit`: the
    gradient of the layer runs inside the training graph with an unknown batch dim."""
    keras.utils.set_random_seed(0)  # the result must not depend on the tests run before
    inputs = keras.Input(shape=shape[1:])
    hidden = make_layer()(L.Dense(3, name="mix")(inputs))
    flat = L.Flatten()(hidden) if len(hidden.shape) > 2 else hidden
    model = keras.Model(inputs, L.Dense(1, name="head")(flat))
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=shape).astype("float32")
    y = rng.normal(size=(shape[0], 1)).astype("float32")
    # small full-batch steps: gradient descent on a piecewise-smooth loss must go down
    model.compile(keras.optimizers.SGD(0.002), "mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=5, batch_size=shape[0], verbose=0)
    assert model.evaluate(x, y, verbose=0) < before


def json_config(layer, drop=("name",)):
    return {k: v for k, v in json.loads(json.dumps(layer.get_config())).items()
            if k not in drop}


def check_config_round_trip(cls, kwargs, x):
    layer = cls(**kwargs)
    config = json.loads(json.dumps(layer.get_config()))
    clone = cls.from_config(config)
    assert clone.name == layer.name
    assert json_config(clone, ()) == json_config(layer, ())
    np.testing.assert_array_equal(clone(x), layer(x))


def check_matches_real_keras(cls, kwargs, x, mask=None):
    """Same output and same config (but the name) as Keras 3 (skipped without it)."""
    real_keras = pytest.importorskip("keras")
    theirs = getattr(real_keras.layers, cls.__name__)(**kwargs)
    ours = cls(**kwargs)
    extra = {} if mask is None else {"mask": mask}
    np.testing.assert_allclose(ours(x, **extra), np.asarray(theirs(x, **extra)),
                               rtol=1e-5, atol=1e-6)
    assert json_config(ours) == {k: v for k, v in json.loads(json.dumps(
        theirs.get_config())).items() if k != "name"}


# -- numpy pooling from the Keras definitions ---------------------------------------------------
def np_pooling(x, pool_size, strides=None, padding="valid", data_format="channels_last",
               mode="max"):
    """Output size floor((n - k) / s) + 1 ("valid") or ceil(n / s) ("same", padding split
    evenly with the odd one after); each window is clipped to the input, so an average
    counts real elements only."""
    dims = x.ndim - 2
    k = (pool_size,) * dims if isinstance(pool_size, int) else tuple(pool_size)
    s = k if strides is None else (strides,) * dims if isinstance(strides, int) else strides
    if data_format == "channels_first":
        x = np.moveaxis(x, 1, -1)
    sizes = x.shape[1:-1]
    if padding.lower() == "same":
        outs = [math.ceil(n / st) for n, st in zip(sizes, s)]
        before = [max((o - 1) * st + kk - n, 0) // 2 for o, st, kk, n in zip(outs, s, k, sizes)]
    else:
        outs = [(n - kk) // st + 1 for n, kk, st in zip(sizes, k, s)]
        before = [0] * dims
    out = np.zeros((x.shape[0], *outs, x.shape[-1]))
    for position in np.ndindex(*outs):
        window = [slice(max(p * st - b, 0), min(p * st - b + kk, n))
                  for p, st, b, kk, n in zip(position, s, before, k, sizes)]
        values = x[(slice(None), *window)].reshape(x.shape[0], -1, x.shape[-1])
        out[(slice(None), *position)] = values.max(1) if mode == "max" else values.mean(1)
    return np.moveaxis(out, -1, 1) if data_format == "channels_first" else out


def np_global(x, data_format="channels_last", keepdims=False, mode="max"):
    axes = tuple(range(1, x.ndim - 1)) if data_format == "channels_last" else \
        tuple(range(2, x.ndim))
    return (np.max if mode == "max" else np.mean)(x, axis=axes, keepdims=keepdims)


def _pool_case(id, cls, kwargs, shape):
    mode = "max" if "Max" in cls.__name__ else "average"
    if "Global" in cls.__name__:
        return (id, cls, kwargs, shape, lambda x: np_global(x, mode=mode, **kwargs))
    defaults = {"pool_size": {1: 2, 2: (2, 2), 3: (2, 2, 2)}[len(shape) - 2]}
    return (id, cls, kwargs, shape,
            lambda x: np_pooling(x, mode=mode, **{**defaults, **kwargs}))


CF = "channels_first"
CASES = [
    _pool_case("max1d", L.MaxPooling1D, {}, (2, 7, 3)),
    _pool_case("max1d_same_overlap", L.MaxPooling1D,
               {"pool_size": 3, "strides": 1, "padding": "same"}, (2, 6, 2)),
    _pool_case("max1d_gaps_cf", L.MaxPooling1D,
               {"pool_size": 2, "strides": 3, "data_format": CF}, (2, 3, 8)),
    _pool_case("max2d", L.MaxPooling2D, {}, (2, 5, 6, 3)),
    _pool_case("max2d_same_overlap", L.MaxPooling2D,
               {"pool_size": 3, "strides": 2, "padding": "same"}, (2, 5, 7, 2)),
    _pool_case("max2d_cf", L.MaxPooling2D,
               {"pool_size": (2, 3), "strides": (1, 2), "data_format": CF}, (2, 3, 5, 7)),
    _pool_case("max2d_upper_same", L.MaxPooling2D, {"padding": "SAME"}, (1, 5, 5, 1)),
    _pool_case("max3d", L.MaxPooling3D, {}, (1, 4, 5, 4, 2)),
    _pool_case("max3d_same_cf", L.MaxPooling3D,
               {"pool_size": 2, "strides": 1, "padding": "same", "data_format": CF},
               (1, 2, 3, 3, 4)),
    _pool_case("avg1d", L.AveragePooling1D, {"pool_size": 2}, (2, 7, 3)),
    _pool_case("avg1d_same", L.AveragePooling1D,
               {"pool_size": 3, "strides": 2, "padding": "same"}, (2, 8, 2)),
    _pool_case("avg2d", L.AveragePooling2D, {"pool_size": 2}, (2, 4, 6, 3)),
    _pool_case("avg2d_same_overlap", L.AveragePooling2D,
               {"pool_size": (3, 2), "strides": (2, 1), "padding": "same"}, (2, 5, 4, 2)),
    _pool_case("avg2d_same_cf", L.AveragePooling2D,
               {"pool_size": 3, "strides": 2, "padding": "same", "data_format": CF},
               (2, 2, 6, 5)),
    _pool_case("avg3d_same", L.AveragePooling3D, {"pool_size": 2, "padding": "same"},
               (1, 3, 4, 5, 2)),
    _pool_case("avg3d_cf", L.AveragePooling3D,
               {"pool_size": (1, 2, 3), "strides": (1, 1, 2), "data_format": CF},
               (1, 2, 3, 4, 5)),
    _pool_case("gmax1d", L.GlobalMaxPooling1D, {}, (2, 5, 3)),
    _pool_case("gmax1d_cf_keepdims", L.GlobalMaxPooling1D,
               {"data_format": CF, "keepdims": True}, (2, 3, 5)),
    _pool_case("gmax2d", L.GlobalMaxPooling2D, {}, (2, 3, 4, 2)),
    _pool_case("gmax3d_keepdims", L.GlobalMaxPooling3D, {"keepdims": True}, (2, 2, 3, 2, 2)),
    _pool_case("gavg1d", L.GlobalAveragePooling1D, {}, (2, 5, 3)),
    _pool_case("gavg2d_cf", L.GlobalAveragePooling2D, {"data_format": CF}, (2, 3, 4, 2)),
    _pool_case("gavg2d_keepdims", L.GlobalAveragePooling2D, {"keepdims": True}, (2, 3, 4, 2)),
    _pool_case("gavg3d_cf", L.GlobalAveragePooling3D, {"data_format": CF}, (2, 2, 3, 2, 2)),
]
IDS = [c[0] for c in CASES]


def case_tests(cases, training_ids):
    """The checks every weightless layer case of this file and test_spatial_layers.py gets;
    each module installs them with `globals().update(case_tests(...))`."""
    ids = [c[0] for c in cases]

    @pytest.mark.parametrize("case", cases, ids=ids)
    def test_layer_harness(case):
        _, cls, kwargs, shape, expect = case
        run_layer_test(cls, kwargs, shape, expected_output_shape=expect(np.zeros(shape)).shape,
                       expected_num_trainable_weights=0)

    @pytest.mark.parametrize("case", cases, ids=ids)
    def test_forward_matches_numpy_from_the_keras_definition(case):
        _, cls, kwargs, shape, expect = case
        x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
        got = cls(**kwargs)(x)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expect(x.astype(np.float64)), rtol=1e-6, atol=1e-6)

    @pytest.mark.parametrize("case", cases, ids=ids)
    def test_input_gradient_and_onnxruntime(case):
        _, cls, kwargs, shape, _ = case
        check_input_gradient(cls(**kwargs), distinct(shape))

    @pytest.mark.parametrize("case", cases, ids=ids)
    def test_config_round_trip(case):
        _, cls, kwargs, shape, _ = case
        check_config_round_trip(cls, kwargs, distinct(shape).astype(np.float32))

    @pytest.mark.parametrize("case", cases, ids=ids)
    def test_matches_real_keras(case):
        _, cls, kwargs, shape, _ = case
        check_matches_real_keras(cls, kwargs, distinct(shape).astype(np.float32))

    @pytest.mark.parametrize("case", [c for c in cases if c[0] in training_ids],
                             ids=lambda c: c[0])
    def test_training_through_the_layer_lowers_the_loss(case):
        _, cls, kwargs, shape, _ = case
        check_training_lowers_loss(lambda: cls(**kwargs), (8,) + tuple(shape[1:]))

    return {f.__name__: f for f in (
        test_layer_harness, test_forward_matches_numpy_from_the_keras_definition,
        test_input_gradient_and_onnxruntime, test_config_round_trip, test_matches_real_keras,
        test_training_through_the_layer_lowers_the_loss)}


globals().update(case_tests(CASES, ("max1d_same_overlap", "max2d_same_overlap", "avg2d_same_cf", "max3d", "avg3d_same",
    "gmax2d", "gavg1d")))


# -- specifics ---------------------------------------------------------------------------------
def test_max_pooling_gradient_goes_to_the_first_maximum_of_each_window():
    x = np.array([[3.0, 3.0, 1.0, 2.0], [0.0, 3.0, 2.0, 2.0]]).reshape(1, 2, 4, 1)
    graph = input_gradient_graph(L.MaxPooling2D(), x.shape, "float64")
    graph.set_outputs({"grad": graph.outputs[2], "out": graph.outputs[0]})
    for compiled in (compile_graph(graph, "numpy"), compile_graph(graph)):
        grad, out = [np.asarray(getattr(compiled, "to_numpy", np.asarray)(v))
                     for v in compiled.run({"x": x})]
        np.testing.assert_array_equal(out.reshape(2), [3.0, 2.0])
        hit = (grad != 0).reshape(2, 4)
        np.testing.assert_array_equal(hit, [[True, False, False, True], [False] * 4])


def test_overlapping_windows_add_their_gradients():
    x = np.array([0.0, 5.0, 1.0, 2.0, 0.5]).reshape(1, 5, 1)  # 5 is the max of 2 windows
    graph = Graph("overlap")
    ph = graph.placeholder("x", (None, 5, 1), "float64")
    with tracing(graph):
        (grad,) = gradients(graph, ops.sum(L.MaxPooling1D(3, strides=1)(ph)), [ph])
    graph.set_outputs({"grad": grad})
    (got,) = compile_graph(graph, "numpy").run({"x": x})
    np.testing.assert_array_equal(got.reshape(5), [0, 2, 0, 1, 0])


def test_same_average_divides_by_the_real_elements_only():
    got = L.AveragePooling1D(3, strides=1, padding="same")(np.ones((1, 4, 1), np.float32))
    np.testing.assert_array_equal(got.reshape(4), [1, 1, 1, 1])
    got = L.AveragePooling2D(2, padding="same")(np.arange(9.0).reshape(1, 3, 3, 1))
    np.testing.assert_allclose(got.reshape(2, 2), [[2, 3.5], [6.5, 8]])


def test_global_average_pooling_1d_leaves_masked_steps_out():
    rng = np.random.default_rng(3)
    x = distinct((3, 5, 2))
    mask = rng.random((3, 5)) < 0.6
    mask[:, 0] = True
    layer = L.GlobalAveragePooling1D()
    want = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    graph = input_gradient_graph(layer, x.shape, "float64", mask.shape)
    got = compile_graph(graph, "numpy").run({"x": x, "mask": mask})[0]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    check_input_gradient(layer, x, mask)
    assert layer.supports_masking and layer.compute_mask(x, mask) is None
    channels_first = L.GlobalAveragePooling1D(data_format=CF, keepdims=True)
    got = channels_first(np.moveaxis(x, 1, 2).astype(np.float32), mask=mask)
    np.testing.assert_allclose(got[..., 0], want, rtol=1e-6)
    check_matches_real_keras(L.GlobalAveragePooling1D, {}, x.astype(np.float32), mask)


def test_symbolic_shapes_keep_the_batch_unknown():
    cases = [(L.MaxPooling2D(3, 2, "same"), (7, 9, 2), (None, 4, 5, 2)),
             (L.AveragePooling1D(4, 3), (11, 2), (None, 3, 2)),
             (L.MaxPooling3D(data_format=CF), (2, 4, 5, 6), (None, 2, 2, 2, 3)),
             (L.GlobalAveragePooling2D(keepdims=True), (4, 5, 3), (None, 1, 1, 3)),
             (L.GlobalMaxPooling1D(), (None, 3), (None, 3))]
    for layer, shape, expected in cases:
        assert tuple(layer(keras.Input(shape=shape)).shape) == expected
        assert tuple(layer.compute_output_shape((None,) + shape)) == expected


def test_config_equals_keras_golden_max_pooling_2d():
    with open(os.path.join(os.path.dirname(__file__), "golden", "cnn.json")) as f:
        layers = json.load(f)["config"]["layers"]
    golden = next(entry["config"] for entry in layers if entry["class_name"] == "MaxPooling2D")
    ours = json.loads(json.dumps(L.MaxPooling2D(name="pool").get_config()))
    assert ours == golden


def test_keras_names_and_aliases():
    assert L.MaxPool2D is L.MaxPooling2D and L.AvgPool1D is L.AveragePooling1D
    assert L.GlobalAvgPool3D is L.GlobalAveragePooling3D
    assert L.GlobalMaxPool1D is L.GlobalMaxPooling1D
    assert set(pooling.__all__) <= set(dir(L))
    assert L.MaxPooling1D().get_config()["pool_size"] == (2,)
    assert L.MaxPooling3D().get_config()["strides"] == (2, 2, 2)
    assert L.AveragePooling2D(3, strides=1).get_config()["strides"] == (1, 1)
    assert L.GlobalMaxPooling2D().get_config()["keepdims"] is False


@pytest.mark.parametrize("make, text", [
    (lambda: L.MaxPooling2D(pool_size=0), "pool_size=0"),
    (lambda: L.MaxPooling2D(pool_size=(2, 2, 2)), "pool_size=(2, 2, 2)"),
    (lambda: L.MaxPooling1D(pool_size=1.5), "pool_size=1.5"),
    (lambda: L.AveragePooling2D(2, strides=-1), "strides=-1"),
    (lambda: L.AveragePooling3D(2, strides=0), "strides=0"),
    (lambda: L.MaxPooling2D(padding="full"), "padding='full'"),
    (lambda: L.MaxPooling2D(data_format="nhwc"), "data_format='nhwc'"),
    (lambda: L.GlobalMaxPooling2D(data_format="NCHW"), "data_format='NCHW'"),
    (lambda: L.MaxPooling2D()(np.zeros((2, 4, 3), np.float32)), "found ndim=3"),
    (lambda: L.MaxPooling2D(3)(keras.Input((2, 5, 1))), "larger than the padded input"),
    (lambda: L.GlobalAveragePooling1D()(np.zeros((2, 4), np.float32)), "expected ndim=3"),
])
def test_bad_arguments_raise_value_errors_that_quote_the_value(make, text):
    with pytest.raises(ValueError) as info:
        make()
    assert text.lower() in str(info.value).lower()


def check_tvm(layer, x):
    """The float32 forward+backward graph (batch dim unknown) on kgraph's TVM executor (llvm)
    against the numpy interpreter (skipped without TVM)."""
    from tvm_helper import assert_outputs_close, run_tvm

    graph = input_gradient_graph(layer, x.shape, "float32")
    x = x.astype(np.float32)
    want = compile_graph(graph, "numpy").run({"x": x})
    assert_outputs_close(run_tvm(graph, {"x": x}), want, rtol=1e-5, atol=1e-5,
                         names=graph.output_names)


@pytest.mark.tvm
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tvm_runs_forward_and_backward(case):
    _, cls, kwargs, shape, _ = case
    check_tvm(cls(**kwargs), distinct(shape))


def test_pooling_over_an_open_length_builds_and_runs_each_length():
    # keras.io "pretrained word embeddings": Conv1D/MaxPooling1D on Input(shape=(None,))
    # token sequences. The functional build leaves the pooled length open; each length run
    # is pooled (and trained) as numpy does.
    inputs = keras.Input((None, 3))
    pooled = L.MaxPooling1D(2)(inputs)
    averaged = L.AveragePooling2D(2)(keras.Input((None, None, 1)))
    assert tuple(pooled.shape) == (None, None, 3)
    assert tuple(averaged.shape) == (None, None, None, 1)
    model = keras.Model(inputs, L.Dense(1)(L.GlobalMaxPooling1D()(pooled)))
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    for length in (9, 6):
        x = rng.normal(size=(2, length, 3)).astype("float32")
        want = x[:, :length // 2 * 2].reshape(2, length // 2, 2, 3).max(2)
        np.testing.assert_allclose(np.asarray(model.layers[1](x)), want)
        model.fit(x, np.zeros((2, 1), "float32"), verbose=0)


def test_average_pooling_pool_size_defaults_as_in_tf_keras_2():
    # keras_tuner/custom_tuner.py writes tf.keras.layers.AveragePooling2D() (tf.keras 2
    # defaults pool_size to 2 per axis; Keras 3 requires it)
    from kgraph import keras

    x = np.arange(2 * 4 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 4, 3)
    for layer, data in ((keras.layers.AveragePooling1D(), x[:, 0, 0]),
                        (keras.layers.AveragePooling2D(), x[:, 0]),
                        (keras.layers.AveragePooling3D(), x)):
        out = np.asarray(layer(data))
        assert out.shape[1:-1] == tuple(d // 2 for d in data.shape[1:-1])
    np.testing.assert_allclose(np.asarray(keras.layers.AveragePooling2D()(x[:, 0]))[:, 0, 0],
                               x[:, 0, :2, :2].mean(axis=(1, 2)))
