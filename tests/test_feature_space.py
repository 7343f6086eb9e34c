"""`keras.utils.FeatureSpace` against Keras 3.

Keras' FeatureSpace needs TensorFlow (tf.data, and its HashedCrossing/Hashing/Discretization
layers), which the test environment does not install: `data/feature_space_keras.json` holds
what Keras 3.15.1 on TensorFlow 2.21 computed for the same columns (written by
`data/make_feature_space_golden.py`): the encoded vectors, dicts and their dtypes, adapted
vocabularies and bin boundaries, the config and the weights-file layout of a saved
FeatureSpace.
"""
import json
import os
import zipfile

import h5py
import numpy as np
import pytest

import kgraph as tf
from kgraph import keras
from kgraph.keras import layers
from kgraph.keras.utils import FeatureSpace as FS

GOLDEN = json.load(open(os.path.join(os.path.dirname(__file__), "data",
                                     "feature_space_keras.json")))
DTYPES = {"ic": "int32", "ih": "int32", "sc": str, "sh": str}


def _columns(key):
    return {k: np.array(v, dtype=DTYPES.get(k, "float32")) for k, v in GOLDEN[key].items()}


def _concat_space():
    features = {"fl": "float", "fr": FS.float_rescaled(scale=0.5, offset=1.0),
                "fn": "float_normalized", "fd": FS.float_discretized(num_bins=4),
                "ic": "integer_categorical", "sc": FS.string_categorical(max_tokens=3),
                "sh": FS.string_hashed(num_bins=8), "ih": "integer_hashed"}
    space = FS(features, crosses=[("ic", "sc"), FS.cross(("sh", "ih"), crossing_dim=16)],
               crossing_dim=8, hashing_dim=16)
    space.adapt(tf.data.Dataset.from_tensor_slices(_columns("train")).batch(16))
    return space


def _dict_space(columns):
    space = FS({"ic": FS.integer_categorical(output_mode="int", num_oov_indices=0),
                "sc": FS.string_categorical(output_mode="int"),
                "fd": FS.float_discretized(num_bins=3, output_mode="int"),
                "fn": "float_normalized",
                "sh": FS.string_hashed(num_bins=5, output_mode="int")},
               crosses=[FS.cross(("ic", "sc"), crossing_dim=32, output_mode="int"),
                        FS.cross(("sc", "sh"), crossing_dim=4)], output_mode="dict")
    space.adapt(tf.data.Dataset.from_tensor_slices(columns))  # unbatched: batched by 32
    return space


def test_concat_mode_equals_keras():
    space = _concat_space()
    assert space.preprocessors["fd"].bin_boundaries == GOLDEN["boundaries"]
    assert space.preprocessors["ic"].get_vocabulary() == GOLDEN["vocab_ic"]
    assert space.preprocessors["sc"].get_vocabulary() == GOLDEN["vocab_sc"]
    probe = _columns("probe")  # an unseen string and an unseen integer among them
    got = space(probe)
    assert got.dtype == np.float32 and got.shape == (8, 63)
    np.testing.assert_allclose(got, GOLDEN["concat"], atol=1e-6)
    one = space({k: v[0] for k, v in probe.items()})  # scalars: one vector, unbatched
    np.testing.assert_allclose(one, GOLDEN["single"], atol=1e-6)
    assert space.get_encoded_features().shape == tuple(GOLDEN["encoded_shape"])
    assert sorted(space.crossers) == ["ic_X_sc", "sh_X_ih"]
    assert isinstance(space.crossers["ic_X_sc"], layers.HashedCrossing)


def test_dict_mode_equals_keras():
    columns = {k: v for k, v in _columns("train").items() if k in ("ic", "sc", "fd", "fn", "sh")}
    space = _dict_space(columns)
    assert space.preprocessors["fd"].bin_boundaries == GOLDEN["dict_boundaries"]
    probe = {k: v[2:6] for k, v in _columns("probe").items() if k in columns}
    got = space(probe)
    assert sorted(got) == sorted(GOLDEN["dict"])
    for key, want in GOLDEN["dict"].items():
        np.testing.assert_allclose(got[key], want, rtol=1e-6, err_msg=key)
        assert str(got[key].dtype) == GOLDEN["dict_dtypes"][key], key
    one = space({k: v[0] for k, v in probe.items()})
    for key, want in GOLDEN["dict_single"].items():
        np.testing.assert_allclose(one[key], want, rtol=1e-6, err_msg=key)
    encoded = space.get_encoded_features()
    for key, (shape, dtype) in GOLDEN["dict_encoded"].items():
        assert (encoded[key].shape, encoded[key].dtype) == (tuple(shape), dtype), key


