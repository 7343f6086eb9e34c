"""Each pass on a small graph, before and after: which nodes it keeps, and the same numbers from
the numpy interpreter. The IR verifier's own tests are at the end: it must reject broken graphs."""
from __future__ import annotations

import numpy as np
import pytest

from kgraph import ops
from kgraph.compiler.build import compile_graph
from kgraph.compiler.passes import (eliminate_common_subexpressions, eliminate_dead_code,
                                    fold_constants, optimize, run_passes)
from kgraph.compiler.passes import manager
from kgraph.ir.graph import Graph, tracing
from kgraph.ir.types import TensorType
from kgraph.ir.verify import IRError, verify
from kgraph.ops.random import uniform_like

X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)


def op_counts(graph):
    counts = {}
    for node in graph.nodes:
        counts[node.op] = counts.get(node.op, 0) + 1
    return counts


def run(graph, feeds=None):
    """The graph's outputs on the numpy interpreter, without optimising it first."""
    return compile_graph(graph, "numpy", optimized=True).run(feeds or {"x": X})


def assert_same_results(before, after):
    assert len(before) == len(after)
    for b, a in zip(before, after):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_verification_after_each_pass_is_on_in_tests():
    assert manager.VERIFY, "tests/conftest.py must set KGRAPH_VERIFY=1 before kgraph is imported"


# -- fold_constants --------------------------------------------------------------------------
def constant_graph():
    g = Graph("fold")
    x = g.placeholder("x", (None, 4), "float32")
    with tracing(g):
        two, three = g.constant(np.float32(2)), g.constant(np.float32(3))
        scale = ops.exp(two - three)  # all-constant: folds to one Constant
        idx = ops.argmax(g.constant(np.array([[1.0, 5.0, 2.0]], np.float32)))  # int64 result
        y = x * scale + ops.cast(idx, "float32")
    g.set_outputs({"y": y})
    return g


def test_fold_constants_replaces_all_constant_subgraphs():
    g = constant_graph()
    before = run(g)
    assert op_counts(g)["Sub"] == 1 and op_counts(g)["Exp"] == 1
    verify(fold_constants(g), "fold_constants")
    counts = op_counts(g)
    assert "Sub" not in counts and "Exp" not in counts and "ArgMax" not in counts
    assert "Cast" not in counts  # cast of a folded constant folds too
    assert counts["Mul"] == 1 and counts["Add"] == 1  # they read the input: kept
    assert_same_results(before, run(g))
    folded = [n for n in g.nodes if n.op == "Constant"]
    for node in folded:  # every folded value keeps the dtype its type promised
        assert node.attrs["value"].dtype.name == node.outputs[0].dtype


def test_fold_constants_never_folds_random_or_huge_results():
    g = Graph("nofold")
    with tracing(g):
        noise = uniform_like(g.constant(np.zeros((3,), np.float32)),
                             g.constant(np.uint32(1)), seed=0)
        huge = ops.broadcast_to(g.constant(np.float32(1)), (1100, 1000))
        small = ops.broadcast_to(g.constant(np.float32(1)), (2, 3))
    g.set_outputs({"noise": noise, "huge": huge, "small": small})
    before = run(g, {})
    fold_constants(g)
    assert [n.op for n in g.nodes].count("RandomUniformLike") == 1
    assert [n.op for n in g.nodes].count("Expand") == 1  # the huge one stays an Expand
    assert g.outputs[2].node.op == "Constant"
    assert_same_results(before, run(g, {}))


