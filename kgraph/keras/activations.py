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


def celu(x, alpha=1.0):
    """Continuously differentiable ELU: `max(x, 0) + min(alpha * (exp(x / alpha) - 1), 0)`."""
    return ops.celu(x, alpha)


def glu(x, axis=-1):
    """Gated linear unit: `x` split in halves `a, b` along `axis`, `a * sigmoid(b)`."""
    return ops.glu(x, axis)


def hard_shrink(x, threshold=0.5):
    """`x` where `|x| > threshold`, else 0."""
    return ops.hard_shrink(x, threshold)


def hard_tanh(x):
    """`x` clipped to [-1, 1]."""
    return ops.hard_tanh(x)


def log_sigmoid(x):
    """`log(sigmoid(x)) = -softplus(-x)`, stable for large `|x|`."""
    return ops.log_sigmoid(x)


def mish(x):
    """Mish (Misra 2019): `x * tanh(softplus(x))`."""
    return x * ops.tanh(ops.softplus(x))


def soft_shrink(x, threshold=0.5):
    """`x - threshold` above `threshold`, `x + threshold` below `-threshold`, else 0."""
    return ops.soft_shrink(x, threshold)


def sparse_plus(x):
    """0 for `x <= -1`, `(x + 1) ** 2 / 4` on (-1, 1), `x` for `x >= 1`."""
    return ops.sparse_plus(x)


def sparse_sigmoid(x):
    """0 for `x <= -1`, `(x + 1) / 2` on (-1, 1), 1 for `x >= 1`."""
    return ops.sparse_sigmoid(x)


def sparsemax(x, axis=-1):
    """Euclidean projection of `x` onto the probability simplex along `axis` (Martins &
    Astudillo 2016): like softmax, but exact zeros outside the support.

    Keras 3.15.1's own `sparsemax` computes its threshold from the sum of the cumulative sums
    over the support instead of the last one, so its output does not sum to 1 once two or more
    entries are in the support (keras-team/keras#23425, fixed by #23469 after 3.15). kgraph
    gives the projection of the paper (equal to Keras' where one entry is in the support).
    """
    return ops.sparsemax(x, axis)


def squareplus(x, b=4):
    """`(x + sqrt(x ** 2 + b)) / 2`, a smooth ReLU."""
    return ops.squareplus(x, b)


def tanh_shrink(x):
    """`x - tanh(x)`."""
    return ops.tanh_shrink(x)


def threshold(x, threshold, default_value):
    """`x` where `x > threshold`, else `default_value`."""
    return ops.threshold(x, threshold, default_value)


ALL = {f.__name__: f for f in (relu, sigmoid, tanh, softmax, log_softmax, gelu, elu, selu,
                               softplus, softsign, silu, leaky_relu, relu6, hard_sigmoid,
                               hard_silu, exponential, linear, celu, glu, hard_shrink,
                               hard_tanh, log_sigmoid, mish, soft_shrink, sparse_plus,
                               sparse_sigmoid, sparsemax, squareplus, tanh_shrink, threshold)}
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
