"""Compile once: the structural graph key, the bounded compile cache, programs shared across
same-architecture models, the GradientTape loop that compiles nothing after its first batch,
and the eager-call / Sequential.add caches that used to go stale."""
import gc
import os
import subprocess
import sys
import weakref

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras, ops
from kgraph.compiler import build
from kgraph.compiler.graph_key import graph_key, static_key
from kgraph.compiler.program import trace_graph

WORK = ("traces", "autodiffs", "optimizations", "emissions", "compilations")


def work_since(before):
    now = build.stats()
    return {k: now.get(k, 0) - before.get(k, 0) for k in WORK}


def traced(name="g", constant=None, axis=-1, feed="x"):
    constant = np.ones(1500, "f4") if constant is None else constant

    def fn(x):
        return {"y": ops.sum(x * constant, axis=axis)}
    return trace_graph(name, [(feed, (None, 1500), "float32")], fn)


# -- the key ------------------------------------------------------------------------------
def test_graph_key_ignores_graph_name_and_node_ids():
    first, second = traced("first"), traced("second")
    for node in second.nodes:  # ids as if traced in a busier graph
        node.id += 1000
    assert graph_key(first) == graph_key(second)


def test_graph_key_sees_every_constant_element_attribute_and_feed_name():
    base = np.ones(1500, "f4")
    changed = base.copy()
    changed[750] = 2.0  # numpy's repr of both arrays is the same abbreviated text
    assert repr(base) == repr(changed)
    assert graph_key(traced(constant=base)) != graph_key(traced(constant=changed))
    assert graph_key(traced(constant=base)) != graph_key(traced(constant=base[None]))
    assert graph_key(traced(axis=-1)) != graph_key(traced(axis=0))
    assert graph_key(traced(feed="x")) != graph_key(traced(feed="z"))


def test_static_key_keys_arrays_by_content():
    a = np.zeros((40, 40), bool)
    b = a.copy()
    b[20, 20] = True
    assert static_key({"mask": a}) != static_key({"mask": b})
    assert static_key({"mask": a}) == static_key({"mask": a.copy()})
    assert static_key(1) != static_key(1.0) != static_key(True)


def test_variable_names_are_left_out_only_when_asked():
    def model_graph(layer_name):
        layer = keras.layers.Dense(3, name=layer_name)
        layer.build((None, 4))
        return trace_graph("m", [("x", (None, 4), "float32")], lambda x: {"y": layer(x)})

    a, b = model_graph("alpha"), model_graph("beta")
    assert graph_key(a) != graph_key(b)
    assert graph_key(a, variable_names=False) == graph_key(b, variable_names=False)


# -- the cache ----------------------------------------------------------------------------
def test_a_hit_does_not_optimise_emit_or_compile():
    build.compile_graph(traced())
    before = build.stats()
    build.compile_graph(traced())
    assert work_since(before) == {"traces": 1, "autodiffs": 0, "optimizations": 0,
                                  "emissions": 0, "compilations": 0}
    assert build.stats()["cache_hits"] > before.get("cache_hits", 0)


def test_the_cache_is_bounded_and_evicted_sessions_are_freed():
    old = build.set_cache_capacity(2)
    try:
        first = build.compile_graph(traced(constant=np.full(1500, 1.0, "f4")))
        ref = weakref.ref(first)
        x = np.ones((2, 1500), "f4")
        np.testing.assert_allclose(first.to_numpy(first.run({"x": x})[0]), [1500.0, 1500.0])
        del first
        for value in (2.0, 3.0):
            build.compile_graph(traced(constant=np.full(1500, value, "f4")))
        assert build.cache_size() == 2
        gc.collect()
        assert ref() is None, "an evicted session nobody holds must be freed"
    finally:
        build.set_cache_capacity(old)


def test_cache_capacity_comes_from_the_environment_and_is_checked():
    code = "from kgraph.compiler import build; print(build._CACHE.capacity)"
    env = dict(os.environ, KGRAPH_COMPILE_CACHE_SIZE="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "3", out.stderr
    for bad in ("0", "-1", "lots", 2.5):
        with pytest.raises(ValueError, match="Received: capacity="):
            build.set_cache_capacity(bad)


def mlp(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu"),
                             keras.layers.Dense(3)])


def numpy_mlp(model, x):
    k1, b1, k2, b2 = model.get_weights()
    return np.maximum(x @ k1 + b1, 0) @ k2 + b2


