"""keras.ops(.nn).ctc_loss and ctc_decode: eager against real Keras (JAX backend) with label
and logit lengths, padded targets, repeated labels, several blank indices and float64;
traced under kgraph.function at two batch sizes and in a functional model; gradients against
jax.grad through real Keras and against float64 central differences; a model trained on the
loss; greedy decoding traced and eager against Keras on JAX, beam search eager and traced
against Keras' numpy backend; keras.losses.CTC; typed errors."""
from __future__ import annotations

import jax
import keras as real_keras
import numpy as np
import pytest

import kgraph as tf
from kgraph import keras
from kgraph.ir.graph import Graph, tracing
from kgraph.ops.api_util import StaticShapeRequiredError

ops = keras.ops
RNG = np.random.default_rng(11)


def batch(n=4, steps=9, classes=6, labels=4, dtype="float32"):
    """Logits, targets (one row with a repeated label, padding past each length set to 99),
    label lengths (one 0, one the full width) and logit lengths (some short)."""
    logits = (RNG.normal(size=(n, steps, classes)) * 2).astype(dtype)
    target = RNG.integers(1, classes, size=(n, labels)).astype("int32")
    target[0, 1] = target[0, 2]
    target_length = np.array([labels, 2, 0, 3, 1, labels][:n], "int32")
    output_length = np.array([steps, steps - 2, 3, steps, steps - 1, 5][:n], "int32")
    for row, length in enumerate(target_length):
        target[row, length:] = 99
    return target, logits, target_length, output_length


def real_loss(target, logits, target_length, output_length, **kwargs):
    return np.asarray(real_keras.ops.ctc_loss(target, logits, target_length, output_length,
                                              **kwargs))


@pytest.mark.parametrize("mask_index", [0, 3, 5])
@pytest.mark.parametrize("name", ["ctc_loss", "nn.ctc_loss"])
def test_loss_equals_real_keras(name, mask_index):
    fn = ops.nn.ctc_loss if name.startswith("nn.") else ops.ctc_loss
    args = batch()
    got = fn(*args, mask_index=mask_index)
    assert got.shape == (4,) and got.dtype == np.float32
    np.testing.assert_allclose(got, real_loss(*args, mask_index=mask_index), rtol=1e-5,
                               atol=1e-5)


def test_loss_float64_and_repeated_labels_that_need_a_blank():
    target, logits, target_length, output_length = batch(dtype="float64")
    got = ops.ctc_loss(target, logits, target_length, output_length)
    assert got.dtype == np.float64  # as kgraph keeps float64 arrays (JAX computes float32)
    np.testing.assert_allclose(got, real_loss(target, logits, target_length, output_length),
                               rtol=1e-6)
    # "1 1" in 2 steps is impossible (a blank must separate the repeats): loss ~ -LOG_EPSILON
    two = np.zeros((1, 2, 3), "float32")
    assert ops.ctc_loss(np.array([[1, 1]]), two, np.array([2]), np.array([2]))[0] > 1e4
    assert ops.ctc_loss(np.array([[1, 2]]), two, np.array([2]), np.array([2]))[0] < 10


def test_loss_of_a_one_step_sequence_is_minus_the_label_log_probability():
    logits = RNG.normal(size=(2, 1, 4)).astype("float32")
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    got = ops.ctc_loss(np.array([[2], [0]]), logits, np.array([1, 0]), np.array([1, 1]))
    np.testing.assert_allclose(got, [-logp[0, 0, 2], -logp[1, 0, 0]], rtol=1e-6)


