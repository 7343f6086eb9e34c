"""`Model`: a layer that can be trained. Built three ways, as in Keras: functional
(`Model(inputs, outputs)`, a networkx layer graph), `Sequential`, or subclassed (`call`)."""
from __future__ import annotations

import warnings

import networkx as nx
import numpy as np

from kgraph.device import placed_on
from kgraph.keras.layers.base import IncompatibleInputError, KerasTensor, Layer
from kgraph.keras.trainer import Trainer
from kgraph.keras.tree import flatten, map_structure, pack_like


class Model(Trainer, Layer):
    _convert_input_args = False  # each inner layer casts its inputs to its own policy

    def __init__(self, *args, **kwargs):
        inputs = kwargs.pop("inputs", args[0] if args else None)
        outputs = kwargs.pop("outputs", args[1] if len(args) > 1 else None)
        Layer.__init__(self, **{k: kwargs.pop(k) for k in ("name", "trainable", "dtype")
                                if k in kwargs})
        Trainer.__init__(self)
        if kwargs:
            raise TypeError(f"Model: unrecognized keyword arguments: {sorted(kwargs)}")
        self._graph = None
        self._host_prefix = None
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("A functional Model needs both `inputs` and `outputs`.")
            self._init_graph(inputs, outputs)

    # -- functional graph -----------------------------------------------------------------
    def _init_graph(self, inputs, outputs):
        from kgraph.keras.layers.base import DeferredTensor

        if any(isinstance(t, DeferredTensor) for t in flatten(inputs) + flatten(outputs)):
            self._deferred_io = (inputs, outputs)  # built when the model first sees data
            return
        for t in flatten(inputs) + flatten(outputs):
            if not isinstance(t, KerasTensor):
                raise TypeError(f"Model {self.name!r}: inputs and outputs must be symbolic "
                                f"tensors from keras.Input and layer calls. Received: {t!r}")
        self._inputs_struct, self._outputs_struct = inputs, outputs
        graph, order = layer_graph(flatten(inputs), flatten(outputs), self.name)
        self._graph, self._order = graph, order
        flat_inputs = flatten(inputs)
        if len(flat_inputs) == 1:  # lets a Sequential that starts with this model build itself
            self._batch_input_shape = tuple(flat_inputs[0].shape)
        from kgraph.keras.models.layer_order import keras_layer_order

        object.__setattr__(self, "_layers", keras_layer_order(inputs, outputs))
        from kgraph.keras.models import host_prefix

        self._host_prefix = host_prefix.split(self)  # string Inputs and the host layers after
        self.built = True

    @property
    def inputs(self):
        return flatten(self._inputs_struct) if self._graph is not None else None

    @property
    def outputs(self):
        return flatten(self._outputs_struct) if self._graph is not None else None

    @property
    def input(self):
        if self._graph is None:
            return Layer.input.fget(self)
        return self._inputs_struct

    @property
    def output(self):
        if self._graph is None:
            return Layer.output.fget(self)
        return self._outputs_struct

    @property
    def layers(self):
        return list(self._layers)

    def get_layer(self, name=None, index=None):
        if index is not None:
            if not 0 <= index < len(self.layers):
                raise ValueError(f"Model {self.name!r} has {len(self.layers)} layers. "
                                 f"Received: index={index}")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name!r}. Existing layers are: "
                         f"{[layer.name for layer in self.layers]}")

    def call(self, inputs, training=None, mask=None):
        if self._graph is None:
            raise NotImplementedError(f"Model {self.name!r} has no graph: subclasses must "
                                      f"implement call().")
        if self._host_prefix is not None:  # traced: `inputs` are the host prefix's outputs
            return run_layer_graph(self._host_prefix.compiled_order, self._host_prefix.boundary,
                                   self._outputs_struct, inputs)
        return run_layer_graph(self._order, self._inputs_struct, self._outputs_struct, inputs)

    def __call__(self, *args, **kwargs):
        if args and not _symbolic(args[0]):  # data: the host part runs first, in numpy
            args = (self._host_batch(args[0]),) + args[1:]
        return Layer.__call__(self, *args, **kwargs)

    def _host_batch(self, x):
        """A batch as the compiled part takes it: through the host prefix, if there is one."""
        prefix = getattr(self, "_host_prefix", None)
        if prefix is not None:
            return prefix.run(x)
        for a in flatten(x):
            if isinstance(getattr(a, "dtype", None), np.dtype) and a.dtype.kind in "OUS":
                from kgraph.keras.data_adapter import DataError

                raise DataError(f"`x` must be numeric arrays: model {self.name!r} has no "
                                f"string Input (keras.Input(dtype='string') feeding "
                                f"StringLookup/TextVectorization/Hashing). Received an array "
                                f"of dtype {a.dtype} and shape {a.shape}")
        return x

    def _maybe_build(self, args):
        deferred = self.__dict__.pop("_deferred_io", None)
        if deferred is not None:
            owners = {id(t.model): t.model for t in flatten(deferred) if hasattr(t, "resolve")}
            for owner in owners.values():
                owner._maybe_build(args)
            resolve = lambda t: t.resolve() if hasattr(t, "resolve") else t  # noqa: E731
            inputs, outputs = deferred
            self._init_graph([resolve(t) for t in inputs] if isinstance(inputs, list)
                             else resolve(inputs),
                             [resolve(t) for t in outputs] if isinstance(outputs, list)
                             else resolve(outputs))
        if not self.built:
            Layer._maybe_build(self, args)

    def build(self, input_shape):
        self.built = True

    def summary(self, line_length=None, positions=None, print_fn=None, **kwargs):
        from kgraph.keras.models.summary import print_summary

        print_summary(self, line_length=line_length, print_fn=print_fn)

    def reset_states(self):
        for layer in self._flat_layers():
            if hasattr(layer, "reset_states") and getattr(layer, "stateful", False):
                layer.reset_states()

    def get_config(self):
        from kgraph.keras.models.config import functional_config

        if self._graph is None:
            return Layer.get_config(self)
        return functional_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from kgraph.keras.models.config import functional_from_config

        if "layers" in config:
            return functional_from_config(cls, config, custom_objects)
        return cls(**config)

    def to_json(self, **kwargs):
        import json

        from kgraph.keras.models.config import serialize_model

        return json.dumps(serialize_model(self), **kwargs)

    def export(self, filepath, format="onnx", verbose=None, input_signature=None, **kwargs):
        """Write the model for inference (Keras 3's `Model.export`); kgraph writes "onnx":
        dynamic batch, the model's input and output names, weights as initializers. Other
        formats raise `ExportError`. `input_signature` (TensorSpecs) may fix the batch size.

        Example:

        ```python
        model.export("model.onnx", format="onnx")
        ```
        """
        from kgraph.compiler.export import ExportError, export

        if kwargs:
            raise ExportError(f"Model.export: unsupported arguments {sorted(kwargs)}")
        batch = None
        if input_signature:
            batch = {tuple(spec.shape)[0] for spec in input_signature}.pop()
        return export(self, filepath, format=format, batch_size=batch, verbose=bool(verbose))


