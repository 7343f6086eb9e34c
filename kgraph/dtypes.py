"""`tf.dtypes`: TensorFlow's dtype names under their module path (`tf.dtypes.float32`), the
same strings as `tf.float32` and Keras' dtype names."""
from kgraph import (bfloat16, bool, float16, float32, float64, int8, int16, int32,  # noqa: F401,A004
                    int64, string, uint8)

__all__ = ["bfloat16", "bool", "float16", "float32", "float64", "int8", "int16", "int32",
           "int64", "string", "uint8"]
