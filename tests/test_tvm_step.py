"""A whole training step (forward, loss, backward, Adam, dropout, metrics) exported as ONNX
imports into TVM's Relax frontend and computes what the numpy reference computes."""
import numpy as np
import pytest

from kgraph import keras
from kgraph.compiler.build import compile_graph
from kgraph.compiler.onnx import to_onnx
from kgraph.compiler.passes import optimize


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
    tvm = pytest.importorskip("tvm")
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    graph, feeds = _step_graph()
    want = compile_graph(graph, "numpy", optimized=True).run(feeds)
    model = to_onnx(graph)
    module = from_onnx(model, keep_params_in_input=False)
    vm = relax.VirtualMachine(tvm.compile(module, target="llvm"), tvm.cpu())
    names = [i.name for i in model.graph.input]
    result = vm["main"](*[tvm.runtime.tensor(np.asarray(feeds[n])) for n in names])
    got = [r.numpy() for r in result]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.tvm
def test_repeat_vector_with_an_unknown_batch_imports_in_tvm():
    tvm = pytest.importorskip("tvm")
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.RepeatVector(4)(inputs))
    x = np.random.default_rng(0).random((2, 3), dtype=np.float32)
    module = from_onnx(to_onnx(optimize(model.trace_step("predict", x))),
                       keep_params_in_input=False)
    vm = relax.VirtualMachine(tvm.compile(module, target="llvm"), tvm.cpu())
    result = vm["main"](tvm.runtime.tensor(x))
    got = result.numpy() if hasattr(result, "numpy") else result[0].numpy()
    np.testing.assert_array_equal(got, np.repeat(x[:, None, :], 4, axis=1))
