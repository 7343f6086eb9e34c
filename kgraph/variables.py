"""Variables: named, shaped state whose value lives either on the host (numpy) or resident in
an executor (an onnxruntime OrtValue, a TVM tensor). Reading `.numpy()` copies back lazily, so
training steps never round-trip parameters through numpy."""
from __future__ import annotations

import threading

import numpy as np

from kgraph.ir.graph import current_graph
from kgraph.ir.types import dtype_name, is_float

_autocast = threading.local()


class AutocastScope:
    """Inside this scope, float variables created with `autocast=True` read as `dtype` (and
    say so in `.dtype`); `dtype=None` reads them as stored. Keras 3's `AutocastScope`: how a
    `mixed_float16` layer computes in float16 while its variables stay float32."""

    def __init__(self, dtype):
        self.dtype = None if dtype is None else dtype_name(dtype)

    def __enter__(self):
        self._saved = getattr(_autocast, "scope", None)
        _autocast.scope = self
        return self

    def __exit__(self, *exc):
        _autocast.scope = self._saved

    def maybe_cast(self, value):
        from kgraph.ops.elementwise import cast

        if self.dtype is not None and is_float(value.dtype) and value.dtype != self.dtype:
            return cast(value, self.dtype)
        return value


def get_autocast_scope():
    """The innermost active `AutocastScope`, or None."""
    return getattr(_autocast, "scope", None)


class Variable:
    """A Keras-style variable (`keras.Variable`)."""

    # `ndarray * variable` defers to Variable.__rmul__, so under a tape it is recorded (and
    # differentiated) as `variable * ndarray` is, not computed eagerly on a copy
    __array_priority__ = 1000

    def __init__(self, initializer=None, shape=None, dtype=None, trainable=True, name=None,
                 path=None, aggregation="none", autocast=True, *, initial_value=None):
        from kgraph import config

        if initial_value is not None:  # tf.Variable(initial_value=...)
            if initializer is not None:
                raise ValueError(f"Variable {name!r}: pass `initializer` or `initial_value`, "
                                 f"not both")
            initializer = initial_value
        if initializer is None:
            raise ValueError(f"Variable {name!r}: an `initializer` (or TensorFlow's "
                             f"`initial_value`) is required")

        if dtype is None and not callable(initializer):
            # an integer or bool initial value keeps its kind, as Keras (floats: floatx);
            # swin_transformers.py keeps an int position index in a tf.Variable
            raw = getattr(initializer, "dtype", None)  # (np.asarray of a traced value would
            try:                                       # read it element by element)
                kind = np.dtype(raw) if raw is not None else np.asarray(initializer).dtype
            except TypeError:  # bfloat16 and other names numpy does not know
                kind = None
            dtype = kind.name if kind is not None and kind.kind in "iub" else None
        dtype = dtype_name(dtype or config.floatx())
        if callable(initializer):
            if shape is None:
                raise ValueError(f"Variable {name!r}: an initializer needs a shape")
            value = initializer(tuple(shape), dtype=dtype)
        else:
            value = initializer
        value = np.array(value, dtype=_np(dtype))
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise ValueError(f"Variable {name!r}: initial value has shape {value.shape}, "
                             f"expected {tuple(shape)}")
        self.name = name or "variable"
        self.path = path or self.name
        self._shape = tuple(value.shape)
        self._dtype = dtype
        self.trainable = trainable
        self.aggregation = aggregation
        self._autocast = bool(autocast)  # read in an AutocastScope's dtype (mixed precision)
        self._host = _read_only(value)
        self._device = None  # backend buffer, authoritative when _host is None
        self._device_upload = None  # the upload of the executor whose buffer _device is
        self._donatable = False  # a step may write _device in place (see `donatable`)
        from kgraph.distribute.strategy import note_variable

        note_variable(self)  # a strategy's scope remembers the variables made inside it

    # -- identity ---------------------------------------------------------------------------
    @property
    def shape(self):
        return self._shape

    def get_shape(self):
        """TensorFlow's name for `shape` (`self.conv.kernel.get_shape()`)."""
        return self._shape

    @property
    def dtype(self):
        """The stored dtype, or the compute dtype of the active `AutocastScope`."""
        scope = get_autocast_scope()
        if self._autocast and scope is not None and scope.dtype and is_float(self._dtype):
            return scope.dtype
        return self._dtype

    @property
    def ndim(self):
        return len(self._shape)

    def __repr__(self):
        return (f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}, "
                f"value={self._held()!r}>")

    __hash__ = object.__hash__

    # -- host / device value ----------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The value as a new array, as TensorFlow's: editing it leaves the variable alone."""
        return self._held().copy()

    def _held(self) -> np.ndarray:
        """The host value, read-only: the variable's own array, which callers must not keep
        as their copy (`assign` replaces it; an in-place edit would change the variable)."""
        if self._host is None:
            self._host = _read_only(np.array(_to_host(self._device), copy=True))
        return self._host

    @property
    def value(self):
        graph = current_graph()
        if graph is None:
            return self._held()  # read-only: eager ops make new arrays from it
        with AutocastScope(None):  # the graph holds the variable as stored
            stored = graph.read_variable(self)
        scope = get_autocast_scope()
        return scope.maybe_cast(stored) if self._autocast and scope is not None else stored

    def __array__(self, dtype=None, copy=None):
        # a new array, as TensorFlow's; numpy 2's `copy=False` (never copy) gets the
        # variable's own read-only array
        held = self._held()
        if copy is False:
            if dtype is not None and np.dtype(dtype) != held.dtype:
                raise ValueError(f"Variable {self.path!r}: converting {held.dtype} to {dtype} "
                                 f"needs a copy. Received: copy=False")
            return held
        return held.copy() if dtype is None else held.astype(dtype)

    def assign(self, value):
        graph = current_graph()
        if graph is not None:
            with AutocastScope(None):  # written back in the stored dtype
                return graph.assign(self, value)
        value = np.asarray(value, dtype=_np(self._dtype))
        if value.shape != self._shape:
            raise ValueError(f"Variable {self.path!r} has shape {self._shape}; cannot assign a "
                             f"value of shape {value.shape}")
        self._host, self._device = _read_only(value.copy()), None
        return self

    def assign_add(self, delta):
        return self.assign(self.value + delta)

    def assign_sub(self, delta):
        return self.assign(self.value - delta)

    def device_buffer(self, upload, lend=False):
        """The buffer of the executor whose `upload` this is, uploading the host value when
        stale. A buffer another executor made (a model trained on TVM then called through
        onnxruntime) is copied across through the host; executors whose uploads compare
        equal (TVM on one device) share buffers without a copy.

        The caller may keep the buffer, so no later step writes into it (see `donatable`),
        unless `lend`: a step that feeds it and keeps nothing (runtime/program.py)."""
        if self._device is not None and self._device_upload != upload:
            self._held()
            self._device = None
        if self._device is None:
            self._device, self._device_upload = upload(self._host), upload
            self._donatable = False
        if not lend:
            self._donatable = False
        return self._device

    def donatable(self, upload) -> bool:
        """Whether the next step may write the new value into the current buffer instead of
        a fresh one (an optimizer's update in place): the buffer is one a step made for this
        variable, on `upload`'s executor, and nothing since has been handed it (`device_buffer`
        without `lend`, `snapshot`). A host array's upload is never written into (it may be
        the variable's host value). Updates in place are what TensorFlow's variables do: a
        thread reading the variable while a step updates it may see part of the update."""
        return self._donatable and self._device is not None and self._device_upload == upload

    def kept(self, buffer, upload, written) -> bool:
        """Whether the value is still `buffer` of `upload`'s executor, as a step fed and left
        it, so the step may be run again on the same feeds (runtime/program.py); `written`:
        the step writes it in place, so it must also still be the step's own to write, with
        no host copy read since."""
        if self._device is not buffer or self._device_upload is not upload:
            return False
        if not written:
            self._donatable = False  # fed, as `device_buffer` without `lend` hands it out
            return True
        return self._donatable and self._host is None

    def snapshot(self):
        """The current value as an object that later steps leave unchanged (steps write new
        buffers, never into old ones): the executor's buffer, or a copy of the host array.
        `snapshot_to_numpy` turns it into an array, from any thread."""
        host = self._host
        self._donatable = False
        return host.copy() if host is not None else self._device

    def set_device_buffer(self, buffer, upload=None, donatable=False):
        """Make `buffer` the value (or, the same buffer, mark the value changed). `upload`
        names the executor that made it; by default the one that last asked for this
        variable's buffer (a step's outputs come from the executor its inputs were uploaded
        to). `donatable`: the buffer is the variable's alone (see `donatable`)."""
        self._device, self._host, self._donatable = buffer, None, donatable
        if upload is not None:
            self._device_upload = upload


