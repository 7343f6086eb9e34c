"""`keras.ops.shape(x)` of a traced tensor: dims unknown while tracing are int32 scalars of the
graph (Keras' TensorFlow behaviour), known ones stay ints. Each traced function is run at two
sizes against numpy, so a size baked in at trace time would fail."""

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras
from kgraph.keras import ops

OPEN = [tf.TensorSpec((None, None, 2), "float32")]
SIZES = [(2, 3, 2), (4, 5, 2)]


def _run(fn, sizes=SIZES):
    """`fn` traced once with the batch and length open, called at each of `sizes`."""
    traced = tf.function(fn, input_signature=OPEN)
    for shape in sizes:
        x = np.arange(np.prod(shape), dtype="float32").reshape(shape)
        yield x, traced(x)


def test_shape_gives_ints_for_known_dims_and_scalars_for_unknown_ones():
    seen = {}

    def probe(x):
        seen["dims"] = ops.shape(x)
        return ops.sum(x)

    list(_run(probe, SIZES[:1]))
    batch, length, channels = seen["dims"]
    assert type(channels) is int and channels == 2
    for d in (batch, length):
        assert ops.is_tensor(d) and tuple(d.shape) == () and d.dtype == "int32"
    eager = ops.shape(np.zeros((2, 5)))
    assert eager == (2, 5) and type(eager) is tuple and all(type(d) is int for d in eager)
    assert tf.shape(np.zeros((2, 5))) == (2, 5)


