"""The `keras.ops` names added for Keras 3.15.1 (erfc, i0, sinc, fmod, fmax, the nan-reductions
and quantiles, percentile, segment_min/prod, cdist, fold, geomspace, the splits and flips,
pinv, matrix_rank, unique): each against a numpy reference eagerly, against real Keras (JAX
backend; skipped when keras is absent), traced on onnxruntime with an unknown first dim, and
its gradient against float64 central differences."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erfc as scipy_erfc
from scipy.special import i1 as scipy_i1

from kgraph import keras
from kgraph.compiler.autodiff import gradients
from kgraph.compiler.build import compile_graph
from kgraph.ir.graph import Graph, tracing
from kgraph.ops.api_util import TracedModeNotSupportedError

ops = keras.ops
RNG = np.random.default_rng(3)


def normal(*shape):
    return RNG.normal(size=shape).astype("float32")


def with_nans(x, every=4):
    x = x.copy()
    x.reshape(-1)[::every] = np.nan
    return x


def fold_reference(x, output_size, k, dilation, padding, stride):
    """col2im by loops: each column entry added at its window position."""
    n, depth, _ = x.shape
    channels, (h, w) = depth // (k * k), output_size
    out = np.zeros((n, channels, h + 2 * padding, w + 2 * padding), x.dtype)
    rows = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    cols = (w + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    blocks = x.reshape(n, channels, k, k, rows, cols)
    for i in range(k):
        for j in range(k):
            for r in range(rows):
                for c in range(cols):
                    out[:, :, r * stride + i * dilation, c * stride + j * dilation] += \
                        blocks[:, :, i, j, r, c]
    return out[:, :, padding:padding + h, padding:padding + w]


def segment_reference(data, ids, count, reduce, empty):
    return np.stack([reduce(data[ids == s], axis=0) if np.any(ids == s) else
                     np.full(data.shape[1:], empty, data.dtype) for s in range(count)])


def jax_nanarg(pick, fill):
    def ref(x, axis):
        out = pick(np.where(np.isnan(x), fill, x), axis=axis)
        return np.where(np.all(np.isnan(x), axis=axis), -1, out)
    return ref


MIXED = np.float32([[7.5, -7.5, 3.0, -0.25], [2.0, 6.0, -6.5, 1.0]])
DIVISORS = np.float32([[2.0, 2.0, -2.0, 0.75], [-0.75, 4.0, 4.0, -3.0]])
FOLD_IN = normal(2, 2 * 3 * 3, 9)  # C = 2, k = 3 over a 5x5 image padded by 1, stride 2
DATA, IDS = normal(6, 3), np.int32([0, 2, 0, 3, 2, 1])

# (id, fn(ops, *xs), inputs, numpy reference(*xs), compare with real Keras, grad check)
CASES = [
    ("fabs", lambda o, x: o.fabs(x), [normal(3, 4)], np.fabs, True, False),
    ("rad2deg", lambda o, x: o.rad2deg(x), [normal(3, 4)], np.rad2deg, True, True),
    ("sinc", lambda o, x: o.sinc(x), [np.float32([[0.0, 0.5, -1.5, 2.25], [3.0, -0.1, 1e-3, 4]])],
     np.sinc, True, True),
    ("erfc", lambda o, x: o.erfc(x), [np.float32([[-3, -0.4, 0.0, 0.49], [0.55, 2.0, 5.0, 8.5]])],
     scipy_erfc, True, True),
    ("i0", lambda o, x: o.i0(x), [np.float32([[-12, -8.5, -8, -1], [0, 0.5, 7.9, 12]])],
     np.i0, True, True),
    ("fmax", lambda o, a, b: o.fmax(a, b), [with_nans(normal(3, 4)), with_nans(normal(3, 4), 3)],
     np.fmax, True, False),
    ("fmin", lambda o, a, b: o.fmin(a, b), [with_nans(normal(3, 4)), with_nans(normal(3, 4), 3)],
     np.fmin, True, False),
    ("fmax-grad", lambda o, a, b: o.fmax(a, b), [normal(3, 4), normal(3, 4)], np.fmax, True,
     True),
    ("fmod", lambda o, a, b: o.fmod(a, b), [MIXED, DIVISORS], np.fmod, True, True),
    ("fmod-int", lambda o, a, b: o.fmod(a, b),
     [np.int32([[7, -7, 7, -7, 5]] * 2), np.int32([[3, 3, -3, -3, 2]] * 2)], np.fmod, True,
     False),
    ("allclose", lambda o, a, b: o.allclose(a, b, atol=1e-3),
     [MIXED, MIXED + np.float32(1e-4)], lambda a, b: np.allclose(a, b, atol=1e-3), True, False),
    ("cdist", lambda o, a, b: o.cdist(a, b), [normal(3, 4, 5), normal(3, 2, 5)],
     lambda a, b: np.sqrt(((a[:, :, None] - b[:, None]) ** 2).sum(-1)), True, True),
    ("hsplit", lambda o, x: o.hsplit(x, 2)[1], [normal(2, 4, 3)],
     lambda x: np.hsplit(x, 2)[1], True, True),
    ("dsplit", lambda o, x: o.dsplit(x, [1, 4])[1], [normal(2, 3, 6)],
     lambda x: np.dsplit(x, [1, 4])[1], True, True),
    ("fliplr", lambda o, x: o.fliplr(x), [normal(2, 5, 3)], np.fliplr, True, True),
    ("flipud", lambda o, x: o.numpy.flipud(x), [normal(4, 3)], np.flipud, True, True),
    ("nanargmax", lambda o, x: o.nanargmax(x, axis=1), [with_nans(normal(3, 5), 3)],
     lambda x: np.nanargmax(x, axis=1), True, False),
    ("nanargmin-all-nan", lambda o, x: o.nanargmin(x, axis=0),
     [np.float32([[np.nan, 1.0], [np.nan, -2.0]])], lambda x: jax_nanarg(np.argmin, np.inf)(x, 0),
     True, False),
    ("nancumsum", lambda o, x: o.nancumsum(x, axis=1), [with_nans(normal(3, 5))],
     lambda x: np.nancumsum(x, axis=1), True, True),
    ("nancumprod", lambda o, x: o.nancumprod(x, axis=1), [with_nans(normal(3, 5))],
     lambda x: np.nancumprod(x, axis=1), True, True),
    ("nanvar", lambda o, x: o.nanvar(x, axis=1), [with_nans(normal(3, 5))],
     lambda x: np.nanvar(x, axis=1), True, True),
    ("nanstd-keepdims", lambda o, x: o.nanstd(x, axis=1, keepdims=True), [with_nans(normal(3, 5))],
     lambda x: np.nanstd(x, axis=1, keepdims=True), True, True),
    ("nanquantile", lambda o, x: o.nanquantile(x, [0.2, 0.5, 0.9], axis=1),
     [with_nans(normal(3, 7), 3)], lambda x: np.nanquantile(x, [0.2, 0.5, 0.9], axis=1),
     True, True),
    ("nanpercentile-nearest", lambda o, x: o.nanpercentile(x, 40, axis=1, method="nearest"),
     [with_nans(normal(3, 7), 3)],
     lambda x: np.nanpercentile(x, 40, axis=1, method="nearest"), True, False),
    ("nanmedian", lambda o, x: o.nanmedian(x, axis=1, keepdims=True), [with_nans(normal(3, 6), 5)],
     lambda x: np.nanmedian(x, axis=1, keepdims=True), True, True),
    ("percentile", lambda o, x: o.percentile(x, [25, 75], axis=1), [normal(3, 6)],
     lambda x: np.percentile(x, [25, 75], axis=1), True, True),
    ("segment_min", lambda o, d, i: o.segment_min(d, i, num_segments=4), [DATA, IDS],
     lambda d, i: segment_reference(d, i, 4, np.min, None), True, True),
    ("segment_prod", lambda o, d, i: o.segment_prod(d, i, num_segments=4), [DATA, IDS],
     lambda d, i: segment_reference(d, i, 4, np.prod, 1.0), True, True),
    ("fold", lambda o, x: o.fold(x, (5, 5), 3, padding=1, stride=2), [FOLD_IN],
     lambda x: fold_reference(x, (5, 5), 3, 1, 1, 2), True, True),
    ("nn.fold-dilated", lambda o, x: o.nn.fold(x, 6, 2, dilation=2, stride=1), [normal(2, 4, 16)],
     lambda x: fold_reference(x, (6, 6), 2, 2, 0, 1), True, True),
]
IDS = [case[0] for case in CASES]
# ops that need their first axis' size while tracing (a chain over the rows, a flip of it)
CLOSED = {"segment_min", "segment_prod", "flipud", "nanargmin-all-nan"}
GRAD_CASES = [case for case in CASES if case[5]]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_eager_matches_numpy(case):
    _, fn, inputs, reference, _, _ = case
    got = np.asarray(fn(ops, *inputs))
    want = np.asarray(reference(*inputs))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("case", [c for c in CASES if c[4]], ids=[c[0] for c in CASES if c[4]])
def test_eager_matches_real_keras(case):
    real = pytest.importorskip("keras")
    _, fn, inputs, _, _, _ = case
    got, want = np.asarray(fn(ops, *inputs)), np.asarray(fn(real.ops, *inputs))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


def traced(fn, inputs, open_first_dim=True, dtype=None):
    """(graph, placeholders, output) of `fn(ops, ...)` on placeholders; the first input's
    first dim unknown."""
    graph = Graph("more_ops")
    placeholders = []
    for i, x in enumerate(inputs):
        x = x.astype(dtype) if dtype and x.dtype.kind == "f" else x
        shape = ((None,) + x.shape[1:]) if open_first_dim and i == 0 else x.shape
        placeholders.append(graph.placeholder(f"in{i}", shape, x.dtype))
    with tracing(graph):
        out = fn(ops, *placeholders)
    return graph, placeholders, out


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_traced_on_onnxruntime_matches_eager(case):
    name, fn, inputs, _, _, _ = case
    graph, _, out = traced(fn, inputs, open_first_dim=name not in CLOSED)
    graph.set_outputs({"out": out})
    compiled = compile_graph(graph)
    got = compiled.to_numpy(compiled.run({f"in{i}": x for i, x in enumerate(inputs)})[0])
    np.testing.assert_allclose(got, np.asarray(fn(ops, *inputs)), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("case", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradient_matches_central_differences(case):
    _, fn, inputs, _, _, _ = case
    inputs = [x.astype("float64") if x.dtype.kind == "f" else x for x in inputs]
    graph, placeholders, out = traced(fn, inputs, open_first_dim=False)
    weights = np.random.default_rng(1).normal(size=tuple(out.shape))
    with tracing(graph):
        loss = ops.sum(out * graph.constant(weights))
        (grad,) = gradients(graph, loss, [placeholders[0]])
    graph.set_outputs({"loss": loss, "grad": grad})
    compiled = compile_graph(graph, "numpy")
    feeds = {f"in{i}": x for i, x in enumerate(inputs)}
    analytic = compiled.run(feeds)[1]
    x, eps, numeric = inputs[0], 1e-6, np.zeros_like(inputs[0])
    for index in np.ndindex(x.shape):
        probes = []
        for sign in (1, -1):
            shifted = x.copy()
            shifted[index] += sign * eps
            probes.append(compiled.run({**feeds, "in0": shifted})[0])
        numeric[index] = (probes[0] - probes[1]) / (2 * eps)
    finite = ~np.isnan(x)  # a NaN input stays NaN when shifted: its gradient is 0
    np.testing.assert_allclose(analytic[finite], numeric[finite], rtol=1e-5, atol=1e-6)
    assert np.all(analytic[~finite] == 0)


def test_float32_gradients_and_the_special_points():
    """sinc at 0 (0/0 guarded) has gradient 0; float32 i0 (its own short polynomials) has
    i1 as gradient on both sides of its branch point 3.75 and far out; erfc's tail has
    -2 exp(-x^2) / sqrt(pi)."""
    points = np.float32([0.5, 3.7, 3.75, 3.8, -8.0, 20.0])
    x = keras.Variable(np.concatenate([[0.0], points, points[:4] + 1]).astype("float32"))
    with keras_tape() as tape:
        loss = (ops.sum(ops.sinc(x[:1])) + ops.sum(ops.i0(x[1:7]))
                + ops.sum(ops.erfc(x[7:])))
    grad = np.asarray(tape.gradient(loss, [x])[0])
    tail = points[:4].astype("f8") + 1
    np.testing.assert_allclose(grad, np.concatenate([[0.0], scipy_i1(points),
                                                     -2 * np.exp(-tail * tail) / np.sqrt(np.pi)]),
                               rtol=1e-5)


def keras_tape():
    import kgraph

    return kgraph.GradientTape()


def test_geomspace_eager_and_with_traced_bounds():
    np.testing.assert_allclose(ops.geomspace(1, 1000, 4), [1, 10, 100, 1000], rtol=1e-6)
    np.testing.assert_allclose(ops.geomspace(-1, -16, 5, endpoint=False),
                               np.geomspace(-1, -16, 5, endpoint=False), rtol=1e-6)
    assert ops.geomspace(1, 2, 3).dtype == "float32"
    start, stop = np.float32([1.0, -2.0]), np.float32([8.0, -32.0])
    graph = Graph("geomspace")
    a, b = graph.placeholder("a", (2,), "float32"), graph.placeholder("b", (2,), "float32")
    with tracing(graph):
        out = ops.geomspace(a, b, 4, axis=1)
    graph.set_outputs({"out": out})
    compiled = compile_graph(graph)
    got = compiled.to_numpy(compiled.run({"a": start, "b": stop})[0])
    np.testing.assert_allclose(got, np.geomspace(start, stop, 4, axis=1), rtol=1e-5)


def test_fold_is_the_adjoint_of_unfold():
    """<unfold(x), y> == <x, fold(y)> for every layout of kernel, stride, padding, dilation."""
    for kernel, stride, padding, dilation in ((3, 2, 1, 1), (2, 1, 0, 2), ((2, 3), (2, 1),
                                                                          (1, 0), (1, 2))):
        x = normal(2, 3, 7, 6)
        columns = ops.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
        y = normal(*columns.shape)
        back = ops.fold(y, (7, 6), kernel, dilation=dilation, padding=padding, stride=stride)
        np.testing.assert_allclose(np.sum(columns * y), np.sum(x * back), rtol=1e-4)


def test_eager_only_linalg_and_unique_match_numpy_and_refuse_tracing():
    a = np.float32([[1, 2], [2, 4], [0, 1]])
    np.testing.assert_allclose(ops.pinv(a), np.linalg.pinv(a), rtol=1e-5, atol=1e-6)
    assert ops.linalg.matrix_rank(a) == 2 and ops.matrix_rank(a).dtype == np.int32
    assert ops.pinv(np.int32([[2, 0], [0, 4]])).dtype == np.float32
    values, index, inverse, counts = ops.unique(np.int32([[3, 1], [3, 2]]), return_index=True,
                                                return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(values, [1, 2, 3])
    np.testing.assert_array_equal(inverse, [[2, 0], [2, 1]])
    np.testing.assert_array_equal(index, [1, 3, 0])
    np.testing.assert_array_equal(counts, [1, 1, 2])
    np.testing.assert_array_equal(ops.unique(np.float32([3, 1, 3]), size=4, fill_value=-1),
                                  [1, 3, -1, -1])
    graph = Graph("eager_only")
    x = graph.placeholder("x", (3, 3), "float32")
    with tracing(graph):
        for fn in (ops.pinv, ops.matrix_rank, ops.unique):
            with pytest.raises(TracedModeNotSupportedError, match=fn.__name__):
                fn(x)


def test_eager_only_ops_and_jvp_match_real_keras():
    real = pytest.importorskip("keras")
    a = normal(4, 3)
    np.testing.assert_allclose(ops.pinv(a), real.ops.pinv(a), rtol=1e-4, atol=1e-5)
    assert ops.matrix_rank(a @ a.T) == int(real.ops.matrix_rank(a @ a.T))
    x = np.int32([3, 1, 3, 2, 7])
    for kwargs in ({"return_index": True, "return_counts": True, "size": 6},
                   {"return_inverse": True, "size": 7, "fill_value": 9}):
        ours, theirs = ops.unique(x, **kwargs), real.ops.unique(x, **kwargs)
        for got, want in zip(ours if isinstance(ours, tuple) else [ours],
                             theirs if isinstance(theirs, tuple) else [theirs]):
            np.testing.assert_array_equal(got, np.asarray(want))
    assert ops.linalg.jvp is ops.jvp or ops.linalg.jvp.__wrapped__ is ops.jvp.__wrapped__
    _, tangent = ops.linalg.jvp(lambda v: ops.sin(v), (np.float32([0.5]),),
                                     (np.float32([1.0]),))
    np.testing.assert_allclose(tangent, [math.cos(0.5)], rtol=1e-6)


def test_empty_segments_and_an_open_row_count():
    data, ids = normal(4, 2), np.int32([0, 0, 3, 3])
    low = ops.segment_min(data, ids, num_segments=5)
    np.testing.assert_array_equal(low[1:3], np.finfo("float32").max)  # TensorFlow's rule
    np.testing.assert_array_equal(ops.segment_prod(data, ids, num_segments=5)[4], 1.0)
    graph = Graph("open_rows")
    x = graph.placeholder("x", (None, 2), "float32")
    i = graph.placeholder("i", (None,), "int32")
    with tracing(graph):
        minimum = ops.segment_min(x, i, num_segments=5)  # a ReduceMin: any row count
        with pytest.raises(ValueError, match="segment_prod needs a known size along axis 0"):
            ops.segment_prod(x, i, num_segments=5)
    graph.set_outputs({"out": minimum})
    compiled = compile_graph(graph)
    np.testing.assert_allclose(compiled.to_numpy(compiled.run({"x": data, "i": ids})[0]), low)


def test_bad_arguments_raise_typed_errors_quoting_them():
    with pytest.raises(ValueError, match="rank >= 3"):
        ops.dsplit(np.zeros((2, 3)), 3)
    with pytest.raises(ValueError, match="rank >= 2"):
        ops.cdist(np.zeros(3), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="method='cubic'"):
        ops.nanquantile(np.zeros(3), 0.5, method="cubic")
    with pytest.raises(ValueError, match="x.shape=\\(1, 18, 8\\)"):
        ops.fold(np.zeros((1, 18, 8), "float32"), (5, 5), 3, padding=1, stride=2)


@pytest.mark.tvm
@pytest.mark.slow  # one TVM build of the graph, ~5 s (i0's first form, a 55-term series, took minutes)
def test_one_graph_of_the_new_ops_on_tvm_matches_the_numpy_interpreter():
    from tvm_helper import tvm_compiled

    graph = Graph("more_ops_tvm")
    x = graph.placeholder("x", (None, 18, 9), "float32")
    with tracing(graph):
        outputs = {
            "elementwise": (ops.erfc(x) + ops.i0(x) + ops.fmod(x, 0.7) + ops.sinc(x)
                            + ops.fmax(x, 0.1)),
            "nan_reductions": ops.nanquantile(x, 0.3, axis=2) + ops.nanvar(x, axis=2),
            # was a NotEqual of two bool tensors, which TVM's LLVM build rejected
            "logical_xor": ops.logical_xor(ops.greater(x, 0.0), ops.less(x, 0.5)),
            # Equal of two bool tensors, emitted as an int32 comparison (ops/elementwise.py)
            "bool_equal": ops.equal(ops.greater(x, 0.0), ops.less(x, 0.5)),
            "bool_not_equal": ops.not_equal(ops.greater(x, 0.0), ops.less(x, 0.5)),
        }
    graph.set_outputs(outputs)
    feeds = {"x": with_nans(normal(2, 18, 9), 37)}
    tvm = tvm_compiled(graph)
    for name, want, got in zip(outputs, compile_graph(graph, "numpy").run(feeds),
                               tvm.run(feeds)):
        np.testing.assert_allclose(tvm.to_numpy(got), want, rtol=1e-5, atol=1e-5, err_msg=name)


def test_in_a_functional_model_at_two_batch_sizes_and_after_save_and_load(tmp_path):
    inputs = keras.Input((5, 4))
    # (cdist and allclose build no Keras Operation, so kgraph/keras/saving/keras_ops.json has
    # no entry to save them by)
    outputs = ops.concatenate([ops.nanstd(inputs, axis=2), ops.erfc(inputs[:, :, 0]),
                               ops.fmod(inputs[:, :, 1], 0.3),
                               ops.nanquantile(inputs, 0.25, axis=2)], axis=1)
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "more_ops.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    x = with_nans(normal(3, 5, 4), 7)
    for batch in (1, 3):
        want = np.concatenate([np.nanstd(x[:batch], axis=2), scipy_erfc(x[:batch, :, 0]),
                               np.fmod(x[:batch, :, 1], np.float32(0.3)),
                               np.nanquantile(x[:batch], 0.25, axis=2)], axis=1)
        for m in (model, loaded):
            np.testing.assert_allclose(m.predict(x[:batch], verbose=0), want, rtol=1e-5,
                                       atol=1e-6)
