"""The FAQ's data-parallel blocks (multi-GPU section, blocks 0-2) run unchanged after the
import swap, and with two CPU replicas they train exactly as one device (issue 12)."""
import os

import numpy as np
import pytest

from faq_blocks import FAQ, block

if not os.path.exists(FAQ):
    pytest.skip("the FAQ is not beside the tests", allow_module_level=True)

PRELUDE = """
import numpy as np
import kgraph as tf
tf.random.set_seed(11)
rng = np.random.default_rng(0)
train_dataset = tf.data.Dataset.from_tensor_slices(
    (rng.normal(size=(48, 28, 28, 1)).astype("float32"), rng.integers(0, 10, 48))).batch(16)
callbacks = []
"""


def blocks():
    code = [block("여러 GPU", i) for i in range(3)]
    assert "MirroredStrategy()" in code[0] and "strategy.scope()" in code[1]
    assert "model.fit(train_dataset" in code[2]
    return code


def run(code):
    namespace = {}
    exec(compile(PRELUDE + "\n".join(code), "faq", "exec"), namespace)
    return namespace


def test_mirrored_strategy_blocks_run_unchanged():
    ns = run(blocks())
    assert ns["strategy"].num_replicas_in_sync >= 1
    assert len(ns["model"].history.history["loss"]) == 12
    assert ns["model"]._distribute_strategy is ns["strategy"]


@pytest.mark.slow
def test_two_replicas_train_the_faq_model_like_one_device():
    code = blocks()
    code[2] = code[2].replace("epochs=12", "epochs=2")
    two = list(code)
    two[0] = two[0].replace("MirroredStrategy()", "MirroredStrategy(['/cpu:0', '/cpu:1'])")
    ns_two = run(two)
    assert ns_two["strategy"].num_replicas_in_sync == 2
    steps = [type(p).__name__ for p in ns_two["model"]._programs.values()]
    assert steps == ["ReplicatedTrainStep"]
    one = list(code)
    one[0] = "import contextlib\nstrategy = None\n"
    one[1] = one[1].replace("with strategy.scope():", "with contextlib.nullcontext():")
    ns_one = run(one)
    for a, b in zip(ns_one["model"].get_weights(), ns_two["model"].get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    np.testing.assert_allclose(ns_one["model"].history.history["loss"],
                               ns_two["model"].history.history["loss"], rtol=1e-5)
