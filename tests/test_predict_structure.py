"""`predict` of a subclassed model returns its call's output structure, as Keras 3 (the
keras.io CaiT's `logits, sa_scores, ca_scores = model.predict(images)`)."""
import numpy as np

from kgraph import keras


class _ThreeOutputs(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        y = self.dense(x)
        return y, {"double": y * 2, "plus_one": y + 1}, [y - 1]


def test_predict_returns_the_call_structure_in_one_batch_and_in_several():
    model = _ThreeOutputs()
    x = np.random.default_rng(0).normal(size=(70, 4)).astype("float32")
    for batch_size in (128, 32):
        logits, scores, rest = model.predict(x, batch_size=batch_size, verbose=0)
        kernel, bias = (w.numpy() for w in model.dense.weights)
        want = x @ kernel + bias
        np.testing.assert_allclose(logits, want, rtol=1e-5, atol=1e-6)
        assert sorted(scores) == ["double", "plus_one"]
        np.testing.assert_allclose(scores["double"], 2 * want, rtol=1e-5, atol=1e-6)
        assert isinstance(rest, list) and rest[0].shape == (70, 2)


def test_predict_of_one_output_and_of_a_functional_model_unchanged():
    class One(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    x = np.ones((5, 4), "float32")
    assert One().predict(x, verbose=0).shape == (5, 3)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, {"a": keras.layers.Dense(1)(inputs)})
    assert list(model.predict(x, verbose=0)) == ["a"]