def test_same_architecture_models_share_one_compiled_session():
    first, second = mlp(0), mlp(1)  # layer names dense_N vs dense_M: different weight paths
    assert first.layers[0].kernel.path != second.layers[0].kernel.path
    x = np.random.default_rng(0).normal(size=(7, 6)).astype("f4")
    want_first, want_second = numpy_mlp(first, x), numpy_mlp(second, x)
    np.testing.assert_allclose(first.predict(x, verbose=0), want_first, rtol=1e-5, atol=1e-6)
    before = build.stats()
    np.testing.assert_allclose(second.predict(x, verbose=0), want_second, rtol=1e-5, atol=1e-6)
    assert work_since(before)["compilations"] == 0
    programs = [next(iter(m._programs.values())) for m in (first, second)]
    assert programs[0].compiled is programs[1].compiled
    np.testing.assert_allclose(first.predict(x, verbose=0), want_first, rtol=1e-5, atol=1e-6)


# -- GradientTape ---------------------------------------------------------------------------
def tape_step(model, optimizer, x, y):
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.ops.square(model(x, training=True) - y))
    grads = tape.gradient(loss, model.trainable_weights)
    optimizer.apply_gradients(zip(grads, model.trainable_weights))
    return loss, grads


def linear_gradients(kernel, bias, x, y):
    """d/d(kernel, bias) of mean((x @ kernel + bias - y) ** 2), in float64."""
    err = x.astype("f8") @ kernel + bias - y
    scale = 2.0 / err.size
    return scale * x.T.astype("f8") @ err, scale * err.sum(axis=0)


def test_second_tape_iteration_compiles_nothing_and_runs_no_autodiff():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(0.1)
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(8, 4)).astype("f4"), rng.normal(size=(8, 2)).astype("f4"))
               for _ in range(4)]
    tape_step(model, optimizer, *batches[0])
    before = build.stats()
    for x, y in batches[1:]:
        kernel, bias = (w.astype("f8") for w in model.get_weights())
        loss, (g_kernel, g_bias) = tape_step(model, optimizer, x, y)
        want_kernel, want_bias = linear_gradients(kernel, bias, x, y)
        np.testing.assert_allclose(g_kernel, want_kernel, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(g_bias, want_bias, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(float(loss), np.mean((x @ kernel + bias - y) ** 2), rtol=1e-5)
        np.testing.assert_allclose(model.get_weights()[0], kernel - 0.1 * want_kernel,
                                   rtol=1e-4, atol=1e-6)
    assert work_since(before) == dict.fromkeys(WORK, 0)


def test_tape_recompiles_once_for_a_new_batch_size_and_stays_correct():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(0.0)
    rng = np.random.default_rng(1)
    tape_step(model, optimizer, rng.normal(size=(8, 4)).astype("f4"),
              rng.normal(size=(8, 2)).astype("f4"))
    before = build.stats()
    for _ in range(2):
        x, y = rng.normal(size=(3, 4)).astype("f4"), rng.normal(size=(3, 2)).astype("f4")
        _, grads = tape_step(model, optimizer, x, y)
        want = linear_gradients(*(w.astype("f8") for w in model.get_weights()), x, y)
        for got, expected in zip(grads, want):
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert work_since(before)["autodiffs"] == 1


def test_tape_unconnected_sources_and_output_gradients():
    w = tf.Variable(np.array([1.0, 2.0], "f4"))
    unused = tf.Variable(np.zeros(3, "f4"))
    for _ in range(2):  # the second pass runs the cached program
        with tf.GradientTape(persistent=True) as tape:
            y = w * w
        none, zero = (tape.gradient(y, [w, unused], unconnected_gradients=mode)
                      for mode in ("none", "zero"))
        assert none[1] is None
        np.testing.assert_array_equal(zero[1], np.zeros(3, "f4"))
        np.testing.assert_allclose(none[0], 2 * w.numpy())
        weighted = tape.gradient(y, w, output_gradients=np.array([3.0, -1.0], "f4"))
        np.testing.assert_allclose(weighted, [6.0, -4.0])
    with pytest.raises(ValueError, match="unconnected_gradients="):
        with tf.GradientTape() as tape:
            y = w * w
        tape.gradient(y, w, unconnected_gradients="maybe")


def test_cached_tape_program_draws_fresh_dropout_masks():
    keras.utils.set_random_seed(0)
    dropout = keras.layers.Dropout(0.5)
    w = tf.Variable(np.ones((1, 64), "f4"))
    x = np.ones((4, 64), "f4")
    before = build.stats()
    grads = []
    for _ in range(3):
        with tf.GradientTape() as tape:
            y = keras.ops.sum(dropout(w * x, training=True))
        grads.append(tape.gradient(y, w))
    assert work_since(before)["autodiffs"] == 1
    for g in grads:  # each entry: 2 (the 1/(1-rate) scale) times the kept count of a column
        assert set(np.unique(g)) <= {2.0 * k for k in range(5)}
    assert not np.array_equal(grads[0], grads[1]) and not np.array_equal(grads[1], grads[2])


def test_apply_gradients_with_numpy_gradients_reuses_its_program():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(0.5)
    grads = [np.ones(w.shape, "f4") for w in model.trainable_weights]
    optimizer.apply_gradients(zip(grads, model.trainable_weights))
    start = model.get_weights()
    before = build.stats()
    for _ in range(3):
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
    assert work_since(before) == dict.fromkeys(WORK, 0)
    for got, was in zip(model.get_weights(), start):
        np.testing.assert_allclose(got, was - 1.5, rtol=1e-6)


# -- eager calls and Sequential.add ---------------------------------------------------------
def masked_softmax(x, mask):
    e = np.exp(x - x.max(axis=-1, keepdims=True)) * mask
    return e / e.sum(axis=-1, keepdims=True)


def test_eager_call_with_a_new_large_mask_uses_that_mask():
    x = np.random.default_rng(0).normal(size=(4, 300)).astype("f4")
    full = np.ones((4, 300), bool)
    holed = full.copy()
    holed[:, 100:200] = False  # same abbreviated repr as `full`
    layer = keras.layers.Softmax()
    before = build.stats()
    for mask in (full, holed, full):
        np.testing.assert_allclose(layer(x, mask=mask), masked_softmax(x, mask), rtol=1e-5,
                                   atol=1e-7)
    assert work_since(before)["traces"] == 1, "a mask is fed: a new one compiles nothing"


def test_sequential_after_many_adds_has_one_call_per_layer_and_predicts():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,))])
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("f4")
    widths = [3, 6, 2, 5]
    for i, width in enumerate(widths):
        model.add(keras.layers.Dense(width, activation="tanh"))
        want = x
        for layer in model.layers:
            kernel, bias = layer.get_weights()
            want = np.tanh(want @ kernel + bias)
        np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model(x), want, rtol=1e-5, atol=1e-6)
    for layer, width, before in zip(model.layers, widths, [4] + widths):
        assert layer.output.shape == (None, width)
        assert layer.input.shape == (None, before)
    model.pop()
    assert model.layers[-1].output.shape == (None, 2)
    assert model.predict(x, verbose=0).shape == (5, 2)
    model.add(keras.layers.Dense(7))
    assert model.predict(x, verbose=0).shape == (5, 7)
    assert model.layers[-2].output is model.layers[-1].input


