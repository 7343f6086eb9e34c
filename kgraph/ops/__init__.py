"""`kgraph.ops`: the op API. Each function adds a node to the graph being traced, or runs the
numpy reference when called on concrete arrays outside any graph."""
import builtins as _builtins
import sys as _sys

import numpy as _np

from kgraph.ir.graph import Value
from kgraph.ops import elementwise as _ew
from kgraph.ops import linalg as _la
from kgraph.ops import movement as _mv
from kgraph.ops import conv as _conv  # noqa: F401 - registers convolution primitives
from kgraph.ops import gather as _gather  # noqa: F401 - registers gather primitives
from kgraph.ops import pool as _pool  # noqa: F401 - registers pooling primitives
from kgraph.ops import random as _random  # noqa: F401 - registers RandomUniformLike
from kgraph.ops import reduce as _rd
from kgraph.ops.elementwise import (abs, add, cast, cos, sin, divide, equal, erf, exp, floor, greater,  # noqa: F401
                                    greater_equal, isnan, less, less_equal, log, logical_and,
                                    logical_not, logical_or, maximum, minimum, mod, multiply,
                                    negative, not_equal, pow, power, reciprocal, round, sign,
                                    sqrt, square, subtract, tanh, where)
from kgraph.ops.conv import conv, conv_transpose, depthwise_conv, separable_conv  # noqa: F401
from kgraph.ops.gather import gather, take  # noqa: F401
from kgraph.ops.linalg import dot, matmul  # noqa: F401
from kgraph.ops.movement import (broadcast_like, broadcast_to, concatenate, count,  # noqa: F401
                                 expand_dims, pad, reshape, reshape_to, slice_axis, squeeze,
                                 swapaxes, transpose)
from kgraph.ops.pool import average_pool, max_pool  # noqa: F401
from kgraph.ops.nn import (clip, dropout, elu, exponential, gelu, hard_sigmoid,  # noqa: F401
                           hard_silu, leaky_relu, log_softmax, logsumexp, one_hot, relu, relu6,
                           selu, silu, softmax, softplus, softsign, stop_gradient, swish)
from kgraph.ops.reduce import argmax, max, mean, min, sum  # noqa: F401
from kgraph.ops.registry import REGISTRY, apply, get_op  # noqa: F401

sigmoid = _ew.sigmoid

# -- the Keras 3 `keras.ops` namespace (tests/data/keras_ops_names.txt lists it) ----------------
from kgraph.ops.numpy_namespace import *  # noqa: F401,F403,E402 - numpy-like names
from kgraph.ops import numpy_namespace as numpy  # noqa: E402 - keras.ops.numpy
from kgraph.ops import image  # noqa: F401,E402 - keras.ops.image
from kgraph.ops import loop, recurrence  # noqa: F401,E402 - register Loop and Scan
from kgraph.ops import lstm_gates as _lstm_gates  # noqa: F401,E402 - registers LSTMGates
from kgraph.ops import adam_update as _adam_update  # noqa: F401,E402 - registers AdamUpdate
from kgraph.ops import softmax_ops as _softmax_ops  # noqa: F401,E402 - Softmax, SoftmaxGrad
from kgraph.ops import layer_norm as _layer_norm  # noqa: F401,E402 - LayerNorm, LayerNormGrad
from kgraph.ops import conv_kernel_grad as _conv_kg  # noqa: F401,E402 - registers Im2ColRows
from kgraph.ops.control_flow import (associative_scan, cond, fori_loop, map, scan,  # noqa: F401,E402
                                     switch, vectorized_map, while_loop)
from kgraph.ops.core_api import (convert_to_numpy, convert_to_tensor, custom_gradient,  # noqa: F401,E402
                                 dtype, is_tensor, saturate_cast, scatter, scatter_update,
                                 slice, slice_update, unstack)
from kgraph.ops.linalg_api import (cholesky, cholesky_inverse, det, eig, eigh, inv,  # noqa: F401,E402
                                   lstsq, lu_factor, matrix_rank, norm, pinv, qr, solve,
                                   solve_triangular, svd)
from kgraph.ops.nn import (average_pool, binary_crossentropy, categorical_crossentropy,  # noqa: F401,E402
                           celu, depth_to_space, dot_product_attention, glu, hard_shrink,
                           hard_swish, hard_tanh, layer_normalization, log_sigmoid, max_pool,
                           moments, multi_hot, normalize, psnr, rms_normalization,
                           soft_shrink, space_to_depth, sparse_categorical_crossentropy,
                           sparse_plus, sparse_sigmoid, sparsemax, squareplus, tanh_shrink,
                           threshold, batch_normalization)
from kgraph.ops.nn_api import softmax  # noqa: F401,E402 - also over a tuple of axes
from kgraph.ops.nn_api import stop_gradient  # noqa: F401,E402 - Keras' name
from kgraph.ops.reduce_api import (erfinv, segment_max, segment_min,  # noqa: F401,E402
                                   segment_prod, segment_sum)
