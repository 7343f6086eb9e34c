"""Core layers: Input, Dense, Activation, Dropout, Lambda, and the op layer behind
arithmetic on KerasTensors."""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph import random as krandom
from kgraph.keras import activations, constraints, initializers, regularizers
from kgraph.keras.layers.base import IncompatibleInputError, KerasTensor, Layer, unique_name
from kgraph.keras.layers.tensors import EagerTensor


class InputLayer(Layer):
    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=False, batch_shape=None,
                 name=None, input_tensor=None, optional=False, ragged=False,
                 input_shape=None, batch_input_shape=None, **kwargs):
        shape = shape if shape is not None else input_shape
        batch_shape = batch_shape if batch_shape is not None else batch_input_shape
        if batch_shape is None:
            if shape is None:
                raise ValueError("InputLayer needs `shape` or `batch_shape`. Received neither.")
            if isinstance(shape, int):
                shape = (shape,)
            batch_shape = (batch_size,) + tuple(shape)
        for d in batch_shape[1:]:
            if d is not None and (not isinstance(d, (int, np.integer)) or d < 0):
                raise ValueError(f"Invalid dimension in input shape. Received: shape={batch_shape}")
        string = str(dtype) == "string"  # fed to host layers only (preprocessing/host_layer.py)
        super().__init__(name=name or unique_name("input_layer"),
                         dtype=None if string else dtype, **kwargs)
        self._batch_input_shape = tuple(None if d is None else int(d) for d in batch_shape)
        self.batch_shape = self._batch_input_shape
        self.built = True
        self.sparse = sparse
        self._string_input = string
        out = KerasTensor(self.batch_shape, "string" if string else self.dtype, name=self.name,
                          history=(self, 0, 0))
        from kgraph.keras.layers.base import CallNode

        self._inbound_nodes.append(CallNode(self, (), {}, [out]))

    @property
    def input(self):
        """The Input's own tensor, as Keras (`model.get_layer("image").input`)."""
        return self.output

    def get_config(self):
        return {"batch_shape": list(self.batch_shape),
                "dtype": "string" if self._string_input else self.dtype,
                "sparse": self.sparse, "ragged": False, "name": self.name, "optional": False}


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None,
          tensor=None, optional=False):
    """A symbolic input of a functional model (`keras.Input`)."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=bool(sparse),
                       batch_shape=batch_shape, name=name)
    return layer.output


def _positive_int(layer, arg, value):
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu":
        value = value.item()  # an eager integer scalar: `Dense(tf.math.reduce_prod(shape))`
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"Received an invalid value for `{arg}` of layer {layer}, expected a "
                         f"positive integer. Received: {arg}={value!r}")
    return int(value)


class Dense(Layer):
    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None,
                 quantization_config=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = _positive_int("Dense", "units", units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec_ndim = 2
        self.supports_masking = True  # as Keras: a mask passes through Dense

    def build(self, input_shape):
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"Dense layer {self.name!r}: the last dimension of the inputs must "
                             f"be defined. Received: input_shape={input_shape}")
        self.kernel = self.add_weight(shape=(in_dim, self.units), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint,
                                    name="bias") if self.use_bias else None
        self.built = True

    def call(self, inputs):
        if inputs.shape[-1] != self.kernel.shape[0]:
            raise IncompatibleInputError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: "
                f"expected axis -1 of input shape to have value "
                f"{self.kernel.shape[0]}, but received input with shape "
                f"{tuple(inputs.shape)}")
        x = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            x = x + self.bias
        # None when a user sets it after the build (`model.layers[-1].activation = None`)
        return x if self.activation is None else self.activation(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
                "quantization_config": None}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("kernel_initializer", "bias_initializer"):
            config[key] = initializers.get(config.get(key, "zeros"))
        for key in ("kernel_regularizer", "bias_regularizer", "activity_regularizer"):
            config[key] = regularizers.get(config.get(key))
        for key in ("kernel_constraint", "bias_constraint"):
            config[key] = constraints.get(config.get(key))
        return cls(**config)


class Activation(Layer):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.supports_masking = True

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Dropout(Layer):
    """Randomly zeroes a `rate` fraction of inputs in training and rescales the rest."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate <= 1 or isinstance(rate, bool):
            raise ValueError(f"Invalid value received for argument `rate`. Expected a float "
                             f"value between 0 and 1. Received: rate={rate!r}")
        self.rate, self.noise_shape, self.seed = float(rate), noise_shape, seed
        self.seed_generator = krandom.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if self.rate == 1:
            return inputs * 0.0
        return ops.dropout(inputs, self.rate, krandom.graph_key(), self.seed_generator.seed)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": self.noise_shape}


