"""keras.utils / keras.backend / keras.config additions, OrthogonalRegularizer, the
regularizer and constraint `deserialize`, initializer aliases and keras.random.binomial.

Expected values marked "Keras:" are what Keras 3.15.1 on JAX returned for the same call;
the regularizer is checked against a numpy reference of its formula.
"""
import logging
import math
import warnings

import numpy as np
import pytest

from kgraph import keras
from kgraph.keras import backend, layers, ops

# -- dtypes ---------------------------------------------------------------------------------
# Keras: result_type of each argument tuple (Keras on JAX also narrows 64-bit results to
# 32 bits; kgraph computes in 64 bits, so those two cases are listed apart)
RESULT_TYPES = [
    (("int32", "float32"), "float32"), (("int8", "uint8"), "int16"),
    (("bfloat16", "float16"), "float32"), (("int32", float), "float32"),
    (("float16", int), "float16"), (("bool", int), "int32"), (("uint8", int), "uint8"),
    (("int64", "float32"), "float32"), ((), "float32"), (("bool", "bool"), "bool"),
    ((int, float), "float32"), ((None, "int8"), "float32"), (("complex64", int), "complex64"),
    (("bfloat16", int), "bfloat16"), ((int,), "int32"), ((float,), "float32"),
]


@pytest.mark.parametrize("args,expected", RESULT_TYPES)
def test_result_type_follows_keras_promotion(args, expected):
    assert backend.result_type(*args) == expected


def test_result_type_keeps_64_bits_as_kgraph_computes():
    assert backend.result_type("float64") == "float64"  # Keras on JAX: float32
    assert backend.result_type("uint32", "int32") == "int64"  # Keras on JAX: int32
    # the same promotion as keras.ops computes
    added = ops.add(np.ones(2, "uint32"), np.ones(2, "int32"))
    assert str(added.dtype) == backend.result_type("uint32", "int32")
    with pytest.raises(ValueError, match="float8"):
        backend.result_type("float8_e4m3fn", "float32")


def test_standardize_dtype_and_kinds():
    # Keras: None float32, int int32, float float32, bool bool, np.float32 float32, ...
    for given, expected in [(None, "float32"), (int, "int32"), (float, "float32"),
                            (bool, "bool"), (np.float32, "float32"), (np.dtype("int16"), "int16"),
                            ("bfloat16", "bfloat16"), ("string", "string"), (str, "string"),
                            ("int", "int32")]:
        assert backend.standardize_dtype(given) == expected
        assert keras.utils.standardize_dtype(given) == expected
    for bad in ("float", "foo"):  # Keras: "Invalid dtype: float"
        with pytest.raises(ValueError, match=f"Invalid dtype: {bad}"):
            backend.standardize_dtype(bad)
    assert backend.is_float_dtype("bfloat16") and backend.is_int_dtype("uint8")
    assert not backend.is_int_dtype("bool") and not backend.is_float_dtype(int)


# -- utils ------------------------------------------------------------------------------------
def test_config_object():
    config = keras.utils.Config(a=1, b=2)
    config.x = 3
    config["seed"] = 123
    assert list(config) == ["a", "b", "seed", "x"] and len(config) == 4
    assert config.as_dict() == {"a": 1, "b": 2, "x": 3, "seed": 123}
    assert config.to_json() == '{"a": 1, "b": 2, "x": 3, "seed": 123}'
    assert repr(config) == "<Config {'a': 1, 'b': 2, 'x': 3, 'seed': 123}>"
    assert config.seed == 123 and config.get("missing", 5) == 5 and "x" in config
    config.freeze()
    assert config.frozen
    for change in (lambda: setattr(config, "y", 1), lambda: config.update(a=2),
                   lambda: config.pop("a"), lambda: config.__setitem__("a", 0)):
        with pytest.raises(ValueError, match="frozen"):
            change()
    config.unfreeze()
    config.y = 1
    with pytest.raises(AttributeError, match="Unknown attribute: 'seeds'. Did you mean 'seed'"):
        config.seeds  # noqa: B018