from kgraph.ops.numpy_math_api import cdist, erfc  # noqa: F401,E402
from kgraph.ops.shape_api import extract_sequences  # noqa: F401,E402
from kgraph.ops.numpy_api import rsqrt  # noqa: F401,E402
from kgraph.ops.sort import in_top_k, top_k  # noqa: F401,E402
from kgraph.ops.reduce_api import logdet  # noqa: F401,E402
from kgraph.ops.fft import fft, fft2, ifft2, irfft, rfft  # noqa: F401,E402
from kgraph.ops.stft import istft, stft  # noqa: F401,E402
from kgraph.ops.jvp import jvp  # noqa: F401,E402
from kgraph.ops.windows_api import (adaptive_average_pool, adaptive_max_pool,  # noqa: F401,E402
                                   fold, unfold)
from kgraph.ops.einops import rearrange  # noqa: F401,E402
from kgraph.ops.ctc import ctc_decode, ctc_loss  # noqa: F401,E402


from kgraph.ops.symbolic_shape import shape  # noqa: F401,E402 - unknown dims as int32 scalars


from kgraph.tensor_shape import TensorShape  # noqa: E402


def _install_operators():
    def rev(fn):
        return lambda self, other: fn(other, self)

    ops = {
        "__add__": _ew.add, "__radd__": rev(_ew.add), "__sub__": _ew.subtract,
        "__rsub__": rev(_ew.subtract), "__mul__": _ew.multiply, "__rmul__": rev(_ew.multiply),
        "__truediv__": true_divide, "__rtruediv__": rev(true_divide), "__pow__": _ew.power,
        "__rpow__": rev(_ew.power), "__matmul__": _la.matmul, "__rmatmul__": rev(_la.matmul),
        "__gt__": _ew.greater, "__ge__": _ew.greater_equal, "__lt__": _ew.less,
        "__le__": _ew.less_equal, "__and__": _ew.logical_and, "__or__": _ew.logical_or,
        "__floordiv__": floor_divide, "__rfloordiv__": rev(floor_divide), "__mod__": _ew.mod,
        "__rmod__": rev(_ew.mod),
    }
    for name, fn in ops.items():
        setattr(Value, name, fn)
    Value.__neg__ = lambda self: _ew.negative(self)
    Value.__abs__ = lambda self: _ew.abs(self)
    Value.__invert__ = lambda self: _ew.logical_not(self)
    Value.__eq__ = _elementwise_with_data(_ew.equal)
    Value.__ne__ = _elementwise_with_data(_ew.not_equal)
    Value.__getitem__ = _getitem
    Value.T = property(lambda self: _mv.transpose(self))
    Value.get_shape = lambda self: TensorShape(self.shape)  # TensorFlow's static shape
    Value.reshape = lambda self, *shape: _mv.reshape(self, shape[0] if len(shape) == 1 else shape)


def _getitem(x, index):
    """Basic static slicing: ints, slices with step 1, Ellipsis and None."""
    if not isinstance(index, tuple):
        index = (index,)
    if Ellipsis in index:
        i = index.index(Ellipsis)
        fill = len(x.shape) - (len(index) - 1 - index.count(None))
        index = index[:i] + (_builtins.slice(None),) * fill + index[i + 1:]
    out, axis, squeeze_axes, new_axes = x, 0, [], []
    for item in index:
        if item is None:
            new_axes.append(axis + len(new_axes))
            continue
        if isinstance(item, (_np.ndarray, _np.generic)) and item.ndim == 0 \
                and item.dtype.kind in "iu":  # an eager index: `preds[:, tf.argmax(preds[0])]`
            item = int(item)
        if isinstance(item, int):
            out = _mv.slice_axis(out, item, item + 1 if item != -1 else 2**62, axis)
            squeeze_axes.append(axis)
        elif _is_dim(item):  # a run-time index: `x[ops.shape(x)[0] - 1]`
            out = _index_at_run_time(out, item, axis)
            squeeze_axes.append(axis)
        elif isinstance(item, _builtins.slice) and (_is_dim(item.start) or _is_dim(item.stop)):
            if item.step not in (None, 1):
                raise NotImplementedError(f"Slicing with a step is not supported: {item}")
            out = _slice_at_run_time(out, item.start, item.stop, axis)  # `x[:, :n]`
        elif isinstance(item, _builtins.slice) and item.step not in (None, 1):
            out = _strided(out, item, axis)  # `x[:, 0::2]` (swin_transformers.py)
        elif isinstance(item, _builtins.slice):
            if item != _builtins.slice(None):
                start = 0 if item.start is None else item.start
                stop = 2**62 if item.stop is None else item.stop
                out = _mv.slice_axis(out, start, stop, axis)
        else:
            raise TypeError(f"Unsupported index for a symbolic tensor: {item!r}")
        axis += 1
    for a in reversed(squeeze_axes):
        out = _mv.squeeze(out, a)
    for a in new_axes:
        out = _mv.expand_dims(out, a)
    return out


