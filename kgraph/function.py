"""`kgraph.function`: compile a Python function of tensors into one program, as `tf.function`.

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply(grads, model.trainable_weights)
        return loss

The first call with a given signature (the shape and dtype of every array argument, the
value of every other argument) traces the function into one graph: a GradientTape inside it
differentiates that graph, `optimizer.apply` and metric updates append their assignments,
exactly as in a custom `train_step` under `fit`. The graph is compiled once and later calls
with the same signature run it as one executor call, running none of the function's Python.
With `input_signature` (a list of `kgraph.TensorSpec`, dims may be None) one trace serves
every batch size.

As with `tf.function`: Python side effects (print, appending to a list) happen while tracing
only; variables may be created on the first trace only (optimizer slots, metric state);
numpy arguments of a new shape retrace. AutoGraph converts the function's own `if` statements
(kgraph/autograph.py: an `if` on a tensor traces both branches and selects their results);
`for`/`while` over tensors are not converted (use `kgraph.ops.fori_loop`, `while_loop`).
"""
from __future__ import annotations

import functools
import threading
import weakref

import numpy as np

from kgraph.autograph import convert as autograph_convert
from kgraph.ir.graph import Value, current_graph
from kgraph.keras.tree import flatten, pack_like
from kgraph.variables import Variable

_OPTIONS = frozenset({"autograph", "jit_compile", "reduce_retracing",
                      "experimental_implements", "experimental_autograph_options",
                      "experimental_attributes", "experimental_relax_shapes",
                      "experimental_compile", "experimental_follow_type_hints"})


def function(func=None, input_signature=None, **options):
    """Decorator (with or without arguments) returning a `Function`. `autograph=False` leaves
    the function's `if` statements as written; `jit_compile`, `reduce_retracing` and
    tf.function's `experimental_*` options are accepted and change nothing: every kgraph
    function is compiled."""
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise TypeError(f"kgraph.function() got unexpected keyword arguments: {unknown}")
    autograph = options.get("autograph", True)
    if func is None:
        return lambda f: Function(f, input_signature, autograph)
    return Function(func, input_signature, autograph)


class Function:
    """A traced-and-compiled Python function; see the module docstring."""

    def __init__(self, fn, input_signature=None, autograph=True):
        if not callable(fn):
            raise TypeError(f"kgraph.function needs a callable. Received: {fn!r}")
        functools.update_wrapper(self, fn)
        self._python_fn = fn
        self._autograph = bool(autograph)
        # what is traced: `if` statements on tensors converted (kgraph/autograph.py)
        self._fn = autograph_convert(fn) if self._autograph else fn
        self._signature = None if input_signature is None else list(input_signature)
        self._traces = {}  # signature key -> _Trace
        self._lock = threading.Lock()
        self._bound = weakref.WeakKeyDictionary()  # instance -> Function (decorated methods)

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        bound = self._bound.get(instance)
        if bound is None:
            bound = self._bound[instance] = Function(
                functools.partial(self._python_fn, instance), self._signature,
                self._autograph)
        return bound

    @property
    def python_function(self):
        return self._python_fn

    def __call__(self, *args, **kwargs):
        if current_graph() is not None:  # called while a step or another function traces
            return self._fn(*args, **kwargs)
        structure = (args, kwargs)
        leaves = flatten(structure)
        feeds, key = self._feeds_and_key(structure, leaves)
        with self._lock:
            trace = self._traces.get(key)
            if trace is None:
                trace = self._traces[key] = _Trace(self, structure, leaves, feeds)
        return trace(feeds)

    def _feeds_and_key(self, structure, leaves):
        """The arrays to feed, and the key of the trace that runs them: the structure of
        the arguments, each array's shape (unless an input_signature fixes it) and dtype,
        every other argument's value (or identity)."""
        positions = [i for i, leaf in enumerate(leaves) if _is_array(leaf)]
        if self._signature is not None and len(positions) != len(self._signature):
            raise ValueError(f"{self.__name__}: input_signature has {len(self._signature)} "
                             f"tensors; the call passed {len(positions)} arrays")
        specs = self._signature or [None] * len(positions)
        feeds = [_as_feed(leaves[i], spec) for i, spec in zip(positions, specs)]
        if self._signature is not None:
            for feed, spec in zip(feeds, specs):
                _spec_shape(spec, feed)  # raises on a mismatch
        by_position = dict(zip(positions, feeds))
        key = tuple(("array", None if self._signature else by_position[i].shape,
                     by_position[i].dtype.str) if i in by_position
                    else ("value", _hashable(leaf)) for i, leaf in enumerate(leaves))
        return feeds, (_structure_key(structure), key)


