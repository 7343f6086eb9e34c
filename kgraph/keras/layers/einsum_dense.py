"""`EinsumDense`: a dense layer whose contraction is an einsum equation (Keras 3 names,
arguments, weight shapes and config); the projections inside `MultiHeadAttention`."""
from __future__ import annotations

import re

from kgraph import ops
from kgraph.keras import activations, constraints, initializers, regularizers
from kgraph.keras.layers.base import Layer

__all__ = ["EinsumDense"]

_FORMS = (("([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)", False),
          ("0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)", True),      # '...' on the left
          ("([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0", False))  # '...' on the right


def analyze_einsum_string(equation, bias_axes, input_shape, output_shape):
    """Kernel shape, bias shape (or None) and full output shape of an `EinsumDense`, as
    Keras derives them from `equation` (`ab,bc->ac`, `...b,bc->...c` or `ab...,bc->ac...`)."""
    dotted = equation.replace("...", "0")
    for pattern, left_elided in _FORMS:
        match = re.fullmatch(pattern, dotted)
        if match:
            return _analyze_split(equation, match.groups(), bias_axes, input_shape,
                                  output_shape, left_elided)
    raise ValueError(f"Invalid einsum equation '{equation}'. Equations must be in the form "
                     f"[X],[Y]->[Z], ...[X],[Y]->...[Z], or [X]...,[Y]->[Z]....")


def _full_output_shape(input_spec, input_shape, output_shape, left_elided):
    elided = len(input_shape) - len(input_spec)
    full = [input_shape[0]] + list(output_shape)
    if elided > 0 and left_elided:
        for i in range(1, elided):
            full.insert(1, input_shape[i])
    elif elided > 0:
        full.extend(input_shape[len(input_shape) - elided:])
    return full, elided


def _analyze_split(equation, specs, bias_axes, input_shape, output_shape, left_elided):
    input_spec, weight_spec, output_spec = specs
    output_shape = [output_shape] if isinstance(output_shape, int) else list(output_shape)
    full, elided = _full_output_shape(input_spec, input_shape, output_shape, left_elided)
    offset = elided if left_elided else 0
    input_map = {d: i + offset for i, d in enumerate(input_spec)}
    output_map = {d: i + offset for i, d in enumerate(output_spec)}
    for dim in input_spec:
        if dim in output_map and input_shape[input_map[dim]] is not None and \
                full[output_map[dim]] is not None and \
                input_shape[input_map[dim]] != full[output_map[dim]]:
            raise ValueError(f"EinsumDense: input shape and output shape do not match at "
                             f"shared dimension '{dim}'. Received: equation={equation!r}, "
                             f"input_shape={tuple(input_shape)}, output_shape={tuple(full)}")
    kernel = []
    for dim in weight_spec:
        if dim in input_map:
            kernel.append(input_shape[input_map[dim]])
        elif dim in output_map:
            kernel.append(full[output_map[dim]])
        else:
            raise ValueError(f"EinsumDense: weight dimension '{dim}' is in neither the input "
                             f"nor the output of equation {equation!r}.")
    return kernel, _bias_shape(equation, bias_axes, output_spec, output_map, full, elided,
                               left_elided), full


def _bias_shape(equation, bias_axes, output_spec, output_map, full, elided, left_elided):
    if bias_axes is None:
        return None
    for char in bias_axes:
        if char not in output_spec:
            raise ValueError(f"EinsumDense: bias axis '{char}' is not part of the output of "
                             f"equation {equation!r}. Received: bias_axes={bias_axes!r}")
    first = min(output_spec.find(char) for char in bias_axes)
    shape = [full[output_map[c]] if c in bias_axes else 1 for c in output_spec[first:]]
    if not left_elided:
        shape.extend([1] * elided)
    return shape


def explicit_equation(equation, input_rank):
    """`equation` with its `...` spelled out as unused letters (kgraph's einsum takes
    explicit subscripts only)."""
    if "..." not in equation:
        return equation
    inputs = equation.split("->")[0].split(",")[0]
    elided = input_rank - len(inputs.replace("...", ""))
    unused = [c for c in "zyxwvutsrqponmlkjihgfedcba" if c not in equation]
    return equation.replace("...", "".join(unused[:elided][::-1]))


class EinsumDense(Layer):
    """A layer that uses `einsum` as its backing computation: `einsum(equation, inputs,
    kernel) + bias`, then `activation`.

    Args:
        equation: an einsum equation, `ab,bc->ac` (one letter per axis of inputs, kernel and
            output; `...` stands for leading or trailing axes).
        output_shape: expected output shape, without the batch dimension (an int or a tuple;
            `None` for a dimension taken from the input).
        activation: activation function (none by default).
        bias_axes: letters of the output axes that get a bias (none by default).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        kernel_constraint, bias_constraint: as in `Dense`.

    Example:
        >>> layer = EinsumDense("abc,cd->abd", output_shape=(None, 64), bias_axes="d")
        >>> layer(np.zeros((2, 32, 128), "float32")).shape  # (2, 32, 64)
    """

    def __init__(self, equation, output_shape, activation=None, bias_axes=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, lora_rank=None, lora_alpha=None,
                 gptq_unpacked_column_size=None, quantization_config=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(equation, str):
            raise TypeError(f"EinsumDense: `equation` must be a string. "
                            f"Received: equation={equation!r}")
        self.equation = equation
        self.partial_output_shape = tuple(output_shape) if isinstance(
            output_shape, (list, tuple)) else (output_shape,)
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.lora_rank, self.lora_alpha = lora_rank, lora_alpha

    def build(self, input_shape):
        kernel_shape, bias_shape, full = analyze_einsum_string(
            self.equation, self.bias_axes, tuple(input_shape), self.partial_output_shape)
        self.full_output_shape = tuple(full)
        self._explicit = explicit_equation(self.equation, len(input_shape))
        self._kernel = self.add_weight(name="kernel", shape=tuple(kernel_shape),
                                       initializer=self.kernel_initializer,
                                       regularizer=self.kernel_regularizer,
                                       constraint=self.kernel_constraint)
        self.bias = None if bias_shape is None else self.add_weight(
            name="bias", shape=tuple(bias_shape), initializer=self.bias_initializer,
            regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    @property
    def kernel(self):
        return self._kernel

    def call(self, inputs, training=None):
        x = ops.einsum(self._explicit, inputs, self._kernel)
        if self.bias is not None:
            x = x + self.bias
        return self.activation(x) if self.activation is not None else x

    def compute_output_shape(self, input_shape):
        return tuple(analyze_einsum_string(self.equation, self.bias_axes, tuple(input_shape),
                                           self.partial_output_shape)[2])

    def get_config(self):
        return {**super().get_config(), "output_shape": list(self.partial_output_shape),
                "equation": self.equation,
                "activation": activations.serialize(self.activation),
                "bias_axes": self.bias_axes,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
                "lora_rank": self.lora_rank, "lora_alpha": self.lora_alpha,
                "gptq_unpacked_column_size": None, "quantization_config": None}
