"""What a graph computes from variables it does not update runs once, in a prologue, and again
only when those variables change (compiler/passes/split_variable_prologue.py)."""
import numpy as np

from kgraph import keras
from kgraph.compiler.build import compile_graph
from kgraph.compiler.passes import optimize
from kgraph.compiler.passes.split_variable_prologue import split_variable_prologue
from kgraph.ir.verify import verify
from kgraph.runtime.program import Program


def _cnn():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.BatchNormalization(), keras.layers.ReLU(),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    return model


def _x(n=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 8, 8, 3)).astype("float32")


def _feeds(graph, x):
    feeds = {v.node.attrs["name"]: var.numpy() for var, v in graph.variables.items()}
    feeds["x_0"] = x
    return feeds


def test_predict_graph_moves_kernel_layout_and_frozen_statistics_to_the_prologue():
    model = _cnn()
    graph = optimize(model.trace_step("predict", _x()))
    feeds = _feeds(graph, _x())
    want = compile_graph(graph, "numpy", optimized=True).run(feeds)
    prologue, main = split_variable_prologue(graph)
    verify(prologue)
    verify(main)
    assert {n.op for n in prologue.nodes} >= {"Transpose"}  # HWIO -> OIHW, once
    assert "x_0" not in prologue.input_names
    assert not any(n.op == "Transpose" and n.inputs[0].node.op == "Input" and
                   n.inputs[0].node.attrs["name"] != "x_0" for n in main.nodes)
    hoisted = compile_graph(prologue, "numpy", optimized=True).run(
        {k: v for k, v in feeds.items() if k in prologue.input_names})
    main_feeds = dict(feeds, **dict(zip(prologue.output_names, hoisted)))
    got = compile_graph(main, "numpy", optimized=True).run(main_feeds)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


def test_a_train_step_keeps_what_it_updates():
    model = _cnn()
    x = _x()
    graph = optimize(model.trace_step("train", x, np.zeros((3, 2), "float32")))
    prologue, main = split_variable_prologue(graph)
    updated = {v.node.attrs["name"] for var, v in graph.variables.items() if var in graph.updates}
    assert prologue is None or not (set(prologue.input_names) & updated)


def test_prologue_runs_once_then_again_only_when_weights_change(monkeypatch):
    model = _cnn()
    calls = []
    original = Program.__call__

    def counted(program, *arrays):
        calls.append(program.result_names[0])
        return original(program, *arrays)
    monkeypatch.setattr(Program, "__call__", counted)
    x = _x()
    first = model.predict_on_batch(x)
    model.predict_on_batch(x)
    prologue_calls = [c for c in calls if c.startswith("prologue_")]
    assert len(prologue_calls) == 1 and len(calls) == 3
    kernel = model.layers[0].kernel
    kernel.assign(kernel.numpy() * 2.0)  # a host write: the prologue must see it
    changed = model.predict_on_batch(x)
    assert not np.allclose(changed, first)
    model.fit(x, np.ones((3, 2), "float32"), epochs=1, verbose=0)  # device-side updates
    after_fit = model.predict_on_batch(x)
    assert not np.allclose(after_fit, changed)
    fresh = _cnn()
    fresh.set_weights(model.get_weights())
    fresh.layers[1].moving_mean.assign(model.layers[1].moving_mean.numpy())
    np.testing.assert_allclose(after_fit, fresh.predict_on_batch(x), rtol=1e-5, atol=1e-6)


def test_sessions_on_one_device_share_variable_buffers():
    model = _cnn()
    x = _x()
    model.predict_on_batch(x)
    kernel = model.layers[0].kernel
    before = kernel._device
    model.evaluate(x, np.zeros((3, 2), "float32"), verbose=0)  # another session
    model.predict_on_batch(x)
    assert kernel._device is before  # no round trip through the host between sessions


def test_a_gradient_tape_step_runs_no_prologue(monkeypatch):
    """The user's optimizer changes the weights between every two tape steps: a prologue
    would rerun each time, as one more executor call."""
    import kgraph as tf

    model = _cnn()
    optimizer = keras.optimizers.SGD(0.01)
    calls = []
    original = Program.__call__

    def counted(program, *arrays, **options):
        calls.append(program)
        return original(program, *arrays, **options)
    monkeypatch.setattr(Program, "__call__", counted)
    for seed in range(3):
        with tf.GradientTape() as tape:
            loss = tf.ops.mean(model(_x(seed=seed), training=True) ** 2)
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
    # gradients then the update on the first step; one fused call on each later step
    assert len(calls) == 4 and all(p.prologue is None for p in calls)