class _Trace:
    """One signature's compiled program and the structure of what the function returns."""

    def __init__(self, function, structure, leaves, feeds):
        from kgraph.compiler.program import program_of, trace_graph

        signature = function._signature
        self.keep = [leaf for leaf in leaves if not _is_array(leaf)]  # ids stay unique
        specs = []
        for i, feed in enumerate(feeds):
            shape = feed.shape if signature is None else _spec_shape(signature[i], feed)
            specs.append((f"arg_{i}", tuple(shape), feed.dtype.name))
        self.count, self.constants, self.returned = 0, {}, None

        def traced(*placeholders):
            it = iter(placeholders)
            args, kwargs = pack_like(structure, [next(it) if _is_array(leaf) else leaf
                                                 for leaf in leaves])
            out = function._fn(*args, **kwargs)
            self.returned = out
            results = {}
            for i, leaf in enumerate(flatten(out)):
                if isinstance(leaf, (Value, Variable)):
                    results[f"result_{i}"] = leaf
                else:
                    self.constants[i] = leaf
                self.count += 1
            return results

        graph = trace_graph(getattr(function, "__name__", "function"), specs, traced)
        # a function with no tensor results and no assignments has nothing to run
        self.program = program_of(graph) if graph.outputs or graph.updates else None

    def __call__(self, feeds):
        from kgraph.keras.layers.base import _eager

        results = iter(self.program(*feeds) if self.program is not None else ())
        leaves = [self.constants[i] if i in self.constants
                  else _eager(self.program.to_numpy(next(results))) for i in range(self.count)]
        if self.returned is None:
            return None
        return pack_like(self.returned, leaves) if self.count else self.returned


# -- argument handling -----------------------------------------------------------------------
def _is_array(x) -> bool:
    return isinstance(x, np.ndarray)


def _as_feed(x, spec=None):
    from kgraph import config

    array = np.asarray(x)
    dtype = getattr(spec, "dtype", None)
    if dtype is not None:
        array = array.astype(np.dtype(str(dtype)) if str(dtype) != "bfloat16" else array.dtype,
                             copy=False)
    elif array.dtype == np.float64:  # numpy's default float: the model's float type
        array = array.astype(config.floatx())
    return array


def _spec_shape(spec, feed):
    shape = tuple(getattr(spec, "shape", feed.shape))
    if len(shape) != feed.ndim or any(d is not None and d != n for d, n in zip(shape, feed.shape)):
        raise ValueError(f"An argument of shape {feed.shape} does not match the "
                         f"input_signature entry {spec!r}")
    return shape


def _hashable(leaf):
    try:
        hash(leaf)
    except TypeError:
        return ("id", id(leaf))
    return (type(leaf).__name__, leaf) if not hasattr(leaf, "__dict__") else ("id", id(leaf))


def _structure_key(x):
    """The nesting of lists, tuples and dicts in `x`, hashable, leaves left out."""
    if isinstance(x, (list, tuple)):
        return (type(x).__name__,) + tuple(_structure_key(item) for item in x)
    if isinstance(x, dict):
        return ("dict",) + tuple((k, _structure_key(x[k])) for k in sorted(x))
    return "*"
