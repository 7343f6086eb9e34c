"""`LSTMSequence` / `LSTMSequenceGrad` (runtime/native/lstm.cc): an LSTM's whole `Scan`, and
the reverse `Scan` of its gradient, emitted as one kgraph operator on onnxruntime
(kgraph/ops/lstm_gates.emit_sequence). Oracles: the Scan's own float64 numpy reference, the
standard emission of the same graph, and per-step loops over the LSTMGates references."""
import numpy as np
import pytest

from kgraph import keras, ops
from kgraph.compiler.autodiff import gradients
from kgraph.compiler.build import compile_graph
from kgraph.compiler.onnx.emit import emit
from kgraph.compiler.passes import optimize
from kgraph.ir.graph import Graph, tracing
from kgraph.ops.lstm_gates import _gates_grad_ref, _gates_ref, lstm_gates
from kgraph.ops.recurrence import scan
from kgraph.runtime import native_ops
from kgraph.runtime.onnx_exec import OrtCompiled
from native_steps import both_emissions, kgraph_session

needs_library = pytest.mark.skipif(not native_ops.available(),
                                   reason="kgraph's onnxruntime operators are not built")


# -- through the compiler: a Scan of LSTM steps and its gradient -------------------------------
def _lstm_graph(steps, rows, units, reverse, with_sequence_loss):
    """loss over an LSTM Scan (its last h and c, and with `with_sequence_loss` every step's
    h too) and its gradients w.r.t. the input products, the recurrent kernel and the initial
    carries."""
    rng = np.random.default_rng(steps * 100 + units)
    feeds = {"x": rng.standard_normal((steps, rows, 4 * units)),
             "r": rng.standard_normal((units, 4 * units)) * 0.4,
             "h0": rng.standard_normal((rows, units)) * 0.5,
             "c0": rng.standard_normal((rows, units)),
             "wy": rng.standard_normal((steps, rows, units))}
    feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
    g = Graph("lstm_scan")
    with tracing(g):
        x, r, h0, c0, wy = (g.placeholder(k, v.shape, "float32") for k, v in feeds.items())

        def step(carries, slices):
            h, c = lstm_gates(slices[0], ops.matmul(carries[0], r), carries[1])
            return [h, c], [h]

        (h, c), (hs,) = scan(step, [h0, c0], [x], reverse=reverse)
        loss = ops.sum(h * h) + ops.sum(c)
        if with_sequence_loss:
            loss = loss + ops.sum(hs * wy)
        grads = gradients(g, loss, [x, r, h0, c0])
        g.set_outputs(dict(zip(("loss", "gx", "gr", "gh0", "gc0"), [loss] + grads)))
    return optimize(g), feeds


@needs_library
@pytest.mark.parametrize("steps,rows,units", [(9, 64, 32), (5, 3, 5), (4, 1, 50),
                                              (3, 17, 8), (30, 40, 32)])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_sequence_loss", [False, True])
def test_lstm_loop_as_one_operator_matches_the_scan(steps, rows, units, reverse,
                                                    with_sequence_loss):
    graph, feeds = _lstm_graph(steps, rows, units, reverse, with_sequence_loss)
    native = emit(graph, native=True)
    assert native.op_types().count("kgraph.LSTMSequence") == 1
    assert native.op_types().count("kgraph.LSTMSequenceGrad") == 1
    assert "Scan" not in native.op_types()
    standard = emit(graph)
    assert standard.op_types().count("Scan") == 2 and not standard.domains
    got = OrtCompiled(native.to_bytes(), native=True).run_numpy(feeds)
    off = OrtCompiled(standard.to_bytes()).run_numpy(feeds)
    wide = {k: v.astype(np.float64) for k, v in feeds.items()}
    want = compile_graph(graph, "numpy").run(wide)  # the Scan's reference, float64
    for name, a, b, w in zip(("loss", "gx", "gr", "gh0", "gc0"), got, off, want):
        w = np.asarray(w)
        tol = 2e-5 * max(1.0, float(np.abs(w).max()))
        np.testing.assert_allclose(a, w, atol=tol, err_msg=name)
        np.testing.assert_allclose(b, w, atol=tol, err_msg=name)


@needs_library
def test_masked_lstm_keeps_its_scan_and_trains_the_same():
    """A mask makes the step select carries (Where): not the LSTM step the operator runs."""
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.Masking(0.0),
                              keras.layers.LSTM(4), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    x = np.zeros((4, 6, 3), "float32")
    graph = optimize(model.trace_step("train", x, np.zeros((4, 1), "float32")))
    types = emit(graph, native=True).op_types()
    assert "Scan" in types and "kgraph.LSTMSequence" not in types


