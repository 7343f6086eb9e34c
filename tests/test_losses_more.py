"""The losses Keras 3 added: Dice, Tversky, Circle, CategoricalGeneralizedCrossEntropy and
their functions. Float64 numpy references; reductions, sample weights, configs and one
compiled SGD step of `fit` equal real Keras 3 on JAX where it is installed."""
from __future__ import annotations

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras

L = keras.losses
RNG = np.random.default_rng(3)
REDUCTIONS = ["sum_over_batch_size", "sum", None, "mean_with_sample_weight"]


def _unit_rows(n, d):
    e = RNG.standard_normal((n, d)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def ref_dice(t, p, axis=None):
    return 1 - 2 * (t * p).sum(axis) / (t.sum(axis) + p.sum(axis) + 1e-7)


def ref_tversky(t, p, alpha, beta, axis=None):
    tp, fp, fn = (t * p).sum(axis), ((1 - p) * t).sum(axis), (p * (1 - t)).sum(axis)
    return 1 - tp / (tp + alpha * fp + beta * fn + 1e-7)


def ref_circle(labels, emb, gamma=80.0, margin=0.4, remove_diagonal=True):
    """Per query: softplus(logsumexp over positives + logsumexp over negatives), 0 when a
    query has no positive or no negative (as Keras' -inf fill gives)."""
    emb = emb.astype(np.float64)
    dist = np.maximum(1 - emb @ emb.T, 0)
    out = []
    for i in range(len(labels)):
        pos = labels == labels[i]
        neg = ~pos
        if remove_diagonal:
            pos[i] = False
        if not pos.any() or not neg.any():
            out.append(0.0)
            continue
        d = dist[i]
        lp = -gamma * np.maximum(margin + d[pos], 0) * (margin - d[pos])
        ln = gamma * np.maximum(1 + margin - d[neg], 0) * (1 - margin - d[neg])
        lse = np.logaddexp.reduce(lp) + np.logaddexp.reduce(ln)
        out.append(np.logaddexp(0, lse))
    return np.array(out)


def ref_gce(labels, probs, q):
    return (1 - probs[np.arange(len(labels)), labels.astype(int)] ** q) / q


def test_functions_equal_numpy_references():
    t = (RNG.uniform(size=(4, 3, 2)) > 0.5).astype(np.float32)
    p = RNG.uniform(size=(4, 3, 2)).astype(np.float32)
    t64, p64 = t.astype(np.float64), p.astype(np.float64)
    np.testing.assert_allclose(L.dice(t, p), ref_dice(t64, p64), rtol=1e-5)
    np.testing.assert_allclose(L.dice(t, p, axis=(1, 2)), ref_dice(t64, p64, (1, 2)), rtol=1e-5)
    np.testing.assert_allclose(L.tversky(t, p, 0.3, 0.7, axis=(1, 2)),
                               ref_tversky(t64, p64, 0.3, 0.7, (1, 2)), rtol=1e-5)
    np.testing.assert_allclose(L.tversky(t, p), L.dice(t, p), rtol=1e-6)  # alpha = beta = 0.5
    labels, emb = np.array([0, 0, 1, 1, 2, 1]), _unit_rows(6, 4)
    for kwargs in ({}, {"gamma": 10.0, "margin": 0.25}, {"remove_diagonal": False}):
        np.testing.assert_allclose(L.circle(labels, emb, **kwargs),
                                   ref_circle(labels, emb, **kwargs), rtol=1e-4, atol=1e-6)
    probs = RNG.dirichlet(np.ones(3), size=5).astype(np.float32)
    labels = np.array([0, 2, 1, 1, 0])
    np.testing.assert_allclose(L.categorical_generalized_cross_entropy(labels, probs, 0.3),
                               ref_gce(labels, probs, 0.3), rtol=1e-5)


def test_circle_leaves_queries_without_positives_out_of_the_mean():
    labels, emb = np.array([0, 0, 1, 1, 2, 1]), _unit_rows(6, 4)
    per_query = ref_circle(labels, emb)
    assert per_query[4] == 0.0  # label 2 has no other member
    np.testing.assert_allclose(L.Circle()(labels, emb), per_query.sum() / 5, rtol=1e-5)
    np.testing.assert_allclose(L.Circle(reduction="sum")(labels, emb), per_query.sum(),
                               rtol=1e-5)
    weights = RNG.uniform(size=6).astype(np.float32)
    np.testing.assert_allclose(L.Circle()(labels, emb, sample_weight=weights),
                               (per_query * weights).sum() / 5, rtol=1e-5)
    # the gradient of the left-out query stays finite (Keras' -inf fill would give NaN here)
    variable = tf.Variable(emb)
    with tf.GradientTape() as tape:
        loss = L.Circle()(labels, variable)
    assert np.isfinite(np.asarray(tape.gradient(loss, variable))).all()


def _loss_cases():
    t = (RNG.uniform(size=(4, 3, 2)) > 0.5).astype(np.float32)
    p = RNG.uniform(size=(4, 3, 2)).astype(np.float32)
    probs = RNG.dirichlet(np.ones(4), size=6).astype(np.float32)
    return [("Dice", {}, t, p), ("Dice", {"axis": (1, 2)}, t, p),
            ("Tversky", {"alpha": 0.3, "beta": 0.7, "axis": (1, 2)}, t, p),
            ("Tversky", {}, t, p),
            ("Circle", {}, np.array([0, 0, 1, 1, 2, 1]), _unit_rows(6, 4)),
            ("Circle", {"gamma": 10.0, "margin": 0.25, "remove_diagonal": False},
             np.array([0, 1, 1, 0, 2, 1]), _unit_rows(6, 4)),
            ("CategoricalGeneralizedCrossEntropy", {"q": 0.2}, np.array([0, 3, 1, 2, 0, 1]),
             probs),
            ("CategoricalGeneralizedCrossEntropy", {}, np.array([[0], [3], [1], [2], [0], [1]]),
             probs)]


@pytest.mark.parametrize("case", range(8))
def test_classes_equal_real_keras(case):
    real = pytest.importorskip("keras")
    name, kwargs, y_true, y_pred = _loss_cases()[case]
    weights = RNG.uniform(size=len(y_true)).astype(np.float32)
    theirs_y_true = y_true
    if y_true.ndim == 2 and name.startswith("Categorical"):
        # Keras 3.15 one-hot encodes (batch, 1) labels to (batch, 1, C) and broadcasts them
        # into (batch, batch) losses; kgraph reads them as the (batch,) labels they are
        theirs_y_true = y_true[:, 0]
    for reduction in REDUCTIONS:
        for sw in (None, weights):
            ours = getattr(L, name)(reduction=reduction, **kwargs)
            theirs = getattr(real.losses, name)(reduction=reduction, **kwargs)
            np.testing.assert_allclose(np.asarray(ours(y_true, y_pred, sample_weight=sw)),
                                       np.asarray(theirs(theirs_y_true, y_pred,
                                                         sample_weight=sw)),
                                       rtol=1e-5, atol=1e-6)
    ours = getattr(L, name)(**kwargs)
    config = ours.get_config()
    assert config == theirs.__class__(**kwargs).get_config()
    again = L.deserialize(L.serialize(ours))
    assert type(again) is type(ours) and again.get_config() == config
    assert L.get(name).get_config() == getattr(L, name)().get_config()


def test_functions_resolve_by_name_and_q_is_checked():
    real = pytest.importorskip("keras")
    for name in ("dice", "tversky", "circle", "categorical_generalized_cross_entropy"):
        assert L.get(name).fn is getattr(L, name)
    assert {n for n in dir(real.losses) if not n.startswith("_")} <= set(dir(L))
    with pytest.raises(ValueError, match=r"q=1\.5"):
        L.CategoricalGeneralizedCrossEntropy(q=1.5)


FIT_CASES = [("dice", "sigmoid", lambda: (RNG.uniform(size=(6, 4)) > 0.5).astype(np.float32)),
             ("Tversky", "sigmoid", lambda: (RNG.uniform(size=(6, 4)) > 0.5).astype(np.float32)),
             ("circle", "unit", lambda: np.array([0, 0, 1, 1, 2, 1], np.float32)),
             ("gce", "softmax", lambda: np.array([0, 3, 1, 2, 0, 1], np.float32))]


@pytest.mark.parametrize("loss,head,make_y", FIT_CASES)
def test_fit_step_equals_real_keras(loss, head, make_y):
    """One SGD step of `fit` (the loss and its gradient inside the compiled step) moves the
    weights as real Keras' does, and `evaluate` reports the same loss."""
    real = pytest.importorskip("keras")
    x, y = RNG.standard_normal((6, 5)).astype(np.float32), make_y()

    def model(lib):
        top = (lib.layers.UnitNormalization() if head == "unit"
               else lib.layers.Activation(head))
        made = lib.Sequential([lib.Input((5,)), lib.layers.Dense(4), top])
        named = loss if loss != "gce" else lib.losses.CategoricalGeneralizedCrossEntropy(0.3)
        made.compile(lib.optimizers.SGD(0.5), named)
        return made

    ours, theirs = model(keras), model(real)
    theirs.set_weights(ours.get_weights())
    ours.fit(x, y, batch_size=6, verbose=0)
    theirs.fit(x, y, batch_size=6, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), theirs.evaluate(x, y, verbose=0),
                               rtol=1e-5)
