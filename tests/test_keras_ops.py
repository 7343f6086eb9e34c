"""keras.ops beyond the op table: eager calls against numpy, traced control flow on
onnxruntime against the eager result, typed errors, dtype rules, and keras.utils helpers."""
from __future__ import annotations

import numpy as np
import pytest

from kgraph import keras
from kgraph.compiler.build import compile_graph
from kgraph.ir.graph import Graph, tracing
from kgraph.ops.api_util import StaticShapeRequiredError, TracedModeNotSupportedError

ops = keras.ops
X = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5


@pytest.mark.parametrize("name, got, want", [
    ("ones", lambda: ops.ones((2, 3)), lambda: np.ones((2, 3), np.float32)),
    ("full_like", lambda: ops.full_like(X, 2), lambda: np.full_like(X, 2)),
    ("arange", lambda: ops.arange(5), lambda: np.arange(5, dtype=np.int32)),
    ("linspace", lambda: ops.linspace(0, 1, 5), lambda: np.linspace(0, 1, 5, dtype=np.float32)),
    ("eye", lambda: ops.eye(3, k=1), lambda: np.eye(3, k=1, dtype=np.float32)),
    ("tri", lambda: ops.tri(3), lambda: np.tri(3, dtype=np.float32)),
    ("mean_int", lambda: ops.mean(np.arange(4)), lambda: np.float32(1.5)),
    ("argmin", lambda: ops.argmin(X, axis=0), lambda: np.argmin(X, 0).astype(np.int32)),
    ("any_all", lambda: ops.any(X > 5, axis=1) & ops.all(X > -6), lambda: np.any(X > 5, 1)),
    ("clip", lambda: ops.clip(X, -1, 1), lambda: np.clip(X, -1, 1)),
    ("moveaxis", lambda: ops.moveaxis(X[None], 0, -1), lambda: np.moveaxis(X[None], 0, -1)),
    ("squeeze_all", lambda: ops.squeeze(X[None, :, None]), lambda: X),
    ("diag", lambda: ops.diag(np.float32([1, 2]), 1), lambda: np.diag([1.0, 2.0], 1)),
    ("ceil_trunc", lambda: ops.ceil(X / 2) + ops.trunc(X / 3),
     lambda: np.ceil(X / 2) + np.trunc(X / 3)),
    ("floor_divide", lambda: ops.floor_divide(np.array([7, -7]), np.array([2, 2])),
     lambda: np.array([3, -4])),
    ("isin", lambda: ops.isin(np.array([1, 2, 3]), np.array([2, 3])),
     lambda: np.array([False, True, True])),
    ("searchsorted", lambda: ops.searchsorted(np.float32([1, 2, 3]), np.float32([2.5, 0])),
     lambda: np.int32([2, 0])),
    ("bitwise", lambda: ops.bitwise_or(np.int32([12]), np.int32([10])) +
     ops.left_shift(np.int32([3]), 2) + ops.right_shift(np.int32([-8]), 1),
     lambda: np.int32([14 + 12 - 4])),
    ("quantile", lambda: ops.quantile(X, [0.1, 0.9], axis=1),
     lambda: np.quantile(X, [0.1, 0.9], axis=1)),
    ("segment_sum", lambda: ops.segment_sum(X, np.array([0, 2, 0]), 3),
     lambda: np.stack([X[0] + X[2], 0 * X[0], X[1]])),
    ("nan_to_num", lambda: ops.nan_to_num(np.float32([np.nan, np.inf, 1])),
     lambda: np.nan_to_num(np.float32([np.nan, np.inf, 1]))),
    ("det", lambda: ops.linalg.det(np.eye(3) * 2), lambda: 8.0),
    ("one_hot", lambda: ops.nn.one_hot(np.array([1]), 3), lambda: np.float32([[0, 1, 0]])),
])
def test_eager_ops_match_numpy(name, got, want):
    result, expected = np.asarray(got()), np.asarray(want())
    np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-6)
    if expected.dtype != np.float64:
        assert result.dtype == expected.dtype, f"{name}: {result.dtype} != {expected.dtype}"