def test_source_inputs_keras_tensor_and_custom_objects():
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    added = layers.Add()([a, b])
    out = layers.Concatenate()([layers.Dense(2)(added), a])
    assert [t.name for t in keras.utils.get_source_inputs(out)] == ["a", "b"]
    assert keras.utils.get_source_inputs(a)[0] is a
    assert keras.utils.is_keras_tensor(out) and backend.is_keras_tensor(a)
    assert not keras.utils.is_keras_tensor(np.ones(2))
    assert keras.utils.get_source_inputs(5) == 5  # no history: returned as it is

    class Doubler(layers.Layer):
        def call(self, x):
            return x * 2

    objects = keras.utils.get_custom_objects()
    objects["Doubler"] = Doubler
    try:
        restored = keras.layers.deserialize({"class_name": "Doubler", "config": {}})
        assert type(restored) is Doubler
    finally:
        del objects["Doubler"]


def test_clear_session_resets_names_uids_and_switches():
    assert backend.get_uid("q") + 1 == backend.get_uid("q")
    keras.config.disable_interactive_logging()
    keras.config.disable_traceback_filtering()
    keras.config.disable_flash_attention()
    keras.config.set_dtype_policy("mixed_float16")
    layers.Dense(1)
    keras.utils.clear_session(free_memory=False)
    # Keras: True True None float32 1, and a new layer is "dense" again
    assert keras.config.is_interactive_logging_enabled()
    assert keras.config.is_traceback_filtering_enabled()
    assert keras.config.is_flash_attention_enabled() is None
    assert keras.config.dtype_policy().name == "float32"
    assert backend.get_uid("q") == 1 and layers.Dense(1).name == "dense"
    keras.config.disable_flash_attention()
    assert keras.config.is_flash_attention_enabled() is False
    keras.config.enable_flash_attention()
    assert keras.config.is_flash_attention_enabled() is None  # Keras: automatic
    assert keras.config.is_nnx_enabled() is False
    backend.clear_session()


def _small_model():
    model = keras.Sequential([keras.Input((2,)), layers.Dense(1)])
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    return model, rng.random((40, 2), dtype=np.float32), rng.random((40, 1), dtype=np.float32)


def test_max_epochs_and_steps_cap_fit_evaluate_predict():
    model, x, y = _small_model()
    keras.config.set_max_epochs(2)
    keras.config.set_max_steps_per_epoch(3)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = model.fit(x, y, batch_size=4, epochs=5, verbose=0)
        # Keras: 2 epochs of 3 steps, the same warnings, 12 predictions of batches of 4
        assert len(history.history["loss"]) == 2 and int(model.optimizer.iterations.numpy()) == 6
        assert {"Limiting epochs to 2", "Limiting steps_per_epoch to 3"} <= {
            str(w.message) for w in caught}
        assert model.predict(x, batch_size=4, verbose=0).shape == (12, 1)
        model.fit(x, y, batch_size=4, epochs=1, steps_per_epoch=2, verbose=0)  # under the cap
        assert int(model.optimizer.iterations.numpy()) == 8
        assert keras.config.max_epochs() == 2 and keras.config.max_steps_per_epoch() == 3
    finally:
        keras.config.set_max_epochs(None)
        keras.config.set_max_steps_per_epoch(None)
    assert len(model.fit(x, y, batch_size=8, epochs=3, verbose=0).history["loss"]) == 3
    with pytest.raises(ValueError, match="max_epochs='2'"):
        keras.config.set_max_epochs("2")