def test_a_discarded_model_frees_its_sessions_and_a_plain_session_still_opens(tmp_path):
    import onnxruntime as ort

    model = mlp(7)
    x = np.ones((2, 6), "f4")
    model.predict(x, verbose=0)
    session = weakref.ref(next(iter(model._programs.values())).compiled)
    model.export(str(tmp_path / "m.onnx"), format="onnx")
    del model
    gc.collect()
    assert session() is None, "a session only the discarded model held must be freed"
    # kgraph leaves onnxruntime usable as users use it (no process-wide pool forced on them)
    plain = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert plain.run(None, {plain.get_inputs()[0].name: x})[0].shape == (2, 3)


def test_gc_is_paused_while_compiling_and_restored_after(monkeypatch):
    import gc

    from kgraph.compiler import build as cbuild

    seen = []
    original = cbuild.compile_graph

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return original(*args, **kwargs)

    monkeypatch.setattr("kgraph.compiler.program.compile_graph", spy)
    assert gc.isenabled()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="gc_probe")])
    model.predict_on_batch(np.ones((1, 3), "f4"))
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        with cbuild.gc_paused():
            with cbuild.gc_paused():
                pass
        assert not gc.isenabled()  # was off before: stays off
    finally:
        gc.enable()


def test_onnxruntime_optimization_level_policy_and_override(monkeypatch):
    from kgraph.config import ConfigWarning
    from kgraph.runtime.onnx_exec import (LARGE_GRAPH_NODES, RECURRENT_GRAPH_NODES,
                                          optimization_level)

    monkeypatch.delenv("KGRAPH_ORT_OPTIMIZATION", raising=False)
    assert optimization_level(["MatMul", "Add"] * 10) == "all"
    assert optimization_level(["Conv"] + ["Add"] * RECURRENT_GRAPH_NODES) == "all"
    assert optimization_level(["Gemm"] * (RECURRENT_GRAPH_NODES + 1)) == "basic"
    assert optimization_level(["Gemm"] * (LARGE_GRAPH_NODES + 1)) == "disable"
    monkeypatch.setenv("KGRAPH_ORT_OPTIMIZATION", "extended")
    assert optimization_level(["Gemm"]) == "extended"
    monkeypatch.setenv("KGRAPH_ORT_OPTIMIZATION", "fastest")
    with pytest.warns(ConfigWarning, match="KGRAPH_ORT_OPTIMIZATION='fastest'"):
        assert optimization_level(["Gemm"]) == "all"
