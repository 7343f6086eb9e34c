"""`optimizer.apply_gradients` called inside an eager `GradientTape`'s `with` block (the keras.io
actor-critic example) updates the weights at once, as TensorFlow's eager update; and
`keras.ops.expand_dims`/`squeeze` take Python numbers and lists, as Keras converts them."""

import numpy as np

import kgraph as tf
from kgraph import keras
from kgraph.keras import layers, ops


def _model():
    keras.utils.set_random_seed(1)
    inputs = layers.Input((3,))
    return keras.Model(inputs, layers.Dense(2)(inputs))


def _step(model, optimizer, inside, scale=None):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x) ** 2)
        if inside:
            grads = tape.gradient(loss, model.trainable_variables)
            if scale is not None:  # arithmetic on the gradients inside the block
                grads = [g * scale for g in grads]
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
    if not inside:
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return float(loss)


def test_apply_gradients_inside_the_tape_block_updates_now():
    outside, inside = _model(), _model()
    opt_out, opt_in = keras.optimizers.Adam(0.1), keras.optimizers.Adam(0.1)
    start = [v.numpy().copy() for v in inside.trainable_variables]
    for _ in range(3):
        loss_out = _step(outside, opt_out, inside=False)
        loss_in = _step(inside, opt_in, inside=True)
        np.testing.assert_allclose(loss_in, loss_out, rtol=1e-6)
        for a, b in zip(inside.trainable_variables, outside.trainable_variables):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    assert int(opt_in.iterations.numpy()) == 3
    assert all(not np.allclose(v.numpy(), s) for v, s in zip(inside.trainable_variables, start))


def test_apply_gradients_inside_the_tape_block_takes_recorded_gradients():
    model, reference = _model(), _model()
    opt, opt_ref = keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.01)
    _step(model, opt, inside=True, scale=2.0)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(reference(x) ** 2)
    grads = [2.0 * np.asarray(g) for g in tape.gradient(loss, reference.trainable_variables)]
    opt_ref.apply_gradients(zip(grads, reference.trainable_variables))
    for a, b in zip(model.trainable_variables, reference.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)


def test_expand_dims_and_squeeze_of_python_values():
    out = ops.expand_dims(1.5, 0)
    assert out.shape == (1,) and out.dtype == np.float32 and float(out[0]) == 1.5
    assert tf.expand_dims(2, -1).dtype == np.int32
    np.testing.assert_array_equal(ops.expand_dims([1.0, 2.0], 1), [[1.0], [2.0]])
    squeezed = ops.squeeze([[3]])
    assert squeezed.shape == () and squeezed.dtype == np.int32 and int(squeezed) == 3


def test_model_called_in_a_tape_casts_arrays_to_its_input_dtype():
    """uint8 frames into a float32 Sequential whose first layer is a Lambda (keras.io DQN):
    the array is cast at the model's input, as Keras converts inputs, so the Conv2D after the
    Lambda gets float32 and the gradient matches the float32 call's."""
    keras.utils.set_random_seed(2)
    model = keras.Sequential([
        layers.Lambda(lambda t: ops.transpose(t, [0, 2, 3, 1]), output_shape=(6, 6, 2),
                      input_shape=(2, 6, 6)),
        layers.Conv2D(3, 3), layers.Flatten(), layers.Dense(1)])
    frames = np.random.default_rng(0).integers(0, 255, (4, 2, 6, 6), dtype=np.uint8)
    results = []
    for x in (frames, frames.astype(np.float32)):
        with tf.GradientTape() as tape:
            out = model(x)
            loss = ops.mean(out ** 2)
        results.append((out.numpy(), tape.gradient(loss, model.trainable_variables)))
    (out_u8, grads_u8), (out_f32, grads_f32) = results
    assert out_u8.dtype == np.float32
    np.testing.assert_allclose(out_u8, out_f32, rtol=1e-6)
    for a, b in zip(grads_u8, grads_f32):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_keras_ops_of_an_eager_tensor_give_eager_tensors():
    """`keras.ops.argmax(model(x)[0]).numpy()`, as the TensorFlow backend's tensors allow;
    plain numpy in stays plain numpy out."""
    inputs = layers.Input((3,))
    model = keras.Model(inputs, layers.Dense(4)(inputs))
    probs = model(np.ones((1, 3), np.float32))
    best = ops.argmax(probs[0])
    assert int(best.numpy()) == int(np.argmax(np.asarray(probs)[0]))
    assert ops.amax(probs, axis=1).numpy().shape == (1,)
    assert ops.sum(x=probs, axis=1).numpy().shape == (1,)  # an eager tensor given by keyword
    assert type(ops.argmax(np.ones(3))) is np.ndarray


def test_one_element_of_an_eager_tensor_is_a_0d_eager_tensor():
    """`action[0].numpy()` as TensorFlow (keras.io PPO): indexing one element of an eager
    result gives a 0-d tensor with `.numpy()`, still usable as an index, number or dict key."""
    actions = tf.squeeze(tf.random.categorical(np.zeros((3, 2), np.float32), 1), axis=1)
    first = actions[0]
    assert first.shape == () and int(first.numpy()) in (0, 1)
    assert [10, 20][first] in (10, 20) and {int(first): "a"}[first] == "a"
    assert all(v.shape == () for v in actions)  # iteration too
    assert f"{tf.constant([1.25])[0]:.1f}" == "1.2"


def test_gather_packs_a_list_of_traced_scalars():
    """A subclassed model called on a Python list of ints gets one scalar input per item;
    `tf.gather(x, that_list)` packs them into one index vector, as TensorFlow does."""
    table = np.arange(12, dtype=np.float32).reshape(6, 2)

    class Lookup(keras.Model):
        def call(self, indices):
            return tf.gather(table, indices) * 2.0

    np.testing.assert_allclose(Lookup()([1, 4, 5]), table[[1, 4, 5]] * 2.0)
