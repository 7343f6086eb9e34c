"""kgraph's onnxruntime operators (runtime/native/ortops.cc, runtime/native_ops.py) and the IR
ops they run: MaxPoolGrad, LSTMGates / LSTMGatesGrad, Im2ColRows, AdamUpdate,
ScatterAddRows.

Oracles: each op's numpy reference (float64 for the LSTM arithmetic), its standard-ONNX
expansion run by onnxruntime, float64 finite differences for the gradient rules (first and
second order), and whole models trained with the operators on and off."""
import shutil

import numpy as np
import pytest

from kgraph import keras, ops
from kgraph.compiler.autodiff import gradients
from kgraph.compiler.build import compile_graph
from kgraph.compiler.onnx.emit import emit
from kgraph.compiler.passes import optimize
from kgraph.ir.graph import Graph, tracing
from kgraph.ops.conv_kernel_grad import _im2col_rows_ref, im2col_rows
from kgraph.ops.lstm_gates import _gates_grad_ref, _gates_ref, lstm_gates
from kgraph.ops.pool import _max_pool_grad_ref, _max_pool_ref
from kgraph.ops.registry import apply
from kgraph.runtime import native_ops
from kgraph.runtime.onnx_exec import OrtCompiled

from harness import numeric_gradient
from native_steps import both_emissions, kgraph_session

needs_library = pytest.mark.skipif(not native_ops.available(),
                                   reason="kgraph's onnxruntime operators are not built")


def test_the_library_is_built_where_a_compiler_is():
    """setup.py builds the library whenever a C++ compiler is on PATH: a silent build
    failure would otherwise leave every graph on the slower standard ops."""
    if not (shutil.which("c++") or shutil.which("g++")):
        pytest.skip("no C++ compiler on PATH: the install builds no library")
    path = native_ops.library_path()
    assert path is not None
    assert native_ops._loads(path)  # loads into this onnxruntime (KGRAPH_NATIVE_OPS aside)


def _graph(name, inputs, build):
    """A graph over float placeholders {name: array}, outputs {name: value} from `build`."""
    g = Graph(name)
    with tracing(g):
        values = {k: g.placeholder(k, a.shape, a.dtype.name) for k, a in inputs.items()}
        g.set_outputs(build(**values))
    return g


def _run_both(graph, feeds):
    """The graph on onnxruntime with kgraph's operators and with the standard expansion;
    asserts which one ran."""
    results = []
    for native in (True, False):
        emitted = emit(graph, native=native)
        assert any(op.startswith("kgraph.") for op in emitted.op_types()) == native
        compiled = OrtCompiled(emitted.to_bytes(), native=bool(emitted.domains))
        results.append(compiled.run_numpy(feeds))
    return results


# -- MaxPoolGrad --------------------------------------------------------------------------------
POOLS = [((2, 2), (2, 2), ((0, 0), (0, 0))), ((3, 3), (2, 2), ((0, 1), (1, 1))),
         ((2, 3), (1, 2), ((0, 0), (0, 0))), ((3, 3), (3, 3), ((1, 1), (1, 1)))]


@needs_library
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("shape", [(3, 5, 9, 10), (2, 4, 26, 26), (2, 3, 11, 11)])
def test_max_pool_grad_routes_to_the_first_maximum(channels_last, pool, shape):
    kernel, strides, pads = pool
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(0, 4, shape).astype(np.float32)  # small integers: many ties
    attrs = dict(kernel=kernel, strides=strides, pads=pads, channels_last=channels_last)
    y = _max_pool_ref(x, **attrs)
    g = rng.standard_normal(y.shape).astype(np.float32)
    graph = _graph("pool", {"g": g, "y": y, "x": x},
                   lambda g, y, x: {"dx": apply("MaxPoolGrad", g, y, x, **attrs)})
    want = _max_pool_grad_ref(g, y, x, **attrs)
    for (got,) in _run_both(graph, {"g": g, "y": y, "x": x}):
        np.testing.assert_allclose(got, want, atol=1e-6)