def run_traced(fn, *arrays, batch_unknown=True):
    """Trace `fn` on placeholders (first dim unknown) and run it on onnxruntime."""
    graph = Graph("keras_ops")
    phs = [graph.placeholder(f"in{i}", (None,) + a.shape[1:] if batch_unknown else a.shape,
                             a.dtype) for i, a in enumerate(arrays)]
    with tracing(graph):
        out = fn(*phs)
    graph.set_outputs({"out": out})
    compiled = compile_graph(graph)
    return compiled.to_numpy(compiled.run({f"in{i}": a for i, a in enumerate(arrays)})[0])


def test_fori_loop_unrolls_and_matches_eager():
    def body(i, v):
        return v * 0.5 + ops.cast(i, "float32")
    want = ops.fori_loop(0, 4, body, X)
    got = run_traced(lambda x: ops.fori_loop(0, 4, body, x), X)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_while_loop_with_symbolic_condition_with_and_without_maximum_iterations():
    def cond(x):
        return ops.sum(x) < 100.0

    def body(x):
        return x * 2.0
    x = np.abs(X) + 1.0
    want = ops.while_loop(cond, body, (x,))[0]
    got = run_traced(lambda v: ops.while_loop(cond, body, (v,), maximum_iterations=10)[0], x)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # without a bound: a Loop of run-time length (tests/test_while_loop.py)
    got = run_traced(lambda v: ops.while_loop(cond, body, (v,))[0], x)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_cond_on_a_symbolic_predicate_selects_the_branch():
    fn = lambda x: ops.cond(ops.sum(x) > 0.0, lambda: x * 2.0, lambda: -x)  # noqa: E731
    for data in (X, X + 10.0):
        np.testing.assert_allclose(run_traced(fn, data), fn(data), rtol=1e-6)


def test_scan_loops_over_a_known_or_unknown_leading_axis():
    """Traced, `scan` is one Scan loop node, so the number of steps may be unknown (the
    batch here); `unroll=True` unrolls, which needs it known."""
    def step(carry, x):
        return carry + x, carry * x
    eager_carry, eager_ys = ops.scan(step, np.zeros(4, np.float32), X)
    for unknown in (False, True):
        got = run_traced(lambda x: ops.scan(step, ops.zeros((4,)), x)[1], X,
                         batch_unknown=unknown)
        np.testing.assert_allclose(got, eager_ys, rtol=1e-6)
    got = run_traced(lambda x: ops.scan(step, ops.zeros((4,)), x, reverse=True)[0], X)
    np.testing.assert_allclose(got, ops.scan(step, np.zeros(4, np.float32), X, reverse=True)[0],
                               rtol=1e-6)
    with pytest.raises(StaticShapeRequiredError, match="scan"):
        run_traced(lambda x: ops.scan(step, ops.zeros((4,)), x, unroll=True)[1], X)
    row = lambda r: {"a": r * 2.0, "b": ops.sum(r * r)}  # noqa: E731 - map is a Scan too
    got = run_traced(lambda x: ops.map(row, x)["b"], X)
    np.testing.assert_allclose(got, (X * X).sum(axis=1), rtol=1e-6)


def test_ops_on_an_unknown_batch_run_traced():
    got = run_traced(lambda x: ops.cumsum(ops.sort(x, axis=-1), axis=-1) +
                     ops.ones_like(x), X)
    np.testing.assert_allclose(got, np.cumsum(np.sort(X, -1), -1) + 1, rtol=1e-6)
    got = run_traced(lambda x: ops.einsum("bi,ij->bj", x, np.ones((4, 2), np.float32)), X)
    np.testing.assert_allclose(got, X @ np.ones((4, 2)), rtol=1e-6)


def test_typed_errors_name_the_op():
    with pytest.raises(StaticShapeRequiredError, match="flip"):
        run_traced(lambda x: ops.flip(x, 0), X)
    with pytest.raises(TracedModeNotSupportedError, match="linalg.inv"):
        run_traced(lambda x: ops.linalg.inv(x), X[:, :3], batch_unknown=False)
    with pytest.raises(ValueError, match="ones_like"):
        ops.ones((None, 3))
    with pytest.raises(ValueError, match="repeated index"):
        ops.einsum("ii->i", np.eye(2))


