"""`Sequential`: a stack of layers, built as a functional graph as soon as its input shape is
known (from an `Input`, an `input_shape=` argument on the first layer, `build()`, or the
first data it sees)."""
from __future__ import annotations

import threading

from kgraph.keras.layers.base import KerasTensor, Layer
from kgraph.keras.layers.core import InputLayer
from kgraph.keras.models.model import Model

_BUILD_LOCK = threading.RLock()


class Sequential(Model):
    def __init__(self, layers=None, trainable=True, name=None):
        super().__init__(trainable=trainable, name=name)
        self._stack: list[Layer] = []
        self._input_layer = None
        self._calls: list = []  # the CallNode of each stacked layer in this model's graph
        for layer in layers or []:
            self.add(layer, rebuild=False)
        self._maybe_rebuild()

    def add(self, layer, rebuild=True):
        """Append a layer (or an `Input` tensor / `InputLayer` to fix the input shape)."""
        if isinstance(layer, KerasTensor):
            layer = layer._keras_history[0]
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError(f"Sequential model {self.name!r}: an InputLayer can only be "
                                 f"the first layer.")
            self._input_layer = layer
        elif not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add() only accepts layers. Received: {layer!r} "
                            f"of type {type(layer).__name__}")
        else:
            if any(existing.name == layer.name for existing in self._stack):
                raise ValueError(f"All layers added to a Sequential model should have unique "
                                 f"names. Name {layer.name!r} is already the name of a layer "
                                 f"in this model.")
            self._stack.append(layer)
            object.__setattr__(layer, "_sequential_owner", self)
            if rebuild and getattr(self, "_graph", None) is not None:
                self._extend_graph(layer)  # call only the new layer: the others keep their node
                return
        if rebuild:
            self._maybe_rebuild()

    def pop(self):
        """Remove the last layer and return it; the model's graph ends at the layer before."""
        if not self._stack:
            raise TypeError(f"There are no layers in the Sequential model {self.name!r}.")
        layer = self._stack.pop()
        if len(self._calls) > len(self._stack):
            _forget_call(self._calls.pop())
        if self._stack and self._input_layer is not None:
            self._set_graph(self._calls[-1].outputs[0])
        else:
            self._graph = None
            self.built = False
            self._invalidate_programs()
            object.__setattr__(self, "_layers", list(self._stack))
        return layer

    def _maybe_rebuild(self):
        if self._input_layer is None and self._stack and \
                self._stack[0]._batch_input_shape is not None:
            first = self._stack[0]
            self._input_layer = InputLayer(batch_shape=first._batch_input_shape,
                                           dtype=first.dtype if first.dtype != "float32" else None)
        if self._input_layer is not None:
            self._build_graph()
        else:
            object.__setattr__(self, "_layers", list(self._stack))

    def _build_graph(self):
        """Call every stacked layer once, from the input; calls of an earlier build of this
        model are forgotten first, so each layer's `.input`/`.output` stays unambiguous. The
        graph starts after the host-side layers when the model was built from data they
        preprocess (`_host_inputs`)."""
        while self._calls:
            _forget_call(self._calls.pop())
        x = self._input_layer.output
        for layer in self._stack[getattr(self, "_host_depth", 0):]:
            x = self._call_layer(layer, x)
        self._set_graph(x)

    def _host_layers(self):
        """The leading host-side preprocessing layers (TextVectorization, StringLookup,
        Hashing: they take strings, which kgraph graphs do not carry), when no `Input` was
        given: they run on the data, and the compiled graph takes their output."""
        from kgraph.keras.layers.preprocessing.host_layer import HostLayer

        if self._input_layer is not None and not getattr(self, "_host_depth", 0):
            return []
        leading = []
        for layer in self._stack:
            if not isinstance(layer, HostLayer) or layer.runs_in_graph:
                break
            leading.append(layer)
        return leading

    def _host_inputs(self, x):
        """`x` preprocessed by the leading host-side layers (arrays or lists; a Dataset is
        mapped), so that `Sequential([text_vectorizer, model]).predict(strings)` runs: the
        strings stay on the host and the graph gets the vectors."""
        host = self._host_layers()
        if not host or x is None or isinstance(x, KerasTensor):
            return x

        def run(value):
            for layer in host:
                value = layer(value)
            return value

        if hasattr(x, "map") and hasattr(x, "element_spec"):  # a tf.data-style Dataset
            return x.map(lambda first, *rest: (run(first), *rest) if rest else run(first))
        return run(x)

    def __call__(self, *args, **kwargs):
        if args and self._host_layers() and not isinstance(args[0], KerasTensor) and \
                type(args[0]).__name__ != "Value":
            args = (self._host_inputs(args[0]),) + args[1:]
        return super().__call__(*args, **kwargs)

    def _extend_graph(self, layer):
        self._set_graph(self._call_layer(layer, self._outputs_struct))

    def _call_layer(self, layer, x):
        out = layer(x)
        self._calls.append(layer._inbound_nodes[-1])
        return out

    def _set_graph(self, output):
        self._invalidate_programs()
        self._init_graph(self._input_layer.output, output)

    def _invalidate_programs(self):
        """Compiled steps and eager calls of the old stack compute the wrong function now."""
        self._programs, self._closed_keys = {}, set()
        self._eager_programs = {}

    @property
    def layers(self):
        return list(self._stack)

    @property
    def inputs(self):
        if self._graph is None:
            from kgraph.keras.layers.base import DeferredTensor

            return [DeferredTensor(self, None, "input")]
        return super().inputs

    @property
    def outputs(self):
        return super().outputs if self._graph is not None else None

    def build(self, input_shape=None):
        # one build at a time: a model without an Input may be first called from several
        # `Dataset.map(..., num_parallel_calls=...)` threads at once
        with _BUILD_LOCK:
            if self._graph is not None:
                return
            if input_shape is None:
                raise ValueError(f"Sequential model {self.name!r} cannot be built without an "
                                 f"input shape.")
            self._host_depth = len(self._host_layers())  # the shape is their outputs'
            self._input_layer = InputLayer(batch_shape=tuple(input_shape))
            self._input_from_call = True
            self._build_graph()

    def _maybe_build(self, args):
        if self._graph is None and args and hasattr(args[0], "shape"):
            self.build((None,) + tuple(args[0].shape[1:]))

    def call(self, inputs, training=None, mask=None):
        if self._graph is not None and not self._shape_differs_from_first_call(inputs):
            return super().call(inputs, training=training)
        x = inputs
        for layer in self._stack[getattr(self, "_host_depth", 0):]:
            x = layer(x)
        return x

    def _shape_differs_from_first_call(self, inputs):
        """Whether a model built from its first call's shape (no `Input`) is called on
        another one: Keras 3's Sequential checks no input spec and applies its layers to it
        (the keras.io GPT's feed-forward `Sequential`, built on 32 steps, called on 1)."""
        shape = getattr(inputs, "shape", None)
        if not getattr(self, "_input_from_call", False) or shape is None:
            return False
        built = self._input_layer.output.shape
        return len(shape) != len(built) or any(
            want is not None and got is not None and want != got
            for want, got in zip(built[1:], shape[1:]))

    def get_config(self):
        from kgraph.keras.models.config import sequential_config

        return sequential_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from kgraph.keras.models.config import sequential_from_config

        return sequential_from_config(cls, config, custom_objects)


def _forget_call(node):
    """Drop a call node from its layer: only when it is the layer's latest call, because the
    node indices of later calls (in other models) must not shift."""
    nodes = node.layer._inbound_nodes
    if nodes and nodes[-1] is node:
        nodes.pop()
