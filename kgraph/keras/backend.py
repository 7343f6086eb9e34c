"""`keras.backend` (the few functions Keras code commonly reaches for)."""
from kgraph.config import (epsilon, floatx, image_data_format, set_epsilon,  # noqa: F401
                           set_floatx, set_image_data_format)
from kgraph.keras.utils import get_source_inputs, is_keras_tensor  # noqa: F401
from kgraph.keras.utils.dtype_utils import (is_float_dtype, is_int_dtype,  # noqa: F401
                                            result_type, standardize_dtype)
from kgraph.keras.utils.global_state import clear_session, get_uid  # noqa: F401


def random_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """tf.keras 2's `keras.backend.random_normal` (`keras.random.normal`; the keras.io
    researchers' guide samples a VAE's latent codes with it)."""
    from kgraph.keras import random

    return random.normal(shape, mean=mean, stddev=stddev, dtype=dtype, seed=seed)


# -- tf.keras 2's tensor functions (`from tensorflow.keras import backend as K`; the keras.io
# MNIST MoE example's `K.sum(weights * K.log(weights + 1e-10), axis=1)`): keras.ops under
# tf.keras 2's names and defaults
def sum(x, axis=None, keepdims=False):  # noqa: A001 - tf.keras 2's name
    from kgraph.keras import ops

    return ops.sum(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    from kgraph.keras import ops

    return ops.mean(x, axis=axis, keepdims=keepdims)


def log(x):
    from kgraph.keras import ops

    return ops.log(x)


def square(x):
    from kgraph.keras import ops

    return ops.square(x)


def softmax(x, axis=-1):
    from kgraph.keras import ops

    return ops.softmax(x, axis=axis)


def relu(x, alpha=0.0, max_value=None, threshold=0.0):
    """tf.keras 2's `K.relu`: `x` above `threshold`, `alpha * (x - threshold)` below, capped
    at `max_value`."""
    from kgraph.keras import activations

    return activations.relu(x, negative_slope=alpha, max_value=max_value, threshold=threshold)


def backend():
    """The name of the framework running Keras code: always "kgraph" (the executor it compiles
    for is `keras.config.backend()`)."""
    return "kgraph"


# -- tf.keras 2's CTC helpers (Keras 3 keeps them only in its tf.keras compatibility backend) --
def ctc_batch_cost(y_true, y_pred, input_length, label_length):
    """tf.keras 2's `keras.backend.ctc_batch_cost`: CTC loss of softmax outputs, blank last.

    Args:
        y_true: `(batch, max_label_length)` labels.
        y_pred: `(batch, time, num_classes)` probabilities (softmax outputs); the last class
            is the blank.
        input_length: `(batch, 1)` lengths of the `y_pred` sequences.
        label_length: `(batch, 1)` lengths of the labels.

    Returns:
        `(batch, 1)` losses: `keras.ops.ctc_loss` of `log(y_pred + epsilon)`. TensorFlow gives
        inf for a label no alignment can produce; Keras 3's recursion gives about 1e5.
    """
    from kgraph import ops

    classes = y_pred.shape[-1]
    loss = ops.ctc_loss(y_true, ops.log(y_pred + epsilon()), ops.squeeze(label_length, -1),
                        ops.squeeze(input_length, -1), mask_index=classes - 1)
    return ops.expand_dims(loss, 1)


def ctc_decode(y_pred, input_length, greedy=True, beam_width=100, top_paths=1):
    """tf.keras 2's `keras.backend.ctc_decode` of softmax outputs, blank last.

    Returns:
        `(decoded, log_prob)`: `decoded` a list of `top_paths` int32 `(batch, time)` arrays,
        labels first and -1 after; `log_prob` `(batch, top_paths)` (greedy: minus the sum of
        each step's largest log probability). `greedy=False` runs Keras 3's beam search
        (eager arrays only), which merges repeats as CTC does; TensorFlow's
        `ctc_beam_search_decoder` also merges repeated labels of a beam's output.
    """
    from kgraph import ops

    log_probs = ops.log(ops.convert_to_tensor(y_pred) + epsilon())
    paths, scores = ops.ctc_decode(log_probs, input_length,
                                   strategy="greedy" if greedy else "beam_search",
                                   beam_width=beam_width, top_paths=top_paths,
                                   mask_index=y_pred.shape[-1] - 1)
    return [paths[i] for i in range(paths.shape[0])], scores
