"""`tf.math`: the element-wise and reduction functions of kgraph/tf_names.py under the module
path code written against TensorFlow reaches them by (`tf.math.reduce_sum`, `tf.math.square`;
the keras.io siamese-network example). Each is the `keras.ops` function of the same meaning,
with TensorFlow's argument names and defaults. `l2_normalize` is `tf.nn.l2_normalize`, as in
TensorFlow (the keras.io supervised-contrastive example calls it `tf.math.l2_normalize`)."""
from kgraph.keras import ops
from kgraph.nn import l2_normalize  # noqa: F401
from kgraph.tf_names import (abs, argmax, argmin, cumsum, eager_tensors, equal,  # noqa: F401,A004
                             exp, floor, greater, less, log, maximum, minimum, reduce_max,
                             reduce_mean, reduce_min, reduce_prod, reduce_sum, sigmoid, sqrt,
                             square, tanh)

__all__ = ["abs", "argmax", "argmin", "cumsum", "equal", "exp", "floor", "greater", "less",
           "l2_normalize", "log", "maximum", "minimum", "reduce_max", "reduce_mean", "reduce_min",
           "reduce_prod", "reduce_sum", "sigmoid", "sqrt", "square", "tanh", "top_k"]


@eager_tensors
def top_k(input, k=1, sorted=True, index_type="int32", name=None):  # noqa: A002
    """tf.math.top_k: the `k` largest values along the last axis and their int32 indices."""
    values, indices = ops.top_k(input, k=k, sorted=sorted)
    return values, ops.cast(indices, index_type)