def test_pad_sequences_matches_keras():
    seqs = [[1, 2, 3], [4], [5, 6]]
    np.testing.assert_array_equal(keras.utils.pad_sequences(seqs),
                                  [[1, 2, 3], [0, 0, 4], [0, 5, 6]])
    np.testing.assert_array_equal(
        keras.utils.pad_sequences(seqs, maxlen=2, padding="post", truncating="post", value=-1),
        [[1, 2], [4, -1], [5, 6]])
    np.testing.assert_array_equal(keras.utils.pad_sequences(seqs, maxlen=2), [[2, 3], [0, 4],
                                                                              [5, 6]])
    assert keras.utils.pad_sequences(seqs).dtype == np.int32
    with pytest.raises(ValueError, match="padding"):
        keras.utils.pad_sequences(seqs, padding="middle")


def test_to_categorical_and_normalize():
    np.testing.assert_array_equal(keras.utils.to_categorical([[1], [0]], 3),
                                  [[0, 1, 0], [1, 0, 0]])
    assert keras.utils.to_categorical([2]).dtype == np.float32
    with pytest.raises(ValueError, match="class indices"):
        keras.utils.to_categorical([3], 3)
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(keras.utils.normalize(x), [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(keras.utils.normalize(x, axis=0, order=1),
                               [[1.0, 1.0], [0.0, 0.0]])


def test_any_and_all_trace_into_a_graph():
    from kgraph import ops
    from kgraph.compiler.program import build_program

    program = build_program("any_all", [("x", (None, 3), "float32")],
                            lambda x: {"any": ops.any(ops.greater(x, 0.5), axis=-1),
                                       "all": ops.all(x, axis=-1)})
    x = np.array([[0, 1, 0], [0.1, 3, 0.2]], "float32")
    got = [program.to_numpy(o) for o in program(x)]
    np.testing.assert_array_equal(got[0], [True, True])
    np.testing.assert_array_equal(got[1], [False, True])


def test_concatenate_promotes_mixed_dtypes_as_keras():
    """int64 one-hot features next to float32 ones concatenate as float32 (Keras' result_type),
    eagerly and in a functional model (the keras.io structured-data example)."""
    import numpy as np
    from kgraph import keras

    out = keras.ops.concatenate([np.ones((2, 1), "float32"), np.ones((2, 4), "int64")], axis=-1)
    assert out.dtype == np.float32 and out.shape == (2, 5)
    a, b = keras.Input((1,), dtype="float32"), keras.Input((4,), dtype="int64")
    model = keras.Model([a, b], keras.layers.concatenate([a, b]))
    got = model.predict([np.full((3, 1), 0.5, "float32"), np.ones((3, 4), "int64")], verbose=0)
    np.testing.assert_array_equal(got, np.hstack([np.full((3, 1), 0.5), np.ones((3, 4))]))


def test_division_of_integers_is_true_division_as_keras():
    """`/` and `ops.divide` on int/uint8 tensors divide as floats, the float scalar not cast to
    the int dtype first (`uint8_images / 255.0` in the keras.io DeiT example; `u8 / 0.5` divided
    by 0 before), eagerly, traced and in a functional model."""
    import kgraph as tf

    u8 = np.array([[1, 3, 255]], np.uint8)
    assert keras.ops.divide(u8, 255.0).dtype == np.float32
    np.testing.assert_allclose(keras.ops.true_divide(u8, 0.5), [[2, 6, 510]])
    np.testing.assert_allclose(keras.ops.divide(np.int32([7]), np.int32([2])), [3.5])

    @tf.function(input_signature=[tf.TensorSpec((None, 3), "uint8")])
    def scale(images):
        return images / 255.0, 2.0 / images, keras.ops.divide(images, 2)

    scaled, inverse, halves = scale(u8)
    assert scaled.dtype == inverse.dtype == halves.dtype == np.float32
    np.testing.assert_allclose(scaled, u8 / 255.0, rtol=1e-6)
    np.testing.assert_allclose(inverse, 2.0 / u8.astype("float32"), rtol=1e-6)
    np.testing.assert_allclose(halves, u8 / 2.0)
    inputs = keras.Input((3,), dtype="uint8")
    model = keras.Model(inputs, inputs / 255.0)
    np.testing.assert_allclose(model.predict(u8, verbose=0), u8 / 255.0, rtol=1e-6)


def test_tile_by_the_traced_batch_size():
    """`tile(token, (ops.shape(x)[0], 1, 1))` with an unknown batch (a class token in a ViT
    `call`, the keras.io DeiT example): the None repeat follows the traced batch."""
    import kgraph as tf

    token = np.float32([[[1.0, 2.0]]])

    @tf.function(input_signature=[tf.TensorSpec((None, 3, 2), "float32")])
    def prepend(x):
        n = keras.ops.shape(x)[0]
        return keras.ops.concatenate([keras.ops.tile(token, (n, 1, 1)), x], axis=1)

    x = np.zeros((4, 3, 2), "float32")
    out = prepend(x)
    assert out.shape == (4, 4, 2)
    np.testing.assert_array_equal(out[:, 0], np.tile(token[0], (4, 1)))
    assert prepend(x[:1]).shape == (1, 4, 2)
    with pytest.raises(ValueError, match="None repeat"):
        keras.ops.tile(token, (None, 1, 1))


def test_reshape_by_the_traced_batch_and_minus_one():
    """`reshape(x, (ops.shape(x)[0], -1, d))` with an unknown batch (the keras.io Perceiver
    example's patches): the None is x's batch, so the -1 is known."""
    import kgraph as tf

    @tf.function(input_signature=[tf.TensorSpec((None, 4, 2, 3), "float32")])
    def rows(x):
        out = keras.ops.reshape(x, (keras.ops.shape(x)[0], -1, 6))
        assert tuple(out.shape) == (None, 4, 6)
        return out

    x = np.arange(48, dtype="float32").reshape(2, 4, 2, 3)
    np.testing.assert_array_equal(rows(x), x.reshape(2, -1, 6))

    @tf.function(input_signature=[tf.TensorSpec((None, 5), "float32")])
    def bad(x):
        return keras.ops.reshape(x, (keras.ops.shape(x)[0], -1, 2))

    with pytest.raises(ValueError, match="do not divide"):
        bad(np.zeros((1, 5), "float32"))


def test_repeat_by_the_traced_batch_size():
    """`repeat(token, ops.shape(x)[0], axis=0)` of a (1, ...) token with an unknown batch (the
    keras.io PatchConvNet example's class token): one copy per example."""
    import kgraph as tf

    token = np.float32([[[1.0, 2.0]]])

    @tf.function(input_signature=[tf.TensorSpec((None, 3, 2), "float32")])
    def prepend(x):
        tokens = keras.ops.repeat(token, keras.ops.shape(x)[0], axis=0)
        return keras.ops.concatenate([tokens, x], axis=1)

    out = prepend(np.zeros((3, 3, 2), "float32"))
    assert out.shape == (3, 4, 2)
    np.testing.assert_array_equal(out[:, 0], np.tile(token[0], (3, 1)))


def test_python_floats_are_floatx_eagerly_as_keras():
    """`ops.sin(0.5)`, `ops.exp(1.0)`, `ops.add(0.5, 1.5)`, `tf.acos(0.95)` on Python floats are
    float32 as Keras gives them (numpy's float64 before); a float64 numpy array keeps float64."""
    import kgraph as tf

    for got in (keras.ops.sin(0.5), keras.ops.exp(1.0), keras.ops.add(0.5, 1.5),
                keras.ops.sqrt([4.0, 9.0]), tf.acos(0.95)):
        assert np.asarray(got).dtype == np.float32
    np.testing.assert_allclose(keras.ops.sin(0.5), np.sin(0.5), rtol=1e-6)
    assert np.asarray(keras.ops.sin(np.array([0.5]))).dtype == np.float64


def test_sum_of_bool_counts_as_int32_eager_and_traced():
    import kgraph as tf

    flags = np.array([[True, False, True], [False, False, False]])
    got = keras.ops.sum(flags, axis=-1)
    assert got.dtype == np.int32 and got.tolist() == [2, 0]  # Keras: int32, not bool
    traced = tf.function(lambda x: keras.ops.sum(keras.ops.not_equal(x, 0), axis=-1))
    assert np.asarray(traced(np.array([[1, 2, 0], [0, 0, 3]]))).tolist() == [2, 1]


def test_while_loop_on_a_symbolic_condition_is_one_loop_node():
    from kgraph.ir.graph import Graph, tracing

    graph = Graph("g")
    with tracing(graph):
        v = graph.placeholder("v", (None, 4), "float32")
        ops.while_loop(lambda v: ops.sum(v) < 100.0, lambda v: (v * 2.0,), (v,),
                       maximum_iterations=10)
    assert sum(node.op == "Scan" for node in graph.nodes) == 1
