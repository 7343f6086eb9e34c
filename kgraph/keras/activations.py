"""`keras.activations`: functions of a tensor, resolved by name with `get`."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.serialization import lookup


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    return ops.relu(x, negative_slope, max_value, threshold)


def sigmoid(x):
    return ops.sigmoid(x)


def tanh(x):
    return ops.tanh(x)


def softmax(x, axis=-1):
    return ops.softmax(x, axis)


def log_softmax(x, axis=-1):
    return ops.log_softmax(x, axis)


def gelu(x, approximate=False):
    return ops.gelu(x, approximate)


def elu(x, alpha=1.0):
    return ops.elu(x, alpha)


def selu(x):
    return ops.selu(x)


def softplus(x):
    return ops.softplus(x)


def softsign(x):
    return ops.softsign(x)


def silu(x):
    return ops.silu(x)


swish = silu


def leaky_relu(x, negative_slope=0.2):
    return ops.leaky_relu(x, negative_slope)


def relu6(x):
    return ops.relu6(x)


def hard_sigmoid(x):
    return ops.hard_sigmoid(x)


def hard_silu(x):
    return ops.hard_silu(x)


hard_swish = hard_silu


def exponential(x):
    return ops.exp(x)


def linear(x):
    return x


ALL = {f.__name__: f for f in (relu, sigmoid, tanh, softmax, log_softmax, gelu, elu, selu,
                               softplus, softsign, silu, leaky_relu, relu6, hard_sigmoid,
                               hard_silu, exponential, linear)}
ALL.update(swish=silu, hard_swish=hard_silu)


def get(identifier):
    """Resolve `None`, a name or a callable to an activation function."""
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    return lookup("activation function", identifier, ALL)


def serialize(fn) -> str:
    if fn is None:  # an activation a user removed by setting it to None
        return "linear"
    for name, f in ALL.items():
        if f is fn:
            return "silu" if name == "swish" else name
    name = getattr(fn, "__name__", None)
    if name is None:
        raise ValueError(f"Cannot serialize activation {fn!r}")
    return name


def deserialize(config, custom_objects=None):
    return lookup("activation function", config, ALL, custom_objects)
