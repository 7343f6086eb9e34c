"""The eager GradientTape loop's one-call step (kgraph/tape_step.py): after its first step the
tape's program also computes the optimizer's update, committed by `apply_gradients`. Every
test compares with the same loop run with fusion off (two executor calls a step), bit for
bit, in the orderings where speculation must commit and where it must not."""
import numpy as np
import pytest

import kgraph as tf
import kgraph.tape_step as tape_step
from kgraph import keras
from kgraph.compiler import build


@pytest.fixture
def fusion_off(monkeypatch):
    def off():
        monkeypatch.setattr(tape_step, "follower", lambda key, sources: None)
    return off


def make_model(seed=0, batchnorm=True):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((12,)), keras.layers.Dense(16, activation="relu")]
    layers += [keras.layers.BatchNormalization()] if batchnorm else []
    return keras.Sequential(layers + [keras.layers.Dense(3)])


def batches(n, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(8, 12)).astype("float32"), rng.integers(0, 3, 8))
            for _ in range(n)]


LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def guide_loop(model, optimizer, data, between=None, transform=None):
    """The Keras guide's loop; `between(step, model)` runs between gradient and apply,
    `transform(grads)` changes the gradients before they are applied."""
    metric = keras.metrics.SparseCategoricalAccuracy()
    losses = []
    for step, (x, y) in enumerate(data):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = LOSS(y, logits)
        grads = tape.gradient(loss, model.trainable_weights)
        if between is not None:
            between(step, model)
        if transform is not None:
            grads = transform(grads)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        metric.update_state(y, logits)
        losses.append(float(loss))
    return losses, [w.numpy().copy() for w in model.weights + optimizer.variables], \
        float(metric.result())


def assert_same(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    assert len(a[1]) == len(b[1])
    for x, y in zip(a[1], b[1]):
        np.testing.assert_array_equal(x, y)
    assert a[2] == b[2]


def fused_steps(fn):
    before = build.stats().get("fused_tape_steps", 0)
    out = fn()
    return out, build.stats().get("fused_tape_steps", 0) - before


def test_fused_loop_equals_two_calls_and_its_later_steps_compile_nothing(fusion_off):
    data = batches(6)
    compiled = []

    def loop():
        model, optimizer = make_model(), keras.optimizers.Adam(1e-2)
        out = guide_loop(model, optimizer, data[:2])
        before = build.stats()
        out2 = guide_loop(model, optimizer, data[2:])
        after = build.stats()
        compiled.append({k: after.get(k, 0) - before.get(k, 0)
                         for k in ("traces", "autodiffs", "emissions", "compilations")})
        return out[0] + out2[0], out2[1], out2[2]

    fused, n = fused_steps(loop)
    assert n == 5  # every step but the first ran as one call
    assert compiled[0] == {"traces": 0, "autodiffs": 0, "emissions": 0, "compilations": 0}
    fusion_off()
    unfused, n = fused_steps(loop)
    assert n == 0
    assert_same(fused, unfused)


def test_gradients_changed_before_apply_are_applied_as_given(fusion_off):
    """Steps 0-2 pass the gradients through (steps 1, 2 fused); steps 3-4 scale them: the
    speculated update of step 3 is dropped, and after that miss and step 4's speculation
    stops."""
    data = batches(6)

    def clip_later():
        calls = []

        def transform(grads):
            calls.append(1)
            return grads if len(calls) <= 3 else [g * 0.5 for g in grads]  # new arrays
        return transform

    fused, n = fused_steps(lambda: guide_loop(make_model(), keras.optimizers.Adam(1e-2), data,
                                              transform=clip_later()))
    assert n == 2
    fusion_off()
    assert_same(fused, guide_loop(make_model(), keras.optimizers.Adam(1e-2), data,
                                  transform=clip_later()))


def test_weights_changed_between_gradient_and_apply_drop_the_fused_update(fusion_off):
    data = batches(5)

    def nudge(step, model):
        if step == 3:
            kernel = model.layers[0].kernel
            kernel.assign(kernel.numpy() * 0.9)

    fused, n = fused_steps(lambda: guide_loop(make_model(), keras.optimizers.Adam(1e-2), data,
                                              between=nudge))
    assert n == 3  # steps 1, 2 and 4
    fusion_off()
    assert_same(fused, guide_loop(make_model(), keras.optimizers.Adam(1e-2), data,
                                  between=nudge))


def test_two_models_of_one_architecture_train_apart(fusion_off):
    """Two same-architecture models share compiled programs; neither's update may land on
    the other (the ordering in which the earlier speculative step went wrong)."""
    data = batches(4)

    def both():
        a, b = make_model(0, batchnorm=False), make_model(1, batchnorm=False)
        out_a = guide_loop(a, keras.optimizers.Adam(1e-2), data)
        out_b = guide_loop(b, keras.optimizers.Adam(1e-2), data)
        out_a2 = guide_loop(a, keras.optimizers.SGD(0.1), data)
        return out_a, out_b, out_a2

    fused, n = fused_steps(both)
    assert n == 9
    fusion_off()
    for f, u in zip(fused, both()):
        assert_same(f, u)


def test_returned_gradients_are_read_only():
    model = make_model(batchnorm=False)
    (x, y), = batches(1)
    with tf.GradientTape() as tape:
        loss = LOSS(y, model(x))
    grads = tape.gradient(loss, model.trainable_weights)
    with pytest.raises(ValueError, match="read-only"):
        grads[0] *= 2
    doubled = [g * 2 for g in grads]  # arithmetic makes new arrays, as on tensors
    np.testing.assert_array_equal(doubled[0], 2 * np.asarray(grads[0]))


def test_speculation_stops_after_updates_that_are_never_applied():
    model, optimizer = make_model(batchnorm=False), keras.optimizers.SGD(0.1)
    data = batches(8)
    guide_loop(model, optimizer, data[:2])  # learns the pattern; step 1 fused
    weights = [w.numpy().copy() for w in model.weights]
    before = build.stats().get("fused_tape_steps", 0)
    for x, y in data[2:]:  # gradients only (a user inspecting them): nothing may move
        with tf.GradientTape() as tape:
            loss = LOSS(y, model(x))
        tape.gradient(loss, model.trainable_weights)
    assert build.stats().get("fused_tape_steps", 0) == before
    for w, v in zip(model.weights, weights):
        np.testing.assert_array_equal(w.numpy(), v)
    assert tape_step.follower(*_last_key(model)) is None  # two misses: no more speculation


def _last_key(model):
    info = tape_step._last.info
    return info[1], model.trainable_weights
