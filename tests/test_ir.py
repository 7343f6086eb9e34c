"""The op IR: Graph and Value basics, the broadcasting shape rule, and dynamic batch (one
onnxruntime graph serving every batch size)."""
from __future__ import annotations

import numpy as np
import pytest

from kgraph import ops
from kgraph.compiler import build
from kgraph.compiler.autodiff import gradients
from kgraph.compiler.build import compile_graph
from kgraph.ir.graph import Graph, current_graph, tracing
from kgraph.ir.types import TensorType, broadcast_shapes, dtype_name


# -- Graph and Value ---------------------------------------------------------------------------
def test_placeholders_are_inputs_with_types():
    g = Graph("basics")
    x = g.placeholder("x", (None, 4), np.float32)
    k = g.placeholder("k", (), "uint32")
    assert g.inputs == [x, k] and g.input_names == ["x", "k"]
    assert x.shape == (None, 4) and x.dtype == "float32" and x.ndim == 2
    assert x.type == TensorType((None, 4), "float32") and repr(x.type) == "float32[?, 4]"
    assert k.ndim == 0 and x.node.op == "Input" and x.graph is g
    with pytest.raises(ValueError, match="already has an input named 'x'"):
        g.placeholder("x", (3,), "float32")


def test_values_have_no_truth_value_and_no_length_when_batch_is_unknown():
    g = Graph("truth")
    x = g.placeholder("x", (None, 4), "float32")
    w = g.placeholder("w", (4, 3), "float32")
    assert len(w) == 4
    with pytest.raises(TypeError, match="unknown first dimension"):
        len(x)
    with pytest.raises(TypeError, match="no truth value"):
        bool(x)


def test_tracing_adds_nodes_in_topological_order_and_nests():
    g, inner = Graph("outer"), Graph("inner")
    x = g.placeholder("x", (None, 4), "float32")
    assert current_graph() is None
    with tracing(g):
        assert current_graph() is g
        with tracing(inner):
            assert current_graph() is inner
        assert current_graph() is g
        y = ops.exp(x) * 2.0 + x
    assert current_graph() is None
    g.set_outputs({"y": y})
    assert [n.op for n in g.nodes] == ["Input", "Exp", "Constant", "Mul", "Add"]
    seen = set()
    for node in g.nodes:  # every input is defined before it is read
        assert all(v.node.id in seen for v in node.inputs)
        seen.add(node.id)
    users = g.users()
    assert [n.op for n in users[x]] == ["Exp", "Add"]
    nxg = g.to_networkx()
    assert nxg.number_of_nodes() == 5 and nxg.has_edge(x.node.id, y.node.id)
    assert "return {'y'" in repr(g)


def test_values_cannot_cross_graphs():
    a, b = Graph("a"), Graph("b")
    x = a.placeholder("x", (2,), "float32")
    with tracing(b):
        with pytest.raises(ValueError, match="cannot cross graphs"):
            ops.exp(x)
    with pytest.raises(ValueError, match="is not a value of graph 'b'"):
        b.set_outputs({"y": x})


def test_ops_on_a_value_outside_tracing_add_to_its_graph():
    g = Graph("implicit")
    x = g.placeholder("x", (3,), "float32")
    y = ops.exp(x)  # no `with tracing`: the value's own graph is used
    assert y.graph is g and g.nodes[-1].op == "Exp"


def test_constants_keep_their_dtype_and_python_scalars_follow_the_tensor():
    g = Graph("consts")
    x = g.placeholder("x", (3,), "float64")
    h = g.placeholder("h", (3,), "float16")
    i = g.placeholder("i", (3,), "int32")
    with tracing(g):
        assert (x * 2.0).dtype == "float64"
        assert (h + 1).dtype == "float16"
        assert (i * 3).dtype == "int32"
        c = g.constant(np.arange(3, dtype=np.int64))
    assert c.dtype == "int64" and c.shape == (3,)


def test_dtype_names_are_normalised_and_checked():
    assert dtype_name(float) == "float32" and dtype_name(int) == "int64"
    assert dtype_name(np.float16) == "float16" and dtype_name(np.dtype("uint8")) == "uint8"
    with pytest.raises(TypeError, match="Unsupported dtype"):
        dtype_name(np.complex64)
    with pytest.raises(TypeError, match="Unknown dtype"):
        TensorType((2,), "float128")


def test_binary_primitives_reject_mixed_dtypes_and_the_api_promotes():
    g = Graph("mixed")
    x = g.placeholder("x", (3,), "float32")
    i = g.placeholder("i", (3,), "int64")
    with tracing(g), pytest.raises(TypeError, match="different dtypes"):
        ops.apply("Add", x, i)
    with tracing(g):
        y = ops.add(x, i)  # integer data meeting float data computes in float (Keras)
        z = ops.matmul(ops.reshape(i, (1, 3)), ops.reshape(x, (3, 1)))
    assert y.dtype == "float32" and y.node.inputs[1].node.op == "Cast"
    assert z.dtype == "float32"


