"""The `Scan` loop op (kgraph/ops/recurrence.py) and the recurrent layers built on it.

Oracles: the numpy reference (a Python loop over the body), float64 finite differences for
first and second derivatives, and the same layers unrolled (`unroll=True`)."""
import numpy as np
import pytest

from kgraph import keras, ops
from kgraph.compiler.autodiff import gradients
from kgraph.compiler.build import compile_graph
from kgraph.compiler.onnx.emit import emit
from kgraph.ir.graph import Graph, tracing
from kgraph.ops.recurrence import ScanBodyError, scan

from harness import numeric_gradient

T, B, U = 5, 3, 4


def _step_graph(reverse, second_order=False):
    """loss = Σ ys² + Σ h_T over h_t = tanh(h_{t-1} w + x_t), ys = 2 h; outputs the loss
    and its gradients (with `second_order`, the gradient of Σ (d loss/d w)² w.r.t. x)."""
    g = Graph("g")
    with tracing(g):
        x = g.placeholder("x", (T, B, U), "float64")
        w = g.placeholder("w", (U, U), "float64")
        h0 = g.placeholder("h0", (B, U), "float64")

        def step(carry, slices):
            h = ops.tanh(ops.matmul(carry[0], w) + slices[0])
            return [h], [h * 2.0]

        (h_last,), (ys,) = scan(step, [h0], [x], reverse=reverse)
        loss = ops.sum(ys * ys) + ops.sum(h_last)
        gx, gw, gh = gradients(g, loss, [x, w, h0])
        outputs = {"loss": loss, "ys": ys, "gx": gx, "gw": gw, "gh": gh}
        if second_order:
            (outputs["ggx"],) = gradients(g, ops.sum(gw * gw), [x])
        g.set_outputs(outputs)
    return g


def _feeds(seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(T, B, U)), "w": rng.normal(size=(U, U)) * 0.5,
            "h0": rng.normal(size=(B, U))}


def _run(graph, target, feeds):
    compiled = compile_graph(graph, target)
    return [np.asarray(compiled.to_numpy(b)) for b in compiled.run(feeds)]


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_matches_a_python_loop_and_finite_differences(reverse):
    feeds = _feeds()
    loss, ys, gx, gw, gh = _run(_step_graph(reverse), "numpy", feeds)
    h, expect = feeds["h0"], np.zeros((T, B, U))
    for t in (range(T - 1, -1, -1) if reverse else range(T)):  # outputs aligned with x
        h = np.tanh(h @ feeds["w"] + feeds["x"][t])
        expect[t] = 2 * h
    np.testing.assert_allclose(ys, expect, rtol=1e-12)
    f = lambda fd: _run(_step_graph(reverse), "numpy", fd)[0]  # noqa: E731
    for name, got in (("x", gx), ("w", gw), ("h0", gh)):
        np.testing.assert_allclose(got, numeric_gradient(f, feeds, name), atol=1e-6)


