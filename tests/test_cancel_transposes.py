"""cancel_transposes: node counts before/after and the same numbers from the numpy interpreter
(bit for bit, or to rounding where a reduction sums in another order) and from onnxruntime;
nodes the pass must leave alone are left alone."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from kgraph import keras, ops
from kgraph.compiler.build import compile_graph
from kgraph.compiler.passes import cancel_transposes, optimize, run_passes
from kgraph.ir.graph import Graph, tracing
from kgraph.keras import layers
from kgraph.ops.registry import apply

RNG = np.random.default_rng(0)
TO_LAST, TO_FIRST = (0, 2, 3, 1), (0, 3, 1, 2)


def counts(graph):
    return Counter(n.op for n in graph.nodes)


def run(graph, feeds):
    """Outputs from the numpy interpreter; variables read by the graph are fed their values."""
    feeds = {**feeds, **{v.node.attrs["name"]: var.numpy() for var, v in graph.variables.items()}}
    return compile_graph(graph, "numpy", optimized=True).run(feeds)


def rewrite(build, feeds, exact=True):
    """(graph before, graph after) of one pass run, checking that both give the same results:
    bit for bit, or to float rounding where a reduction now sums in another order."""
    before, after = build(), build()
    want = run(before, feeds)
    run_passes(after, [cancel_transposes], check=True)
    got = run(after, feeds)
    for w, g in zip(want, got):
        assert g.dtype == w.dtype and g.shape == w.shape
        if exact:
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
    return before, after


def graph_of(fn, **inputs):
    g = Graph("t")
    phs = [g.placeholder(name, shape, dtype) for name, (shape, dtype) in inputs.items()]
    with tracing(g):
        outs = fn(*phs)
    g.set_outputs({f"y{i}": v for i, v in enumerate(outs if isinstance(outs, tuple) else (outs,))})
    return g


def feeds_for(**inputs):
    return {name: RNG.normal(size=[d or 3 for d in shape]).astype(dtype)
            for name, (shape, dtype) in inputs.items()}


NCHW = {"x": ((None, 4, 5, 6), "float32")}


def transposes_between(graph, first, last):
    """Ops on every path from node `first` to node `last` (forward walk over users)."""
    users = graph.users()
    seen, stack, ops_seen = set(), [first], []
    while stack:
        node = stack.pop()
        for out in node.outputs:
            for user in users.get(out, []):
                if user.id in seen or user is last:
                    continue
                seen.add(user.id)
                ops_seen.append(user.op)
                stack.append(user)
    return ops_seen


# -- the layers case: Conv2D -> ReLU -> Conv2D, channels last ---------------------------------
def conv_relu_conv_graph():
    model = keras.Sequential([keras.Input((9, 9, 2)), layers.Conv2D(6, 3, activation="relu"),
                              layers.Conv2D(4, 3, padding="same")])
    g = Graph("model")
    x = g.placeholder("x", (None, 9, 9, 2), "float32")
    with tracing(g):
        g.set_outputs({"y": model(x)})
    return g, model


def test_conv_relu_conv_has_no_transpose_between_the_convs():
    g, model = conv_relu_conv_graph()
    feeds = {"x": RNG.normal(size=(3, 9, 9, 2)).astype("float32")}
    want = run(g, feeds)
    assert counts(g)["Transpose"] == 6  # input, output and kernel of each layer
    optimize(g, check=True)
    c = counts(g)
    assert c["Transpose"] == 4  # the model's input and output, and the two kernels
    first, last = [n for n in g.nodes if n.op == "Conv"]
    assert transposes_between(g, first, last) == ["Relu"]
    np.testing.assert_array_equal(run(g, feeds)[0], want[0])
    onnx_run = compile_graph(g, optimized=True)
    weights = {v.node.attrs["name"]: var.numpy() for var, v in g.variables.items()}
    got = onnx_run.to_numpy(onnx_run.run({**feeds, **weights})[0])
    np.testing.assert_allclose(got, want[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.predict(feeds["x"], verbose=0), want[0], rtol=1e-5,
                               atol=1e-5)


def test_training_step_between_two_convs_is_transpose_free_both_ways():
    model = keras.Sequential([keras.Input((8, 8, 2)), layers.Conv2D(4, 3, activation="relu"),
                              layers.Conv2D(3, 3)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    x, y = RNG.normal(size=(4, 8, 8, 2)).astype("f4"), RNG.normal(size=(4, 4, 4, 3)).astype("f4")
    g = model.trace_step("train", x, y)
    before = counts(g)["Transpose"]
    optimize(g, check=True)
    assert counts(g)["Transpose"] < before
    relu = next(n for n in g.nodes if n.op == "Relu")
    users = g.users()
    assert [n.op for n in users[relu.outputs[0]]].count("Transpose") <= 1  # the dW input only
    # ReLU's gradient (one ReluGrad once fused) reads the ConvTranspose output, channels first
    relu_grad = next(n for n in g.nodes if n.op == "ReluGrad")
    assert {v.node.op for v in relu_grad.inputs} == {"ConvTranspose", "Relu"}
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # the optimised step runs


# -- the rules, one by one --------------------------------------------------------------------
def test_sinks_through_bias_add_and_unary_ops_with_broadcast_operands_reshaped():
    bias = {"x": ((None, 4, 5, 6), "float32"), "b": ((4,), "float32")}

    def build():
        return graph_of(lambda x, b: ops.transpose(
            ops.exp(ops.relu(ops.transpose(x, TO_LAST) + b) * 0.5), TO_FIRST), **bias)

    before, after = rewrite(build, feeds_for(**bias))
    assert counts(before)["Transpose"] == 2 and counts(after)["Transpose"] == 0
    assert counts(after)["Reshape"] == 1  # the bias, (4,) -> (1, 4, 1, 1)


def test_full_size_constant_operands_are_transposed_in_place():
    table = RNG.normal(size=(5, 6, 4)).astype("float32")

    def build():
        return graph_of(lambda x: ops.transpose(ops.transpose(x, TO_LAST) - table, TO_FIRST),
                        **NCHW)

    before, after = rewrite(build, feeds_for(**NCHW))
    assert counts(after)["Transpose"] == 0


def test_operands_transposed_the_same_way_meet_below_the_op():
    two = {"x": ((None, 4, 5, 6), "float32"), "z": ((None, 4, 5, 6), "float32")}

    def build():
        return graph_of(lambda x, z: ops.maximum(ops.transpose(x, TO_LAST),
                                                 ops.transpose(z, TO_LAST)), **two)

    before, after = rewrite(build, feeds_for(**two))
    assert counts(after)["Transpose"] == 1 and counts(after)["Max"] == 1
    assert after.outputs[0].node.op == "Transpose"


def test_where_and_comparisons_sink_with_bool_operands():
    def build():
        def fn(x):
            t = ops.transpose(x, TO_LAST)
            return ops.transpose(ops.where(t > 0.0, t * 2.0, 0.0), TO_FIRST)
        return graph_of(fn, **NCHW)

    before, after = rewrite(build, feeds_for(**NCHW))
    assert counts(after)["Transpose"] == 0


def test_merges_chains_and_drops_identities():
    def build():
        return graph_of(lambda x: (ops.transpose(ops.transpose(x, TO_LAST), (0, 2, 1, 3)),
                                   ops.transpose(x, (0, 1, 2, 3))), **NCHW)

    before, after = rewrite(build, feeds_for(**NCHW))
    (t,) = [n for n in after.nodes if n.op == "Transpose"]
    assert tuple(t.attrs["perm"]) == (0, 3, 2, 1)
    assert after.outputs[1].node.op == "Input"


@pytest.mark.parametrize("case", ["other_user", "full_size_input", "reordering_operand",
                                  "broadcast_up", "not_elementwise", "graph_output"])
def test_leaves_alone_what_it_cannot_move_for_free(case):
    spec = {"x": ((2, 4, 5, 6), "float32"), "o": ((2, 5, 6, 4), "float32"),
            "r": ((5, 1, 4), "float32"), "big": ((3, 2, 5, 6, 4), "float32")}

    def fn(x, o, r, big):
        t = ops.transpose(x, TO_LAST)
        return {"other_user": lambda: (ops.exp(t), t * 2.0),
                "full_size_input": lambda: ops.exp(t + o),  # o would need a real transpose
                "reordering_operand": lambda: ops.exp(t + r),  # (5, 1, 4): H and C swap
                "broadcast_up": lambda: ops.exp(t + big),
                "not_elementwise": lambda: ops.sum(t, axis=1),
                "graph_output": lambda: (t, ops.exp(t))}[case]()

    before, after = rewrite(lambda: graph_of(fn, **spec), feeds_for(**spec))
    assert counts(after) == counts(before)


def test_pooling_switches_to_its_channels_first_form():
    def build():
        def fn(x):
            t = ops.transpose(ops.relu(x), TO_LAST)
            pooled = apply("MaxPool", t, kernel=(2, 2), strides=(2, 2), pads=((0, 0), (0, 0)),
                           channels_last=True)
            return ops.transpose(pooled, TO_FIRST)
        return graph_of(fn, **NCHW)

    before, after = rewrite(build, feeds_for(**NCHW))
    (pool,) = [n for n in after.nodes if n.op == "MaxPool"]
    assert counts(after)["Transpose"] == 0 and pool.attrs["channels_last"] is False


def test_pooling_takes_the_untransposed_input_when_the_transpose_has_other_users():
    """A training step's channels-last relu output feeds the pooling and its gradient's
    comparisons: the Transpose stays for those, and the pooling reads the channels-first
    value (one Transpose after it instead of the two its channels-last kernel would emit)."""
    def build():
        def fn(x):
            t = ops.transpose(ops.relu(x), TO_LAST)
            pooled = apply("MaxPool", t, kernel=(2, 2), strides=(2, 2), pads=((0, 0), (0, 0)),
                           channels_last=True)
            return pooled, ops.greater(t, 0.0)
        return graph_of(fn, **NCHW)

    before, after = rewrite(build, feeds_for(**NCHW))
    (pool,) = [n for n in after.nodes if n.op == "MaxPool"]
    assert pool.attrs["channels_last"] is False and pool.inputs[0].node.op == "Relu"
    assert counts(after)["Transpose"] == 2  # one for the comparison, one after the pooling


def test_normalisation_with_reductions_and_counts_in_channels_last_cancels():
    """Batch-norm arithmetic on T(x): the Transpose is copied below each of its users (the
    reductions renumber their axes, the Count of the unknown batch reads x) and the copies
    meet the final inverse Transpose."""
    def build():
        def fn(x):
            t = ops.transpose(x, TO_LAST)
            mean = ops.mean(t, axis=(0, 1, 2), keepdims=True)
            variance = ops.mean(ops.square(t - mean), axis=(0, 1, 2))  # keepdims=False: (C,)
            return ops.transpose((t - mean) / ops.sqrt(variance + 1e-3), TO_FIRST)
        return graph_of(fn, **NCHW)

    before, after = rewrite(build, feeds_for(**NCHW), exact=False)
    assert counts(before)["Transpose"] == 2 and counts(after)["Transpose"] == 0
    assert counts(after)["Count"] == counts(before)["Count"] >= 1


def test_shape_of_a_transposed_value_reads_the_input():
    def build():
        def fn(x):
            t = ops.transpose(x, TO_LAST)
            return ops.transpose(t * 2.0, TO_FIRST), apply("Shape", t)
        return graph_of(fn, **NCHW)

    before, after = rewrite(build, feeds_for(**NCHW))
    assert counts(after)["Transpose"] == 0 and counts(after)["Shape"] == 1


def test_transpose_of_unit_axes_only_is_a_reshape():
    spec = {"x": ((None, 1, 5), "float32")}
    before, after = rewrite(lambda: graph_of(lambda x: ops.transpose(x, (0, 2, 1)), **spec),
                            feeds_for(**spec))
    assert counts(after)["Transpose"] == 0 and counts(after)["Reshape"] == 1