@needs_library
def test_keras_lstm_layers_run_as_sequence_operators():
    """Bidirectional (a reversed loop), stacked, go_backwards: every loop is one operator."""
    model = keras.Sequential([
        keras.Input((7, 3)),
        keras.layers.Bidirectional(keras.layers.LSTM(5, return_sequences=True)),
        keras.layers.LSTM(6, go_backwards=True, return_sequences=True),
        keras.layers.LSTM(4), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    graph = optimize(model.trace_step("train", np.zeros((4, 7, 3), "float32"),
                                      np.zeros((4, 1), "float32")))
    types = emit(graph, native=True).op_types()
    assert types.count("kgraph.LSTMSequence") == 4
    assert types.count("kgraph.LSTMSequenceGrad") == 4
    assert "Scan" not in types
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((32, 7, 3)).astype("float32"), rng.standard_normal((32, 1))
    before = model.predict(x, verbose=0)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(model.get_weights()[0]).all()
    assert not np.allclose(model.predict(x, verbose=0), before)


@needs_library
def test_keras_lstm_biases_fold_into_the_sequence_operators():
    """Each loop adds its bias to the recurrent product (no Add over the (T, n, 4u) input
    products) and its gradient loop sums the bias gradient (no ReduceSum of dz); the train
    step's outputs match the standard emission's."""
    model = keras.Sequential([
        keras.Input((9, 3)),
        keras.layers.Bidirectional(keras.layers.LSTM(5, return_sequences=True)),
        keras.layers.LSTM(6), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((11, 9, 3)).astype(np.float32)
    y = rng.standard_normal((11, 1)).astype(np.float32)
    step = model.trace_step("train", x, y)
    native, got, want = both_emissions(step, optimize(step), dict(x_0=x, y_0=y))
    loops = [n for n in native.nodes if n[0] == "kgraph.LSTMSequence"]
    grads = [n for n in native.nodes if n[0] == "kgraph.LSTMSequenceGrad"]
    assert len(loops) == len(grads) == 3
    assert all(n[1][4].endswith("lstm_cell/bias") for n in loops)
    assert all(len(n[2]) == 4 for n in grads)
    dzs = {n[2][2] for n in grads}
    assert not any(n[0] == "ReduceSum" and n[1][0] in dzs for n in native.nodes)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# -- the kernels directly -------------------------------------------------------------------
_session = kgraph_session


def _forward_ref(x, r, h, c, reverse):
    steps = x.shape[0]
    outs = {k: [None] * steps for k in ("hs", "cs", "saved", "h_hist", "c_hist")}
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        outs["h_hist"][t], outs["c_hist"][t] = h, c
        h, c, saved = _gates_ref(x[t], h @ r, c)
        outs["hs"][t], outs["cs"][t], outs["saved"][t] = h, c, saved
    return [h, c] + [np.stack(outs[k]) for k in ("hs", "cs", "saved", "h_hist", "c_hist")]


def _backward_ref(saved, c_prev, r_t, dh, dc, dy, reverse):
    steps = saved.shape[0]
    dz = [None] * steps
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        dz[t], dc = _gates_grad_ref(dh if dy is None else dh + dy[t], dc, saved[t], c_prev[t])
        dh = dz[t] @ r_t
    return [dh, dc, np.stack(dz)]


@needs_library
@pytest.mark.parametrize("reverse", [0, 1])
def test_sequence_kernels_match_step_loops_with_outputs_and_dy_omitted(reverse):
    rng = np.random.default_rng(5)
    steps, rows, units = 6, 11, 7
    x = rng.standard_normal((steps, rows, 4 * units)).astype(np.float32)
    r = (rng.standard_normal((units, 4 * units)) * 0.4).astype(np.float32)
    h0, c0 = (rng.standard_normal((rows, units)).astype(np.float32) for _ in range(2))
    feeds = {"x": x, "r": r, "h0": h0, "c0": c0}
    want = _forward_ref(x.astype(np.float64), r.astype(np.float64), h0, c0, reverse)
    every = _session("LSTMSequence", list(feeds), [f"o{i}" for i in range(7)],
                     reverse=reverse).run(None, feeds)
    for k, (a, w) in enumerate(zip(every, want)):
        np.testing.assert_allclose(a, w, atol=2e-6, err_msg=f"output {k}")
    some = _session("LSTMSequence", list(feeds), ["", "", "hs", "", "saved"],
                    reverse=reverse).run(None, feeds)
    np.testing.assert_array_equal(some[0], every[2])
    np.testing.assert_array_equal(some[1], every[4])
    saved, c_prev = every[4], every[6]
    r_t = np.ascontiguousarray(r.T)
    dh, dc = (rng.standard_normal((rows, units)).astype(np.float32) for _ in range(2))
    dy = rng.standard_normal((steps, rows, units)).astype(np.float32)
    for with_dy in (True, False):
        grad_feeds = {"saved": saved, "c_prev": c_prev, "r_t": r_t, "dh": dh, "dc": dc}
        grad_feeds.update({"dy": dy} if with_dy else {})
        got = _session("LSTMSequenceGrad", list(grad_feeds), ["dh0", "dc0", "dz"],
                       reverse=1 - reverse).run(None, grad_feeds)
        want = _backward_ref(saved.astype(np.float64), c_prev, r_t, dh, dc,
                             dy if with_dy else None, 1 - reverse)
        for name, a, w in zip(("dh0", "dc0", "dz"), got, want):
            np.testing.assert_allclose(a, w, atol=1e-5, err_msg=f"{name}, dy={with_dy}")


@needs_library
@pytest.mark.parametrize("steps,rows,units", [(5, 11, 6), (20, 64, 32), (5, 3, 6)])
def test_sequence_kernels_take_the_bias_and_sum_its_gradient(steps, rows, units):
    """LSTMSequence(x, r, h0, c0, bias) is LSTMSequence(x + bias, ...); LSTMSequenceGrad's
    fourth output is dz summed over steps and rows, the same for any number of threads (20 x
    64 x 32 cells run on the pool)."""
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((steps, rows, 4 * units)).astype(np.float32)
    bias = rng.standard_normal(4 * units).astype(np.float32)
    r = (rng.standard_normal((units, 4 * units)) * 0.4).astype(np.float32)
    h0, c0 = (rng.standard_normal((rows, units)).astype(np.float32) for _ in range(2))
    outs = [f"o{i}" for i in range(7)]
    folded = _session("LSTMSequence", ["x", "r", "h0", "c0", "bias"], outs, reverse=0).run(
        None, {"x": x, "r": r, "h0": h0, "c0": c0, "bias": bias})
    added = _session("LSTMSequence", ["x", "r", "h0", "c0"], outs, reverse=0).run(
        None, {"x": x + bias, "r": r, "h0": h0, "c0": c0})
    for k, (a, b) in enumerate(zip(folded, added)):
        np.testing.assert_allclose(a, b, atol=2e-6, err_msg=f"output {k}")
    grad_feeds = {"saved": folded[4], "c_prev": folded[6], "r_t": np.ascontiguousarray(r.T),
                  "dh": h0, "dc": c0, "dy": rng.standard_normal((steps, rows, units)).astype(
                      np.float32)}
    sums = []
    for threads in (1, 2):
        dh0, dc0, dz, db = _session("LSTMSequenceGrad", list(grad_feeds),
                                    ["dh0", "dc0", "dz", "db"], threads=threads,
                                    reverse=1).run(None, grad_feeds)
        assert db.shape == (1, 1, 4 * units)
        np.testing.assert_allclose(db, dz.astype(np.float64).sum((0, 1), keepdims=True),
                                   rtol=1e-5, atol=1e-5)
        sums.append(db)
    np.testing.assert_array_equal(sums[0], sums[1])
    bad = {"x": x, "r": r, "h0": h0, "c0": c0, "bias": bias[:-1]}
    with pytest.raises(Exception, match=r"kgraph.LSTMSequence: a bias \(4u,\) expected"):
        _session("LSTMSequence", list(bad), ["h"], reverse=0).run(None, bad)


@needs_library
def test_sequence_kernel_with_no_steps_returns_the_initial_carries():
    rng = np.random.default_rng(2)
    h0, c0 = (rng.standard_normal((3, 4)).astype(np.float32) for _ in range(2))
    feeds = {"x": np.zeros((0, 3, 16), np.float32), "r": np.zeros((4, 16), np.float32),
             "h0": h0, "c0": c0}
    h, c, hs = _session("LSTMSequence", list(feeds), ["h", "c", "hs"],
                        reverse=0).run(None, feeds)
    np.testing.assert_array_equal(h, h0)
    np.testing.assert_array_equal(c, c0)
    assert hs.shape == (0, 3, 4)


@needs_library
def test_sequence_kernel_names_mismatched_shapes():
    feeds = {"x": np.zeros((2, 3, 16), np.float32), "r": np.zeros((4, 12), np.float32),
             "h0": np.zeros((3, 4), np.float32), "c0": np.zeros((3, 4), np.float32)}
    with pytest.raises(Exception, match=r"kgraph.LSTMSequence: x \(T, n, 4u\), r \(u, 4u\)"):
        _session("LSTMSequence", list(feeds), ["h"], reverse=0).run(None, feeds)