Functional = Model


def _symbolic(x):
    return any(isinstance(t, KerasTensor) or type(t).__name__ == "Value" for t in flatten(x))


def layer_graph(inputs, outputs, model_name):
    """Walk back from `outputs` to `inputs`; return (networkx DiGraph of call nodes, order)."""
    graph = nx.DiGraph()
    input_ids = {id(t) for t in inputs}
    seen, stack, creation = set(), [t for t in outputs], {}
    while stack:
        t = stack.pop()
        layer, node_index, _ = t._keras_history
        node = layer._inbound_nodes[node_index]
        if id(node) in seen:
            continue
        seen.add(id(node))
        creation[node] = len(creation)
        graph.add_node(node)
        if id(t) in input_ids:
            continue
        if not node.inputs and not any(id(o) in input_ids for o in node.outputs):
            raise ValueError(f"Graph disconnected: cannot obtain the value of tensor {t!r} "
                             f"from the inputs of model {model_name!r}; the graph reaches "
                             f"layer {layer.name!r} which is not one of the model's inputs.")
        for parent in node.inputs:
            player, pindex, _ = parent._keras_history
            pnode = player._inbound_nodes[pindex]
            graph.add_edge(pnode, node, tensor=parent)
            stack.append(parent)
    order = list(nx.lexicographical_topological_sort(graph, key=lambda n: n.serial))
    return graph, order


