"""`tf.dtypes`: TensorFlow's dtype names under their module path (`tf.dtypes.float32`), the
same strings as `tf.float32` and Keras' dtype names, and `tf.dtypes.cast` (`tf.cast`)."""
from kgraph import (bfloat16, bool, float16, float32, float64, int8, int16, int32,  # noqa: F401,A004
                    int64, string, uint8)

__all__ = ["bfloat16", "bool", "cast", "float16", "float32", "float64", "int8", "int16",
           "int32", "int64", "string", "uint8"]


def cast(x, dtype, name=None):
    """`tf.dtypes.cast`: `tf.cast` (the keras.io KerasTuner custom-tuner guide's images)."""
    from kgraph.tf_names import cast as tf_cast

    return tf_cast(x, dtype, name=name)
