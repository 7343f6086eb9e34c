"""keras.callbacks.TensorBoard: event files read back with tensorboard's EventAccumulator,
every scalar checked against the History, plus histograms, images and the layer graph."""
import glob
import json
import os

import numpy as np
import pytest

from kgraph import keras

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 5)).astype("float32")
Y = (X[:, :2].sum(1) > 0).astype("float32")


def _model():
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="out")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.1), "binary_crossentropy", metrics=["accuracy"])
    return model


def _read(run_dir):
    acc = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    acc.Reload()
    return acc


def _series(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _check(acc, tag, expected):
    """The scalars tagged `tag` are `expected` [(step, value)] (float32 values)."""
    got = _series(acc, tag)
    assert [s for s, _ in got] == [s for s, _ in expected], tag
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6), tag


def test_epoch_scalars_match_history_in_keras_layout(tmp_path):
    model = _model()
    history = model.fit(X, Y, batch_size=16, epochs=3, validation_data=(X[:16], Y[:16]),
                        callbacks=[keras.callbacks.TensorBoard(tmp_path)], verbose=0)
    train, val = _read(tmp_path / "train"), _read(tmp_path / "validation")
    assert set(train.Tags()["scalars"]) == {"epoch_loss", "epoch_accuracy",
                                            "epoch_learning_rate"}
    for name in ("loss", "accuracy"):
        _check(train, f"epoch_{name}", list(enumerate(history.history[name])))
        _check(val, f"epoch_{name}", list(enumerate(history.history[f"val_{name}"])))
        _check(val, f"evaluation_{name}_vs_iterations",
               [(4 * (e + 1), v) for e, v in enumerate(history.history[f"val_{name}"])])
    _check(train, "epoch_learning_rate", [(0, .1), (1, .1), (2, .1)])


def test_batch_scalars_at_the_global_batch(tmp_path):
    model, seen = _model(), []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: seen.append(logs["loss"]))
    model.fit(X, Y, batch_size=16, epochs=2, verbose=0, callbacks=[
        record, keras.callbacks.TensorBoard(tmp_path, update_freq=3,
                                            write_steps_per_second=True)])
    train = _read(tmp_path / "train")
    _check(train, "batch_loss", [(step, seen[step - 1]) for step in (3, 6)])
    assert all(v > 0 for _, v in _series(train, "batch_steps_per_second"))
    assert [s for s, _ in _series(train, "epoch_steps_per_second")] == [0, 1]


def test_histograms_images_graph_and_profile(tmp_path):
    model = _model()
    model.fit(X, Y, batch_size=16, epochs=2, verbose=0, callbacks=[
        keras.callbacks.TensorBoard(tmp_path, histogram_freq=1, write_images=True,
                                    profile_batch=(2, 3))])
    train = _read(tmp_path / "train")
    kernel = model.get_layer("hidden").kernel.numpy()
    histograms = train.Histograms("hidden/kernel/histogram")
    assert [h.step for h in histograms] == [0, 1]
    last = histograms[-1].histogram_value
    assert last.num == kernel.size and last.min == pytest.approx(kernel.min())
    assert last.sum == pytest.approx(float(kernel.sum()), rel=1e-5)
    image = train.Images("hidden/kernel/image")[-1]
    assert (image.width, image.height) == (8, 5)
    assert image.encoded_image_string.startswith(b"\x89PNG")
    graph = train.Graph()
    nodes = {n.name: n for n in graph.node}
    assert nodes["hidden"].op == "Dense" and list(nodes["out"].input) == ["hidden"]
    assert [d.size for d in nodes["hidden"].attr["_output_shapes"].list.shape[0].dim] == [-1, 8]
    traces = glob.glob(str(tmp_path / "plugins" / "profile" / "*" / "steps.trace.json"))
    events = json.load(open(traces[0]))["traceEvents"]
    assert [e["name"] for e in events] == ["train_step 2", "train_step 3"]


@pytest.mark.parametrize("kwargs", [{"update_freq": 0}, {"profile_batch": (3, 1)},
                                    {"profile_batch": "x"}, {"histogram_freq": -1}])
def test_bad_arguments_are_named(kwargs):
    with pytest.raises(ValueError, match=list(kwargs)[0]):
        keras.callbacks.TensorBoard("logs", **kwargs)
