"""The tensors a layer call meets or returns: `KerasTensor` (a functional model's symbolic
tensor, with Python's operators as layers), `DeferredTensor` (an unbuilt Sequential's
`input`/`output`), `CallNode` (one call in a layer graph), `EagerTensor` (what eager calls
return) and `IncompatibleInputError`."""
from __future__ import annotations

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

    def _one_element(self):
        if self.size != 1:
            raise TypeError(f"Only a tensor of one element converts to a Python scalar. "
                            f"Received: shape={self.shape}")
        return np.asarray(self).reshape(())


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

    def __add__(self, o):
        return self._op(lambda a, b: a + b, o)

    def __radd__(self, o):
        return self._op(lambda a, b: b + a, o)

    def __sub__(self, o):
        return self._op(lambda a, b: a - b, o)

    def __rsub__(self, o):
        return self._op(lambda a, b: b - a, o)

    def __mul__(self, o):
        return self._op(lambda a, b: a * b, o)

    def __rmul__(self, o):
        return self._op(lambda a, b: b * a, o)

    def __truediv__(self, o):
        return self._op(lambda a, b: a / b, o)

    def __neg__(self):
        return self._op(lambda a: -a)

    def __getitem__(self, index):
        return self._op(lambda a: a[index])


def _install_operators():
    """The rest of Python's operators on KerasTensors, as traced values have them (`x ** 2`,
    `x @ w`, `x > 0`, `1 / x`, `~mask`, ...). `==`/`!=` keep Python's identity: functional
    code looks KerasTensors up in lists (`ops.equal` compares elementwise)."""
    import operator

    binary = {"pow": operator.pow, "matmul": operator.matmul, "floordiv": operator.floordiv,
              "mod": operator.mod, "and": operator.and_, "or": operator.or_}
    for name, fn in binary.items():
        setattr(KerasTensor, f"__{name}__", lambda self, o, fn=fn: self._op(fn, o))
    for name, fn in {**binary, "truediv": operator.truediv}.items():
        setattr(KerasTensor, f"__r{name}__",
                lambda self, o, fn=fn: self._op(lambda a, b: fn(b, a), o))
    for name, fn in {"lt": operator.lt, "le": operator.le, "gt": operator.gt,
                     "ge": operator.ge}.items():
        setattr(KerasTensor, f"__{name}__", lambda self, o, fn=fn: self._op(fn, o))
    KerasTensor.__abs__ = lambda self: self._op(abs)
    KerasTensor.__invert__ = lambda self: self._op(operator.invert)


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
