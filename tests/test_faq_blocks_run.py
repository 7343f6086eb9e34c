"""The FAQ blocks that other test files re-typed or left out, run from the FAQ file itself
(saving, datasets that do not fit in memory, trainable vs `training`), and a coverage check:
every ```python block of the FAQ is run by some test through `faq_blocks.block`."""
import glob
import os
import re

import numpy as np
import pytest

from faq_blocks import block, sections
from test_faq import run

SAVING = "What are my options for saving models?"
TESTS = os.path.dirname(os.path.abspath(__file__))


def _faq_model():
    return run("""
model = Sequential()
model.add(Dense(2, input_dim=3, name='dense_1'))
model.add(Dense(3, name='dense_2'))
model.compile(optimizer='adam', loss='mse')
x = np.ones((2, 3), 'float32')
expected = model.predict(x, verbose=0)
""")


def test_saving_whole_model_weights_and_by_name_blocks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = _faq_model()
    expected, x = ns["expected"], ns["x"]
    exec(block(SAVING, 0), ns)  # model.save('my_model'); del model; load_model('my_model')
    assert ns["model"].compiled
    np.testing.assert_array_equal(ns["model"].predict(x, verbose=0), expected)
    exec(block(SAVING, 1), ns)  # save_weights('my_model_weights.h5')
    exec(block(SAVING, 2), ns)
    exec(block(SAVING, 3), ns)  # by_name=True onto the same architecture
    np.testing.assert_array_equal(ns["model"].predict(x, verbose=0), expected)
    old_kernel = ns["model"].get_layer("dense_1").get_weights()[0]
    ns["fname"] = "my_model_weights.h5"
    exec(block(SAVING, 4), ns)  # a new model: only dense_1 is loaded
    np.testing.assert_array_equal(ns["model"].get_layer("dense_1").get_weights()[0],
                                  old_kernel)
    assert ns["model"].get_layer("new_dense").get_weights()[0].shape == (2, 10)


def test_saving_json_blocks():
    ns = _faq_model()
    exec(block(SAVING, 5), ns)
    exec(block(SAVING, 6), ns)
    assert [layer.name for layer in ns["model"].layers] == ["dense_1", "dense_2"]


ATTENTION = """
class AttentionLayer(keras.layers.Layer):
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), name='w')

    def call(self, x):
        return keras.ops.softmax(keras.ops.matmul(x, self.w))

    def get_config(self):
        return {**super().get_config(), 'units': self.units}

inputs = keras.Input((3,))
model = keras.Model(inputs, AttentionLayer(5, name='attention')(inputs))
model.save('my_model.h5')
json_string = model.to_json()
"""


@pytest.mark.filterwarnings("ignore:.*no training configuration")
def test_saving_custom_object_blocks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = run(ATTENTION)
    exec(block(SAVING, 7), ns)  # load_model(..., custom_objects=...)
    assert ns["model"].get_layer("attention").units == 5
    del ns["model"]
    exec(block(SAVING, 8), ns)  # with CustomObjectScope(...)
    assert ns["model"].get_layer("attention").units == 5
    del ns["model"]
    exec(block(SAVING, 9), ns)  # model_from_json(..., custom_objects=...)
    assert ns["model"].get_layer("attention").units == 5


def test_datasets_that_do_not_fit_in_memory_block():
    ns = run("""
x = np.random.default_rng(0).random((64, 4), dtype=np.float32)
y = x.sum(axis=1, keepdims=True)
dataset = tf.data.Dataset.from_generator(
    lambda: ((x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)))
model = Sequential([keras.Input((4,)), Dense(1)])
model.compile(optimizer='sgd', loss='mse')
""")
    exec(block("datasets that don't fit in memory", 0).replace(
        "model.fit(dataset, epochs=10)", "history = model.fit(dataset, epochs=10, verbose=0)"),
        ns)
    losses = ns["history"].history["loss"]
    assert len(losses) == 10 and losses[-1] < losses[0]


def test_trainable_block_freezes_the_base():
    code = block("`training` argument", 1).replace(
        "model.compile(...)", "model.compile(optimizer='adam', loss='mse')").replace(
        "model.fit(...)", "model.fit(np.ones((8, 32, 32, 3), 'float32'), np.ones((8, 10), "
                          "'float32'), verbose=0)")
    ns = run(code)
    assert ns["model"].layers[0].trainable_weights == []


def _referenced_blocks():
    refs = set()
    for path in glob.glob(os.path.join(TESTS, "*.py")):
        with open(path) as f:
            src = f.read()
        src = src.replace("SAVING,", f'"{SAVING}",')
        for title, index in re.findall(r'block\(\s*"([^"]+)",\s*(\d+)\)', src):
            refs.add((title, int(index)))
        for title, count in re.findall(
                r'block\(\s*"([^"]+)",\s*i\)\s+for\s+i\s+in\s+range\((\d+)\)', src):
            refs.update((title, i) for i in range(int(count)))
    return refs


def test_every_faq_code_block_is_run_by_a_test():
    refs = _referenced_blocks()
    missing = [(title, i) for title, blocks in sections().items() for i in range(len(blocks))
               if not any(part in title and index == i for part, index in refs)]
    assert not missing, f"FAQ code blocks no test runs: {missing}"
