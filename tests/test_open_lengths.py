"""A model whose Input leaves an axis open (`Input((None,))`, variable-length sequences) is
compiled once for every length: the step is traced with that axis unknown (a recurrence is a
loop of any length). Checked equal to training one program per length; steps that need the
sizes (an unrolled or custom recurrence) still get one program per length."""
from __future__ import annotations

import numpy as np
import pytest

from kgraph import keras


def _model(kind, **kw):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(30, 5, mask_zero=True)(inputs)
    if kind == "Bidirectional":
        h = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True, **kw))(h)
        h = keras.layers.GlobalMaxPooling1D()(h)
    else:
        h = getattr(keras.layers, kind)(4, **kw)(h)
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    model.compile("adam", "mse")
    return model


def _batches():
    rng = np.random.default_rng(0)
    out = []
    for length in (6, 3, 9, 6, 4):
        x = rng.integers(1, 30, size=(4, length)).astype("int32")
        x[:2, length - 2:] = 0  # padded ends: masked steps
        out.append((x, rng.normal(size=(4, 2)).astype("float32")))
    return out


@pytest.mark.parametrize("kind, kw", [("LSTM", {}), ("GRU", {"go_backwards": True}),
                                      ("SimpleRNN", {}), ("Bidirectional", {})])
def test_one_program_for_every_length_trains_as_one_per_length(kind, kw):
    batches = _batches()
    models = {"open": _model(kind, **kw), "sized": _model(kind, **kw)}
    models["sized"]._open_axes = lambda x, steps: {}  # the old way: a program per length
    for model in models.values():
        for x, y in batches:
            model.train_on_batch(x, y)
    train = [k for k in models["open"]._programs if k[0] == "train"]
    assert len(train) == 1 and train[0][2] == ((None,), "<i4")
    assert len([k for k in models["sized"]._programs if k[0] == "train"]) == 4
    for a, b in zip(models["open"].get_weights(), models["sized"].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for x, _ in batches:
        np.testing.assert_allclose(models["open"].predict(x, verbose=0),
                                   models["sized"].predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_a_step_that_needs_the_length_gets_one_program_per_length():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, 3))
    h = keras.layers.LSTM(4, unroll=True)(inputs)  # unrolled: needs the number of steps
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    model.compile("adam", "mse")
    for length in (2, 5, 2):
        model.train_on_batch(np.ones((2, length, 3), "float32"), np.ones((2, 1), "float32"))
    keys = [k for k in model._programs if k[0] == "train"]
    assert len(keys) == 2 and all(k[2] == "sized" for k in keys)
    assert len(model._closed_keys) == 1
