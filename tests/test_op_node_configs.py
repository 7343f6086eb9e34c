"""Functional models built with keras.ops calls and Python operators on KerasTensors (`x * 2`,
`1 - x`, `x[:, :3]`, `ops.concatenate([a, b], axis=-1)`) save as Keras 3 saves them — op
nodes `keras.src.ops.<family>.<Class>` with Keras' split of constructor and call arguments —
and load both ways with real Keras (3.15, on JAX) to the same predictions."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kgraph import keras, ops
from kgraph.keras.saving.errors import InvalidConfigError

X = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")


def _build(k, kops):
    """The same model in kgraph (`k`, `kops`) or real Keras."""
    inputs = k.Input((4,), name="x")
    h = k.layers.Dense(3, name="dense")(inputs)
    y = h * 2.0 + inputs[:, :3]  # Multiply, GetItem, Add
    y = 1.0 - y / 3.0  # TrueDivide, Subtract with the constant first
    z = kops.concatenate([y, kops.exp(-abs(h))], axis=-1)  # Concatenate(axis), Exp, Negative
    z = kops.sum(kops.reshape(z, (-1, 3, 2)), axis=-1, keepdims=False)  # Reshape, Sum
    z = kops.where(z > 0.5, z, kops.relu(z) ** 2)  # Greater, Where, Relu, Power
    return k.Model(inputs, k.layers.Dense(2, name="head")(z))


def test_the_config_names_keras_ops_and_splits_their_arguments_as_keras():
    config = json.loads(_build(keras, ops).to_json())["config"]
    entries = {e["name"]: e for e in config["layers"]}
    concat = next(e for e in config["layers"] if e["class_name"] == "Concatenate")
    assert concat["module"] == "keras.src.ops.numpy" and concat["config"]["axis"] == -1
    assert [a["class_name"] for a in concat["inbound_nodes"][0]["args"][0]] == \
        ["__keras_tensor__"] * 2
    item = next(e for e in config["layers"] if e["class_name"] == "GetItem")
    assert item["inbound_nodes"][0]["args"][1] == [
        {"class_name": "__slice__", "config": {"start": None, "stop": None, "step": None}},
        {"class_name": "__slice__", "config": {"start": None, "stop": 3, "step": None}}]
    subtract = next(e for e in config["layers"] if e["class_name"] == "Subtract")
    assert subtract["inbound_nodes"][0]["args"][0] == 1.0  # `1 - y`: the constant first
    total = next(e for e in config["layers"] if e["class_name"] == "Sum")
    assert total["config"] == {"name": total["name"], "axis": -1, "keepdims": False}
    assert "dense" in entries and "head" in entries


def test_a_model_with_op_nodes_round_trips_in_kgraph(tmp_path):
    model = _build(keras, ops)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict(X, verbose=0), model.predict(X, verbose=0),
                               rtol=1e-6)
    assert json.loads(again.to_json())["config"]["layers"] == \
        json.loads(model.to_json())["config"]["layers"]


def test_real_keras_loads_kgraph_files_and_kgraph_loads_real_keras_files(tmp_path):
    real = pytest.importorskip("keras")
    ours = _build(keras, ops)
    ours.save(tmp_path / "ours.keras")
    loaded = real.models.load_model(tmp_path / "ours.keras")
    np.testing.assert_allclose(np.asarray(loaded.predict(X, verbose=0)),
                               ours.predict(X, verbose=0), rtol=1e-5, atol=1e-6)

    theirs = _build(real, real.ops)
    theirs.save(tmp_path / "theirs.keras")
    back = keras.models.load_model(tmp_path / "theirs.keras")
    np.testing.assert_allclose(back.predict(X, verbose=0),
                               np.asarray(theirs.predict(X, verbose=0)), rtol=1e-5, atol=1e-6)


def test_an_unknown_op_class_is_refused_by_name():
    config = json.loads(_build(keras, ops).to_json())
    entry = next(e for e in config["config"]["layers"] if e["class_name"] == "Exp")
    entry["class_name"] = "LaunchMissiles"
    with pytest.raises(InvalidConfigError, match="LaunchMissiles"):
        keras.models.model_from_json(json.dumps(config))


def test_the_mask_ops_keras_writes_for_masked_layers_load(tmp_path):
    """Keras 3 writes the mask it passes on as op nodes of its own (`NotEqual(ids, 0)` after
    an Embedding with mask_zero, `Any(NotEqual(x, 0), axis=-1)` after Masking)."""
    real = pytest.importorskip("keras")
    ids = real.Input((6,), dtype="int32")
    h = real.layers.Embedding(10, 4, mask_zero=True)(ids)
    seq = real.Input((6, 3))
    m = real.layers.Masking(0.0)(seq)
    out = real.layers.Concatenate()([real.layers.LSTM(2)(h), real.layers.GRU(2)(m)])
    theirs = real.Model([ids, seq], out)
    theirs.save(tmp_path / "masked.keras")
    classes = {e["class_name"] for e in json.loads(theirs.to_json())["config"]["layers"]}
    assert {"NotEqual", "Any"} <= classes
    rng = np.random.default_rng(1)
    x_ids = rng.integers(0, 10, size=(3, 6)).astype("int32")
    x_ids[:, 4:] = 0
    x_seq = rng.normal(size=(3, 6, 3)).astype("float32")
    x_seq[:, 3:] = 0.0
    back = keras.models.load_model(tmp_path / "masked.keras")
    np.testing.assert_allclose(back.predict([x_ids, x_seq], verbose=0),
                               np.asarray(theirs.predict([x_ids, x_seq], verbose=0)),
                               rtol=1e-5, atol=1e-6)


def test_numpy_arrays_on_the_left_of_a_keras_tensor_make_one_op_node():
    """`np.ones(3) + x` is one Add of the functional model (numpy defers to the KerasTensor's
    operators), not a numpy object array of one node per element."""
    inputs = keras.Input((3,))
    out = np.arange(3.0, dtype="float32") * inputs - np.ones(3, "float32")
    assert isinstance(out, keras.KerasTensor) and tuple(out.shape) == (None, 3)
    model = keras.Model(inputs, out)
    np.testing.assert_allclose(model.predict(np.ones((2, 3), "float32"), verbose=0),
                               [[-1.0, 0.0, 1.0]] * 2)