# -- eliminate_common_subexpressions ----------------------------------------------------------
def test_cse_merges_identical_nodes_only():
    g = Graph("cse")
    x = g.placeholder("x", (None, 4), "float32")
    z = g.placeholder("z", (None, 4), "float32")  # same type as x: inputs are never merged
    with tracing(g):
        a, b = ops.exp(x), ops.exp(x)  # same op, same input: merged
        c = ops.exp(z)  # different input: kept
        s0, s1 = ops.sum(a, axis=0), ops.sum(b, axis=1)  # different attrs: kept
        k1, k2 = g.constant(np.float32(0.5)), g.constant(np.float32(0.5))  # equal constants
        y = a * k1 + b * k2 + c
    g.set_outputs({"y": y, "s0": s0, "s1": s1, "b": b})
    feeds = {"x": X, "z": X[::-1].copy()}
    before = run(g, feeds)
    assert op_counts(g)["Exp"] == 3 and op_counts(g)["Mul"] == 2
    verify(eliminate_common_subexpressions(g), "cse")
    counts = op_counts(g)
    assert counts["Exp"] == 2 and counts["Input"] == 2 and counts["ReduceSum"] == 2
    assert counts["Mul"] == 1 and counts["Constant"] == 1
    assert g.outputs[3] is a  # the output that named the twin now names the survivor
    assert_same_results(before, run(g, feeds))


# -- eliminate_dead_code -----------------------------------------------------------------------
def test_dead_code_is_dropped_but_inputs_and_updates_stay():
    from kgraph.variables import Variable

    g = Graph("dce")
    x = g.placeholder("x", (None, 4), "float32")
    g.placeholder("unused", (3,), "float32")
    counter = Variable(np.zeros((), np.float32), name="counter")
    with tracing(g):
        ops.tanh(ops.exp(x))  # dead: reaches nothing
        g.assign(counter, g.read_variable(counter) + 1.0)  # reaches only an update: alive
        y = ops.relu(x)
    g.set_outputs({"y": y})
    feeds = {"x": X, "unused": np.zeros(3, np.float32), "counter": np.float32(4)}
    before = run(g, feeds)
    verify(eliminate_dead_code(g), "dce")
    counts = op_counts(g)
    assert "Tanh" not in counts and "Exp" not in counts
    assert counts["Input"] == 3 and counts["Relu"] == 1 and counts["Add"] == 1
    assert_same_results(before, run(g, feeds))
    assert run(g, feeds)[1] == 5.0


# -- the pass manager --------------------------------------------------------------------------
def test_optimize_runs_every_pass_and_keeps_results():
    g = constant_graph()
    with tracing(g):
        extra = ops.exp(g.inputs[0]) + ops.exp(g.inputs[0])
        ops.sin(g.inputs[0])  # dead
    g.set_outputs({"y": g.outputs[0], "extra": extra})
    before = run(g)
    optimize(g, check=True)
    counts = op_counts(g)
    assert counts.get("Exp") == 1 and "Sin" not in counts and "Sub" not in counts
    assert_same_results(before, run(g))
    optimize(g, check=True)  # a second run changes nothing
    assert op_counts(g) == counts


def test_run_passes_names_the_pass_that_broke_the_graph():
    def break_types(graph):
        node = next(n for n in graph.nodes if n.op == "Relu")
        node.outputs[0].type = TensorType((None, 5), "float32")
        return graph

    g = Graph("broken")
    x = g.placeholder("x", (None, 4), "float32")
    with tracing(g):
        g.set_outputs({"y": ops.relu(x)})
    with pytest.raises(IRError, match="after break_types"):
        run_passes(g, [eliminate_dead_code, break_types], check=True)


# -- the verifier ------------------------------------------------------------------------------
def small_graph():
    g = Graph("v")
    x = g.placeholder("x", (None, 4), "float32")
    with tracing(g):
        y = ops.transpose(ops.exp(x))
    g.set_outputs({"y": y})
    return g


def test_verifier_accepts_a_traced_graph():
    assert verify(small_graph()) is not None


def test_verifier_rejects_an_unexpected_attribute():
    g = small_graph()
    next(n for n in g.nodes if n.op == "Exp").attrs["axis"] = 1
    with pytest.raises(IRError, match=r"unexpected attributes \['axis'\]"):
        verify(g)


def test_verifier_rejects_a_wrong_attribute_value():
    g = small_graph()
    next(n for n in g.nodes if n.op == "Transpose").attrs["perm"] = (0, 1)  # not a reversal
    with pytest.raises(IRError, match="differ from the rule"):
        verify(g)


