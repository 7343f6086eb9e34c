"""kgraph: the Keras API driven by a graph compiler.

    import kgraph as tf
    from kgraph import keras
"""
__version__ = "0.1.0"

from kgraph import config, ops, random  # noqa: F401,E402
from kgraph import keras  # noqa: F401,E402
from kgraph import data  # noqa: F401,E402
from kgraph.device import device, device_scope  # noqa: F401,E402
from kgraph.tape import GradientTape  # noqa: F401,E402
from kgraph.variables import Variable  # noqa: F401,E402

# dtype names, usable wherever a dtype is expected (tf.float32, tf.int64, ...)
float16, bfloat16, float32, float64 = "float16", "bfloat16", "float32", "float64"
int8, int16, int32, int64, uint8 = "int8", "int16", "int32", "int64", "uint8"
bool = "bool"  # noqa: A001
from kgraph.data import TensorSpec  # noqa: E402,F401