def test_interactive_logging_off_sends_fit_output_to_the_keras_logger(capsys, caplog):
    model, x, y = _small_model()
    keras.config.disable_interactive_logging()
    try:
        with caplog.at_level(logging.INFO, logger="keras"):
            model.fit(x, y, batch_size=20, epochs=2, verbose=1)
    finally:
        keras.config.enable_interactive_logging()
    assert capsys.readouterr().out == ""
    messages = [r.getMessage() for r in caplog.records if r.name == "keras"]
    assert "Epoch 1/2" in messages and "Epoch 2/2" in messages
    assert any("loss:" in m for m in messages)
    model.fit(x, y, batch_size=20, epochs=2, verbose=1)
    assert "Epoch 1/2" in capsys.readouterr().out


# -- regularizers, constraints, initializers --------------------------------------------------
def _orthogonal_penalty(w, factor, mode):
    """Numpy reference: factor/2 * mean |cos| over pairs of distinct rows (or columns)."""
    vectors = w if mode == "rows" else w.T
    norms = np.sqrt(np.sum(vectors.astype(np.float64) ** 2, axis=1, keepdims=True))
    unit = vectors / np.maximum(norms, 1e-7)  # a zero row stays zero
    product = np.abs(unit @ unit.T)
    n = len(vectors)
    return factor * 0.5 * (product.sum() - np.trace(product)) / (n * (n - 1) / 2)


@pytest.mark.parametrize("mode", ["rows", "columns"])
def test_orthogonal_regularizer(mode):
    w = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    w[1] = 0
    reg = keras.regularizers.OrthogonalRegularizer(0.3, mode=mode)
    np.testing.assert_allclose(float(reg(w)), _orthogonal_penalty(w, 0.3, mode), rtol=1e-5)
    # Keras: 0.04737300 (rows), 0.15808387 (columns); factor kept as a float32
    assert float(reg(w)) == pytest.approx({"rows": 0.047373, "columns": 0.158084}[mode],
                                          rel=1e-4)
    assert reg.get_config() == {"factor": 0.30000001192092896, "mode": mode}
    again = keras.regularizers.deserialize(keras.regularizers.serialize(reg))
    assert isinstance(again, keras.regularizers.OrthogonalRegularizer)
    assert again.get_config() == reg.get_config()
    assert keras.regularizers.get("orthogonal_regularizer").get_config() == {
        "factor": 0.009999999776482582, "mode": "rows"}
    assert keras.regularizers.orthogonal_regularizer is keras.regularizers.OrthogonalRegularizer


def test_orthogonal_regularizer_trains_and_checks_arguments():
    model = keras.Sequential([keras.Input((3,)), layers.Dense(
        4, kernel_regularizer=keras.regularizers.OrthogonalRegularizer(1.0, "columns"))])
    model.compile("sgd", "mse")
    kernel = model.layers[0].kernel.numpy()
    penalty = _orthogonal_penalty(kernel, 1.0, "columns")
    loss = model.evaluate(np.zeros((2, 3), "float32"), np.zeros((2, 4), "float32"), verbose=0)
    assert loss == pytest.approx(penalty, rel=1e-5)  # the outputs are 0 for zero inputs
    with pytest.raises(ValueError, match="mode=diagonal"):
        keras.regularizers.OrthogonalRegularizer(mode="diagonal")
    with pytest.raises(ValueError, match="factor=-1"):
        keras.regularizers.OrthogonalRegularizer(-1)
    with pytest.raises(ValueError, match="rank 2"):
        keras.regularizers.OrthogonalRegularizer()(np.ones((2, 2, 2), "float32"))


def test_constraint_deserialize_and_initializer_aliases():
    config = keras.constraints.serialize(keras.constraints.MaxNorm(2.0, axis=1))
    restored = keras.constraints.deserialize(config)
    assert isinstance(restored, keras.constraints.MaxNorm) and restored.get_config() == \
        keras.constraints.MaxNorm(2.0, axis=1).get_config()
    init = keras.initializers
    assert init.IdentityInitializer is init.Identity
    assert init.OrthogonalInitializer is init.Orthogonal and init.stft is init.STFT
    assert isinstance(init.get({"class_name": "OrthogonalInitializer",
                                "config": {"gain": 2.0, "seed": 1}}), init.Orthogonal)
    # (window=None: a named window would import scipy.signal, seconds on a cold start)
    assert isinstance(init.get({"class_name": "stft", "config": {"window": None}}), init.STFT)