def test_verifier_rejects_use_before_definition():
    g = small_graph()
    exp = next(n for n in g.nodes if n.op == "Exp")
    g.nodes.remove(exp)
    g.nodes.append(exp)  # now after the Transpose that reads it
    with pytest.raises(IRError, match="used before it is defined"):
        verify(g)


def test_verifier_rejects_a_wrong_output_type():
    g = small_graph()
    exp = next(n for n in g.nodes if n.op == "Exp")
    exp.outputs[0].type = TensorType((None, 4), "float64")
    with pytest.raises(IRError, match="differ from the rule"):
        verify(g)


def test_verifier_rejects_an_input_from_another_graph():
    g, other = small_graph(), small_graph()
    next(n for n in g.nodes if n.op == "Exp").inputs = [other.inputs[0]]
    with pytest.raises(IRError, match="belongs to another graph"):
        verify(g)


def test_verifier_rejects_an_output_that_is_not_computed():
    g = small_graph()
    g.nodes = [n for n in g.nodes if n.op != "Transpose"]
    with pytest.raises(IRError, match="is not computed by the graph"):
        verify(g)


def test_verifier_rejects_an_unknown_op():
    g = small_graph()
    next(n for n in g.nodes if n.op == "Exp").op = "Exponential"
    with pytest.raises(KeyError, match="Unknown op 'Exponential'"):
        verify(g)


def _sum_of_products(graph, pairs, extra=None):
    """Σ aᵢᵀ bᵢ (+ extra) traced into `graph`, left-deep as autodiff accumulates it."""
    total = None
    for a, b in pairs:
        term = ops.matmul(ops.transpose(a, (1, 0)), b)
        total = term if total is None else total + term
    return total + extra if extra is not None else total


