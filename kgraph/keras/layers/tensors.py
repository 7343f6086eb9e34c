"""The tensors a layer call meets or returns: `KerasTensor` (a functional model's symbolic
tensor, with Python's operators as layers), `DeferredTensor` (an unbuilt Sequential's
`input`/`output`), `CallNode` (one call in a layer graph), `EagerTensor` (what eager calls
return) and `IncompatibleInputError`."""
from __future__ import annotations

import operator

import itertools

import numpy as np

from kgraph.device import current_device
from kgraph.keras.tree import flatten


class EagerTensor(np.ndarray):
    """A numpy array returned by eager calls; `.numpy()` gives the plain array, as in Keras."""

    def numpy(self):
        # a copy, as TensorFlow's: code that edits the result in place (`img -= img.mean()` in
        # keras.io's visualizing_what_convnets_learn) must not change the tensor
        return np.array(self)

    def __iter__(self):
        # the entries of a 1-D tensor are 0-d tensors, as TensorFlow's (vivit.py's
        # `for sample, label in zip(samples, labels): label.numpy()`), not numpy scalars
        if self.ndim == 1:
            return (np.asarray(v).view(EagerTensor) for v in np.asarray(self))
        return super().__iter__()

    def get_shape(self):
        """TensorFlow's static shape (`x.get_shape().as_list()`)."""
        from kgraph.tensor_shape import TensorShape

        return TensorShape(self.shape)

    def set_shape(self, shape):
        """TensorFlow's `Tensor.set_shape`: an eager tensor's shape is known, so this only
        checks that `shape` (None for an unknown dim) is compatible with it."""
        shape = None if shape is None else list(shape)
        if shape is not None and (len(shape) != self.ndim or any(
                d is not None and int(d) != n for d, n in zip(shape, self.shape))):
            raise ValueError(f"Tensor's shape {self.shape} is not compatible with supplied "
                             f"shape {shape}.")

    # A one-element tensor of any rank converts to a Python number, as TensorFlow's and JAX's
    # do (`float(initializer(shape=(1, 1)))`); numpy 2 converts only 0-d arrays.
    def __float__(self):
        return float(self._one_element())

    def __int__(self):
        return int(self._one_element())

    def __getitem__(self, index):
        # one element is a 0-d tensor, as TensorFlow's `action[0].numpy()` (keras.io PPO
        # example); numpy would give a scalar without `.numpy()`
        out = super().__getitem__(index)
        return np.asarray(out).view(EagerTensor) if isinstance(out, np.generic) else out

    def __hash__(self):
        # a 0-d tensor from indexing stays usable as a dict key, as the numpy scalar was
        if self.ndim:
            raise TypeError(f"unhashable: an EagerTensor of shape {self.shape}")
        return hash(np.asarray(self).item())

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # numpy arithmetic on a tensor an eager GradientTape watches is recorded, as
        # TensorFlow's (`tape.watch(x); y = x * x` gives dy/dx); anything else is numpy's
        from kgraph.tape import record_ufunc

        recorded = record_ufunc(ufunc, method, inputs, kwargs)
        if recorded is not NotImplemented:
            return recorded
        # numpy's own result, as for any subclass: arrays (0-d included) stay EagerTensors
        args = [x.view(np.ndarray) if isinstance(x, EagerTensor) else x for x in inputs]
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, EagerTensor) else o
                                  for o in out)
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        if method == "at":
            return None
        return tuple(map(_eager_result, result)) if isinstance(result, tuple) else \
            _eager_result(result)

    def _one_element(self):
        if self.size != 1:
            raise TypeError(f"Only a tensor of one element converts to a Python scalar. "
                            f"Received: shape={self.shape}")
        return np.asarray(self).reshape(())


def _eager_result(value):
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value).view(EagerTensor)
    return value


def as_eager_tensor(value):
    """`value` as an `EagerTensor` when it is an eager array (TensorFlow and Keras code read
    eager results with `.numpy()`); traced values and anything else pass through."""
    if isinstance(value, (np.ndarray, np.generic)) and not isinstance(value, EagerTensor):
        return np.asarray(value).view(EagerTensor)
    return value


def _eager(x):
    return np.asarray(x).view(EagerTensor)


