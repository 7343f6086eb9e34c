"""`Layer`: the Keras layer contract on top of kgraph's tracer.

A layer call does one of three things depending on its inputs:
- on `KerasTensor`s (building a functional model) it builds the layer, infers output shapes by
  tracing `call` on placeholders, and records a `CallNode` in the layer graph;
- inside a graph being traced (a model being lowered) it runs `call` on IR values;
- on concrete arrays (eager use) it traces `call` once per input signature, compiles the graph
  and runs it, so eager calls execute compiled code too.
"""
from __future__ import annotations

import inspect
import threading

import numpy as np

from kgraph import config as kconfig
from kgraph import replay
from kgraph.device import current_device, labelling
from kgraph import autograph
from kgraph.ir.graph import Graph, Value, current_graph, tracing
from kgraph.keras import constraints as kconstraints
from kgraph.keras import initializers as kinitializers
from kgraph.keras import regularizers as kregularizers
from kgraph.keras import saving_safety
from kgraph.keras.mixed_precision import autocast as kautocast
from kgraph.keras.mixed_precision import policy as kpolicy
from kgraph.keras.serialization import snake_case
from kgraph.keras.tree import flatten, map_structure, pack_like
from kgraph.keras.layers.tensors import (CallNode, DeferredTensor, EagerTensor,  # noqa: F401
                                         IncompatibleInputError, KerasTensor, _eager)
from kgraph.variables import Variable

_context = threading.local()
_NAME_COUNTS: dict = {}


def unique_name(base: str) -> str:
    n = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def reset_names():
    _NAME_COUNTS.clear()


def in_training_mode() -> bool:
    return bool(getattr(_context, "training", False))


class _training_scope:
    """Sets the training mode the layers called inside see (None: left as it is)."""

    def __init__(self, training):
        self.training = training

    def __enter__(self):
        self.saved = getattr(_context, "training", None)
        if self.training is not None:
            _context.training = bool(self.training)

    def __exit__(self, *exc):
        _context.training = self.saved


def _mask_of(inputs):
    masks = [getattr(t, "_keras_mask", None) for t in flatten(inputs)]
    if all(m is None for m in masks):
        return None
    return masks if isinstance(inputs, (list, tuple)) else masks[0]


def _set_mask(outputs, mask):
    if mask is None:
        return
    leaves = flatten(outputs)
    masks = flatten(mask) if isinstance(mask, (list, tuple)) else [mask] * len(leaves)
    for out, m in zip(leaves, masks):
        if isinstance(out, Value):
            out._keras_mask = m


def _activity_loss(regularizer, output):
    """The activity penalty of one output, divided by its batch size as Keras 3 does, so the
    regularization strength does not change with the batch size."""
    from kgraph import ops

    loss = regularizer(output)
    if not getattr(output, "shape", ()):
        return loss
    batch = ops.cast(ops.count(output, (0,)), str(getattr(loss, "dtype", "float32")))
    return ops.divide_no_nan(loss, batch)


def _dtype_from(dtype):
    if dtype is None:
        return kconfig.floatx()
    return kpolicy.get(dtype).variable_dtype