@pytest.mark.parametrize("target", ["onnxruntime", "tvm"])
@pytest.mark.parametrize("reverse", [False, True])
def test_scan_executors_match_the_reference(target, reverse):
    if target == "tvm":
        pytest.importorskip("tvm")
    graph, feeds = _step_graph(reverse, second_order=True), _feeds(1)
    for got, want in zip(_run(graph, target, feeds), _run(graph, "numpy", feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_second_order_gradient_through_the_backward_scan():
    feeds = _feeds(2)
    graph = _step_graph(False, second_order=True)
    got = _run(graph, "onnxruntime", feeds)[-1]
    f = lambda fd: float(np.sum(_run(graph, "numpy", fd)[3] ** 2))  # noqa: E731
    np.testing.assert_allclose(got, numeric_gradient(f, feeds, "x"), rtol=1e-5, atol=1e-6)


def test_loop_invariant_work_runs_once_before_the_loop():
    """The backward step multiplies by wᵀ: the transpose of the invariant w is computed
    outside the loop, and w's gradient is one product over all steps after it."""
    loops = [node for node in _step_graph(False).nodes if node.op == "Scan"]
    assert len(loops) == 2
    backward = loops[1]
    assert backward.attrs["body"].name == "scan_grad_body"
    assert "Transpose" not in [n.op for n in backward.attrs["body"].nodes]
    assert backward.attrs["n_carry"] == 1  # d h only: no per-step sum of w's gradient


def test_a_backward_step_keeps_only_what_depends_on_its_carries():
    """Everything of an LSTM's backward step that does not depend on the gradient carried
    from the next step (gate derivatives from the saved activations) runs once over all steps
    before the loop; products are re-associated so those factors meet first."""
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.LSTM(4), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    graph = model.trace_step("train", np.zeros((2, 6, 3), "float32"), np.zeros((2, 1), "float32"))
    backward = [node.attrs for node in graph.nodes if node.op == "Scan"][1]
    body = backward["body"]
    carried = set(body.inputs[:backward["n_carry"]])
    for node in body.nodes:
        if node.op in ("Input", "Constant"):
            continue
        assert any(v in carried for v in node.inputs), f"{node!r} does not need the loop"
        if any(v in carried for v in node.inputs):
            carried.update(node.outputs)
    assert sum(node.op == "Mul" for node in body.nodes) <= 7  # traced: 15


def test_scan_onnx_bytes_equal_the_onnx_package():
    pytest.importorskip("onnx")
    emitted = emit(_step_graph(True))
    assert "Scan" in emitted.op_types()
    assert emitted.direct_bytes() == emitted.to_proto().SerializeToString()


@pytest.mark.parametrize("seed", [None, "generator"])
def test_random_numbers_in_a_step_are_refused(seed):
    """A step drawing from the graph's stream or a SeedGenerator needs state that advances
    per step; a Scan body has none, so it is refused (the RNN layers unroll then)."""
    g = Graph("g")
    with tracing(g):
        x = g.placeholder("x", (T, B, U), "float32")
        seed = keras.random.SeedGenerator(1) if seed else None

        def step(carry, slices):
            return [carry[0] + keras.random.normal((B, U), seed=seed)], []

        with pytest.raises(ScanBodyError, match="random"):
            scan(step, [ops.zeros((B, U))], [x])


# -- recurrent layers as loops ----------------------------------------------------------------
def _model(kind, unroll, **kw):
    keras.utils.set_random_seed(1)
    mask = kw.pop("mask", False)
    inputs = keras.Input((7, 5))
    h = keras.layers.Masking(0.0)(inputs) if mask else inputs
    if kind == "Bidirectional":
        layer = keras.layers.Bidirectional(keras.layers.LSTM(4, unroll=unroll, **kw))
    else:
        layer = getattr(keras.layers, kind)(4, unroll=unroll, **kw)
    h = layer(h)
    if kw.get("return_sequences"):
        h = keras.layers.Flatten()(h)
    model = keras.Model(inputs, keras.layers.Dense(3)(h))
    model.compile("adam", "mse")
    return model


_OPTIONS = [{}, {"go_backwards": True}, {"return_sequences": True}, {"mask": True},
            {"return_sequences": True, "mask": True}]


@pytest.mark.parametrize("kind, kw", [(kind, kw) for kind in ("LSTM", "GRU", "SimpleRNN")
                                      for kw in _OPTIONS] +
                         [("Bidirectional", kw) for kw in _OPTIONS if "go_backwards" not in kw])
def test_recurrent_layers_loop_as_they_unroll(kind, kw):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 7, 5)).astype("float32")
    y = rng.normal(size=(8, 3)).astype("float32")
    if kw.get("mask"):
        x[:3, 4:] = 0.0
    results = []
    for unroll in (False, True):
        model = _model(kind, unroll, **kw)
        history = model.fit(x, y, epochs=2, batch_size=4, verbose=0).history["loss"]
        results.append((model.predict(x, verbose=0), history, model.get_weights()))
    (p0, h0, w0), (p1, h1, w1) = results
    np.testing.assert_allclose(p0, p1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h0, h1, rtol=1e-6)
    for a, b in zip(w0, w1):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _train_graph_sizes(steps, unroll):
    model = keras.Sequential([keras.Input((steps, 3)), keras.layers.LSTM(4, unroll=unroll),
                              keras.layers.Dense(1)])
    model.compile("adam", "mse")
    graph = model.trace_step("train", np.zeros((2, steps, 3), "float32"),
                             np.zeros((2, 1), "float32"))
    return len(graph.nodes), sum(node.op == "Scan" for node in graph.nodes)


def test_the_training_graph_does_not_grow_with_the_sequence():
    short, loops = _train_graph_sizes(5, unroll=False)
    assert loops == 2  # the forward loop and its gradient
    assert _train_graph_sizes(60, unroll=False) == (short, 2)
    unrolled, none = _train_graph_sizes(60, unroll=True)
    # unrolled, every step adds its forward and backward nodes (fewer where the step's gate
    # arithmetic is one LSTMGates op: runtime/native_ops.py)
    assert none == 0 and unrolled - _train_graph_sizes(5, unroll=True)[0] >= 55 * 6


