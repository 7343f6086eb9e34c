"""The ONNX bytes written without the onnx package (compiler/onnx/wire.py) equal, byte for
byte, what onnx.helper + SerializeToString() make of the same emitted graph: for every op-table
row (forward and backward ops) and for whole train steps of the layer families."""
import subprocess
import sys

import numpy as np
import pytest
from test_ops import IDS, ROWS, make_inputs, with_gradients

from kgraph import keras
from kgraph.compiler.onnx import wire
from kgraph.compiler.onnx.emit import emit
from kgraph.compiler.passes import optimize


def _assert_same_bytes(graph):
    emitted = emit(graph)
    assert emitted.direct_bytes() == emitted.to_proto().SerializeToString()


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_every_op_row_writes_the_bytes_onnx_writes(row):
    arrays = make_inputs(row, "float32")
    graph, out, loss, positions, grads = with_gradients(row, arrays, "float32", "wire")
    graph.set_outputs({"out": out, "loss": loss,
                       **{f"g{i}": g for i, g in zip(positions, grads) if g is not None}})
    _assert_same_bytes(optimize(graph))


def _models():
    L = keras.layers
    yield "mlp", keras.Sequential([keras.Input((8,)), L.Dense(4, activation="relu"),
                                   L.Dropout(0.5), L.Dense(3, activation="softmax")]), (8,)
    yield "cnn", keras.Sequential([keras.Input((10, 10, 1)), L.Conv2D(4, 3, activation="relu"),
                                   L.MaxPooling2D(), L.BatchNormalization(), L.Flatten(),
                                   L.Dense(3, activation="softmax")]), (10, 10, 1)
    yield "lstm", keras.Sequential([keras.Input((5, 4)), L.Bidirectional(L.LSTM(3)),
                                    L.Dense(3, activation="softmax")]), (5, 4)
    inputs = keras.Input((6, 4))
    x = L.MultiHeadAttention(2, 4)(inputs, inputs)
    x = L.LayerNormalization()(x + inputs)
    yield "attention", keras.Model(inputs, L.Dense(3, activation="softmax")(
        L.GlobalAveragePooling1D()(x))), (6, 4)


@pytest.mark.parametrize("name, model, shape", list(_models()), ids=lambda v: v if
                         isinstance(v, str) else "")
def test_train_steps_write_the_bytes_onnx_writes(name, model, shape):
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).random((4, *shape), dtype=np.float32)
    y = np.array([0, 1, 2, 1])
    model.train_on_batch(x, y)  # builds the optimizer's slots
    for kind in ("train", "test", "predict"):
        _assert_same_bytes(optimize(model.trace_step(kind, x, y)))


def test_attribute_values_as_onnx_helper_types_them():
    from onnx import helper

    for value in (3, -1, True, np.int64(-7), 0.5, np.float32(1e-7), "NOTSET", b"raw",
                  (1, -2), [0.5, 2], [1, 0.25], np.array([2, 3]), ["a", b"b"]):
        assert wire.attribute("a", value) == helper.make_attribute("a", value).SerializeToString()
    with pytest.raises(wire.Unsupported):
        wire.attribute("a", [])


def test_training_imports_no_onnx_package():
    """Compiling and running a train step on onnxruntime never imports `onnx` (0.3-1 s)."""
    code = ("import sys, numpy as np\nfrom kgraph import keras\n"
            "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])\n"
            "m.compile(optimizer='adam', loss='mse')\n"
            "m.fit(np.ones((8, 4), 'float32'), np.ones((8, 2), 'float32'), verbose=0)\n"
            "m.predict(np.ones((2, 4), 'float32'), verbose=0)\n"
            "assert 'onnx' not in sys.modules, sorted(k for k in sys.modules if 'onnx' in k)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
