"""`keras.ops.while_loop` with a symbolic condition and no `maximum_iterations`: one `Loop` node
(kgraph/ops/loop.py) whose number of steps is known only at run time. Checked against a Python
loop on the numpy reference and onnxruntime; the refusals (gradient, TVM) name the way out."""
from __future__ import annotations

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras, ops
from kgraph.compiler.build import compile_graph
from kgraph.compiler.passes.scans import unroll_scans
from kgraph.compiler.autodiff import gradients
from kgraph.ir.graph import Graph, tracing


def _collatz_graph():
    """Steps of the Collatz sequence from n, and a float state that reads a loop invariant."""
    g = Graph("collatz")
    n = g.placeholder("n", (), "int32")
    w = g.placeholder("w", (3,), "float32")
    with tracing(g):
        def cond(i, x, acc):
            return x > 1

        def body(i, x, acc):
            return i + 1, ops.where(x % 2 == 0, x // 2, 3 * x + 1), acc * 0.5 + w

        i, x, acc = ops.while_loop(cond, body, (ops.zeros((), "int32"), n, ops.zeros((3,))))
        g.set_outputs({"i": i, "x": x, "acc": acc})
    return g


def _python_collatz(n, w):
    i, x, acc = 0, n, np.zeros(3, np.float32)
    while x > 1:
        i, x, acc = i + 1, x // 2 if x % 2 == 0 else 3 * x + 1, acc * np.float32(0.5) + w
    return i, x, acc


def _host(values):
    return [np.asarray(v.numpy()) if hasattr(v, "numpy") else np.asarray(v) for v in values]


@pytest.mark.parametrize("target", ["numpy", "onnxruntime"])
def test_a_loop_of_run_time_length_matches_a_python_loop(target):
    g = _collatz_graph()
    assert [node.op for node in g.nodes].count("Loop") == 1
    assert [v.dtype for v in g.outputs] == ["int32", "int32", "float32"]
    program = compile_graph(g, target)
    w = np.float32([1, 2, 3])
    for n in (27, 6, 1):  # 111 steps, 8, none: one program for every length
        got = _host(program.run({"n": np.int32(n), "w": w}))
        want = _python_collatz(n, w)
        assert int(got[0]) == want[0] and int(got[1]) == want[1]
        np.testing.assert_allclose(got[2], want[2], rtol=1e-6)


def test_a_traced_function_runs_the_loop():
    @tf.function
    def halvings(x):
        return ops.while_loop(lambda v, k: ops.max(v) > 1.0,
                              lambda v, k: (v / 2.0, k + 1), (x, ops.zeros((), "int32")))

    v, k = halvings(np.float32([3.0, 40.0]))
    assert int(np.asarray(k)) == 6
    np.testing.assert_allclose(np.asarray(v), np.float32([3.0, 40.0]) / 64)


def test_a_layer_using_it_predicts_what_eager_python_computes():
    class Halve(keras.layers.Layer):
        def call(self, x):  # halve every row until its largest entry is at most 1
            return ops.while_loop(lambda v: ops.max(v) > 1.0, lambda v: v / 2.0, x)

    model = keras.Sequential([keras.Input((4,)), Halve()])
    x = np.float32([[1, 2, 3, 4], [0.5, 0.2, 9, 1]])
    want = x.copy()
    while want.max() > 1.0:
        want /= 2.0
    np.testing.assert_allclose(model.predict(x, verbose=0), want)


def test_its_gradient_names_maximum_iterations():
    g = Graph("grad")
    x = g.placeholder("x", (3,), "float32")
    with tracing(g):
        y = ops.while_loop(lambda v: ops.sum(v) < 10.0, lambda v: v * 2.0, x)
        with pytest.raises(NotImplementedError, match="maximum_iterations"):
            gradients(g, ops.sum(y), [x])


def test_tvm_targets_refuse_it_with_the_way_out():
    with pytest.raises(ValueError, match="maximum_iterations"):
        unroll_scans(_collatz_graph())


def test_a_body_that_draws_random_numbers_still_asks_for_a_bound():
    from kgraph.ops.api_util import StaticShapeRequiredError

    g = Graph("random")
    x = g.placeholder("x", (3,), "float32")
    with tracing(g):
        with pytest.raises(StaticShapeRequiredError, match="maximum_iterations"):
            ops.while_loop(lambda v: ops.sum(v) < 10.0,
                           lambda v: v + keras.random.uniform((3,)), x)