def test_stateful_lstm_loop_carries_its_state_across_batches():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 6, 2)).astype("float32")
    outs = []
    for unroll in (False, True):
        keras.utils.set_random_seed(2)
        model = keras.Sequential([keras.Input((6, 2), batch_size=4),
                                  keras.layers.LSTM(3, stateful=True, unroll=unroll)])
        outs.append([model.predict_on_batch(x) for _ in range(3)])
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(outs[0][0], outs[0][1])  # the state moved on


def _small_lstm(steps=4):
    keras.utils.set_random_seed(4)
    return keras.Sequential([keras.Input((steps, 3)), keras.layers.LSTM(5),
                             keras.layers.Dense(2)])


def test_exported_onnx_keeps_the_loop_and_runs_in_onnxruntime(tmp_path):
    import onnxruntime as ort

    model = _small_lstm()
    x = np.random.default_rng(5).normal(size=(6, 4, 3)).astype("float32")
    path = str(tmp_path / "lstm.onnx")
    model.export(path, format="onnx")  # onnx.checker runs on the model
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert "Scan" in [node.op_type for node in __import__("onnx").load(path).graph.node]
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.tvm
def test_tvm_artifact_of_a_recurrent_model_unrolls_its_loop(tmp_path):
    from tvm_helper import require_tvm

    require_tvm()
    from kgraph.compiler import artifact
    from kgraph.runtime.artifact import load

    model = _small_lstm(3)
    x = np.random.default_rng(6).normal(size=(2, 3, 3)).astype("float32")
    out = artifact.compile_model(model, str(tmp_path / "art"), target="llvm")
    got = load(out).predict(x)
    np.testing.assert_allclose(np.asarray(got), model.predict(x, verbose=0), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("kw", [{}, {"return_sequences": True, "go_backwards": True}])
def test_conv_lstm_loops_as_it_unrolls(kw):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 4, 6, 6, 2)).astype("float32")
    y = rng.normal(size=(3, 5)).astype("float32")
    results = []
    for unroll in (False, True):
        keras.utils.set_random_seed(8)
        model = keras.Sequential([keras.Input((4, 6, 6, 2)),
                                  keras.layers.ConvLSTM2D(3, 3, padding="same", unroll=unroll,
                                                          **kw),
                                  keras.layers.Flatten(), keras.layers.Dense(5)])
        model.compile("adam", "mse")
        history = model.fit(x, y, epochs=2, verbose=0).history["loss"]
        graph = model.trace_step("train", x, y)
        loops = sum(node.op == "Scan" for node in graph.nodes)
        results.append((model.predict(x, verbose=0), history, model.get_weights(), loops))
    (p0, h0, w0, loops), (p1, h1, w1, none) = results
    assert (loops, none) == (2, 0)
    np.testing.assert_allclose(p0, p1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h0, h1, rtol=1e-5)
    for a, b in zip(w0, w1):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


class _Decay(keras.layers.Layer):
    """`keras.ops.scan` in a layer: a learned decay over time (a loop node when traced)."""

    def __init__(self, noise=False, **kwargs):
        super().__init__(**kwargs)
        self.noise = noise
        self.seeds = keras.random.SeedGenerator(3)

    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1],), initializer="ones")

    def call(self, x):
        def step(c, xi):
            c = ops.tanh(c * self.w + xi)
            if self.noise:  # a SeedGenerator's draw: not a loop body, unrolled
                c = c + 0.0 * keras.random.normal(ops.shape(c), seed=self.seeds)
            return c, c

        c, ys = ops.scan(step, ops.zeros_like(x[:, 0]), ops.transpose(x, (1, 0, 2)))
        return c + ops.sum(ys, axis=0)


