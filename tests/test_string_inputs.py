"""String `keras.Input`s: host layers on them form the model's host prefix, run in numpy on
each batch, and the compiled part starts at their outputs (kgraph/keras/models/host_prefix.py).
"""
import numpy as np
import pytest

from kgraph import keras
from kgraph.keras.layers.preprocessing.host_layer import (
    HostLayerError,
    StringInputError,
)

VOCAB = ["red", "green", "blue"]


def _models():
    """The string model and the int model that shares its layers after the lookup."""
    lookup = keras.layers.StringLookup(vocabulary=VOCAB, output_mode="int")
    embedding = keras.layers.Embedding(len(VOCAB) + 1, 4)
    flatten, dense = keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")
    inputs = keras.Input(shape=(1,), dtype="string", name="colour")
    model = keras.Model(inputs, dense(flatten(embedding(lookup(inputs)))))
    ints = keras.Input(shape=(1,), dtype="int64")
    int_model = keras.Model(ints, dense(flatten(embedding(ints))))
    return model, int_model, lookup


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    words = np.array(VOCAB + ["purple"], dtype=object)[rng.integers(0, 4, n)]
    return words, (words == "red").astype("float32")[:, None]


def test_string_model_fits_evaluates_and_predicts_like_lookup_then_int_model():
    model, int_model, lookup = _models()
    words, labels = _data()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(words[:, None], labels, batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    loss, accuracy = model.evaluate(words, labels, verbose=0)  # (N,) into Input((1,))
    assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0
    expected = int_model.predict(lookup(words[:, None]).numpy(), verbose=0)
    np.testing.assert_allclose(model.predict(words[:, None], verbose=0), expected, atol=1e-6)
    np.testing.assert_allclose(model.predict(list(words), verbose=0), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(model(words[:, None].astype(str))), expected,
                               atol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(list(words[:5])), expected[:5], atol=1e-6)
    assert np.isfinite(model.train_on_batch(["red", "blue"], np.array([[1.0], [0.0]]))[0])
    assert np.isfinite(model.test_on_batch(list(words), labels)[0])


def test_string_model_runs_steps_per_execution_and_datasets():
    from kgraph import data

    model, _, _ = _models()
    words, labels = _data()
    model.compile(optimizer="sgd", loss="binary_crossentropy", steps_per_execution=2)
    dataset = data.Dataset.from_tensor_slices((words, labels)).batch(6)
    model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(model.evaluate(dataset, verbose=0))
    assert model.predict(dataset, verbose=0).shape == (24, 1)


def test_dict_inputs_with_a_string_feature_next_to_a_float_one():
    city = keras.Input(shape=(1,), dtype="string", name="city")
    age = keras.Input(shape=(1,), dtype="float32", name="age")
    lookup = keras.layers.StringLookup(vocabulary=["paris", "rome"], output_mode="one_hot")
    features = keras.layers.concatenate([lookup(city), age])
    dense = keras.layers.Dense(1)
    model = keras.Model({"city": city, "age": age}, dense(features))
    x = {"city": np.array([["paris"], ["rome"], ["oslo"], ["rome"]]),
         "age": np.array([[0.1], [0.5], [0.9], [0.3]], "float32")}
    y = np.array([[1.0], [0.0], [0.5], [0.2]], "float32")
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, batch_size=2, verbose=0)
    encoded = np.concatenate([lookup(x["city"]).numpy(), x["age"]], axis=-1)
    kernel, bias = (np.asarray(w) for w in dense.get_weights())
    np.testing.assert_allclose(model.predict(x, verbose=0), encoded @ kernel + bias, atol=1e-6)
    swapped = {"age": x["age"], "city": list(x["city"][:, 0])}  # by name, (N,) strings
    np.testing.assert_allclose(model.predict(swapped, verbose=0), encoded @ kernel + bias,
                               atol=1e-6)


