"""`run_layer_test`: the one harness every layer goes through (after Keras' own).

It builds the layer, checks output shapes eagerly and symbolically (with an unknown batch
dim), round-trips `get_config`, checks that one training step through `fit` lowers a loss,
and checks the gradient of the lowered graph against float64 central differences."""
from __future__ import annotations

import numpy as np

from kgraph import keras


def numeric_gradient(f, feeds, name, eps=1e-6):
    """Central differences of the scalar `f(feeds)` w.r.t. `feeds[name]` (float64 arrays)."""
    grad = np.zeros_like(feeds[name])
    for idx in np.ndindex(grad.shape):
        plus, minus = dict(feeds), dict(feeds)
        plus[name], minus[name] = feeds[name].copy(), feeds[name].copy()
        plus[name][idx] += eps
        minus[name][idx] -= eps
        grad[idx] = (f(plus) - f(minus)) / (2 * eps)
    return grad


def _sample(shape, rng, dtype="float32", low=-1.0, high=1.0):
    if dtype.startswith("int"):
        return rng.integers(0, 4, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def run_layer_test(layer_cls, init_kwargs, input_shape, expected_output_shape=None,
                   input_dtype="float32", expected_num_trainable_weights=None,
                   expected_num_non_trainable_weights=None, run_training_check=True,
                   run_gradient_check=True, custom_objects=None, seed=0):
    """Check one layer class end to end. `input_shape` includes the batch dimension (or is a
    list of shapes for multi-input layers)."""
    rng = np.random.default_rng(seed)
    multi = isinstance(input_shape, list)
    shapes = input_shape if multi else [input_shape]
    data = [_sample(s, rng, input_dtype) for s in shapes]
    arg = data if multi else data[0]

    # eager call: builds the layer and runs a compiled graph
    layer = layer_cls(**init_kwargs)
    out = layer(arg)
    first = out[0] if isinstance(out, (list, tuple)) else out
    if expected_output_shape is not None:
        assert tuple(np.shape(first)) == tuple(expected_output_shape), \
            f"{layer_cls.__name__}: eager output shape {np.shape(first)}"
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights
    if expected_num_non_trainable_weights is not None:
        assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights

    # symbolic call with an unknown batch dimension
    inputs = [keras.Input(shape=s[1:], dtype=input_dtype) for s in shapes]
    sym = layer_cls(**init_kwargs)(inputs if multi else inputs[0])
    sym_first = sym[0] if isinstance(sym, (list, tuple)) else sym
    assert sym_first.shape[0] is None
    if expected_output_shape is not None:
        assert tuple(sym_first.shape[1:]) == tuple(expected_output_shape[1:]), \
            f"{layer_cls.__name__}: symbolic shape {sym_first.shape}"

    # config round trip: same config, same outputs with the same weights
    config = layer.get_config()
    clone = layer_cls.from_config(config) if custom_objects is None else \
        layer_cls.from_config(config)
    clone(arg)
    clone.set_weights(layer.get_weights())
    assert _strip_name(clone.get_config()) == _strip_name(config)
    np.testing.assert_allclose(_first(clone(arg)), _first(out), rtol=1e-5, atol=1e-6)

    if run_training_check and layer.trainable_weights:
        _training_lowers_loss(layer_cls, init_kwargs, inputs, multi, data, rng)
    if run_gradient_check and layer.trainable_weights:
        check_layer_gradients(layer, arg)
    return layer


def _first(x):
    return np.asarray(x[0] if isinstance(x, (list, tuple)) else x)


def _strip_name(config):
    return {k: v for k, v in config.items() if k != "name"}


def _training_lowers_loss(layer_cls, init_kwargs, inputs, multi, data, rng):
    out = layer_cls(**init_kwargs)(inputs if multi else inputs[0])
    out = out[0] if isinstance(out, (list, tuple)) else out
    model = keras.Model(inputs if multi else inputs[0], out)
    target = rng.normal(size=(len(data[0]),) + tuple(out.shape[1:])).astype("float32")
    model.compile(keras.optimizers.SGD(0.01), "mse")
    x = data if multi else data[0]
    before = model.evaluate(x, target, verbose=0)
    model.fit(x, target, epochs=3, batch_size=len(data[0]), verbose=0)
    after = model.evaluate(x, target, verbose=0)
    assert after < before, f"{layer_cls.__name__}: loss did not go down ({before} -> {after})"


def check_layer_gradients(layer, arg, eps=1e-3, tol=2e-2):
    """Gradient of sum(layer(x) * r) wrt each trainable weight (from the compiled graph)
    against float64 central differences of the same function."""
    import kgraph as tf

    rng = np.random.default_rng(1)
    r = rng.normal(size=np.shape(_first(layer(arg)))).astype("float32")
    with tf.GradientTape() as tape:
        y = keras.ops.sum(_first_value(layer(arg)) * r)
    grads = tape.gradient(y, layer.trainable_weights)

    def f(weights):
        layer.set_weights(weights + layer.get_weights()[len(weights):])
        return float(np.sum(_first(layer(arg)).astype("float64") * r))

    base = [w.astype("float64") for w in layer.get_weights()[:len(layer.trainable_weights)]]
    for i, (w, g) in enumerate(zip(base, grads)):
        flat = w.reshape(-1)
        for j in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            plus, minus = [b.copy() for b in base], [b.copy() for b in base]
            plus[i].reshape(-1)[j] += eps
            minus[i].reshape(-1)[j] -= eps
            fd = (f([p.astype("float32") for p in plus]) - f([m.astype("float32") for m in minus])) / (2 * eps)
            got = np.asarray(g).reshape(-1)[j]
            assert abs(fd - got) <= tol * max(1.0, abs(fd)), \
                f"{layer.name}: d/d{layer.trainable_weights[i].path}[{j}] = {got}, FD {fd}"
    layer.set_weights([b.astype("float32") for b in base] + layer.get_weights()[len(base):])


def _first_value(x):
    return x[0] if isinstance(x, (list, tuple)) else x