class IncompatibleInputError(ValueError):
    """A layer or model was given an input whose shape or rank it cannot take (Keras raises a
    ValueError; fit names the streamed batch that caused it)."""


class KerasTensor:
    """A symbolic tensor of a functional model: shape (batch dim None), dtype, history."""

    # numpy defers to the KerasTensor's own operators: `np.ones(3) + x` is one op node, not
    # an object array of one per element
    __array_ufunc__ = None

    def __init__(self, shape, dtype="float32", name=None, history=None):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.name = name
        self._keras_history = history  # (layer, node_index, tensor_index)

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def _op(self, fn, *others):
        from kgraph.keras.layers.core import _op_layer

        return _op_layer(fn, self, *others)


def _named(name, fn):
    """`fn` under the name of the Keras op a config records for it (Keras 3 routes Python
    operators on KerasTensors to these ops: keras/src/backend/common/keras_tensor.py)."""
    fn.__name__ = fn.__qualname__ = name
    return fn


def get_item(x, key):
    return x[tuple(key) if isinstance(key, list) else key]


def _install_operators():
    """Python's operators on KerasTensors, as traced values have them (`x + 1`, `x ** 2`,
    `x @ w`, `x > 0`, `1 / x`, `~mask`, `x[:, 0]`, ...), each an op layer named as the Keras
    op it is (`add`, `true_divide`, `get_item`, ...) with its operands in Keras' order (`1 - x`
    is subtract(1, x)), so functional models built with them save as Keras saves them.
    `==`/`!=` keep Python's identity: functional code looks KerasTensors up in lists
    (`ops.equal` compares elementwise)."""
    def _op_layer(fn, *operands):
        from kgraph.keras.layers.core import _op_layer as make

        return make(fn, *operands)

    binary = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
              "truediv": operator.truediv, "floordiv": operator.floordiv, "mod": operator.mod,
              "pow": operator.pow, "matmul": operator.matmul, "and": operator.and_,
              "or": operator.or_}
    keras_names = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide",
                   "floordiv": "floor_divide", "mod": "mod", "pow": "power", "matmul": "matmul",
                   "and": "logical_and", "or": "logical_or", "lt": "less", "le": "less_equal",
                   "gt": "greater", "ge": "greater_equal"}
    for name, fn in {**binary, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
                     "ge": operator.ge}.items():
        op = _named(keras_names[name], lambda a, b, fn=fn: fn(a, b))
        setattr(KerasTensor, f"__{name}__", lambda self, o, op=op: _op_layer(op, self, o))
        if name in binary:
            setattr(KerasTensor, f"__r{name}__", lambda self, o, op=op: _op_layer(op, o, self))
    for dunder, (name, fn) in {"neg": ("negative", operator.neg),
                               "abs": ("absolute", abs),
                               "invert": ("logical_not", operator.invert)}.items():
        op = _named(name, lambda a, fn=fn: fn(a))
        setattr(KerasTensor, f"__{dunder}__", lambda self, op=op: _op_layer(op, self))
    KerasTensor.__getitem__ = lambda self, key: _op_layer(get_item, self, key)


_install_operators()


class DeferredTensor:
    """`layer.input`/`layer.output` (or `model.inputs`) of a Sequential model that is not
    built yet; `keras.Model(inputs, outputs)` made of these builds itself on first data."""

    def __init__(self, model, layer, what):
        self.model, self.layer, self.what = model, layer, what
        self.shape, self.dtype = None, None

    def resolve(self):
        if self.layer is None:
            return self.model.inputs[0]
        return getattr(self.layer, self.what)

    def __repr__(self):
        target = self.layer.name if self.layer is not None else self.model.name
        return f"<DeferredTensor {self.what} of {target} (built on first data)>"


class CallNode:
    """One call of a layer in a layer graph: inputs and outputs are KerasTensors."""

    _serials = itertools.count()

    def __init__(self, layer, args, kwargs, outputs):
        self.serial = next(CallNode._serials)  # creation order, for a stable topological sort
        self.layer, self.args, self.kwargs, self.outputs = layer, args, kwargs, outputs
        self.inputs = [t for t in flatten((args, kwargs)) if isinstance(t, KerasTensor)]
        self.device = current_device()  # a `kgraph.device` scope around this call