def test_arithmetic_on_dims():
    def dims(x):
        b, n, c = ops.shape(x)
        return ops.convert_to_tensor([b + 1, n - 1, b * n, n // 2, n % 2, 7 // n, c * b, -n])

    for x, out in _run(dims):
        b, n, c = x.shape
        np.testing.assert_array_equal(out, [b + 1, n - 1, b * n, n // 2, n % 2, 7 // n,
                                            c * b, -n])
        assert out.dtype == np.int32


def test_arange_reshape_tile_and_broadcast_follow_the_run_time_sizes():
    def build(x):
        b, n, _ = ops.shape(x)
        i = ops.arange(n)[:, None]
        mask = ops.reshape(ops.cast(i >= ops.arange(n), "int32"), (1, n, n))
        mult = ops.concatenate([ops.expand_dims(b, -1), ops.convert_to_tensor([1, 1])], 0)
        return {
            "tiled": ops.tile(mask, mult),
            "tiled_tuple": ops.tile(x, (1, b, 1)),
            "stepped": ops.arange(1, n + 3, 2),
            "flat": ops.reshape(x, (b * n, -1)),
            "rows": ops.reshape(x, (b, -1)),
            "by_tensor": ops.reshape(x, ops.convert_to_tensor([n, b, 2])),
            "broadcast": ops.broadcast_to(ops.sum(x, axis=(1, 2))[:, None], (b, n)),
            "ones": ops.ones((b, n)),
            "zeros": ops.zeros((n,), "int32"),
            "full": ops.full((b, 1, n), 2.5),
        }

    for x, out in _run(build):
        b, n, _ = x.shape
        np.testing.assert_array_equal(out["tiled"],
                                      np.tile(np.tril(np.ones((n, n), "int32")), (b, 1, 1)))
        np.testing.assert_array_equal(out["tiled_tuple"], np.tile(x, (1, b, 1)))
        np.testing.assert_array_equal(out["stepped"], np.arange(1, n + 3, 2))
        assert out["stepped"].dtype == np.int32
        np.testing.assert_array_equal(out["flat"], x.reshape(b * n, -1))
        np.testing.assert_array_equal(out["rows"], x.reshape(b, -1))
        np.testing.assert_array_equal(out["by_tensor"], x.reshape(n, b, 2))
        np.testing.assert_array_equal(out["broadcast"],
                                      np.broadcast_to(x.sum(axis=(1, 2))[:, None], (b, n)))
        np.testing.assert_array_equal(out["ones"], np.ones((b, n), np.float32))
        np.testing.assert_array_equal(out["zeros"], np.zeros((n,), np.int32))
        np.testing.assert_array_equal(out["full"], np.full((b, 1, n), 2.5, np.float32))


def test_slicing_and_indexing_by_dims():
    def cut(x):
        b, n, _ = ops.shape(x)
        return {"head": x[:, :n - 1], "tail": x[:, n // 2:], "last": x[b - 1], "first": x[-b],
                "from_end": x[:, -n + 1:], "past_end": x[:, :n + 4]}

    for x, out in _run(cut):
        b, n, _ = x.shape
        np.testing.assert_array_equal(out["head"], x[:, :n - 1])
        np.testing.assert_array_equal(out["tail"], x[:, n // 2:])
        np.testing.assert_array_equal(out["last"], x[b - 1])
        np.testing.assert_array_equal(out["first"], x[0])
        np.testing.assert_array_equal(out["from_end"], x[:, -n + 1:])
        np.testing.assert_array_equal(out["past_end"], x)


def test_static_shapes_stay_as_known_as_they_can():
    static = {}

    def shapes(x):
        b, n, c = ops.shape(x)
        static["rows"] = tuple(ops.reshape(x, (b, -1, 2 * c)).shape)
        static["tiled"] = tuple(ops.tile(ops.ones((1, 3)), (b, 1)).shape)
        static["broadcast"] = tuple(ops.broadcast_to(ops.ones((3,)), (b, n, 3)).shape)
        static["random"] = tuple(keras.random.normal((b, 4), seed=1).shape)
        return ops.sum(x)

    list(_run(shapes, SIZES[:1]))
    # the -1 is not known here: x has two unknown dims and the target names only one
    assert static["rows"] == (None, None, 4)
    assert static["tiled"] == (None, 3)
    assert static["broadcast"] == (None, None, 3)
    assert static["random"] == (None, 4)


def test_random_draws_and_tf_names_take_dims():
    def draws(x):
        b, n = tf.shape(x)[0], tf.shape(x)[1]
        return {"normal": keras.random.normal((b, n), seed=3),
                "uniform": tf.random.uniform((n, b)),
                "range": tf.range(n),
                "tiled": tf.tile(tf.reshape(tf.range(n), (1, n)), [b, 1])}

    for x, out in _run(draws):
        b, n, _ = x.shape
        assert out["normal"].shape == (b, n) and out["uniform"].shape == (n, b)
        assert np.unique(out["normal"]).size == b * n
        np.testing.assert_array_equal(out["tiled"], np.tile(np.arange(n), (b, 1)))


def test_gradients_flow_through_graphs_that_use_dims():
    """Dims carry no gradient; the float values around them do: the loss averages over the
    run-time batch and masks the last row by an `arange` of it."""
    w = tf.Variable(np.float32([0.5, -1.0]))

    @tf.function(input_signature=OPEN)
    def gradient(x):
        with tf.GradientTape() as tape:
            b, n, c = ops.shape(x)
            weights = ops.tile(ops.reshape(w, (1, 1, c)), (b, n, 1))
            keep = ops.cast(ops.arange(b) < b - 1, "float32")[:, None, None]
            loss = ops.sum(x * weights * keep) / ops.cast(b, "float32")
        return tape.gradient(loss, [w])[0]

    for shape in SIZES:
        x = np.arange(np.prod(shape), dtype="float32").reshape(shape)
        expected = x[:-1].sum(axis=(0, 1)) / shape[0]
        np.testing.assert_allclose(gradient(x), expected, rtol=1e-6)


class _CausalSelfMask(keras.layers.Layer):
    """A layer whose output depends on dims of its input: a causal mean over time."""

    def call(self, x):
        b, n = ops.shape(x)[0], ops.shape(x)[1]
        mask = ops.cast(ops.arange(n)[:, None] >= ops.arange(n), x.dtype)
        mask = ops.tile(ops.reshape(mask, (1, n, n)), (b, 1, 1))
        counts = ops.sum(mask, axis=-1, keepdims=True)
        return ops.matmul(mask / counts, x)


def test_a_model_with_open_length_trains_and_predicts_at_two_lengths():
    inputs = keras.Input((None, 3))
    hidden = _CausalSelfMask()(keras.layers.Dense(3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6, 3)).astype("float32")
    first = model.train_on_batch(x, np.zeros((8, 6, 1)))
    assert model.train_on_batch(x, np.zeros((8, 6, 1))) < first
    full = model.predict(x[:3], verbose=0)
    np.testing.assert_allclose(model.predict(x[:3, :4], verbose=0), full[:, :4], rtol=1e-5,
                               atol=1e-6)


def test_none_has_no_size():
    with pytest.raises(ValueError, match="None repeat"):
        ops.tile(np.ones((1, 2)), (None, 1))
    with pytest.raises(ValueError, match="ones_like"):
        ops.ones((None, 2))
    with pytest.raises(ValueError, match="keras.random"):
        keras.random.normal((None, 2))


def test_eye_and_tri_of_traced_dims():
    # the keras.io DDIM example's KID: `tf.eye(tf.shape(features)[0])` masks a kernel's diagonal
    def fn(x):
        batch, length, _ = ops.shape(x)
        return (ops.eye(batch), ops.eye(batch, length, k=1, dtype="int32"),
                ops.tri(length, batch, k=-1), ops.eye(batch) * ops.sum(x))

    for x, (eye, shifted, lower, scaled) in _run(fn):
        batch, length, _ = x.shape
        np.testing.assert_array_equal(eye, np.eye(batch, dtype="float32"))
        np.testing.assert_array_equal(shifted, np.eye(batch, length, 1, dtype="int32"))
        assert shifted.dtype == np.int32
        np.testing.assert_array_equal(lower, np.tri(length, batch, -1, dtype="float32"))
        np.testing.assert_allclose(scaled, np.eye(batch) * x.sum(), rtol=1e-6)


def test_linspace_between_traced_values():
    # tf.linspace(tf.math.log(1.0), ...) inside a traced Lambda: start and stop are graph values
    def fn(x):
        low, high = ops.min(x), ops.max(x)
        return (ops.linspace(low, high, 5), ops.linspace(low, high, 4, endpoint=False),
                ops.linspace(ops.stack([low, high]), ops.stack([high, low]), 3, axis=1))

    for x, (closed, half_open, rows) in _run(fn):
        low, high = x.min(), x.max()
        np.testing.assert_allclose(closed, np.linspace(low, high, 5), rtol=1e-6)
        assert closed[-1] == high  # the end point itself, as numpy
        np.testing.assert_allclose(half_open, np.linspace(low, high, 4, endpoint=False),
                                   rtol=1e-6)
        np.testing.assert_allclose(rows, np.linspace([low, high], [high, low], 3, axis=1),
                                   rtol=1e-6)


def test_indexing_by_eager_integer_scalars():
    # integrated_gradients.py: `preds[:, top_pred_idx]` with `top_pred_idx = tf.argmax(...)` of
    # a predict result (an eager 0-d array) inside a GradientTape
    index = tf.argmax(np.array([0.1, 0.7, 0.2], "float32"))
    for x, out in _run(lambda x: {"eager": x[:, index], "numpy": x[np.int64(-1)],
                                  "unsigned": x[:, :, np.uint8(1)]}):
        np.testing.assert_array_equal(out["eager"], x[:, 1])
        np.testing.assert_array_equal(out["numpy"], x[-1])
        np.testing.assert_array_equal(out["unsigned"], x[:, :, 1])
    w = tf.Variable(np.arange(6, dtype="float32").reshape(2, 3))
    with tf.GradientTape() as tape:
        picked = ops.sum(w[:, index] * 3.0)
    np.testing.assert_array_equal(tape.gradient(picked, w), [[0, 3, 0], [0, 3, 0]])
    with pytest.raises(TypeError, match="Unsupported index"):
        tf.function(lambda x: x[np.float32(1.0)], input_signature=OPEN)(np.zeros((2, 3, 2), "f4"))


def test_strided_slices_of_known_axes():
    # swin_transformers.py's PatchMerging: x[:, 0::2, 0::2, :] on a traced batch; also
    # negative steps; a gradient flows back to the picked entries
    traced = tf.function(lambda x: {"even": x[:, 0::2], "reversed": x[:, ::-1, 1:],
                                    "down": x[..., 1::-1]},
                         input_signature=[tf.TensorSpec((None, 5, 2), "float32")])
    for n in (2, 3):
        x = np.arange(n * 10, dtype="float32").reshape(n, 5, 2)
        out = traced(x)
        np.testing.assert_array_equal(out["even"], x[:, 0::2])
        np.testing.assert_array_equal(out["reversed"], x[:, ::-1, 1:])
        np.testing.assert_array_equal(out["down"], x[..., 1::-1])
    w = tf.Variable(np.ones((4, 3), "float32"))
    with tf.GradientTape() as tape:
        total = ops.sum(w[1::2] * 2.0)
    np.testing.assert_array_equal(tape.gradient(total, w), [[0] * 3, [2] * 3, [0] * 3, [2] * 3])
    with pytest.raises(NotImplementedError, match="step"):
        tf.function(lambda x: x[:, ::2], input_signature=OPEN)(np.zeros((2, 3, 2), "f4"))
