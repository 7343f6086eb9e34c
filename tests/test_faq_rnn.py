"""The FAQ's recurrent blocks run unchanged after the import swap: stateful RNNs ("How can I
use stateful RNNs?") and the model-parallel shared LSTM of the multi-GPU section."""
import os

import numpy as np
import pytest

from faq_blocks import FAQ, block

if not os.path.exists(FAQ):
    pytest.skip("shared/spec/keras-faq.md is not beside the checkout", allow_module_level=True)


def run(code, prelude=""):
    namespace = {}
    exec(compile(prelude + code, "faq", "exec"), namespace)
    return namespace


def test_stateful_rnn_block():
    code = block("stateful RNNs", 0)
    assert "stateful=True" in code and "from kgraph import keras" in code
    # stop before the resets to look at the states the two train_on_batch calls left
    before_reset = code[:code.index("model.reset_states()")]
    ns = run(before_reset)
    lstm = ns["model"].layers[0]
    assert lstm.stateful and [v.shape for v in lstm.states] == [(32, 32), (32, 32)]
    assert all(np.abs(v.numpy()).sum() > 0 for v in lstm.states)
    exec(compile(code[len(before_reset):], "faq", "exec"), ns)
    assert all(np.all(v.numpy() == 0) for v in lstm.states)
    ns = run(code)  # and the whole block, unchanged, in one go
    assert all(np.all(v.numpy() == 0) for v in ns["model"].layers[0].states)


def test_stateful_rnn_block_layer_reset():
    code = block("stateful RNNs", 0)
    ns = run(code.replace("model.reset_states()\n", ""))  # only `model.layers[0].reset_states()`
    assert all(np.all(v.numpy() == 0) for v in ns["model"].layers[0].states)


def model_parallel_block():
    """The multi-GPU section's device-parallelism block (its 4th code block; the first
    three are the data-parallel `MirroredStrategy` snippets)."""
    code = block("여러 GPU", 3)
    assert "tf.device_scope" in code and "shared_lstm" in code
    return code


def test_model_parallel_shared_lstm_block():
    code = model_parallel_block()
    ns = run(code, prelude="import kgraph as tf\nfrom kgraph import keras\n")
    assert tuple(ns["merged_vector"].shape) == (None, 128)
    model = ns["keras"].Model([ns["input_a"], ns["input_b"]], ns["merged_vector"])
    assert len(model.weights) == 3  # the LSTM is shared by both branches
    x = np.random.default_rng(0).normal(size=(2, 140, 256)).astype("float32")
    out = model.predict([x, x], verbose=0)
    np.testing.assert_allclose(out[:, :64], out[:, 64:], rtol=1e-6)