def test_batch_weight_gradients_stacks_a_sum_of_products_into_one():
    from kgraph.compiler.passes import batch_weight_gradients

    rng = np.random.default_rng(0)
    graph = Graph("sum_of_products")
    names = [f"{side}{i}" for i in range(4) for side in "ab"]
    shapes = {"a": (None, 3), "b": (None, 5)}
    phs = {n: graph.placeholder(n, shapes[n[0]], "float32") for n in names}
    with tracing(graph):
        out = _sum_of_products(graph, [(phs[f"a{i}"], phs[f"b{i}"]) for i in range(4)])
    graph.set_outputs({"out": out})
    feeds = {n: rng.normal(size=(7, shapes[n[0]][1])).astype("float32") for n in names}
    want = compile_graph(graph, "numpy").run(feeds)[0]
    rewritten = eliminate_dead_code(batch_weight_gradients(graph.clone()[0]))
    counts = [sum(n.op == op for n in rewritten.nodes) for op in ("MatMul", "Add", "Concat")]
    assert counts == [1, 0, 2]
    np.testing.assert_allclose(compile_graph(rewritten, "numpy").run(feeds)[0], want,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(compile_graph(rewritten, "onnxruntime").run(feeds)[0], want,
                               rtol=1e-5, atol=1e-5)


def test_batch_weight_gradients_leaves_mixed_or_short_sums_alone():
    from kgraph.compiler.passes import batch_weight_gradients

    graph = Graph("mixed")
    a = [graph.placeholder(f"a{i}", (4, 3), "float32") for i in range(3)]
    b = [graph.placeholder(f"b{i}", (4, 5), "float32") for i in range(3)]
    c = graph.placeholder("c", (3, 5), "float32")
    with tracing(graph):
        mixed = _sum_of_products(graph, list(zip(a, b)), extra=c)  # a leaf is no product
        short = _sum_of_products(graph, list(zip(a[:2], b[:2])))  # two terms: not worth it
    graph.set_outputs({"mixed": mixed, "short": short})
    before = [n.op for n in graph.nodes]
    assert [n.op for n in batch_weight_gradients(graph).nodes] == before


def test_an_lstm_train_step_has_one_recurrent_kernel_gradient_product():
    from kgraph import keras
    from kgraph.compiler.passes import optimize

    model = keras.Sequential([keras.Input((20, 4)), keras.layers.LSTM(8), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((2, 20, 4), "float32"), np.ones((2, 1), "float32")
    graph = optimize(model.trace_step("train", x, y))
    # per step a recurrent product forward and its input gradient backward (40), the input
    # projection and its kernel gradient, the Dense's three, and ONE product for the recurrent
    # kernel's gradient: 45 (64 without batch_weight_gradients: one more per step)
    matmuls = sum(n.op == "MatMul" for n in graph.nodes)
    assert matmuls < 2 * 20 + 6, matmuls


def _relu_pool_gradient(channels_last):
    """d/dx of sum(MaxPool(relu(x)) * w): a ReLU mask times a max-pooling gradient."""
    from kgraph.compiler.autodiff import gradients

    g = Graph("relu_pool")
    shape = (None, 6, 6, 3) if channels_last else (None, 3, 6, 6)
    x = g.placeholder("x", shape, "float32")
    with tracing(g):
        pooled = ops.apply("MaxPool", ops.relu(x), kernel=(2, 2), strides=(2, 2),
                           pads=((0, 0), (0, 0)), channels_last=channels_last)
        loss = ops.sum(pooled * np.arange(27, dtype="float32").reshape(pooled.shape[1:]))
        (dx,) = gradients(g, loss, [x])
        g.set_outputs({"dx": dx})
    return g


@pytest.mark.parametrize("channels_last", [True, False])
def test_a_mask_of_the_pooled_input_moves_to_the_pooled_side(channels_last):
    from kgraph.compiler.passes.pool_gradient_masks import fold_masks_into_pool_gradients

    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 6, 3) if channels_last else (2, 3, 6, 6)).astype("float32")
    x[0, :2, :2] = -1.0  # a window with no positive value: the mask zeroes its gradient
    before = run(_relu_pool_gradient(channels_last), {"x": x})
    graph = run_passes(_relu_pool_gradient(channels_last),
                       [eliminate_common_subexpressions, fold_masks_into_pool_gradients,
                        eliminate_dead_code], check=True)
    (greater,) = [n for n in graph.nodes if n.op == "Greater"]
    assert greater.inputs[0].node.op == "MaxPool"  # the mask is computed on the pooled values
    (grad,) = [n for n in graph.nodes if n.op == "MaxPoolGrad"]
    assert grad.inputs[0].node.op == "Mul"
    assert_same_results(before, run(graph, {"x": x}))
    assert np.count_nonzero(before[0]) > 0


def test_a_mask_that_is_not_of_the_pooled_input_stays():
    from kgraph.compiler.passes.pool_gradient_masks import fold_masks_into_pool_gradients

    g = Graph("other_mask")
    x = g.placeholder("x", (None, 3, 4, 4), "float32")
    z = g.placeholder("z", (None, 3, 4, 4), "float32")
    with tracing(g):
        attrs = dict(kernel=(2, 2), strides=(2, 2), pads=((0, 0), (0, 0)), channels_last=False)
        y = ops.apply("MaxPool", x, **attrs)
        routed = ops.apply("MaxPoolGrad", ops.ones_like(y), y, x, **attrs)
        g.set_outputs({"out": routed * ops.cast(ops.greater(z, 0.0), "float32")})
    counts = op_counts(g)
    assert op_counts(fold_masks_into_pool_gradients(g)) == counts


@pytest.mark.parametrize("channels_last", [True, False])
def test_a_relu_gradient_becomes_one_node_with_the_same_values(channels_last):
    from kgraph.compiler.passes.fuse_relu_gradients import fuse_relu_gradients
    from kgraph.compiler.passes.pool_gradient_masks import fold_masks_into_pool_gradients

    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 6, 3) if channels_last else (2, 3, 6, 6)).astype("float32")
    x[0, :2, :2] = -1.0
    before = run(_relu_pool_gradient(channels_last), {"x": x})
    graph = run_passes(_relu_pool_gradient(channels_last),
                       [eliminate_common_subexpressions, fold_masks_into_pool_gradients,
                        fuse_relu_gradients, eliminate_dead_code], check=True)
    counts = op_counts(graph)
    assert counts.get("ReluGrad") == 1 and "Greater" not in counts and "Cast" not in counts
    (fused,) = [n for n in graph.nodes if n.op == "ReluGrad"]
    assert fused.inputs[1].node.op == "MaxPool"  # the mask's operand: the pooled ReLU output
    assert_same_results(before, run(graph, {"x": x}))


