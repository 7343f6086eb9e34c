"""`tf.math`: the element-wise and reduction functions of kgraph/tf_names.py under the module
path code written against TensorFlow reaches them by (`tf.math.reduce_sum`, `tf.math.square`;
the keras.io siamese-network example). Each is the `keras.ops` function of the same meaning,
with TensorFlow's argument names and defaults."""
from kgraph.tf_names import (abs, argmax, argmin, exp, log, maximum, minimum,  # noqa: F401,A004
                             reduce_max, reduce_mean, reduce_min, reduce_prod, reduce_sum,
                             sigmoid, sqrt, square, tanh)

__all__ = ["abs", "argmax", "argmin", "exp", "log", "maximum", "minimum", "reduce_max",
           "reduce_mean", "reduce_min", "reduce_prod", "reduce_sum", "sigmoid", "sqrt", "square",
           "tanh"]