def test_loss_traced_at_two_batch_sizes_and_in_a_functional_model():
    args = batch(n=5)
    traced = tf.function(lambda *a: ops.ctc_loss(*a, mask_index=2))
    inputs = [keras.Input((4,), dtype="int32"), keras.Input((9, 6)),
              keras.Input((), dtype="int32"), keras.Input((), dtype="int32")]
    model = keras.Model(inputs, ops.ctc_loss(*inputs, mask_index=2))
    inputs = [keras.Input((None,), dtype="int32")] + inputs[1:]  # label width open
    open_width = keras.Model(inputs, ops.ctc_loss(*inputs, mask_index=2))
    every = real_loss(*args, mask_index=2)  # rows are independent: one JAX compile
    for n in (2, 5):
        part, expected = [a[:n] for a in args], every[:n]
        np.testing.assert_allclose(open_width.predict(part, verbose=0), expected, rtol=1e-5,
                                   atol=1e-5)
        np.testing.assert_allclose(np.asarray(traced(*part)), expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(model.predict(part, verbose=0), expected, rtol=1e-5,
                                   atol=1e-5)


def test_loss_gradient_equals_jax_grad_eager_and_traced():
    target, logits, target_length, output_length = batch()
    weights = RNG.uniform(0.5, 1.5, size=4).astype("float32")
    expected = jax.grad(lambda x: (real_keras.ops.ctc_loss(
        target, x, target_length, output_length, mask_index=1) * weights).sum())(logits)
    variable = tf.Variable(logits)

    def gradient():
        with tf.GradientTape() as tape:
            loss = ops.sum(ops.ctc_loss(target, variable, target_length, output_length,
                                        mask_index=1) * weights)
        return tape.gradient(loss, [variable])[0]

    np.testing.assert_allclose(gradient(), np.asarray(expected), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(tf.function(gradient)()), np.asarray(expected),
                               rtol=1e-4, atol=1e-5)
    # steps past a row's output length get no gradient
    assert not np.asarray(gradient())[2, 3:].any()


def test_loss_gradient_equals_float64_central_differences():
    target, logits, target_length, output_length = batch(n=3, steps=6, classes=4, labels=3,
                                                         dtype="float64")
    variable = tf.Variable(logits)
    with tf.GradientTape() as tape:
        loss = ops.sum(ops.ctc_loss(target, variable, target_length, output_length))
    grad = np.asarray(tape.gradient(loss, [variable])[0])
    numeric, h = np.zeros_like(logits), 1e-6
    for index in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[index] += h
        down[index] -= h
        loss_up = np.sum(ops.ctc_loss(target, up, target_length, output_length))
        loss_down = np.sum(ops.ctc_loss(target, down, target_length, output_length))
        numeric[index] = (loss_up - loss_down) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)


def test_a_model_trained_on_the_loss_learns_the_labels():
    keras.utils.set_random_seed(3)
    target = np.array([[1, 2, 2], [3, 1, -1], [2, 3, 1]], "int32")  # -1 pads; fit shuffles
    x = np.eye(3, dtype="float32")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Reshape((8, 4))(keras.layers.Dense(32)(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=lambda y, p: ops.ctc_loss(
        y, p, ops.sum(ops.cast(ops.not_equal(y, -1), "int32"), 1), ops.full((3,), 8, "int32")))
    first = model.evaluate(x, target, batch_size=3, verbose=0)
    model.fit(x, target, batch_size=3, epochs=100, verbose=0)
    assert model.evaluate(x, target, batch_size=3, verbose=0) < first / 20
    decoded = ops.ctc_decode(model.predict(x, verbose=0), np.full(3, 8))[0][0]
    assert decoded[:, :3].tolist() == target.tolist()


def _keras_numpy_backend_nn():
    """`keras.src.backend.numpy.nn`; importing it rebinds `keras.src.backend.numpy` (the JAX
    backend's numpy ops, which Keras' losses call) to that package, so the name is restored."""
    import keras.src.backend as backend

    saved = backend.numpy
    try:
        from keras.src.backend.numpy import nn
    finally:
        backend.numpy = saved
    return nn


def real_decode(*args, **kwargs):
    """Keras' greedy decode on JAX; its beam search from Keras' numpy backend, the definition
    the JAX backend follows (JAX compiles each beam search for seconds)."""
    if kwargs.get("strategy") == "beam_search":
        return tuple(np.asarray(v) for v in _keras_numpy_backend_nn().ctc_decode(*args, **kwargs))
    return tuple(np.asarray(v) for v in real_keras.ops.ctc_decode(*args, **kwargs))


DECODE_CASES = [
    {}, {"merge_repeated": False}, {"mask_index": 3}, {"mask_index": None},
    {"strategy": "beam_search", "beam_width": 4, "top_paths": 3},
    {"strategy": "beam_search", "beam_width": 2, "mask_index": 5},
    {"strategy": "beam_search", "top_paths": 2},
]


@pytest.mark.parametrize("kwargs", DECODE_CASES, ids=[str(k) for k in DECODE_CASES])
def test_decode_equals_real_keras(kwargs):
    _, logits, _, lengths = batch()
    logits[1, 2] = logits[1, 1]  # a repeat that greedy merges or keeps
    for fn in (ops.ctc_decode, ops.nn.ctc_decode):
        paths, scores = fn(logits, lengths, **kwargs)
        want_paths, want_scores = real_decode(logits, lengths, **kwargs)
        assert paths.dtype == np.int32 and paths.shape == want_paths.shape
        np.testing.assert_array_equal(paths, want_paths)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)