def test_products_that_are_not_a_relu_gradient_stay():
    from kgraph.compiler.passes.fuse_relu_gradients import fuse_relu_gradients

    g = Graph("not_relu")
    x = g.placeholder("x", (None, 4), "float32")
    row = g.placeholder("row", (4,), "float32")
    with tracing(g):
        mask = ops.cast(ops.greater(x, 0.0), "float32")
        shifted = x * ops.cast(ops.greater(x, 0.5), "float32")  # not a ReLU's threshold
        broadcast = row * ops.cast(ops.greater(x, 0.0), "float32")  # the gradient broadcasts
        shared = (x + 1.0) * mask  # the mask has another reader
        g.set_outputs({"a": shifted, "b": broadcast, "c": shared, "mask": mask})
    counts = op_counts(g)
    assert op_counts(fuse_relu_gradients(g)) == counts


def test_a_native_train_step_runs_relu_gradients_as_kgraph_operators():
    """The dense ReLU's gradient of an MLP train step: one kgraph.ReluGrad, and the step's
    results equal, bit for bit, those of the unfused graph."""
    from kgraph.compiler.autodiff import gradients
    from kgraph.compiler.onnx.emit import emit
    from kgraph.compiler.passes.fuse_relu_gradients import fuse_relu_gradients
    from kgraph.runtime import native_ops
    from kgraph.runtime.onnx_exec import _session_options

    if not native_ops.available():
        pytest.skip("kgraph's onnxruntime operators are not built")
    import onnxruntime as ort

    def step():
        g = Graph("mlp")
        x = g.placeholder("x", (None, 5), "float32")
        w = g.placeholder("w", (5, 7), "float32")
        with tracing(g):
            h = ops.relu(ops.matmul(x, w))
            loss = ops.sum(h * h)
            (dw,) = gradients(g, loss, [w])
            g.set_outputs({"dw": dw})
        return g

    rng = np.random.default_rng(3)
    feeds = {"x": rng.normal(size=(9, 5)).astype("float32"),
             "w": rng.normal(size=(5, 7)).astype("float32")}
    results = []
    for graph in (run_passes(step(), [eliminate_dead_code]),
                  run_passes(step(), [fuse_relu_gradients, eliminate_dead_code])):
        emitted = emit(graph, native=True)
        results.append(ort.InferenceSession(emitted.to_bytes(), _session_options(native=True))
                       .run(None, feeds))
    assert "kgraph.ReluGrad" not in emit(step(), native=True).op_types()
    assert "kgraph.ReluGrad" in emit(run_passes(step(), [fuse_relu_gradients]),
                                     native=True).op_types()
    assert_same_results(results[0], results[1])


def _flatten_dense_step(extra_output=False, pool=True):
    """A train step of Conv2D -> MaxPooling2D -> Flatten -> Dense (channels last: the Flatten
    is a Transpose to channels last and a Reshape), as cancel_transposes leaves it."""
    from kgraph import keras
    from kgraph.compiler.passes import cancel_transposes

    rng = np.random.default_rng(4)
    inputs = keras.Input((8, 7, 1))  # one channel: the input's transpose is a Reshape
    conv = keras.layers.Conv2D(3, 3, activation="relu")(inputs)
    flat = keras.layers.Flatten()(keras.layers.MaxPooling2D(2)(conv) if pool else conv)
    outputs = [keras.layers.Dense(4)(flat)] + ([flat] if extra_output else [])
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.1), ["mse"] * len(outputs))
    x = rng.normal(size=(7, 8, 7, 1)).astype("float32")
    y = [rng.normal(size=(7, 4)).astype("float32")] + \
        ([rng.normal(size=(7, 18 if pool else 90)).astype("float32")] if extra_output else [])
    g = model.trace_step("train", x, y if extra_output else y[0])
    feeds = {"x_0": x, **{f"y_{i}": v for i, v in enumerate(y)}}
    feeds.update({ph.node.attrs["name"]: var.numpy() for var, ph in g.variables.items()})
    return run_passes(g, [cancel_transposes, eliminate_dead_code], check=True), feeds


