"""TPU-style static execution: the FAQ's TPU block runs unchanged and says where it runs;
TPUStrategy compiles models for the static target (issue 12)."""
import contextlib
import io
import os

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras
from kgraph.keras.execution import StaticShapeError

from faq_blocks import FAQ, block


def tpu_block():
    if not os.path.exists(FAQ):
        pytest.skip("the FAQ is not beside the tests")
    return block("train a Keras model on TPU", 0)


def small_model():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(1)])


def test_faq_tpu_block_runs_and_says_where():
    pytest.importorskip("tvm")
    out = io.StringIO()
    namespace = {}
    with contextlib.redirect_stdout(out):
        exec(compile("import kgraph as tf\n" + tpu_block(), "faq", "exec"), namespace)
    printed = out.getvalue()
    assert "Running on TPU:  ['localhost/static (TVM, fixed shapes, cpu)']" in printed
    assert "Replicas:  1" in printed
    strategy = namespace["strategy"]
    with strategy.scope():  # the block's "Create your model here."
        model = small_model()
        model.compile(optimizer="sgd", loss="mse", steps_per_execution=4)
    assert model._backend == "static" and model._is_static()
    x = np.ones((10, 6), "float32")
    with pytest.raises(StaticShapeError, match="last batch of 2"):
        model.fit(x, x[:, :1], batch_size=4, verbose=0)


def test_explicit_backend_wins_over_the_strategy():
    strategy = tf.distribute.experimental.TPUStrategy(
        tf.distribute.cluster_resolver.TPUClusterResolver(tpu="static"))
    with strategy.scope():
        model = small_model()
        model.compile(optimizer="sgd", loss="mse", backend="onnxruntime")
    assert not model._is_static()


def test_resolver_targets_and_errors(monkeypatch):
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="static:cuda")
    assert resolver.target == "static:cuda" and "cuda" in resolver.cluster_spec().as_dict()[
        "worker"][0]
    monkeypatch.setenv("KGRAPH_TPU_TARGET", "static:cuda")
    assert tf.distribute.cluster_resolver.TPUClusterResolver().target == "static:cuda"
    with pytest.raises(ValueError, match="'grpc://10.0.0.2:8470'"):
        tf.distribute.cluster_resolver.TPUClusterResolver(tpu="grpc://10.0.0.2:8470")
    with pytest.raises(TypeError, match="cluster resolver"):
        tf.config.experimental_connect_to_cluster("tpu-1")


@pytest.mark.tvm
@pytest.mark.slow
def test_tpu_strategy_trains_on_the_static_target_like_onnxruntime():
    pytest.importorskip("tvm")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    strategy = tf.distribute.experimental.TPUStrategy(resolver)
    models = []
    for scope in (strategy.scope(), contextlib.nullcontext()):
        tf.random.set_seed(5)
        with scope:
            model = small_model()
            model.compile(optimizer="sgd", loss="mse", steps_per_execution=4)
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
        models.append(model)
    assert models[0]._backend == "static" and not models[1]._is_static()
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
