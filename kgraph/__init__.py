"""kgraph: the Keras API driven by a graph compiler.

    import kgraph as tf
    from kgraph import keras

Submodules load on first use (PEP 562), so `import kgraph.runtime` on a deployment box pulls
in neither the Keras API nor h5py, networkx, onnx or scipy.
"""
import importlib

__version__ = "0.1.0"

# Eager and light (stdlib only): importing the submodule kgraph.device would otherwise bind
# the package attribute `device` to the module, shadowing the `tf.device(...)` scope.
from kgraph.device import device, device_scope  # noqa: E402,F401

# dtype names, usable wherever a dtype is expected (tf.float32, tf.int64, ...)
float16, bfloat16, float32, float64 = "float16", "bfloat16", "float32", "float64"
int8, int16, int32, int64, uint8 = "int8", "int16", "int32", "int64", "uint8"
bool = "bool"  # noqa: A001
string = "string"  # tf.string: text lives in numpy arrays and tf.data pipelines, not in graphs
newaxis = None  # tf.newaxis: `image[tf.newaxis, ...]`

_SUBMODULES = ("config", "ops", "random", "keras", "data", "tape", "variables", "compat", "math",
               "image", "dtypes", "datasets", "ir", "compiler", "runtime", "applications", "cli",
               "demo", "distribute", "tpu", "utils", "nn", "linalg", "summary", "experimental",
               "strings", "io")
# (`function` the decorator shadows the submodule kgraph.function of the same name)
# public name -> (module, attribute)
_ATTRIBUTES = {
    "GradientTape": ("kgraph.tape", "GradientTape"),
    "Variable": ("kgraph.variables", "Variable"),
    "TensorSpec": ("kgraph.data", "TensorSpec"),
    "Tensor": ("kgraph.tf_names", "Tensor"),
    "TensorShape": ("kgraph.tensor_shape", "TensorShape"),
    "function": ("kgraph.function", "function"),
    # TensorFlow's initializer names: the Keras initializers (same arguments and defaults)
    "random_uniform_initializer": ("kgraph.keras.initializers", "RandomUniform"),
    "random_normal_initializer": ("kgraph.keras.initializers", "RandomNormal"),
    "zeros_initializer": ("kgraph.keras.initializers", "Zeros"),
    "ones_initializer": ("kgraph.keras.initializers", "Ones"),
    # tf.losses, tf.optimizers, tf.metrics: the Keras modules (tf.losses.MeanSquaredError())
    "losses": ("kgraph.keras", "losses"),
    "optimizers": ("kgraph.keras", "optimizers"),
    "metrics": ("kgraph.keras", "metrics"),
    "initializers": ("kgraph.keras", "initializers"),  # tf.initializers.Zeros()
    "nest": ("kgraph.keras", "tree"),  # tf.nest.flatten / map_structure: Keras' tree
}
# TensorFlow's top-level tensor functions (tf.concat, tf.ones, tf.reduce_sum, ...): kgraph/tf_names.py
_TF_NAMES = ("abs", "acos", "add", "argmax", "argmin", "argsort", "broadcast_to", "cast",
             "clip_by_value", "concat", "cond", "constant", "convert_to_tensor", "cos", "cumprod",
             "cumsum", "divide", "einsum", "equal", "exp", "expand_dims", "eye", "fill", "floor",
             "gather", "gather_nd", "greater", "identity", "less", "linspace", "log", "matmul",
             "maximum", "meshgrid", "minimum", "multiply", "norm", "one_hot", "ones", "ones_like",
             "pad", "pow", "range", "reduce_all", "reduce_any", "reduce_max", "reduce_mean",
             "reduce_min", "reduce_prod", "reduce_sum", "repeat", "reshape", "reverse", "roll",
             "round", "shape", "sigmoid", "sign", "sin", "size", "slice", "split", "sqrt", "square",
             "squeeze", "stack", "stop_gradient", "subtract", "tanh", "tensor_scatter_nd_add",
             "tensordot", "tile", "transpose", "unstack", "where", "zeros", "zeros_like")
_ATTRIBUTES.update({name: ("kgraph.tf_names", name) for name in _TF_NAMES})


def __getattr__(name):
    if name in _ATTRIBUTES:
        module, attribute = _ATTRIBUTES[name]
        value = getattr(importlib.import_module(module), attribute)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"kgraph.{name}")
    else:
        raise AttributeError(f"module 'kgraph' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES) | set(_ATTRIBUTES))