def _elementwise_with_data(compare):
    """`==`/`!=` of a traced tensor: elementwise against numbers and arrays (`labels != -1`),
    as Keras. Against another tensor (or None, or any other object) it stays the identity
    test: the IR keys dicts by Values and tests `in` on lists of them, and an elementwise
    result there would be a graph op with no truth value. Use `ops.equal(a, b)` for two
    tensors."""
    def method(self, other):
        if isinstance(other, (bool, int, float, _np.generic, _np.ndarray)):
            return compare(self, other)
        return NotImplemented  # Python falls back to `self is other`
    return method


def _strided(x, item, axis):
    """`x[..., start:stop:step, ...]` along an axis of known size: a gather of those indices."""
    size = x.shape[axis]
    if size is None or _builtins.any(_is_dim(v) for v in (item.start, item.stop, item.step)):
        raise NotImplementedError(f"Slicing with a step needs the axis size and the slice "
                                  f"bounds known while tracing. Received: {item} on shape "
                                  f"{tuple(x.shape)}")
    indices = _np.arange(*item.indices(size), dtype=_np.int64)
    return take(x, indices, axis=axis)


def _is_dim(item):
    from kgraph.ops.symbolic_shape import is_dim

    return is_dim(item)


def _index_at_run_time(x, index, axis):
    """The entry `index` (an int scalar of the graph; negative counts from the end) along
    `axis`, the axis kept with length 1."""
    size = _mv.count(x, (axis,))
    index = _ew.cast(index, "int64")
    index = _ew.where(_ew.less(index, _np.int64(0)), _ew.add(index, size), index)
    return _mv.dynamic_slice(x, index, _ew.add(index, _np.int64(1)), axis)


def _slice_at_run_time(x, start, stop, axis):
    """`x[start:stop]` along `axis` with bounds that are int scalars of the graph (or ints, or
    None): negative bounds count from the end and bounds are clipped, as Python slices."""
    size = _mv.count(x, (axis,))

    def bound(b, default):
        if b is None:
            return default
        b = _ew.cast(b, "int64") if _is_dim(b) else _np.int64(b)
        b = _ew.where(_ew.less(b, _np.int64(0)), _ew.add(b, size), b)
        return _ew.minimum(_ew.maximum(b, _np.int64(0)), size)

    start, stop = bound(start, _np.int64(0)), bound(stop, size)
    return _mv.dynamic_slice(x, start, _ew.maximum(start, stop), axis)


_install_operators()


# -- keras.ops on a functional model's symbolic inputs --------------------------------------
# Keras 3 applies any keras.ops function to KerasTensors while a functional model is built
# (`ops.one_hot(keras.Input((7, 7), dtype="int32"), 128)`): such a call becomes an op layer.
# kgraph.keras.layers.core fills this in (the ops package does not import the Keras layers).
FUNCTIONAL_OPS: dict = {}
_NOT_FUNCTIONAL = {"shape", "is_tensor", "dtype", "convert_to_numpy", "apply", "get_op",
                   "cond", "while_loop", "fori_loop", "scan", "map", "switch", "vectorized_map",
                   "associative_scan", "custom_gradient"}


def _takes_keras_tensors(values, kind):
    # plain loops: every op call while a step is recorded passes here (a generator
    # expression cost ~1.7 us a call, a quarter of recording an elementwise op)
    for v in values:
        if isinstance(v, kind):
            return True
        if isinstance(v, (list, tuple)):
            for item in v:
                if isinstance(item, kind):
                    return True
    return False


def _functional(fn):
    def run(*args, **kwargs):
        kind = FUNCTIONAL_OPS.get("tensor")
        if kind is not None and (_takes_keras_tensors(args, kind) or
                                 (kwargs and _takes_keras_tensors(kwargs.values(), kind))):
            return FUNCTIONAL_OPS["call"](fn, *args, **kwargs)
        out = fn(*args, **kwargs)
        if type(out) is _np.ndarray and kind is not None:
            # an eager tensor in gives eager tensors out, as a TensorFlow tensor's ops do:
            # `keras.ops.argmax(model(x)[0]).numpy()` (keras.io's deep_q_network_breakout)
            eager = FUNCTIONAL_OPS["eager"]
            if _takes_keras_tensors(args, eager) or (
                    kwargs and _takes_keras_tensors(kwargs.values(), eager)):
                return out.view(eager)
        return out
    run.__name__, run.__qualname__, run.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    run.__module__, run.__wrapped__, run._functional = fn.__module__, fn, True
    return run


def _install_functional(module):
    import types

    for name, fn in _builtins.list(vars(module).items()):
        if (name.startswith("_") or name in _NOT_FUNCTIONAL or not isinstance(
                fn, types.FunctionType) or getattr(fn, "_functional", False)):
            continue
        setattr(module, name, _functional(fn))


for _module in (nn, _la, image, numpy, _sys.modules[__name__]):
    _install_functional(_module)