def _activation_transposes(graph):
    """Transposes of a batch of images (the batch axis stays first)."""
    return [n for n in graph.nodes if n.op == "Transpose" and len(n.attrs["perm"]) == 4 and
            n.attrs["perm"][0] == 0]


def test_a_flattened_transpose_times_a_kernel_permutes_the_kernel_rows():
    from kgraph.compiler.passes import permute_flattened_products

    graph, feeds = _flatten_dense_step()
    names = {v.node.attrs["name"] for v in graph.inputs}
    feeds = {k: v for k, v in feeds.items() if k in names}
    assert len(_activation_transposes(graph)) == 2  # the Flatten's, forward and backward
    before = compile_graph(graph.clone()[0], "numpy", optimized=True).run(feeds)
    after_graph = run_passes(graph, [permute_flattened_products, eliminate_dead_code],
                             check=True)
    assert _activation_transposes(after_graph) == []
    gathers = [n for n in after_graph.nodes if n.op == "Gather"]
    assert len(gathers) == 2  # the kernel's rows (forward and input gradient), its gradient's
    after = compile_graph(after_graph, "numpy", optimized=True).run(feeds)
    assert len(before) == len(after)
    for b, a in zip(before, after):  # loss, then each variable's update
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    ort = compile_graph(after_graph, "onnxruntime", optimized=True)
    for b, a in zip(before, ort.run(feeds)):
        np.testing.assert_allclose(ort.to_numpy(a), b, rtol=1e-5, atol=1e-6)


def test_flattened_rows_read_elsewhere_or_in_inference_keep_their_transpose():
    from kgraph.compiler.passes import permute_flattened_products

    graph, _ = _flatten_dense_step(extra_output=True)  # the flattened rows are a loss's input
    kept = len(_activation_transposes(graph))
    assert len(_activation_transposes(permute_flattened_products(graph))) == kept
    inference, _ = _flatten_dense_step()
    inference.updates = {}  # a graph that updates nothing (predict): the batch may be 1
    assert len(_activation_transposes(permute_flattened_products(inference))) == 2
    # no pooling: ReLU's gradient mask reads the transposed activations too, so it stays
    masked, _ = _flatten_dense_step(pool=False)
    counts = op_counts(masked)
    assert op_counts(permute_flattened_products(masked)) == counts


def _pool_gradient_sums(channels_last, kernel=(3, 3), pad=1):
    """Sums of a max-pooling gradient (by default 3x3 windows at stride 2, padded: windows
    overlap and reach the pad): over the batch and pooled axes, and over one pooled axis."""
    g = Graph("pool_gradient_sums")
    shape = (2, 7, 7, 3) if channels_last else (2, 3, 7, 7)
    x = g.placeholder("x", shape, "float32")
    axes = (1, 2) if channels_last else (2, 3)
    with tracing(g):
        attrs = dict(kernel=kernel, strides=(2, 2), pads=((pad, pad), (pad, pad)),
                     channels_last=channels_last)
        y = ops.apply("MaxPool", x, **attrs)
        w = np.random.default_rng(2).normal(size=y.shape[1:]).astype(np.float32)
        routed = ops.apply("MaxPoolGrad", ops.ones_like(y) * w, y, x, **attrs)
        g.set_outputs({"all": ops.apply("ReduceSum", routed, axes=(0,) + axes, keepdims=False),
                       "kept": ops.apply("ReduceSum", routed, axes=(0, 1, 2, 3), keepdims=True),
                       "one_axis": ops.apply("ReduceSum", routed, axes=axes[:1], keepdims=False)})
    return g