@pytest.mark.parametrize("noise", [False, True])
def test_keras_ops_scan_in_a_layer_trains(noise):
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(8, 5, 3)).astype("float32"), rng.normal(size=(8, 1))
    model = keras.Sequential([keras.Input((5, 3)), _Decay(noise), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    graph = model.trace_step("train", x, y.astype("float32"))
    assert sum(node.op == "Scan" for node in graph.nodes) == (0 if noise else 2)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=5, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before
    w = model.layers[0].w.numpy()
    expect = np.zeros((8, 3))  # the layer's output by numpy, checked against predict
    total = np.zeros((8, 3))
    for t in range(5):
        expect = np.tanh(expect * w + x[:, t])
        total += expect
    dense = model.layers[1]
    want = (expect + total) @ dense.kernel.numpy() + dense.bias.numpy()
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_half_precision_recurrences_unroll_and_train(policy):
    """onnxruntime's Scan fails on float16 bodies, so half-precision cells unroll (bfloat16
    recurrent layers could not build their zero state at all before)."""
    rng = np.random.default_rng(10)
    x, y = rng.random((16, 6, 3)), rng.random((16, 1))
    keras.mixed_precision.set_global_policy(policy)
    try:
        for layer in (keras.layers.LSTM(4), keras.layers.GRU(4)):
            model = keras.Sequential([keras.Input((6, 3)), layer,
                                      keras.layers.Dense(1, dtype="float32")])
            model.compile("adam", "mse")
            graph = model.trace_step("train", x.astype("float32"), y.astype("float32"))
            assert not any(node.op == "Scan" for node in graph.nodes)
            losses = model.fit(x, y, epochs=3, verbose=0).history["loss"]
            assert np.isfinite(losses).all() and losses[-1] < losses[0]
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_bidirectional_loops_do_not_reverse_twice():
    """The backward layer a Bidirectional makes gives its looped outputs in input order, so
    neither it nor the merge reverses them (two Gathers and two scatter gradients a layer);
    a reloaded model and a user's own backward layer agree with it, and that layer alone
    still returns processing order."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3, 5, 2)).astype("float32")
    model = keras.Sequential([keras.Input((5, 2)), keras.layers.Bidirectional(
        keras.layers.LSTM(3, return_sequences=True)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    graph = model.trace_step("train", x, np.zeros((3, 5, 1), "float32"))
    assert sum(node.op == "Scan" for node in graph.nodes) == 4  # per direction: forward, backward
    assert not any(node.op == "Gather" or node.op.startswith("Scatter") for node in graph.nodes)
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    backward = keras.layers.LSTM(3, return_sequences=True, go_backwards=True)
    own = keras.Sequential([keras.Input((5, 2)), keras.layers.Bidirectional(
        keras.layers.LSTM(3, return_sequences=True), backward_layer=backward),
        keras.layers.Dense(1)])
    own.set_weights(model.get_weights())
    np.testing.assert_allclose(own.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    alone = backward(x)  # processing order: step t of the output read x[:, 4 - t]
    merged = keras.Model(model.inputs, model.layers[0].output).predict(x, verbose=0)
    np.testing.assert_allclose(np.asarray(alone)[:, ::-1], merged[..., 3:], rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_dropout_masks_are_drawn_once_before_the_loop(kind):
    """Input and recurrent dropout in training: one mask each per sequence (Keras), drawn
    before the loop, so the looped layer trains exactly as the unrolled one."""
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(8, 6, 3)).astype("float32"), rng.normal(size=(8, 2))
    results = []
    for unroll in (False, True):
        keras.utils.set_random_seed(13)
        layer = getattr(keras.layers, kind)(4, dropout=0.3, recurrent_dropout=0.4,
                                            unroll=unroll)
        model = keras.Sequential([keras.Input((6, 3)), layer, keras.layers.Dense(2)])
        model.compile("adam", "mse")
        graph = model.trace_step("train", x, y.astype("float32"))
        loops = sum(node.op == "Scan" for node in graph.nodes)
        history = model.fit(x, y, epochs=3, batch_size=4, verbose=0).history["loss"]
        results.append((loops, history, model.get_weights()))
    (loops, h0, w0), (none, h1, w1) = results
    assert (loops, none) == (2, 0)
    np.testing.assert_allclose(h0, h1, rtol=1e-5)
    for a, b in zip(w0, w1):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_unrolling_a_loop_inside_a_loop_body():
    """`unroll_scans` (for TVM) unrolls a loop whose body holds another loop."""
    from kgraph.compiler.passes.scans import unroll_scans

    g = Graph("g")
    with tracing(g):
        x = g.placeholder("x", (3, 2, 4), "float32")

        def outer(carry, slices):
            (inner_sum,), _ = scan(lambda c, s: ([c[0] + s[0] * 2.0], []), [carry[0]],
                                   [slices[0]])
            return [ops.tanh(inner_sum)], [inner_sum]

        (last,), (ys,) = scan(outer, [ops.zeros((4,), dtype="float32")], [x])
        g.set_outputs({"last": last, "ys": ys})
    feeds = {"x": np.random.default_rng(14).normal(size=(3, 2, 4)).astype("float32")}
    want = compile_graph(g, "numpy").run(feeds)
    flat, _ = g.clone()
    flat = unroll_scans(flat)
    assert not any(node.op == "Scan" for node in flat.nodes)
    for got, expect in zip(compile_graph(flat, "numpy").run(feeds), want):
        np.testing.assert_allclose(got, expect, rtol=1e-6)