class Layer:
    """Base class of all layers: `build` makes weights, `call` computes with `kgraph.ops`."""

    def __init__(self, trainable=True, name=None, dtype=None, input_shape=None,
                 input_dim=None, batch_size=None, batch_input_shape=None, batch_shape=None,
                 activity_regularizer=None, **kwargs):
        self.autocast = bool(kwargs.pop("autocast", True))  # see mixed_precision.autocast
        kwargs.pop("weights", None)
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unrecognized keyword arguments: "
                            f"{sorted(kwargs)}")
        preset = dict(self.__dict__)  # set by a subclass before super().__init__()
        object.__setattr__(self, "_layers", [])
        self.name = name or unique_name(snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        self._dtype_policy = kpolicy.get(dtype)
        self.built = False
        self._trainable_variables: list[Variable] = []
        self._non_trainable_variables: list[Variable] = []
        self._regularized: list = []  # (variable, regularizer)
        self._inbound_nodes: list[CallNode] = []
        self._losses: list = []
        self.activity_regularizer = kregularizers.get(activity_regularizer)
        self.supports_masking = False
        if batch_shape is None and batch_input_shape is not None:
            batch_shape = batch_input_shape
        if batch_shape is None and input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_shape is None and input_shape is not None:
            batch_shape = (batch_size,) + tuple(input_shape)
        self._batch_input_shape = tuple(batch_shape) if batch_shape is not None else None
        self._call_signature = inspect.signature(self.call)
        self._eager_programs: dict = {}
        self._device = current_device()  # placed where created unless a call says otherwise
        for attr, value in preset.items():  # tracked as Keras does (the Switch Transformer's
            self.__setattr__(attr, value)   # experts and router are set before __init__)

    # -- attribute tracking ---------------------------------------------------------------
    def __setattr__(self, name, value):
        # any attribute set counts as a change of the layer (kgraph/replay.py keys on it)
        self.__dict__["_version"] = self.__dict__.get("_version", 0) + 1
        layers = self.__dict__.get("_layers")
        if layers is not None and name != "_layers":
            items = value if isinstance(value, (list, tuple)) else [value]
            for item in items:
                if isinstance(item, Layer) and item is not self and item not in layers:
                    layers.append(item)
                elif isinstance(item, Variable) and name[:1] != "_":
                    self._track_variable(item)
        object.__setattr__(self, name, value)

    def _track_variable(self, var):
        group = self._trainable_variables if var.trainable else self._non_trainable_variables
        if all(v is not var for v in self._trainable_variables + self._non_trainable_variables):
            group.append(var)

    # -- dtype policy ---------------------------------------------------------------------
    @property
    def dtype_policy(self):
        """This layer's `DTypePolicy` (`keras.mixed_precision`)."""
        return self._dtype_policy

    @dtype_policy.setter
    def dtype_policy(self, value):
        self._dtype_policy = kpolicy.get(value)

    @property
    def dtype(self):
        """The variable dtype of this layer's policy."""
        return self._dtype_policy.variable_dtype

    @dtype.setter
    def dtype(self, value):
        self._dtype_policy = kpolicy.get(value)

    @property
    def compute_dtype(self):
        return self._dtype_policy.compute_dtype

    @property
    def variable_dtype(self):
        return self._dtype_policy.variable_dtype

    @property
    def input_dtype(self):
        return self._dtype_policy.compute_dtype

    # -- weights --------------------------------------------------------------------------
    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True,
                   regularizer=None, constraint=None, name=None, aggregation="none",
                   autocast=True, **kwargs):
        """Create a weight of this layer (Keras 3 argument order). `autocast=False` keeps
        it in its own dtype inside a mixed-precision call."""
        shape = tuple(shape or ())
        dtype = _dtype_from(dtype or self.variable_dtype)
        if initializer is None:
            initializer = "glorot_uniform" if str(dtype).startswith("float") else "zeros"
        init = kinitializers.get(initializer)
        name = name or f"variable_{len(self.weights)}"
        saving_safety.check_weight_allocation(self, name, shape, dtype)  # loads are bounded
        var = Variable(init, shape=shape, dtype=dtype, trainable=trainable, name=name,
                       path=f"{self.name}/{name}", aggregation=aggregation, autocast=autocast)
        var.constraint = kconstraints.get(constraint)
        self._track_variable(var)
        if regularizer is not None:
            self._regularized.append((var, kregularizers.get(regularizer)))
        return var

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for layer in self._layers:
            layer.trainable = value

    def _flat_layers(self):
        out = []
        for layer in self._layers:
            out.append(layer)
            out.extend(layer._flat_layers())
        seen, unique = set(), []
        for layer in out:
            if id(layer) not in seen:
                seen.add(id(layer))
                unique.append(layer)
        return unique

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        out = list(self._trainable_variables)
        for layer in self._layers:
            out += [v for v in layer.trainable_weights if all(v is not o for o in out)]
        return out

    @property
    def non_trainable_weights(self):
        out = list(self._non_trainable_variables)
        if not self.trainable:
            out = list(self._trainable_variables) + out
        for layer in self._layers:
            out += [v for v in layer.non_trainable_weights if all(v is not o for o in out)]
        return out

    @property
    def weights(self):
        """Every weight, layer by layer (this layer's own, then each sublayer's in turn), as
        Keras 3 orders them whatever is trainable: `get_weights()` lists line up with
        real Keras' (trainable and non-trainable interleave, BatchNormalization's four
        together)."""
        return _unique(self._own_weights())

    def _own_weights(self):
        yield from self._trainable_variables
        yield from self._non_trainable_variables
        for layer in self._layers:
            yield from layer.weights

    @property
    def variables(self):
        """The weights, then the states of the `keras.random.SeedGenerator`s the layer holds
        as attributes (before each sublayer's), as Keras 3 lists `layer.variables` (its
        `weights` leave the seed states out)."""
        return _unique(self._own_variables_with_seeds())

    def _own_variables_with_seeds(self):
        from kgraph.random import SeedGenerator

        yield from self._trainable_variables
        yield from self._non_trainable_variables
        yield from (value.state for value in list(vars(self).values())
                    if isinstance(value, SeedGenerator))
        for layer in self._layers:
            yield from layer.variables

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    def get_weights(self):
        return [v.numpy() for v in self.weights]  # each a new array

    def set_weights(self, weights):
        params = self.weights
        if len(params) != len(weights):
            raise ValueError(f"Layer {self.name!r} expects {len(params)} weights, but the "
                             f"weight list has {len(weights)} elements")
        for var, value in zip(params, weights):
            value = np.asarray(value)
            if tuple(value.shape) != tuple(var.shape):
                raise ValueError(f"Layer {self.name!r} weight {var.path!r} has shape "
                                 f"{var.shape}; the provided value has shape {value.shape}")
            var.assign(value)

    def count_params(self):
        return int(sum(np.prod(v.shape) for v in self.weights))

    # -- losses ---------------------------------------------------------------------------
    def add_loss(self, loss):
        graph = current_graph()
        if graph is not None:
            if not hasattr(graph, "losses"):
                graph.losses, graph.layer_losses = [], {}
            graph.losses.append(loss)
            graph.layer_losses.setdefault(id(self), []).append(loss)  # for `self.losses`
        else:
            self._losses.append(loss)

    @property
    def losses(self):
        """Weight-regularization penalties (and losses added by `add_loss`) of this layer and
        its sublayers, evaluated in the graph being traced."""
        out = list(self._losses)
        graph = current_graph()
        if graph is None:
            out += self.__dict__.get("_eager_losses", [])
        added = getattr(graph, "layer_losses", {})  # add_loss calls in the graph being traced
        for layer in [self] + self._flat_layers():
            out += added.get(id(layer), [])
            for var, reg in layer._regularized:
                out.append(reg(var.value))
        return out

    # -- building and calling -------------------------------------------------------------
    def build(self, input_shape):
        self.built = True

    def call(self, inputs, *args, **kwargs):
        return inputs

    def _maybe_build(self, args):
        if self.built:
            return
        first = args[0] if args else None
        shapes = map_structure(lambda t: tuple(t.shape) if hasattr(t, "shape") else None, first)
        self._build_input_shape = shapes
        # `build` runs outside the graph being traced, as TensorFlow's init_scope: tensors it
        # computes from arrays (swin_transformers.py's attention mask, kept in a tf.Variable)
        # are eager values, not nodes of the caller's graph
        with tracing(None):
            if _takes_no_arguments(self.build):  # `def build(self)`: Keras passes no shape
                self.build()
            else:
                self.build(shapes)
        self.built = True

    def _first_keyword_argument(self, kwargs):
        """`(x,)` when `call`'s first argument is given by name (`encoder(patches=x)`), which
        Keras builds the layer from as from a positional one; `()` otherwise."""
        for parameter in self._call_signature.parameters.values():
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
                return (kwargs[parameter.name],) if parameter.name in kwargs else ()
        return ()

    def __call__(self, *args, **kwargs):
        if len(args) > 1 and "training" not in kwargs:
            args, kwargs = self._positional_training(args, kwargs)
        leaves = flatten((args, kwargs))
        if any(isinstance(t, KerasTensor) for t in leaves):
            return self._symbolic_call(args, kwargs)
        graph = current_graph()
        if graph is not None and graph.captures is not None:  # an eager GradientTape
            return replay.layer_call(self, graph, args, kwargs, self._traced_call)
        if graph is not None or any(isinstance(t, Value) for t in leaves):
            return self._traced_call(args, kwargs)
        return self._eager_call(args, kwargs)

    def _positional_training(self, args, kwargs):
        """`layer(x, True)` (the keras.io GAN-ADA augmenter's `self.augmenter(images,
        training)`): `training` given by position, and any positional argument after it, is
        passed by name, as Keras binds it, so the call's own `training` handling sees it."""
        names = [p.name for p in self._call_signature.parameters.values()
                 if p.kind == p.POSITIONAL_OR_KEYWORD]
        if "training" not in names or len(args) <= names.index("training"):
            return args, kwargs
        at = names.index("training")
        return args[:at], {**kwargs, **dict(zip(names[at:], args[at:]))}

    def _training_default(self):
        parameter = self._call_signature.parameters.get("training")
        default = None if parameter is None else parameter.default
        return default if isinstance(default, bool) else None

    def _accepts(self, name):
        params = self._call_signature.parameters
        return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())

    def _traced_call(self, args, kwargs):
        self._maybe_build(args or self._first_keyword_argument(kwargs))
        args, kwargs = kautocast.convert_inputs(self, args, kwargs)
        kwargs = dict(kwargs)
        training = kwargs.pop("training", None)
        if training is None and getattr(_context, "training", None) is None:
            # neither passed nor set by an outer call: the default of `call`'s `training`
            # argument, as Keras resolves it (augmentation layers default to True)
            training = self._training_default()
        mask = kwargs.pop("mask", None)
        if mask is None and args:
            mask = _mask_of(args[0])
        if mask is not None and self._accepts("mask"):
            kwargs["mask"] = mask
        with _training_scope(training), kautocast.layer_scope(self), \
                labelling(current_graph(), current_device() or self._device):
            if self._accepts("training"):
                kwargs["training"] = in_training_mode()
            outputs = autograph.call_layer(self, args, kwargs)
        if self.activity_regularizer is not None:
            for out in flatten(outputs):
                self.add_loss(_activity_loss(self.activity_regularizer, out))
        if self.supports_masking or type(self).compute_mask is not Layer.compute_mask:
            _set_mask(outputs, self.compute_mask(args[0] if args else None, mask))
        return outputs

    def compute_mask(self, inputs, mask=None):
        """The mask of this layer's outputs (Keras): by default the input mask passes through
        layers that support masking and is dropped by the others."""
        return mask if self.supports_masking else None

    def _symbolic_call(self, args, kwargs):
        for t in flatten((args, kwargs)):
            if isinstance(t, KerasTensor) and t.dtype == "string":
                from kgraph.keras.layers.preprocessing.host_layer import string_input_error

                raise string_input_error(f"{type(self).__name__} layer {self.name!r}", t)
        self._check_input_compat(args)
        graph = Graph(f"{self.name}_shape")
        outer = current_graph()
        if outer is not None:
            # a layer built while a step is traced may hold that step's tensors (the keras.io
            # hypernetwork sets `layer.kernel` to generated weights): the shape graph reads
            # them as placeholders of their shapes, as a loop body reads its enclosing graph
            graph.parent, graph.outer_values = outer, {}
        kts = [t for t in flatten((args, kwargs)) if isinstance(t, KerasTensor)]
        values = {id(t): graph.placeholder(f"in{i}", t.shape, t.dtype) for i, t in enumerate(kts)}
        for i, t in enumerate(kts):  # masks travel with symbolic tensors too
            spec = getattr(t, "_mask_spec", None)
            if spec is not None:
                values[id(t)]._keras_mask = graph.placeholder(f"mask{i}", *spec)
        swap = lambda x: values.get(id(x), x) if isinstance(x, KerasTensor) else x  # noqa: E731
        with tracing(graph):
            out = self._traced_call(map_structure(swap, args), map_structure(swap, kwargs))
        node_index = len(self._inbound_nodes)
        leaves = flatten(out)
        outputs = [KerasTensor(v.shape, v.dtype, name=f"{self.name}_out{i}" if i else self.name,
                               history=(self, node_index, i)) for i, v in enumerate(leaves)]
        for kt, v in zip(outputs, leaves):
            mask = getattr(v, "_keras_mask", None)
            kt._mask_spec = (mask.shape, mask.dtype) if mask is not None else None
        node = CallNode(self, args, kwargs, outputs)
        self._inbound_nodes.append(node)
        return pack_like(out, outputs)

    def _check_input_compat(self, args):
        specs = getattr(self, "input_spec", None)  # a keras.layers.InputSpec (or a list)
        if specs is not None and args:
            for i, (spec, t) in enumerate(zip(flatten(specs), flatten(args[0]))):
                problem = spec.problem(tuple(t.shape)) if isinstance(t, KerasTensor) and \
                    hasattr(spec, "problem") else None
                if problem:
                    raise IncompatibleInputError(
                        f"Input {i} of layer {self.name!r} is incompatible with "
                        f"the layer: {problem}. Full shape received: {t.shape}")
        spec = getattr(self, "input_spec_ndim", None)
        if spec is None or not args:
            return
        for t in flatten(args[0]):
            if isinstance(t, KerasTensor) and t.ndim < spec:
                raise IncompatibleInputError(
                    f"Input 0 of layer {self.name!r} is incompatible with the "
                    f"layer: expected min_ndim={spec}, found ndim={t.ndim}. "
                    f"Full shape received: {t.shape}")

    def _eager_call(self, args, kwargs):
        """Run the layer on numpy data through a compiled program, cached per input
        signature (kgraph/keras/layers/eager_call.py)."""
        from kgraph.keras.layers.eager_call import eager_call

        return eager_call(self, args, kwargs)

    def compute_output_shape(self, input_shape):
        kt = map_structure(lambda s: KerasTensor(s), input_shape) if isinstance(
            input_shape, list) and input_shape and isinstance(input_shape[0], (tuple, list)) \
            else KerasTensor(input_shape)
        graph = Graph("shape")
        with tracing(graph):
            phs = map_structure(lambda t: graph.placeholder(f"in{id(t)}", t.shape, t.dtype), kt)
            out = self._traced_call((phs,), {})
        return map_structure(lambda v: tuple(v.shape), out)

    # -- graph accessors ------------------------------------------------------------------
    def _single_node(self, what):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name!r} has never been called and thus has no "
                                 f"defined {what}.")
        if len(self._inbound_nodes) > 1:
            raise AttributeError(f"Layer {self.name!r} has been called {len(self._inbound_nodes)}"
                                 f" times; its {what} is ambiguous. Use get_{what}_at(i).")
        return self._inbound_nodes[0]

    @property
    def input(self):
        deferred = self._deferred("input")
        if deferred is not None:
            return deferred
        node = self._single_node("input")
        return node.args[0] if node.args else node.inputs[0]

    @property
    def output(self):
        deferred = self._deferred("output")
        if deferred is not None:
            return deferred
        node = self._single_node("output")
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    def _deferred(self, what):
        """In a Sequential model whose input shape is not known yet, `layer.input`/`output`
        are placeholders resolved when the model first sees data."""
        owner = self.__dict__.get("_sequential_owner")
        if self._inbound_nodes or owner is None or owner._graph is not None:
            return None
        return DeferredTensor(owner, self, what)

    def get_output_at(self, i):
        node = self._inbound_nodes[i]
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    def get_input_at(self, i):
        return self._inbound_nodes[i].args[0]

    @property
    def input_shape(self):
        return map_structure(lambda t: t.shape, self.input)

    @property
    def output_shape(self):
        return map_structure(lambda t: t.shape, self.output)

    # -- config ---------------------------------------------------------------------------
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable,
                  "dtype": kpolicy.serialize(self._dtype_policy)}
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_build_config(self):
        shape = getattr(self, "_build_input_shape", None)
        return {"input_shape": list(shape) if shape is not None else None}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _takes_no_arguments(method):
    """True when a bound method declares no parameters at all (not even `*args`)."""
    try:
        return not inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _unique(variables):
    """`variables` without repeats (a variable shared by two sublayers), first place kept."""
    out, seen = [], set()
    for var in variables:
        if id(var) not in seen:
            seen.add(id(var))
            out.append(var)
    return out