def test_config_and_saved_file_as_keras(tmp_path):
    space = _concat_space()
    config = json.loads(json.dumps(space.get_config()))
    want = GOLDEN["config"]
    assert {k: v for k, v in config.items() if k != "features"} == \
        {k: v for k, v in want.items() if k != "features"}
    assert list(config["features"]) == list(want["features"])
    for key, entry in config["features"].items():
        theirs = want["features"][key]
        assert {k: entry[k] for k in ("module", "class_name", "registered_name")} == \
            {k: theirs[k] for k in ("module", "class_name", "registered_name")}
        ours, keras_pre = entry["config"]["preprocessor"], theirs["config"]["preprocessor"]
        assert (entry["config"]["dtype"], entry["config"]["output_mode"]) == \
            (theirs["config"]["dtype"], theirs["config"]["output_mode"])
        assert (ours["module"], ours["class_name"]) == (keras_pre["module"],
                                                         keras_pre["class_name"])
    assert config["features"]["fl"]["config"]["preprocessor"]["config"]["name"] == \
        "fl_preprocessor"
    path = str(tmp_path / "space.keras")
    space.save(path)
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist()[:3] == ["metadata.json", "config.json", "model.weights.h5"]
        saved = json.loads(archive.read("config.json"))
        with h5py.File(archive.open("model.weights.h5")) as weights:
            paths = []
            weights.visit(paths.append)
    assert (saved["module"], saved["class_name"]) == ("keras.utils", "FeatureSpace")
    assert paths == GOLDEN["h5_paths"]
    reloaded = keras.models.load_model(path)
    assert isinstance(reloaded, FS)
    probe = _columns("probe")
    np.testing.assert_allclose(reloaded(probe), GOLDEN["concat"], atol=1e-6)