def run_layer_graph(order, inputs_struct, outputs_struct, inputs):
    """Evaluate a layer graph on IR values (or anything layers accept)."""
    env = {}
    flat_in = flatten(inputs_struct)
    given = _given_inputs(flat_in, inputs_struct, inputs)
    if len(given) != len(flat_in):
        raise ValueError(f"Model expects {len(flat_in)} input(s), but it received "
                         f"{len(given)} input tensors.")
    for kt, v in zip(flat_in, given):
        v = _adjust_input_rank(kt, v)
        _check_input(kt, v)
        env[id(kt)] = _as_input_dtype(kt, v)
    for node in order:
        if all(id(o) in env for o in node.outputs):
            continue
        swap = lambda x: env[id(x)] if isinstance(x, KerasTensor) else x  # noqa: E731
        args = map_structure(swap, node.args)
        kwargs = map_structure(swap, node.kwargs)
        with placed_on(getattr(node, "device", None)):  # the call's `kgraph.device` scope
            out = node.layer(*args, **kwargs)
        for kt, v in zip(node.outputs, flatten(out)):
            env[id(kt)] = v
    return pack_like(outputs_struct, [env[id(t)] for t in flatten(outputs_struct)])


def _given_inputs(flat_in, inputs_struct, inputs):
    """The tensors fed to each of the model's inputs. A dict given to a model whose inputs are
    not a dict is matched by `Input` name, as Keras does (not by sorted key)."""
    if isinstance(inputs, dict) and not isinstance(inputs_struct, dict):
        names = [kt._keras_history[0].name for kt in flat_in]
        missing = [name for name in names if name not in inputs]
        if missing or len(inputs) != len(names):
            raise ValueError(f"The model's inputs are named {names}; a dict of inputs must "
                             f"have exactly these keys. Received keys: {sorted(inputs)}")
        return [inputs[name] for name in names]
    if isinstance(inputs, dict) and isinstance(inputs_struct, dict):
        extra = sorted(set(inputs) - set(inputs_struct))
        if extra and set(inputs_struct) <= set(inputs):
            # Keras 3 feeds a dict model the keys it names and warns about the rest (a CSV
            # dataset's unused columns).
            warnings.warn(f"The model's inputs are {sorted(inputs_struct)}; input keys {extra} "
                          "are not model inputs and are ignored.", stacklevel=4)
            inputs = {key: inputs[key] for key in inputs_struct}
    return flatten(inputs) if isinstance(inputs, (list, tuple, dict)) else [inputs]


def _as_input_dtype(kt, value):
    """A traced tensor fed to an `Input` of another dtype is cast to the Input's dtype, as
    Keras converts inputs to their `Input` dtype (bool one-hot arrays into a float32 model,
    uint8 images into a float32 model); so is an array a model called inside an eager
    `GradientTape` is given (uint8 frames into the keras.io DQN's float32 Conv2D stack)."""
    from kgraph.ops.api_util import dtype_of, is_symbolic

    want = getattr(kt, "dtype", None)
    if want in (None, "string") or not hasattr(value, "dtype") or dtype_of(value) == want:
        return value
    if is_symbolic(value):
        from kgraph.ops import cast

        return cast(value, want)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value.astype(want)
    return value


def _adjust_input_rank(kt, value):
    """Keras 3's rank adjustment of a functional model's inputs: data one rank short of an
    `Input` whose last dim is 1 gets that axis ((N, 28, 28) into `Input((28, 28, 1))`), data
    one rank over with a trailing 1 loses it."""
    shape = getattr(value, "shape", None)
    if shape is None or not len(kt.shape):
        return value
    from kgraph import ops

    if len(shape) == len(kt.shape) - 1 and kt.shape[-1] == 1:
        return ops.expand_dims(value, -1)
    if len(shape) == len(kt.shape) + 1 and shape[-1] == 1:
        return ops.squeeze(value, -1)
    return value


def _check_input(kt, value):
    shape = getattr(value, "shape", None)
    if shape is None:
        return
    if len(shape) != len(kt.shape):
        raise IncompatibleInputError(
            f"Input {kt.name!r} of the model expects rank {len(kt.shape)} "
            f"(shape {kt.shape}), but received an input of shape {tuple(shape)}")
    for want, got in zip(kt.shape[1:], shape[1:]):
        if want is not None and got is not None and want != got:
            raise IncompatibleInputError(
                f"Input {kt.name!r} of the model is incompatible: expected shape "
                f"{kt.shape}, but received an input of shape {tuple(shape)}")
