"""Numpy references of the Keras recurrent equations (keras-formats.md §5) and the
helpers shared by the recurrent-layer tests."""
import numpy as np

from kgraph import keras, ops

RNG = np.random.default_rng(0)

# -- numpy references ---------------------------------------------------------------------------
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_simple_step(weights):
    W, U, b = weights

    def step(x, states):
        h = np.tanh(x @ W + b + states[0] @ U)
        return h, [h]
    return step


def np_lstm_step(weights):
    W, U, b = weights

    def step(x, states):
        h, c = states
        i, f, g, o = np.split(x @ W + h @ U + b, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        return h, [h, c]
    return step


def np_gru_step(weights, reset_after=True):
    W, U, b = weights

    def step(x, states):
        h = states[0]
        u = h.shape[-1]
        if reset_after:
            xz, xr, xh = np.split(x @ W + b[0], 3, axis=-1)
            rz, rr, rh = np.split(h @ U + b[1], 3, axis=-1)
            z, r = sigmoid(xz + rz), sigmoid(xr + rr)
            candidate = np.tanh(xh + r * rh)
        else:
            xz, xr, xh = np.split(x @ W + b, 3, axis=-1)
            z, r = sigmoid(xz + h @ U[:, :u]), sigmoid(xr + h @ U[:, u:2 * u])
            candidate = np.tanh(xh + (r * h) @ U[:, 2 * u:])
        h = z * h + (1 - z) * candidate
        return h, [h]
    return step


def np_rnn(step, x, states, go_backwards=False, mask=None):
    """Keras' unrolled loop: masked steps keep the previous output (zeros at first) and
    states; outputs in processing order. Returns (last output, all outputs, states)."""
    order = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    outputs, prev = [], None
    for t in order:
        out, new = step(x[:, t], states)
        if mask is not None:
            m = mask[:, t][:, None]
            out = np.where(m, out, prev if prev is not None else 0.0)
            new = [np.where(m, n, o) for n, o in zip(new, states)]
        states, prev = new, out
        outputs.append(out)
    return prev, np.stack(outputs, axis=1), states


KINDS = {  # name: (layer class, extra arguments, numpy step factory, number of states)
    "simple_rnn": (keras.layers.SimpleRNN, {}, np_simple_step, 1),
    "lstm": (keras.layers.LSTM, {}, np_lstm_step, 2),
    "gru": (keras.layers.GRU, {}, lambda w: np_gru_step(w, True), 1),
    "gru_reset_before": (keras.layers.GRU, {"reset_after": False},
                         lambda w: np_gru_step(w, False), 1),
}


def make(kind, units, **kwargs):
    layer_cls, extra, _, _ = KINDS[kind]
    return layer_cls(units, **extra, **kwargs)


def randomize(layer, scale=0.5, seed=1):
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=scale, size=w.shape).astype("f4")
                       for w in layer.get_weights()])
    return [w.astype("f8") for w in layer.get_weights()]


def data(batch=3, steps=6, features=4, seed=2):
    return np.random.default_rng(seed).normal(size=(batch, steps, features)).astype("f4")


class ZeroMasking(keras.layers.Layer):
    """Like keras.layers.Masking(0.0): a step whose features are all zero is masked."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x):
        return x

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(ops.sum(ops.abs(inputs), axis=-1), 0.0)
