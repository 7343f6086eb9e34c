"""`layer.variables` as Keras 3 lists it: the weights, then the states of the
`keras.random.SeedGenerator`s the layer holds (its `weights` leave them out), sublayers after
(the keras.io "Introduction to Keras for engineers" guide's `MyDropout`)."""
import numpy as np

from kgraph import keras


def test_variables_hold_seed_generator_states_and_weights_do_not():
    class MyDropout(keras.layers.Layer):
        def __init__(self, rate):
            super().__init__()
            self.rate = rate
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, inputs):
            return keras.random.dropout(inputs, self.rate, seed=self.seed_generator)

    layer = MyDropout(0.5)
    assert layer.weights == [] and len(layer.variables) == 1
    state = layer.variables[0]
    assert state is layer.seed_generator.state and not state.trainable
    before = int(np.asarray(state.numpy()))
    layer(np.ones((4, 3), "float32"))
    assert int(np.asarray(state.numpy())) == before + 1  # the draw advanced the tracked state

    # Keras 3: Sequential([Input, Dense, Dropout]) has 2 weights and 3 variables
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2),
                              keras.layers.Dropout(0.5)])
    assert len(model.weights) == 2 and len(model.variables) == 3
    assert all(a is b for a, b in zip(model.variables, model.weights))
    assert len(model.trainable_variables) == 2