@pytest.mark.parametrize("channels_last", [True, False])
def test_sums_over_the_pooled_axes_read_the_pooled_gradient(channels_last):
    from kgraph.compiler.passes.pool_gradient_masks import sum_pool_gradients_before_routing

    x = np.random.default_rng(1).normal(size=(2, 7, 7, 3) if channels_last else (2, 3, 7, 7))
    x = x.astype(np.float32)
    x[0, :3, :3] = 5.0  # ties: the first maximum takes the window's gradient
    before = run(_pool_gradient_sums(channels_last), {"x": x})
    graph = run_passes(_pool_gradient_sums(channels_last),
                       [sum_pool_gradients_before_routing, eliminate_dead_code], check=True)
    sums = [n for n in graph.nodes if n.op == "ReduceSum"]
    assert [n.inputs[0].node.op for n in sums] == ["Mul", "Mul", "MaxPoolGrad"]
    for b, a in zip(before, run(graph, {"x": x})):  # the same values, summed in another order
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_sums_stay_where_a_window_lies_in_the_pad():
    """2x2 windows padded by 2: the corner windows hold no input site, their gradient is
    dropped, so the routed sum is not the pooled one."""
    from kgraph.compiler.passes.pool_gradient_masks import sum_pool_gradients_before_routing

    x = np.random.default_rng(1).normal(size=(2, 3, 7, 7)).astype(np.float32)
    before = run(_pool_gradient_sums(False, (2, 2), 2), {"x": x})
    graph = run_passes(_pool_gradient_sums(False, (2, 2), 2),
                       [sum_pool_gradients_before_routing, eliminate_dead_code], check=True)
    assert {n.inputs[0].node.op for n in graph.nodes if n.op == "ReduceSum"} == {"MaxPoolGrad"}
    assert_same_results(before, run(graph, {"x": x}))


def _expand_graph(source_shape, other_shape):
    """`other + Expand(s)` and `Expand(s) * other`, the Expand also read by a ReduceSum."""
    from kgraph.ops.movement import broadcast_like

    g = Graph("expands")
    s = g.placeholder("s", source_shape, "float32")
    other = g.placeholder("other", other_shape, "float32")
    with tracing(g):
        e = broadcast_like(s, other)
        g.set_outputs({"sum": other + e, "product": e * other,
                       "total": ops.sum(e, axis=-1)})
    return g


def test_fold_expands_lets_broadcasting_ops_read_the_unexpanded_value():
    """The softmax / layer-norm gradient pattern: a reduced gradient expanded back to the
    input's shape, then added or multiplied. The Add and Mul read the (n, 3, 1) value; the
    Expand stays for the reduction only; results equal bit for bit."""
    from kgraph.compiler.passes import fold_expands

    rng = np.random.default_rng(0)
    feeds = {"s": rng.normal(size=(2, 3, 1)).astype("float32"),
             "other": rng.normal(size=(2, 3, 4)).astype("float32")}
    before = run(_expand_graph((None, 3, 1), (None, 3, 4)), feeds)
    graph = run_passes(_expand_graph((None, 3, 1), (None, 3, 4)),
                       [fold_expands, eliminate_dead_code], check=True)
    readers = [n for n in graph.nodes if n.op in ("Add", "Mul")]
    assert all(n.inputs[0].node.op == "Input" and n.inputs[1].node.op == "Input"
               for n in readers)
    (expand,) = [n for n in graph.nodes if n.op == "Expand"]  # the ReduceSum still reads it
    assert_same_results(before, run(graph, feeds))


@pytest.mark.parametrize("source_shape,other_shape", [
    ((1, 3, 1), (None, 3, 4)),  # broadcast along an unknown dim: the other's could be 1
    ((None, 3, 1), (None, 1, 4)),  # the other operand is smaller than the Expand's result
])
def test_fold_expands_keeps_an_expand_whose_shape_broadcasting_could_not_give(
        source_shape, other_shape):
    from kgraph.compiler.passes import fold_expands

    graph = _expand_graph(source_shape, other_shape)
    readers = {n.id: list(n.inputs) for n in graph.nodes if n.op in ("Add", "Mul")}
    fold_expands(graph)
    assert {n.id: list(n.inputs) for n in graph.nodes if n.op in ("Add", "Mul")} == readers