def test_integer_operands_meet_in_the_integer_type_holding_both():
    """int32 with int64 computes in int64 (it was left mixed: the ONNX op refused it), and a
    concatenation of int32 and int64 pieces is int64, never narrowed to the first piece's."""
    from kgraph import keras

    g = Graph("ints")
    a = g.placeholder("a", (3,), "int32")
    b = g.placeholder("b", (3,), "int64")
    u = g.placeholder("u", (3,), "uint8")
    s = g.placeholder("s", (3,), "int8")
    with tracing(g):
        assert ops.add(a, b).dtype == "int64" and ops.add(b, a).dtype == "int64"
        assert ops.multiply(u, s).dtype == "int16"
        assert keras.ops.concatenate([a, b]).dtype == "int64"
    got = keras.ops.concatenate([np.array([2**31 - 1], np.int32), np.array([2**40], np.int64)])
    assert got.dtype == np.int64 and got.tolist() == [2**31 - 1, 2**40]


# -- the broadcasting shape rule ---------------------------------------------------------------
@pytest.mark.parametrize("a, b, out", [
    ((3, 1), (4,), (3, 4)),
    ((2, 3, 4), (), (2, 3, 4)),
    ((1,), (5,), (5,)),
    ((None, 4), (4,), (None, 4)),
    ((None, 1), (1, 5), (None, 5)),
    ((None,), (3,), (3,)),  # the unknown dim must be 3 (or 1) for this to run
    ((1,), (None,), (None,)),
    ((None, 3), (None, 3), (None, 3)),
    ((2, 1, 3), (4, 1), (2, 4, 3)),
])
def test_broadcast_shapes(a, b, out):
    assert broadcast_shapes(a, b) == out
    assert broadcast_shapes(b, a) == out
    if None not in a + b:  # agrees with numpy where every dim is known
        assert np.broadcast_shapes(a, b) == out


def test_broadcast_shapes_error_quotes_both_shapes():
    with pytest.raises(ValueError, match=r"Add: shapes cannot be broadcast together. "
                                         r"Received: shapes \(2, 3\) and \(4, 3\)"):
        broadcast_shapes((2, 3), (4, 3), "Add")


def test_binary_op_types_follow_the_broadcasting_rule():
    g = Graph("bcast")
    x = g.placeholder("x", (None, 1, 4), "float32")
    b = g.placeholder("b", (3, 1), "float32")
    with tracing(g):
        y = x + b
        with pytest.raises(ValueError, match="shapes cannot be broadcast"):
            x + g.placeholder("c", (5,), "float32")
    assert y.shape == (None, 3, 4)


# -- dynamic batch -----------------------------------------------------------------------------
def mlp_graph():
    """A small classifier step: forward, mean loss over a batch of unknown size, gradients."""
    g = Graph("dynamic_batch")
    x = g.placeholder("x", (None, 6), "float32")
    labels = g.placeholder("labels", (None,), "int64")
    w1 = g.placeholder("w1", (6, 8), "float32")
    b1 = g.placeholder("b1", (8,), "float32")
    w2 = g.placeholder("w2", (8, 3), "float32")
    with tracing(g):
        h = ops.gelu(x @ w1 + b1)
        logits = h @ w2
        per_example = -ops.sum(ops.log_softmax(logits) * ops.one_hot(labels, 3), axis=-1)
        loss = ops.mean(per_example)  # divides by the runtime batch size
        flat = ops.reshape(h, (-1,))  # a reshape with the batch folded in
        gw1, gb1, gw2 = gradients(g, loss, [w1, b1, w2])
    g.set_outputs({"probs": ops.softmax(logits), "loss": loss, "flat": flat,
                   "gw1": gw1, "gb1": gb1, "gw2": gw2})
    return g


def test_one_onnxruntime_graph_serves_every_batch_size():
    rng = np.random.default_rng(0)
    params = {"w1": rng.normal(size=(6, 8)).astype(np.float32),
              "b1": rng.normal(size=8).astype(np.float32),
              "w2": rng.normal(size=(8, 3)).astype(np.float32)}
    graph = mlp_graph()
    reference = compile_graph(graph, "numpy")
    compiled = compile_graph(graph)
    sessions = build.cache_size()
    for batch in (1, 7, 128):
        feeds = {"x": rng.normal(size=(batch, 6)).astype(np.float32),
                 "labels": rng.integers(0, 3, size=batch), **params}
        want = reference.run(feeds)
        got = [compiled.to_numpy(o) for o in compiled.run(feeds)]
        assert got[0].shape == (batch, 3) and got[2].shape == (batch * 8,)
        for name, g, w in zip(graph.output_names, got, want):
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6, err_msg=f"{name} @ {batch}")
    assert build.cache_size() == sessions, "a new batch size must not compile a new session"
    assert compile_graph(mlp_graph()) is compiled, "the same structure must hit the cache"


def test_mean_over_the_batch_axis_is_exact_for_each_batch_size():
    g = Graph("mean")
    x = g.placeholder("x", (None, 2), "float32")
    with tracing(g):
        g.set_outputs({"m": ops.mean(x, axis=0)})
    compiled = compile_graph(g)
    for batch in (1, 7, 128):
        data = np.tile(np.float32([[1.0, -2.0]]), (batch, 1))
        np.testing.assert_allclose(compiled.to_numpy(compiled.run({"x": data})[0]), [1.0, -2.0])
