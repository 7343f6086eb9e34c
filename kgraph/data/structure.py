"""Element structures: nests of tuples, namedtuples and dicts whose leaves are numpy arrays,
and the `TensorSpec` that describes one leaf."""
from __future__ import annotations

import numpy as np


class TensorSpec:
    """The shape (`None` dims unknown; `None` shape: unknown rank) and dtype of an element."""

    def __init__(self, shape, dtype="float32", name=None):
        self.shape = None if shape is None else tuple(None if d is None else int(d) for d in shape)
        # a numpy dtype as is: the name of a string dtype ("str192") does not parse back
        dtype = dtype if isinstance(dtype, np.dtype) else np.dtype(getattr(dtype, "name", dtype))
        self.dtype, self.name = dtype, name

    def __eq__(self, other):
        return isinstance(other, TensorSpec) and (self.shape, self.dtype) == (other.shape,
                                                                             other.dtype)

    def __repr__(self):
        return f"TensorSpec(shape={self.shape}, dtype={self.dtype.name}, name={self.name!r})"


def rebuild(like, values):
    return type(like)(*values) if hasattr(like, "_fields") else tuple(values)


def map_structure(fn, *structures):
    """Apply `fn` leaf-wise to structures (tuples, namedtuples, dicts) shaped like the first."""
    s = structures[0]
    if isinstance(s, tuple):
        return rebuild(s, [map_structure(fn, *(t[i] for t in structures)) for i in range(len(s))])
    if isinstance(s, dict):
        return {k: map_structure(fn, *(t[k] for t in structures)) for k in s}
    return fn(*structures)


def leaves(s):
    if isinstance(s, (tuple, dict)):
        return [leaf for v in (s.values() if isinstance(s, dict) else s) for leaf in leaves(v)]
    return [s]


def to_numpy(a, dtype=None):
    if hasattr(a, "numpy") and not isinstance(a, np.ndarray):
        a = a.numpy()
    arr = np.asarray(a, dtype=dtype)
    if dtype is None and arr.dtype == np.float64 and not isinstance(a, (np.ndarray, np.generic)):
        arr = arr.astype(np.float32)  # Python floats become float32, as in TensorFlow
    return arr


def normalize(s, lists_are_tuples=False):
    """Leaves become numpy arrays; lists are arrays, or tuples for `map` outputs (as in TF)."""
    if isinstance(s, tuple) or isinstance(s, list) and lists_are_tuples:
        return rebuild(s, [normalize(v, lists_are_tuples) for v in s])
    if isinstance(s, dict):
        return {k: normalize(v, lists_are_tuples) for k, v in s.items()}
    return to_numpy(s)


def call(fn, element):
    """Call `fn` like tf.data: a (non-named) tuple element is unpacked as positional args.
    String leaves arrive as `StringTensor`s, whose dtype is TensorFlow's `string`."""
    element = map_structure(_as_string_tensor, element)
    if isinstance(element, tuple) and not hasattr(element, "_fields"):
        return fn(*element)
    return fn(element)


class StringDType:
    """The dtype of a `StringTensor`: equal to "string" (`tf.string`), as a TensorFlow string
    tensor's, and to its numpy dtype; any other attribute is the numpy dtype's, and numpy
    takes it where it takes a dtype (`np.zeros(2, x.dtype)`) through `.dtype`."""

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype

    def __eq__(self, other):
        return other == "string" or other is self or self.dtype == getattr(other, "dtype",
                                                                           other)

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash("string")

    def __getattr__(self, name):
        return getattr(self.dtype, name)

    def __repr__(self):
        return "tf.string"


class StringTensor(np.ndarray):
    """A numpy array of text handed to a tf.data function (`map`, `filter`): numpy's own in
    every respect but `dtype`, which compares equal to TensorFlow's "string" (the keras.io
    structured-data example picks its lookup layer by `x.dtype == "string"`)."""

    @property
    def dtype(self):
        return StringDType(np.ndarray.dtype.__get__(self))

    def numpy(self):
        return np.array(self)


class StringScalar(np.str_):
    """One text element (of a sliced text column) handed to a tf.data function: a Python
    `str` (paths open, strings format) whose `dtype` equals TensorFlow's "string"."""

    @property
    def dtype(self):
        return StringDType(np.dtype((np.str_, len(self))))  # as np.str_(self).dtype

    def numpy(self):
        return np.str_(self)


class BytesScalar(np.bytes_):
    """One bytes element handed to a tf.data function (see `StringScalar`)."""

    @property
    def dtype(self):
        return StringDType(np.dtype((np.bytes_, len(self))))

    def numpy(self):
        return np.bytes_(self)


def _as_string_tensor(leaf):
    if isinstance(leaf, np.str_) and not isinstance(leaf, StringScalar):
        return StringScalar(leaf)
    if isinstance(leaf, np.bytes_) and not isinstance(leaf, BytesScalar):
        return BytesScalar(leaf)
    if isinstance(leaf, np.ndarray) and leaf.dtype.kind in "USO" and not isinstance(
            leaf, StringTensor) and (leaf.dtype.kind != "O" or _holds_text(leaf)):
        return leaf.view(StringTensor)
    return leaf


def _holds_text(array) -> bool:
    first = next(iter(array.flat), None)
    return isinstance(first, (str, bytes))


def stack(*arrays):
    shapes = {np.shape(a) for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"Cannot batch tensors with different shapes: {sorted(shapes)}. "
                         f"Use `map` to give every element the same shape first.")
    return np.stack(arrays)


def spec_of(element):
    return map_structure(lambda a: TensorSpec(np.shape(a), np.asarray(a).dtype), element)


def conform(values, specs, index=None):
    """Cast a yielded structure to the signature's dtypes, checking structure and shapes;
    errors name the element by its position `index` in the stream."""
    where = "" if index is None else f" (element {index})"
    try:
        if len(leaves(values)) != len(leaves(specs)):
            raise TypeError
        return map_structure(lambda spec, v: check_shape(to_numpy(v, spec.dtype), spec, where),
                             specs, values)
    except (TypeError, KeyError, IndexError):
        raise TypeError(f"`generator` yielded {values!r}{where}, which does not match the "
                        f"structure of `output_signature` {specs!r}.") from None


def check_shape(arr, spec, where=""):
    if spec.shape is not None and (arr.ndim != len(spec.shape) or any(
            d is not None and d != a for d, a in zip(spec.shape, arr.shape))):
        raise ValueError(f"`generator` yielded an element of shape {arr.shape}{where} where an "
                         f"element of shape {spec.shape} was expected.")
    return arr
