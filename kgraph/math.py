"""`tf.math`: the element-wise and reduction functions of kgraph/tf_names.py under the module
path code written against TensorFlow reaches them by (`tf.math.reduce_sum`, `tf.math.square`;
the keras.io siamese-network example). Each is the `keras.ops` function of the same meaning,
with TensorFlow's argument names and defaults. `l2_normalize` is `tf.nn.l2_normalize`, as in
TensorFlow (the keras.io supervised-contrastive example calls it `tf.math.l2_normalize`)."""
import numpy as np

from kgraph.keras import ops
from kgraph.nn import l2_normalize  # noqa: F401
from kgraph.tf_names import (abs, argmax, argmin, cumprod, cumsum, divide,  # noqa: F401,A004
                             eager_tensors,
                             equal, exp, floor, greater, less, log, maximum, minimum, multiply,
                             pow, reduce_max,
                             reduce_mean, reduce_min, reduce_prod, reduce_sum, round, sigmoid,
                             sign, sqrt, square, tanh)

__all__ = ["abs", "argmax", "argmin", "cumprod", "cumsum", "divide", "equal", "exp", "floor",
           "greater",
           "greater_equal", "less", "less_equal", "l2_normalize", "log", "logical_and",
           "logical_not", "logical_or", "maximum", "minimum", "multiply", "not_equal", "pow",
           "reduce_max", "reduce_mean",
           "reduce_min", "reduce_prod", "reduce_sum", "round", "sigmoid", "sign", "sqrt", "square",
           "squared_difference", "tanh", "top_k",
           "unsorted_segment_max", "unsorted_segment_mean", "unsorted_segment_sum"]


def _binary(fn, tf_name):
    def binary(x, y, name=None):
        return fn(x, y)
    binary.__name__ = binary.__qualname__ = tf_name
    binary.__doc__ = f"tf.math.{tf_name}: keras.ops.{fn.__name__}."
    return eager_tensors(binary)


# comparisons and logic (the keras.io image-captioning example's masks)
not_equal = _binary(ops.not_equal, "not_equal")
greater_equal = _binary(ops.greater_equal, "greater_equal")
less_equal = _binary(ops.less_equal, "less_equal")
logical_and = _binary(ops.logical_and, "logical_and")
logical_or = _binary(ops.logical_or, "logical_or")
logical_not = eager_tensors(lambda x, name=None: ops.logical_not(x))
logical_not.__name__ = "logical_not"
# (x - y) ** 2: the keras.io KerasTuner guide's custom MSE metric
squared_difference = _binary(lambda x, y: ops.square(ops.subtract(x, y)), "squared_difference")


@eager_tensors
def top_k(input, k=1, sorted=True, index_type="int32", name=None):  # noqa: A002
    """tf.math.top_k: the `k` largest values along the last axis and their int32 indices."""
    values, indices = ops.top_k(input, k=k, sorted=sorted)
    return values, ops.cast(indices, index_type)


def _segments(data, segment_ids, num_segments, what):
    """`data` and 1-D ids for `keras.ops.segment_*`: TensorFlow's ids may have several axes
    (a prefix of data's shape); those axes are flattened into one."""
    from kgraph.ops.api_util import shape_of

    if not isinstance(num_segments, (int, np.integer)):
        raise TypeError(f"tf.math.{what}: num_segments must be a Python int (the output's "
                        f"size). Received: num_segments={num_segments!r}")
    ids_shape = tuple(shape_of(segment_ids))
    if len(ids_shape) > 1:
        data_shape = tuple(shape_of(data))
        if data_shape[:len(ids_shape)] != ids_shape or None in ids_shape:
            raise ValueError(f"tf.math.{what}: segment_ids' shape must be a known prefix of "
                             f"the data's. Received: segment_ids.shape={ids_shape}, "
                             f"data.shape={data_shape}")
        data = ops.reshape(data, (-1,) + data_shape[len(ids_shape):])
        segment_ids = ops.reshape(segment_ids, (-1,))
    return data, segment_ids, int(num_segments)


@eager_tensors
def unsorted_segment_sum(data, segment_ids, num_segments, name=None):
    """`tf.math.unsorted_segment_sum`: `output[i]` is the sum of the rows of `data` whose
    segment id is `i` (0 for an empty segment; negative ids are dropped). The rows are
    `data`'s leading axes that `segment_ids` covers."""
    data, segment_ids, num_segments = _segments(data, segment_ids, num_segments,
                                                "unsorted_segment_sum")
    return ops.segment_sum(data, segment_ids, num_segments=num_segments)


@eager_tensors
def unsorted_segment_mean(data, segment_ids, num_segments, name=None):
    """`tf.math.unsorted_segment_mean`: the mean of each segment's rows (0 for an empty
    segment); the keras.io traffic-forecasting example's neighbour aggregation."""
    data, segment_ids, num_segments = _segments(data, segment_ids, num_segments,
                                                "unsorted_segment_mean")
    total = ops.segment_sum(data, segment_ids, num_segments=num_segments)
    count = ops.segment_sum(ops.ones_like(ops.cast(segment_ids, total.dtype)), segment_ids,
                            num_segments=num_segments)
    count = ops.reshape(ops.maximum(count, 1), (num_segments,) + (1,) * (len(total.shape) - 1))
    return total / count


@eager_tensors
def unsorted_segment_max(data, segment_ids, num_segments, name=None):
    """`tf.math.unsorted_segment_max`: the elementwise maximum of each segment's rows; an
    empty segment gives the dtype's lowest value, as TensorFlow."""
    data, segment_ids, num_segments = _segments(data, segment_ids, num_segments,
                                                "unsorted_segment_max")
    return ops.segment_max(data, segment_ids, num_segments=num_segments)
