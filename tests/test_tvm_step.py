"""A whole training step (forward, loss, backward, Adam, dropout, metrics) exported as ONNX
runs on kgraph's TVM executor and computes what the numpy reference computes."""
import numpy as np
import pytest

from kgraph import keras
from kgraph.compiler.build import compile_graph
from kgraph.compiler.onnx import to_onnx
from kgraph.compiler.passes import optimize
from tvm_helper import assert_outputs_close, run_tvm, tvm_compiled


def _step_graph():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.25), keras.layers.Dense(5, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x = np.random.default_rng(0).random((8, 12), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 5, 8)
    graph = optimize(model.trace_step("train", x, y))
    feeds = {"x_0": x, "y_0": y, "rng_key": np.uint32(7)}
    feeds.update({v.node.attrs["name"]: var.numpy() for var, v in graph.variables.items()})
    return graph, feeds


def test_train_step_on_onnxruntime_matches_the_numpy_reference():
    graph, feeds = _step_graph()
    want = compile_graph(graph, "numpy", optimized=True).run(feeds)
    compiled = compile_graph(graph, optimized=True)
    got = [compiled.to_numpy(o) for o in compiled.run(feeds)]
    assert len(got) == len(want) > 10
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.tvm
def test_train_step_on_tvm_matches_the_numpy_reference():
    graph, feeds = _step_graph()
    want = compile_graph(graph, "numpy", optimized=True).run(feeds)
    got = run_tvm(graph, feeds, optimized=True)
    assert len(got) == len(want) > 10
    assert_outputs_close(got, want)


@pytest.mark.tvm
def test_repeat_vector_with_an_unknown_batch_imports_in_tvm():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.RepeatVector(4)(inputs))
    compiled = tvm_compiled(to_onnx(optimize(model.trace_step("predict", np.zeros((2, 3))))))
    for batch in (2, 5):
        x = np.random.default_rng(batch).random((batch, 3), dtype=np.float32)
        got = compiled.run_numpy({"x_0": x})[0]
        np.testing.assert_array_equal(got, np.repeat(x[:, None, :], 4, axis=1))