def test_text_vectorization_hashing_and_string_ops_in_a_model():
    text = keras.Input(shape=(), dtype="string")
    vectorizer = keras.layers.TextVectorization(output_sequence_length=3)
    vectorizer.adapt(["the cat sat", "the dog ran"])
    tokens = vectorizer(keras.ops.expand_dims(text, -1))
    assert tokens.shape == (None, 3) and tokens.dtype == "int64"
    hashed = keras.layers.Hashing(num_bins=5, output_mode="one_hot")(text)
    assert hashed.shape == (None, 5) and hashed.dtype == "float32"
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 2)(tokens))
    model = keras.Model(text, keras.layers.concatenate([pooled, hashed]))
    out = model.predict(np.array(["the cat", "a dog ran far"]), verbose=0)
    assert out.shape == (2, 7)
    np.testing.assert_allclose(out[:, 2:], keras.layers.Hashing(
        num_bins=5, output_mode="one_hot")(np.array(["the cat", "a dog ran far"])), atol=0)


def test_sequential_with_a_string_input_splits_as_a_functional_model():
    lookup = keras.layers.StringLookup(vocabulary=VOCAB, output_mode="multi_hot")
    mlp = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model = keras.Sequential([keras.Input((1,), dtype="string"), lookup, mlp])
    words = np.array(["red", "blue", "zz"])
    expected = mlp.predict(lookup(words[:, None]).numpy(), verbose=0)
    np.testing.assert_allclose(model.predict(words[:, None], verbose=0), expected, atol=1e-6)
    np.testing.assert_allclose(model.predict(words, verbose=0), expected, atol=1e-6)
    assert model.inputs[0].dtype == "string" and model._host_prefix is not None


def test_save_and_load_round_trip(tmp_path):
    model, _, _ = _models()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    words, labels = _data()
    model.fit(words, labels, epochs=1, verbose=0)
    config = model.get_config()
    input_layer = config["layers"][0]
    assert input_layer["class_name"] == "InputLayer"
    assert input_layer["config"]["dtype"] == "string"
    assert config["layers"][1]["class_name"] == "StringLookup"
    path = str(tmp_path / "strings.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.inputs[0].dtype == "string"
    np.testing.assert_allclose(loaded.predict(words, verbose=0),
                               model.predict(words, verbose=0), atol=1e-6)
    loaded.fit(words, labels, epochs=1, verbose=0)  # compiled from the file, strings and all


def test_layers_of_the_compiled_graph_refuse_strings():
    text = keras.Input(shape=(1,), dtype="string", name="text")
    with pytest.raises(StringInputError, match=r"Dense layer 'd'.*'text'.*StringLookup"):
        keras.layers.Dense(2, name="d")(text)
    with pytest.raises(StringInputError, match=r"keras.ops.add.*'text'"):
        keras.ops.add(text, text)
    hidden = keras.layers.Dense(2)(keras.Input((3,)))
    with pytest.raises(HostLayerError, match=r"StringLookup layer .* on the output of layer"):
        keras.layers.StringLookup(vocabulary=VOCAB)(hidden)
    model = keras.Model(text, keras.layers.StringLookup(vocabulary=VOCAB, invert=False)(text))
    assert model.predict(["red", "x"], verbose=0).tolist() == [[1], [0]]


def test_numeric_model_refuses_strings_and_export_names_the_string_input(tmp_path):
    from kgraph.compiler.artifact import compile_model
    from kgraph.compiler.export import ExportError

    from kgraph.keras.data_adapter import DataError

    numeric = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    with pytest.raises(DataError, match="must be numeric arrays.*no string Input"):
        numeric.predict(np.array([["a"]]), verbose=0)
    model, _, _ = _models()
    with pytest.raises(ExportError, match=r"string input\(s\) \['colour'\]"):
        model.export(str(tmp_path / "m.onnx"))
    with pytest.raises(ExportError, match="'colour'"):
        compile_model(model, str(tmp_path / "artifact"))


def test_embedding_after_a_lookup_checks_its_indices():
    from kgraph.keras.input_checks import InvalidInputError

    text = keras.Input(shape=(1,), dtype="string")
    ids = keras.layers.StringLookup(vocabulary=VOCAB)(text)  # 0..3
    model = keras.Model(text, keras.layers.Embedding(3, 2)(ids))  # one row short
    with pytest.raises(InvalidInputError, match="Embedding"):
        model.predict(np.array([["blue"]]), verbose=0)