# -- keras.random.binomial ------------------------------------------------------------------
def test_binomial_draws_follow_the_distribution():
    draws = keras.random.binomial((20000,), counts=10, probabilities=0.3, seed=1)
    assert draws.dtype == np.float32 and set(np.unique(draws)) <= set(range(11))
    # chi-square over the outcomes 0..8 (expected counts > 5) against Binomial(10, 0.3)
    pmf = np.array([math.comb(10, k) * 0.3 ** k * 0.7 ** (10 - k) for k in range(9)])
    observed = np.bincount(draws.astype(int), minlength=11)[:9]
    expected = pmf / pmf.sum() * observed.sum()
    assert np.sum((observed - expected) ** 2 / expected) < 26.12  # p = 1e-3 at 8 dof
    np.testing.assert_array_equal(draws, keras.random.binomial((20000,), 10, 0.3, seed=1))
    mixed = keras.random.binomial((2, 3), np.array([0, 5, 50]), np.array([[0.0], [1.0]]),
                                  dtype="int32", seed=2)
    np.testing.assert_array_equal(mixed, [[0, 0, 0], [0, 5, 50]])
    assert mixed.dtype == np.int32
    with pytest.raises(ValueError, match="counts"):
        keras.random.binomial((2,), counts=-1, probabilities=0.5)


class _BinomialNoise(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(7)

    def call(self, x):
        return x + keras.random.binomial(ops.shape(x), 4, 0.5, seed=self.seed_generator)


def test_binomial_in_a_compiled_call_follows_the_batch_and_advances():
    inputs = keras.Input((50,))
    model = keras.Model(inputs, _BinomialNoise()(inputs))
    first = model.predict(np.zeros((6, 50), "float32"), verbose=0)
    second = model.predict(np.zeros((3, 50), "float32"), verbose=0)
    assert first.shape == (6, 50) and second.shape == (3, 50)
    assert set(np.unique(first)) <= {0, 1, 2, 3, 4} and not np.array_equal(first[:3], second)
    assert abs(first.mean() - 2.0) < 0.3


# -- keras.utils.legacy ---------------------------------------------------------------------
def test_legacy_serialization_round_trips():
    legacy = keras.utils.legacy
    dense = layers.Dense(3, activation="relu", kernel_regularizer=keras.regularizers.L2(0.1),
                         name="d")
    config = legacy.serialize_keras_object(dense)
    # Keras: tf.keras 2's form, no module/registered_name at the top
    assert set(config) == {"class_name", "config"} and config["class_name"] == "Dense"
    assert config["config"]["units"] == 3 and config["config"]["activation"] == "relu"
    assert legacy.serialize_keras_object(keras.activations.relu) == "relu"
    assert legacy.serialize_keras_object(None) is None
    restored = legacy.deserialize_keras_object(config)
    assert type(restored) is layers.Dense and restored.get_config() == dense.get_config()
    assert type(legacy.deserialize_keras_object({"class_name": "Dense", "config": {"units": 2}},
                                                module_objects=vars(layers))) is layers.Dense
    assert legacy.deserialize_keras_object("relu", module_objects=vars(keras.activations)) is \
        keras.activations.relu
    model = keras.Sequential([keras.Input((2,)), layers.Dense(1)])
    assert legacy.deserialize_keras_object(legacy.serialize_keras_object(model)) \
        .count_params() == 3
    with pytest.raises(ValueError, match="Unknown layer: 'Nope'"):
        legacy.deserialize_keras_object({"class_name": "Nope", "config": {}},
                                        printable_module_name="layer")
    with pytest.raises(ValueError, match="Could not interpret"):
        legacy.deserialize_keras_object(3)