def test_models_on_inputs_and_on_encoded_features(tmp_path):
    space = _concat_space()
    inputs, encoded = space.get_inputs(), space.get_encoded_features()
    assert [(k, t.shape, t.dtype) for k, t in inputs.items()][:5] == [
        ("fl", (None, 1), "float32"), ("fr", (None, 1), "float32"),
        ("fn", (None, 1), "float32"), ("fd", (None, 1), "float32"),
        ("ic", (None, 1), "int32")]
    assert inputs["sc"].dtype == "string"
    outputs = layers.Dense(1, activation="sigmoid")(layers.Dense(4)(encoded))
    training_model = keras.Model(inputs=encoded, outputs=outputs)
    inference_model = keras.Model(inputs=inputs, outputs=outputs)
    probe = _columns("probe")
    want = training_model.predict(np.array(GOLDEN["concat"], "float32"), verbose=0)
    np.testing.assert_allclose(inference_model.predict(probe, verbose=0), want, rtol=1e-5)
    training_model.compile(optimizer="adam", loss="binary_crossentropy")
    labels = np.arange(40) % 2
    mapped = tf.data.Dataset.from_tensor_slices((_columns("train"), labels)).batch(16).map(
        lambda x, y: (space(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    training_model.fit(mapped, epochs=1, verbose=0)
    path = str(tmp_path / "inference.keras")
    inference_model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded.predict(probe, verbose=0),
                               inference_model.predict(probe, verbose=0), rtol=1e-5)


def test_dataset_map_and_unbatched_elements():
    space = _concat_space()
    train = _columns("train")
    batches = [x for x in tf.data.Dataset.from_tensor_slices(train).batch(16).map(space)]
    np.testing.assert_allclose(np.concatenate(batches), space(train), atol=1e-6)
    first = next(iter(tf.data.Dataset.from_tensor_slices(train).map(space)))
    assert first.shape == (63,)
    np.testing.assert_allclose(first, space(train)[0], atol=1e-6)


def test_adapt_on_a_dict_and_features_without_adapt():
    space = FS({"x": FS.float_rescaled(scale=2.0), "h": FS.string_hashed(num_bins=3),
                "i": FS.integer_hashed(num_bins=4, output_mode="int")}, output_mode="dict")
    out = space({"x": np.array([1.0, 2.0]), "h": np.array(["A", "B"]), "i": np.array([1, 2])})
    np.testing.assert_allclose(out["x"], [[2.0], [4.0]])
    np.testing.assert_array_equal(out["h"], np.eye(3)[[1, 0]])  # Keras' Hashing docstring
    np.testing.assert_array_equal(out["i"], layers.Hashing(num_bins=4)(np.array([[1], [2]])))
    adapted = FS({"n": "float_normalized"})
    adapted.adapt({"n": [1.0, 3.0, 5.0]})
    np.testing.assert_allclose(adapted({"n": np.array([3.0, 5.0])}), [[0.0], [1.2247449]],
                               rtol=1e-6)


def test_custom_preprocessor_feature():
    vectorizer = layers.TextVectorization(output_mode="tf_idf")
    space = FS({"text": FS.feature(preprocessor=vectorizer, dtype="string",
                                   output_mode="float")})
    data = {"text": np.array(["1st string", "2nd string", "3rd string"])}
    space.adapt(tf.data.Dataset.from_tensor_slices(data))
    np.testing.assert_allclose(space(data), vectorizer(data["text"][:, None]), rtol=1e-6)


def test_errors_as_keras():
    with pytest.raises(ValueError, match="cannot be None or empty"):
        FS({})
    with pytest.raises(ValueError, match="Invalid feature type: floaty"):
        FS({"x": "floaty"})
    with pytest.raises(ValueError, match="Received: output_mode=stack"):
        FS({"x": "float"}, output_mode="stack")
    with pytest.raises(ValueError, match="Received unknown features: \\('x', 'y'\\)"):
        FS({"x": "integer_categorical"}, crosses=[("x", "y")])
    with pytest.raises(ValueError, match="Received: output_mode=multi_hot"):
        FS.integer_categorical(output_mode="multi_hot")
    space = FS({"n": "float_normalized"})
    with pytest.raises(ValueError, match="You need to call `.adapt\\(dataset\\)`"):
        space({"n": np.array([1.0])})
    with pytest.raises(ValueError, match="can only be called on a tf.data.Dataset or a dict"):
        space.adapt([1.0, 2.0])
    space.adapt({"n": np.array([1.0, 2.0])})
    with pytest.raises(ValueError, match="can only be called with a dict"):
        space(np.array([1.0]))
    with pytest.raises(KeyError, match="no column for the features \\['n'\\]"):
        space({"m": np.array([1.0])})
    one_hot_float = FS({"n": FS.feature("float32", layers.Normalization(), "one_hot")})
    with pytest.raises(ValueError, match="should return an integer dtype"):
        one_hot_float.adapt({"n": np.array([1.0, 2.0])})
    raw_ints = FS({"i": FS.integer_categorical(output_mode="int")})
    with pytest.raises(ValueError, match="Cannot concatenate features because feature 'i'"):
        raw_ints.adapt({"i": np.array([1, 2])})


def test_loads_a_feature_space_saved_by_keras():
    """`data/feature_space_keras.keras`: the concat FeatureSpace saved by Keras 3.15.1, its
    lookup vocabularies as assets and Keras 3.15's lookup config keys (`oov_method`, `salt`,
    `vocabulary_size`)."""
    path = os.path.join(os.path.dirname(__file__), "data", "feature_space_keras.keras")
    space = keras.models.load_model(path)
    assert space.preprocessors["ic"].get_vocabulary() == GOLDEN["vocab_ic"]
    assert space.preprocessors["sc"].get_vocabulary() == GOLDEN["vocab_sc"]
    np.testing.assert_allclose(space(_columns("probe")), GOLDEN["concat"], atol=1e-6)


def test_lookup_oov_methods_as_keras():
    # Keras 3.15.1 + TensorFlow: [3, 4, 1, 0, 0, 0] (farmhash), [3, 4, 1, 1, 0, 1] (floormod)
    values = np.array([5, 6, 7, 100, -3, 12345678901])
    hashed = layers.IntegerLookup(vocabulary=[5, 6], num_oov_indices=3, oov_method="farmhash")
    np.testing.assert_array_equal(hashed(values), [3, 4, 1, 0, 0, 0])
    floormod = layers.IntegerLookup(vocabulary=[5, 6], num_oov_indices=3)
    np.testing.assert_array_equal(floormod(values), [3, 4, 1, 1, 0, 1])
    with pytest.raises(ValueError, match="Received: oov_method=modulo"):
        layers.StringLookup(oov_method="modulo")
    # a salt keys the hash (SipHash; tests/test_preprocessing_layers.py checks it on Keras')
    assert layers.StringLookup(oov_method="farmhash", salt=3).get_config()["salt"] == [3, 3]


def test_dict_outputs_feed_a_model_and_reload(tmp_path):
    data = {"n": np.array([10.0, 20.0, 30.0, 40.0], "float32"),
            "s": np.array(["a", "b", "b", "c"]), "i": np.array([1, 2, 2, 3], "int32")}
    space = FS({"n": "float_normalized", "s": "string_categorical",
                "i": FS.integer_categorical(output_mode="int")},
               crosses=[("s", "i")], crossing_dim=4, output_mode="dict")
    space.adapt(data)
    encoded = space.get_encoded_features()  # one host node, four outputs
    assert {k: (v.shape, v.dtype) for k, v in encoded.items()} == {
        "i": ((None, 1), "int64"), "n": ((None, 1), "float32"),
        "s": ((None, 4), "float32"), "s_X_i": ((None, 4), "float32")}
    embedding = layers.Embedding(10, 2)
    embedded = layers.Flatten()(embedding(encoded["i"]))
    joined = layers.concatenate([encoded["n"], encoded["s"], encoded["s_X_i"], embedded])
    model = keras.Model(space.get_inputs(), layers.Dense(1)(joined))
    values = space(data)
    table = embedding.get_weights()[0]
    kernel, bias = model.layers[-1].get_weights()
    features = np.concatenate([values["n"], values["s"], values["s_X_i"],
                               table[values["i"][:, 0]]], axis=-1)
    np.testing.assert_allclose(model.predict(data, verbose=0), features @ kernel + bias,
                               rtol=1e-5, atol=1e-6)
    path = str(tmp_path / "dict_model.keras")
    model.save(path)
    np.testing.assert_allclose(keras.models.load_model(path).predict(data, verbose=0),
                               features @ kernel + bias, rtol=1e-5, atol=1e-6)


def test_against_live_keras_where_tensorflow_is_installed():
    tensorflow = pytest.importorskip("tensorflow")
    real = pytest.importorskip("keras")
    if real.backend.backend() != "tensorflow":
        pytest.skip("Keras' FeatureSpace runs on its TensorFlow backend")
    train, probe = _columns("train"), _columns("probe")
    theirs = real.utils.FeatureSpace(
        {"fn": "float_normalized", "fd": real.utils.FeatureSpace.float_discretized(num_bins=5),
         "ic": "integer_categorical", "sc": "string_categorical", "sh": "string_hashed"},
        crosses=[("ic", "sc"), ("sc", "sh")], crossing_dim=16, hashing_dim=8)
    ours = FS({"fn": "float_normalized", "fd": FS.float_discretized(num_bins=5),
               "ic": "integer_categorical", "sc": "string_categorical", "sh": "string_hashed"},
              crosses=[("ic", "sc"), ("sc", "sh")], crossing_dim=16, hashing_dim=8)
    columns = {k: train[k] for k in ("fn", "fd", "ic", "sc", "sh")}
    theirs.adapt(tensorflow.data.Dataset.from_tensor_slices(columns).batch(7))
    ours.adapt(tf.data.Dataset.from_tensor_slices(columns).batch(7))
    probe = {k: probe[k] for k in columns}
    np.testing.assert_allclose(ours(probe), np.asarray(theirs(probe)), atol=1e-6)


def test_loads_a_model_keras_saved_on_feature_space_inputs():
    """`data/feature_space_model_keras.keras`: Keras' model on `get_inputs()` records each
    preprocessing layer; its crosses read IntegerLookup and Discretization outputs, which
    therefore run on the host with the rest of the preprocessing."""
    path = os.path.join(os.path.dirname(__file__), "data", "feature_space_model_keras.keras")
    model = keras.models.load_model(path)
    data = {k: np.array(v, dtype={"s": str, "i": "int32"}.get(k, "float32"))
            for k, v in GOLDEN["model_data"].items()}
    np.testing.assert_allclose(model.predict(data, verbose=0).ravel(),
                               GOLDEN["model_predictions"], rtol=1e-6)


def test_crossing_lookup_and_discretization_outputs_in_a_model():
    numbers = keras.Input((1,), dtype="int64", name="number")
    amounts = keras.Input((1,), name="amount")
    ids = layers.IntegerLookup(vocabulary=[4, 8, 15])(numbers)
    bins = layers.Discretization(bin_boundaries=[1.0, 2.0])(amounts)
    crossed = layers.HashedCrossing(num_bins=6, output_mode="one_hot")([ids, bins])
    model = keras.Model([numbers, amounts], layers.concatenate([crossed, amounts]))
    x = [np.array([[4], [15], [16]]), np.array([[0.5], [1.5], [9.0]], "float32")]
    want = layers.HashedCrossing(num_bins=6, output_mode="one_hot")(
        [np.array([[1], [3], [0]]), np.array([[0], [1], [2]])])
    np.testing.assert_array_equal(model.predict(x, verbose=0), np.concatenate(
        [want, x[1]], axis=-1))
    with pytest.raises(TypeError, match="runs on the host"):  # a Dense is no preprocessing
        layers.HashedCrossing(num_bins=3)([ids, layers.Dense(1)(amounts)])