def test_greedy_decode_traced_at_two_batch_sizes():
    _, logits, _, lengths = batch(n=5)
    traced = tf.function(lambda x, n: ops.ctc_decode(x, n, mask_index=2))
    every_path, every_score = real_decode(logits, lengths, mask_index=2)
    for n in (2, 5):
        paths, scores = traced(logits[:n], lengths[:n])
        want_paths, want_scores = every_path[:, :n], every_score[:n]
        np.testing.assert_array_equal(np.asarray(paths), want_paths)
        np.testing.assert_allclose(np.asarray(scores), want_scores, rtol=1e-5)


BEAM_CASES = [(3, 2, 0), (4, 4, 5), (10, 3, 2), (100, 1, 0), (1, 1, 3)]


@pytest.mark.parametrize("beam_width, top_paths, mask_index", BEAM_CASES)
def test_beam_search_traced_at_two_batch_sizes(beam_width, top_paths, mask_index):
    _, logits, _, lengths = batch(n=5)
    lengths[3] = 0  # only the first step counts, as Keras
    kwargs = {"strategy": "beam_search", "beam_width": beam_width, "top_paths": top_paths,
              "mask_index": mask_index}
    traced = tf.function(lambda x, n: ops.ctc_decode(x, n, **kwargs))
    every_path, every_score = real_decode(logits, lengths, **kwargs)
    for n in (2, 5):
        paths, scores = traced(logits[:n], lengths[:n])
        np.testing.assert_array_equal(np.asarray(paths), every_path[:, :n])
        np.testing.assert_allclose(np.asarray(scores), every_score[:n], rtol=1e-5, atol=1e-5)


def test_errors():
    target, logits, target_length, output_length = batch()
    with pytest.raises(ValueError, match="strategy='best'"):
        ops.ctc_decode(logits, output_length, strategy="best")
    with pytest.raises(ValueError, match="mask_index=6"):
        ops.ctc_loss(target, logits, target_length, output_length, mask_index=6)
    with pytest.raises(ValueError, match="mask_index=-1"):
        ops.ctc_decode(logits, output_length, mask_index=-1)
    with pytest.raises(ValueError, match="same first dimension"):
        ops.ctc_loss(target[:3], logits, target_length, output_length)
    with pytest.raises(ValueError, match=r"output.shape|Received shapes"):
        ops.ctc_loss(target, logits[0], target_length, output_length)
    with pytest.raises(ValueError, match="top_paths=3"):
        tf.function(lambda x: ops.ctc_decode(x, output_length, strategy="beam_search",
                                             beam_width=2, top_paths=3))(logits)
    graph = Graph("open_time")
    with tracing(graph), pytest.raises(StaticShapeRequiredError, match="ctc_loss"):
        ops.ctc_loss(target, graph.placeholder("x", (4, None, 6), "float32"), target_length,
                     output_length)


def test_keras_losses_ctc_equals_real_keras_and_trains_a_model():
    _, logits, _, _ = batch()
    y_true = np.array([[1, 2, 2, 0], [3, 0, 0, 0], [4, 5, 1, 3], [0, 0, 0, 0]], "int32")
    np.testing.assert_allclose(keras.losses.ctc(y_true, logits),
                               np.asarray(real_keras.losses.ctc(y_true, logits)), rtol=1e-5)
    for loss, real in ((keras.losses.CTC(), real_keras.losses.CTC()),
                       (keras.losses.get("ctc"), real_keras.losses.CTC()),  # Keras: the function
                       (keras.losses.CTC(reduction="sum"), real_keras.losses.CTC(reduction="sum"))):
        np.testing.assert_allclose(float(loss(y_true, logits)), float(real(y_true, logits)),
                                   rtol=1e-5)
    config = keras.losses.CTC(name="my_ctc").get_config()
    assert config == real_keras.losses.CTC(name="my_ctc").get_config()
    assert keras.losses.deserialize(keras.losses.serialize(keras.losses.CTC())).name == "ctc"
    with pytest.raises(ValueError, match=r"y_true.shape=\(4, 9, 6\)"):
        keras.losses.ctc(logits, logits)

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Reshape((9, 6))(keras.layers.Dense(54)(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=keras.losses.CTC())
    x = np.eye(4, dtype="float32")
    first = model.evaluate(x, y_true, verbose=0)
    model.fit(x, y_true, epochs=40, verbose=0)
    assert model.evaluate(x, y_true, verbose=0) < first / 5