# -- LSTMGates --------------------------------------------------------------------------------
def _lstm_inputs(rows=5, units=6, scale=2.0, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    shapes = {"a": (rows, 4 * units), "b": (rows, 4 * units), "c": (rows, units),
              "dh": (rows, units), "dc": (rows, units)}
    return {k: (rng.standard_normal(s) * scale).astype(dtype) for k, s in shapes.items()}


@needs_library
@pytest.mark.parametrize("scale", [0.01, 1.0, 6.0, 60.0])  # tanh's series, its ratio, saturation
def test_lstm_gates_match_the_float64_reference(scale):
    feeds = _lstm_inputs(rows=64, units=70, scale=scale, dtype=np.float32)
    wide = {k: v.astype(np.float64) for k, v in feeds.items()}
    want = list(_gates_ref(wide["a"], wide["b"], wide["c"]))
    want += list(_gates_grad_ref(wide["dh"], wide["dc"], want[2], wide["c"]))

    def build(a, b, c, dh, dc):
        h, c_new, saved = apply("LSTMGates", a, b, c)
        dz, dc_prev = apply("LSTMGatesGrad", dh, dc, saved, c)
        return {"h": h, "c_new": c_new, "saved": saved, "dz": dz, "dc_prev": dc_prev}

    graph = _graph("gates", feeds, build)
    # in saturation σ'(z) = σ(1 - σ) and 1 - tanh² lose all digits to float32's rounding of
    # σ and tanh near 1 (in any float32 formulation): there only the outputs are compared
    names = ("h", "c", "gates", "dz", "dc") if scale < 10 else ("h", "c", "gates")
    for got in _run_both(graph, feeds):
        for name, g, w in zip(names, got, want):
            np.testing.assert_allclose(g, w, atol=3e-6 * max(1.0, scale), rtol=1e-5,
                                       err_msg=name)


def _lstm_loss_graph(second_order=False):
    """loss = Σ h w_h + Σ c' w_c over LSTMGates(a, b, c); its gradients (and, with
    `second_order`, the gradient of Σ (d loss/d a)² w.r.t. a, b and c)."""
    feeds = _lstm_inputs(rows=2, units=3, scale=1.5, seed=3)
    feeds = {"a": feeds["a"], "b": feeds["b"], "c": feeds["c"], "wh": feeds["dh"],
             "wc": feeds["dc"]}
    g = Graph("lstm_loss")
    with tracing(g):
        a, b, c, wh, wc = (g.placeholder(k, v.shape, "float64") for k, v in feeds.items())
        h, c_new = lstm_gates(a, b, c)
        loss = ops.sum(h * wh) + ops.sum(c_new * wc)
        ga, gb, gc = gradients(g, loss, [a, b, c])
        outputs = {"loss": loss, "ga": ga, "gb": gb, "gc": gc}
        if second_order:
            outputs.update(zip(("gga", "ggb", "ggc"), gradients(g, ops.sum(ga * ga), [a, b, c])))
        g.set_outputs(outputs)
    return g, feeds


def _run(graph, target, feeds):
    compiled = compile_graph(graph, target)
    return [np.asarray(compiled.to_numpy(v)) for v in compiled.run(feeds)]


def test_lstm_gates_gradient_matches_finite_differences():
    graph, feeds = _lstm_loss_graph()
    _, ga, gb, gc = _run(graph, "numpy", feeds)
    f = lambda fd: float(_run(graph, "numpy", fd)[0])  # noqa: E731
    np.testing.assert_allclose(ga, gb)  # z = a + b
    for name, got in (("a", ga), ("c", gc)):
        np.testing.assert_allclose(got, numeric_gradient(f, feeds, name), atol=1e-7)


def test_lstm_gates_second_order_gradient_matches_finite_differences():
    """LSTMGatesGrad's own gradient is its expansion's, traced while differentiating."""
    graph, feeds = _lstm_loss_graph(second_order=True)
    got = _run(graph, "numpy", feeds)[4:]
    first, _ = _lstm_loss_graph()
    f = lambda fd: float(np.sum(_run(first, "numpy", fd)[1] ** 2))  # noqa: E731
    for name, g in zip("abc", got):
        np.testing.assert_allclose(g, numeric_gradient(f, feeds, name), rtol=1e-5,
                                   atol=1e-7, err_msg=name)
    onnx_got = _run(graph, "onnxruntime", feeds)[4:]  # float64: the standard expansion
    for g, w in zip(onnx_got, got):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_lstm_gates_reject_mismatched_shapes():
    g = Graph("bad")
    with tracing(g):
        a = g.placeholder("a", (2, 12), "float32")
        c = g.placeholder("c", (2, 4), "float32")
        with pytest.raises(ValueError, match=r"LSTMGates takes gate inputs.*\(n, 4 units\)"):
            lstm_gates(a, a, c)


# -- Im2ColRows --------------------------------------------------------------------------------
@needs_library
@pytest.mark.parametrize("window,strides,dilations,pads", [
    ((3, 3), (1, 1), (1, 1), ((0, 0), (0, 0))), ((3, 3), (2, 2), (1, 1), ((1, 1), (1, 1))),
    ((2, 3), (1, 2), (2, 1), ((0, 1), (2, 0))), ((1, 1), (1, 1), (1, 1), ((0, 0), (0, 0)))])
def test_im2col_rows_match_the_reference(window, strides, dilations, pads):
    x = np.random.default_rng(0).standard_normal((3, 4, 9, 8)).astype(np.float32)
    sizes = tuple((n + lo + hi - (k - 1) * d - 1) // s + 1 for n, (lo, hi), k, d, s in
                  zip(x.shape[2:], pads, window, dilations, strides))
    attrs = dict(window=window, strides=strides, dilations=dilations, pads=pads, sizes=sizes)
    want = _im2col_rows_ref(x, **attrs)
    assert want.shape == (np.prod(window) * 4, 3 * np.prod(sizes))
    graph = _graph("im2col", {"x": x}, lambda x: {"rows": apply("Im2ColRows", x, **attrs)})
    for (got,) in _run_both(graph, {"x": x}):
        np.testing.assert_array_equal(got, want)
    expanded = _graph("im2col", {"x": x}, lambda x: {"rows": im2col_rows(x, **attrs)})
    np.testing.assert_array_equal(_run(expanded, "numpy", {"x": x})[0], want)


def test_im2col_rows_gradient_is_the_adjoint_of_the_cut():
    """<rows(x), r> = <x, rows^T(r)>: the gradient of Σ rows * r w.r.t. x."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 6))
    attrs = dict(window=(2, 3), strides=(2, 1), dilations=(1, 1), pads=((1, 0), (1, 1)),
                 sizes=(3, 6))
    r = rng.standard_normal(_im2col_rows_ref(x, **attrs).shape)
    g = Graph("adjoint")
    with tracing(g):
        xv = g.placeholder("x", x.shape, "float64")
        rv = g.placeholder("r", r.shape, "float64")
        loss = ops.sum(apply("Im2ColRows", xv, **attrs) * rv)
        (gx,) = gradients(g, loss, [xv])
        g.set_outputs({"loss": loss, "gx": gx})
    loss, gx = _run(g, "numpy", {"x": x, "r": r})
    np.testing.assert_allclose(float(np.sum(x * gx)), float(loss), rtol=1e-12)
    f = lambda fd: float(_run(g, "numpy", fd)[0])  # noqa: E731
    np.testing.assert_allclose(gx, numeric_gradient(f, {"x": x, "r": r}, "x"), atol=1e-7)


# -- whole models, operators on and off ------------------------------------------------------
def _train(build, x, y, native, monkeypatch):
    monkeypatch.setenv("KGRAPH_NATIVE_OPS", "1" if native else "0")
    keras.utils.set_random_seed(7)
    model = build()
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    return history.history["loss"], [w.copy() for w in model.get_weights()]


def _cnn():
    return keras.Sequential([
        keras.Input((12, 12, 2)), keras.layers.Conv2D(6, 3, activation="relu"),
        keras.layers.MaxPooling2D(2), keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.MaxPooling2D(2), keras.layers.Flatten(), keras.layers.Dense(1)])


def _lstm():
    return keras.Sequential([keras.Input((7, 3)),
                             keras.layers.Bidirectional(keras.layers.LSTM(5, return_sequences=True)),
                             keras.layers.LSTM(4), keras.layers.Dense(1)])


def _attention():
    tokens = keras.Input((6, 4))
    x = keras.layers.MultiHeadAttention(2, 3)(tokens, tokens)
    x = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(tokens, keras.layers.Dense(1)(x))


@needs_library
@pytest.mark.parametrize("build,shape", [(_cnn, (12, 12, 2)), (_lstm, (7, 3)),
                                         (_attention, (6, 4))])
def test_models_train_the_same_with_and_without_the_operators(build, shape, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48,) + shape).astype(np.float32)
    y = rng.standard_normal((48, 1)).astype(np.float32)
    on_loss, on_weights = _train(build, x, y, True, monkeypatch)
    off_loss, off_weights = _train(build, x, y, False, monkeypatch)
    np.testing.assert_allclose(on_loss, off_loss, rtol=1e-4)
    # atol: the attention's key bias has a zero gradient up to rounding (a softmax ignores a
    # constant added to every score), so it drifts by 1e-5 differently with each kernel
    for a, b in zip(on_weights, off_weights):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@needs_library
def test_cnn_step_cuts_windows_with_the_operator_and_pools_channels_first():
    """With the operators, both layers' kernel gradients are one Conv2DKernelGrad each, the
    first layer's (few input channels) too (no Im2ColRows, no Slices), and both pooling
    gradients run channels first, the second one too although its window does not tile its
    3x3 input: the operator takes any channels-first shape, so no data-sized Transpose stays
    around it."""
    model = _cnn()
    model.compile("adam", "mse")
    graph = optimize(model.trace_step("train", np.zeros((4, 12, 12, 2), "float32"),
                                      np.zeros((4, 1), "float32")))
    ops_ = [n.op for n in graph.nodes]
    assert ops_.count("Im2ColRows") == 0 and ops_.count("Conv2DKernelGrad") == 2
    assert "Slice" not in ops_
    pools = [n for n in graph.nodes if n.op == "MaxPoolGrad"]
    assert len(pools) == 2 and not any(n.attrs["channels_last"] for n in pools)
    # what stays transposed: the input and kernels, the dense gradient, the kernel gradients
    # (to Keras' layout), the cut windows; never a convolution's or pooling's forward output,
    # nor a pooling gradient's input or output
    sources = {n.inputs[0].node.op for n in graph.nodes if n.op == "Transpose"}
    assert sources <= {"Input", "Reshape", "Conv2DKernelGrad"}, sources


@needs_library
def test_the_operators_are_only_in_graphs_for_this_process_onnxruntime():
    """Exported ONNX and TVM get the standard expansion of the same graph."""
    model = _lstm()
    model.compile("adam", "mse")
    graph = model.trace_step("train", np.zeros((4, 7, 3), "float32"),
                             np.zeros((4, 1), "float32"))
    assert "LSTMGates" in {n.op for body in _bodies(graph) for n in body.nodes}
    native, standard = emit(graph, native=True), emit(graph)
    assert native.domains == {"kgraph"} and not standard.domains
    assert native.direct_bytes() == native.to_proto().SerializeToString()


def _bodies(graph):
    return [n.attrs["body"] for n in graph.nodes if n.op == "Scan"]


def test_switched_off_the_graphs_keep_the_standard_ops(monkeypatch):
    monkeypatch.setenv("KGRAPH_NATIVE_OPS", "0")
    assert not native_ops.available()
    model = _lstm()
    model.compile("adam", "mse")
    graph = model.trace_step("train", np.zeros((4, 7, 3), "float32"),
                             np.zeros((4, 1), "float32"))
    assert not any(n.op.startswith("LSTMGates") for body in _bodies(graph) for n in body.nodes)


# -- AdamUpdate --------------------------------------------------------------------------------
@needs_library
def test_adam_update_equals_the_separate_ops_bit_for_bit():
    from kgraph.ops.adam_update import _ref, adam_update

    rng = np.random.default_rng(4)
    shape = (300, 70)  # more than one thread-pool block
    feeds = {k: rng.standard_normal(shape).astype(np.float32) for k in ("var", "g", "m")}
    feeds["v"] = np.abs(rng.standard_normal(shape)).astype(np.float32)
    feeds["alpha"] = np.float32(3e-3)
    hyper = dict(beta_1=0.9, beta_2=0.999, epsilon=1e-7)

    def build(var, g, m, v, alpha):
        return dict(zip(("var_new", "m_new", "v_new"), adam_update(var, g, m, v, alpha, **hyper)))

    graph = _graph("adam", feeds, build)
    want = _ref(*(feeds[k] for k in ("var", "g", "m", "v", "alpha")), decay_m=1 - 0.9,
                decay_v=1 - 0.999, epsilon=1e-7)
    for got in _run_both(graph, feeds):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


@needs_library
def test_adam_trains_bit_for_bit_as_without_the_operators(monkeypatch):
    def train(native):
        monkeypatch.setenv("KGRAPH_NATIVE_OPS", "1" if native else "0")
        keras.utils.set_random_seed(3)
        # no softmax: its operators compute it otherwise (equal to float rounding, not bits)
        model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(32, activation="relu"),
                                  keras.layers.Dense(3)])
        model.compile("adam", "mse")
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((256, 20)).astype("float32"), rng.normal(size=(256, 3))
        model.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False)
        return model.get_weights() + [v.numpy() for v in model.optimizer.variables]

    for a, b in zip(train(True), train(False)):
        np.testing.assert_array_equal(a, b)


# -- ScatterAddRows (and the standard scatter-add it replaces) --------------------------------
def _scatter_case(n=4096, rows=1000, width=64, seed=0):
    """An embedding's gradient at the transformer benchmark's size: every row repeats ~4
    times, where onnxruntime's multithreaded ScatterND "add" lost rows."""
    rng = np.random.default_rng(seed)
    updates = rng.standard_normal((n // 64, 64, width)).astype(np.float32)
    indices = rng.integers(-rows, rows, (n // 64, 64))  # negative ones count from the end
    want = np.zeros((rows, width), np.float64)
    np.add.at(want, indices % rows, updates.astype(np.float64))
    graph = _graph("scatter", {"u": updates},
                   lambda u: {"y": apply("ScatterAdd", u, indices, np.array([rows, width]),
                                         shape=(rows, width))})
    return graph, {"u": updates}, want


@pytest.mark.parametrize("native", [True, False])
def test_scatter_add_is_exact_and_repeatable_on_onnxruntime(native):
    """Both emissions sum each row's updates in index order, on any number of threads:
    the same bits on every run, equal to np.add.at up to float32 rounding."""
    if native and not native_ops.available():
        pytest.skip("kgraph's onnxruntime operators are not built")
    graph, feeds, want = _scatter_case()
    emitted = emit(graph, native=native)
    assert ("kgraph.ScatterAddRows" in emitted.op_types()) == native
    assert "ScatterND" not in emitted.op_types()
    compiled = OrtCompiled(emitted.to_bytes(), native=native)
    runs = [compiled.run_numpy(feeds)[0] for _ in range(5)]
    for run in runs[1:]:
        np.testing.assert_array_equal(run, runs[0])
    np.testing.assert_allclose(runs[0], want, rtol=1e-5, atol=1e-5)


def test_scatter_add_standard_emission_runs_on_tvm():
    pytest.importorskip("tvm")
    graph, feeds, want = _scatter_case(n=512, rows=50, width=8)
    np.testing.assert_allclose(_run(graph, "tvm", feeds)[0], want, rtol=1e-5, atol=1e-5)


@needs_library
def test_scatter_add_rows_names_the_bad_index():
    graph = _graph("scatter", {"u": np.ones((2, 3), np.float32)},
                   lambda u: {"y": apply("ScatterAdd", u, np.array([0, 7]), np.array([4, 3]),
                                         shape=(4, 3))})
    compiled = OrtCompiled(emit(graph, native=True).to_bytes(), native=True)
    with pytest.raises(Exception, match="index 7 is out of range for 4 rows"):
        compiled.run_numpy({"u": np.ones((2, 3), np.float32)})


# -- ReluGrad ----------------------------------------------------------------------------------
def test_relu_grad_rejects_a_gradient_of_another_shape():
    g = Graph("bad")
    with tracing(g):
        y = g.placeholder("y", (2, 3), "float32")
        with pytest.raises(ValueError, match=r"ReluGrad: the gradient .* like the ReLU output"):
            apply("ReluGrad", g.placeholder("g", (2, 1), "float32"), y)


@needs_library
def test_relu_grad_operator_names_mismatched_shapes():
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from kgraph.runtime.onnx_exec import _session_options

    info = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, None)  # noqa: E731
    node = helper.make_node("ReluGrad", ["g", "y"], ["dx"], domain="kgraph")
    model = helper.make_model(helper.make_graph([node], "relu_grad", [info("g"), info("y")],
                                                [info("dx")]),
                              opset_imports=[helper.make_opsetid("", 18),
                                             helper.make_opsetid("kgraph", 1)])
    session = ort.InferenceSession(model.SerializeToString(), _session_options(native=True))
    y = np.array([[1.0, -2.0, 0.0]], "float32")
    got = session.run(None, {"g": np.full_like(y, 3.0), "y": y})[0]
    np.testing.assert_array_equal(got, [[3.0, 0.0, 0.0]])
    with pytest.raises(Exception, match=r"kgraph.ReluGrad: a gradient of the ReLU output's shape"):
        session.run(None, {"g": np.ones((1, 1), "float32"), "y": y})


@needs_library
@pytest.mark.parametrize("shape", [(128, 256), (5, 3), (2, 700, 24), (3, 1)])
def test_relu_grad_sums_its_rows_the_same_on_any_thread_count(shape):
    """ReluGrad's optional output: the gradient summed over every axis but the last,
    keepdims (a Dense's bias gradient), in chunk order whatever the threads."""
    rng = np.random.default_rng(len(shape))
    g, y = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    runs = [kgraph_session("ReluGrad", ["g", "y"], ["dx", "db"], threads=threads).run(
        None, {"g": g, "y": y}) for threads in (1, 2)]
    want = g * (y > 0)
    for dx, db in runs:
        np.testing.assert_array_equal(dx, want)
        assert db.shape == (1,) * (len(shape) - 1) + shape[-1:]
        np.testing.assert_allclose(db, want.astype(np.float64).sum(
            tuple(range(len(shape) - 1)), keepdims=True), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


@needs_library
def test_dense_bias_gradients_come_from_the_relu_gradients():
    """In a native train step, the ReduceSum giving a Dense+ReLU layer's bias gradient is the
    ReluGrad's second output; the step's outputs match the standard emission's."""
    model = keras.Sequential([keras.Input((7,)), keras.layers.Dense(9, activation="relu"),
                              keras.layers.Dense(5, activation="relu"), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((6, 7)).astype(np.float32), rng.standard_normal((6, 1))
    y = y.astype(np.float32)
    step = model.trace_step("train", x, y)
    native, got, want = both_emissions(step, optimize(step), dict(x_0=x, y_0=y))
    grads = [n for n in native.nodes if n[0] == "kgraph.ReluGrad"]
    assert len(grads) == 2 and all(len(n[2]) == 2 for n in grads)
    made = {n[2][0] for n in grads}
    assert not any(n[0] == "ReduceSum" and n[1][0] in made for n in native.nodes)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# -- RandomUniformLike, BatchTranspose ------------------------------------------------------------
@needs_library
def test_dropout_noise_and_layout_changes_run_natively_with_the_standard_bits():
    """A channels-last CNN with Dropout after its Flatten: the noise is kgraph's
    RandomUniformLike and the layout changes around the Flatten are BatchTransposes (no
    Transpose of activations, no hash of elementwise ops); the train step's outputs equal the
    standard emission's (the same units dropped: the convolutions round differently)."""
    model = keras.Sequential([keras.Input((10, 10, 3)),
                              keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                              keras.layers.Dropout(0.5), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 10, 10, 3)).astype(np.float32)
    y = rng.standard_normal((4, 2)).astype(np.float32)
    step = model.trace_step("train", x, y)
    native, got, want = both_emissions(step, optimize(step), dict(
        x_0=x, y_0=y, rng_key=np.array(2**32 - 3, np.uint32)))
    ops_ = native.op_types()
    assert {"kgraph.RandomUniformLike", "kgraph.BatchTranspose"} <= set(ops_)
    assert not {"BitwiseXor", "BitShift"} & set(ops_)
    assert all(list(n[3]["perm"]) in ([3, 2, 0, 1], [2, 3, 1, 0], [1, 0])
               for n in native.nodes if n[0] == "Transpose")  # kernels and 2-D products only
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# -- LayerNorm, LayerNormGrad --------------------------------------------------------------------
@needs_library
def test_keras_layer_normalization_runs_as_one_operator_each_way():
    """A LayerNormalization over the last axis is kgraph.LayerNorm forward and one
    kgraph.LayerNormGrad backward (no ReduceMean, Sqrt or Div chains); the train step's
    outputs match the standard emission's, which expands both. Over other axes, or without
    its offset, the layer keeps the decomposition."""
    model = keras.Sequential([keras.Input((6, 8)), keras.layers.Dense(8),
                              keras.layers.LayerNormalization(),
                              keras.layers.LayerNormalization(axis=[1, 2]),
                              keras.layers.LayerNormalization(center=False),
                              keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    rng = np.random.default_rng(4)
    x = (3.0 + rng.standard_normal((5, 6, 8))).astype(np.float32)
    y = rng.standard_normal((5, 1)).astype(np.float32)
    step = model.trace_step("train", x, y)
    native, got, want = both_emissions(step, optimize(step), dict(x_0=x, y_0=y))
    ops_ = native.op_types()
    assert ops_.count("kgraph.LayerNorm") == 1 and ops_.count("kgraph.LayerNormGrad") == 1
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
