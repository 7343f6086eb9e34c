"""Every `keras.ops` name (tests/data/keras_ops_names.txt) that kgraph and Keras both have
takes Keras' parameters: the same names in the same order and kinds, with the same defaults
(`ops.add(x1=a, x2=b)`, `ops.concatenate(xs)` on axis 0), compared with `inspect` against the
installed Keras 3. kgraph may add optional parameters after Keras' ones (`conv(..., bias=)`);
Keras' `**kwargs` (backend options, as `einsum`'s) are not required."""
import inspect

import numpy as np
import pytest

from test_keras_ops_coverage import keras_names, resolve




def _resolve_keras(real, name):
    obj = real.ops
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _same_default(a, b):
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return a is b


def signature_mismatch(ours, theirs) -> str | None:
    """Why `ours` cannot be called as Keras' `theirs`, or None."""
    mine = list(inspect.signature(ours).parameters.values())
    keras_params = [p for p in inspect.signature(theirs).parameters.values()
                    if p.kind is not p.VAR_KEYWORD]
    for i, want in enumerate(keras_params):
        if i >= len(mine):
            return f"no parameter {want.name!r}"
        got = mine[i]
        if (got.name, got.kind) != (want.name, want.kind):
            return f"parameter {i} is {got} where Keras has {want}"
        if not _same_default(got.default, want.default):
            return f"{got.name} defaults to {got.default!r}, Keras' to {want.default!r}"
    extra = [p for p in mine[len(keras_params):]
             if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return f"required parameters Keras does not have: {extra}" if extra else None


def test_keras_ops_take_keras_parameter_names_and_defaults():
    real = pytest.importorskip("keras")
    mismatches, compared = {}, 0
    for name in keras_names():
        ours, theirs = resolve(name), _resolve_keras(real, name)
        if ours is None or theirs is None:  # absent names: test_keras_ops_coverage.py
            continue
        compared += 1
        why = signature_mismatch(ours, theirs)
        if why:
            mismatches[name] = why
    assert compared > 500
    assert not mismatches, f"keras.ops signatures differing from Keras': {mismatches}"


def test_the_comparison_sees_a_renamed_parameter_and_a_changed_default():
    def keras_add(x1, x2):
        pass

    def add(a, b):
        pass

    def concatenate(xs, axis=-1):
        pass

    def keras_concatenate(xs, axis=0):
        pass

    def conv(inputs, kernel, bias=None):
        pass

    def keras_conv(inputs, kernel):
        pass

    assert "parameter 0" in signature_mismatch(add, keras_add)
    assert "defaults to -1" in signature_mismatch(concatenate, keras_concatenate)
    assert signature_mismatch(conv, keras_conv) is None
    assert signature_mismatch(keras_add, keras_add) is None


def test_binary_ops_take_keras_keywords_and_the_changed_defaults_compute_as_keras():
    from kgraph import keras

    ops = keras.ops
    a, b = np.float32([[1.0, 2.0]]), np.float32([[3.0, 0.5]])
    np.testing.assert_allclose(ops.add(x1=a, x2=b), a + b)
    np.testing.assert_allclose(ops.subtract(x1=a, x2=b), a - b)
    np.testing.assert_allclose(ops.power(x1=a, x2=b), a ** b)
    np.testing.assert_allclose(ops.matmul(x1=a, x2=b.T), a @ b.T)
    np.testing.assert_array_equal(ops.where(a > 1.5, x1=a, x2=b), np.where(a > 1.5, a, b))
    np.testing.assert_array_equal(ops.where(np.array([0, 3, 0, 1]))[0], [1, 3])
    with pytest.raises(ValueError, match="x1 and x2"):
        ops.where(a > 1.5, x1=a)
    np.testing.assert_array_equal(ops.swapaxes(np.zeros((2, 3, 4)), axis1=0, axis2=2).shape,
                                  (4, 3, 2))
    assert ops.concatenate([a, b]).shape == (2, 2)  # axis 0, as Keras
    assert ops.one_hot(x=np.array([2]), num_classes=3).dtype == "float32"
    np.testing.assert_allclose(ops.kaiser(5, beta=2.0), np.kaiser(5, 2.0), rtol=1e-6)
    np.testing.assert_allclose(ops.linalg.solve(a=np.eye(2) * 2, b=np.ones(2)), [0.5, 0.5])
    x = np.linspace(-3, 3, 7).astype("float32")
    tanh_gelu = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(ops.gelu(x), tanh_gelu, rtol=1e-5, atol=1e-6)
    row = np.float32([[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_allclose(ops.layer_normalization(row),
                               (row - 2.5) / np.sqrt(1.25 + 1e-7), rtol=1e-5)
    np.testing.assert_allclose(ops.rms_normalization(row),
                               row / np.sqrt(np.mean(row ** 2) + 1e-7), rtol=1e-5)


def test_scatter_update_reductions_match_keras():
    real = pytest.importorskip("keras")
    from kgraph import keras

    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(4, 3)).astype("float32")
    cases = [([[0], [0], [2]], rng.normal(size=(3, 3)).astype("float32")),  # repeated rows
             ([[1, 2], [0, 0], [1, 2], [3, 1]], rng.normal(size=(4,)).astype("float32"))]
    for indices, updates in cases:
        for reduction in ("add", "max", "min", "mul", "MUL"):
            np.testing.assert_allclose(
                keras.ops.scatter_update(inputs, indices, updates, reduction=reduction),
                real.ops.scatter_update(inputs, indices, updates, reduction=reduction),
                rtol=1e-6)
    # no reduction: the last of repeated updates wins
    np.testing.assert_allclose(keras.ops.scatter_update(inputs, [[0], [2], [0]], np.float32(
        [[1] * 3, [2] * 3, [3] * 3])), np.concatenate([[[3] * 3], inputs[1:2], [[2] * 3],
                                                       inputs[3:]]))
    with pytest.raises(ValueError, match="reduction='sum'"):
        keras.ops.scatter_update(inputs, [[0]], updates[:1], reduction="sum")