def snapshot_to_numpy(snapshot) -> np.ndarray:
    """The array a `Variable.snapshot()` holds."""
    return _to_host(snapshot)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _to_host(buffer) -> np.ndarray:
    """A numpy view or copy of any executor's buffer (OrtValue, TVM tensor, numpy array)."""
    return buffer.numpy() if hasattr(buffer, "numpy") else np.asarray(buffer)


def _np(dtype):
    if dtype == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(dtype)


def _eager(value):
    """An eager result as the eager tensor TensorFlow code reads with `.numpy()` (`(a * x **
    b).numpy()` of `tf.Variable`s in the keras.io sample-size example); traced values pass."""
    if isinstance(value, (np.ndarray, np.generic)):
        from kgraph.keras.layers.tensors import as_eager_tensor

        return as_eager_tensor(value)
    return value


def _install_operators():
    from kgraph import ops

    def unary(fn):
        return lambda self: _eager(fn(self.value))

    def binary(fn, reverse=False):
        if reverse:
            return lambda self, other: _eager(fn(other, self.value))
        return lambda self, other: _eager(fn(self.value, other))

    for name, fn in [("add", ops.add), ("sub", ops.subtract), ("mul", ops.multiply),
                     ("truediv", ops.divide), ("matmul", ops.matmul), ("pow", ops.power)]:
        setattr(Variable, f"__{name}__", binary(fn))
        setattr(Variable, f"__r{name}__", binary(fn, reverse=True))
    Variable.__neg__ = unary(ops.negative)
    Variable.__getitem__ = lambda self, i: _eager(self.value[i])


_install_operators()