class Identity(Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return inputs


class Lambda(Layer):
    """Wraps a Python function. Not deserializable from files unless unsafe deserialization
    is explicitly enabled (its bytecode would run on load)."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda: `function` must be callable. Received: {function!r}")
        self.function, self.arguments = function, arguments or {}
        self._output_shape = output_shape

    def call(self, inputs):
        return self.function(inputs, **self.arguments)

    def get_config(self):
        name = getattr(self.function, "__name__", "<lambda>")
        return {**super().get_config(), "function": {"class_name": "__lambda__" if name == "<lambda>" else "function",
                                                      "config": name},
                "arguments": self.arguments}

    @classmethod
    def from_config(cls, config, safe_mode=None):
        from kgraph.keras.saving_safety import check_lambda_allowed

        check_lambda_allowed(config.get("name"))
        raise ValueError(f"Lambda layer {config.get('name')!r}: its function cannot be "
                         f"restored from a file; re-create the layer in code, or pass it in "
                         f"custom_objects.")


class _OpLayer(Layer):
    """A layer made by an op on KerasTensors (`x * 2`, `x[:, 0]`, `ops.one_hot(inputs, 10)`):
    `template` holds the call's arguments with a marker where each tensor goes."""

    def __init__(self, fn, template, **kwargs):
        super().__init__(name=unique_name("op_lambda"), **kwargs)
        self.fn, self.template = fn, template

    def call(self, *tensors):
        args, kwargs = self.arguments(tensors)
        return self.fn(*args, **kwargs)

    def arguments(self, tensors):
        """(args, kwargs) of the op's call on `tensors` (the template filled in)."""
        it = iter(tensors)

        def fill(value):
            if value is _TENSOR:
                return next(it)
            if isinstance(value, (list, tuple)):
                return type(value)(fill(v) for v in value)
            return value

        args, kwargs = self.template
        return [fill(a) for a in args], {k: fill(v) for k, v in kwargs.items()}


_TENSOR = object()


def _op_layer(fn, *operands, **kwargs):
    """`fn(*operands, **kwargs)` on KerasTensors (also inside a list argument, as
    `ops.concatenate([a, b])`) as a node of the functional model being built."""
    tensors = []

    def mark(value):
        if isinstance(value, KerasTensor):
            tensors.append(value)
            return _TENSOR
        if isinstance(value, (list, tuple)) and any(isinstance(v, KerasTensor) for v in value):
            return type(value)(mark(v) for v in value)
        return value

    template = ([mark(o) for o in operands], {k: mark(v) for k, v in kwargs.items()})
    if any(t.dtype == "string" for t in tensors):  # shape ops on strings run on the host
        from kgraph.keras.layers.preprocessing.host_layer import host_op

        if template[0][:1] == [_TENSOR]:
            return host_op(fn, operands, kwargs, tensors)
        return host_op(fn, (None,) + tuple(operands), kwargs, tensors)  # refused
    return _OpLayer(fn, template)(*tensors)


ops.FUNCTIONAL_OPS.update(tensor=KerasTensor, call=_op_layer,  # keras.ops on KerasTensors
                         eager=EagerTensor)  # and on eager tensors: eager tensors out
