"""One table drives the op tests (STYLE.md rule 8).

Each row of `ROWS` is one primitive of `kgraph.ops.REGISTRY` or one composite of
`kgraph/ops/nn.py`, and every column below runs every row:

- forward: the numpy reference interpreter against an independent numpy formula, plus spot
  values known by hand, and the dtype/shape the op's shape rule promised;
- gradient: built in float64, loss = sum(output * fixed random weights), compared with central
  differences (or, for rows that must not pass gradients, checked to give `None`);
- ONNX: the float32 graph (forward and backward) on onnxruntime against the numpy interpreter;
- TVM: the same graph through kgraph's TVM executor (`compile_graph(graph, "tvm")`: Relax,
  built for llvm with the default CPU schedules; skipped when TVM is not installed).

The coverage tests fail when a registered op has no row, a differentiable op has no gradient
rule or no checked gradient, or a composite of `kgraph.ops.nn` has no row.
"""
from __future__ import annotations

import glob
import importlib
import inspect
import math
import os
import numpy as np
import onnx
import pytest
from scipy.special import erf as scipy_erf

from kgraph import ops
from kgraph.compiler.autodiff import gradients
from kgraph.compiler.build import compile_graph
from kgraph.compiler.onnx import to_onnx
from kgraph.ir.graph import Graph, tracing
from kgraph.ops import nn as ops_nn
from kgraph.ops.random import uniform_like
from kgraph.ops.registry import REGISTRY, apply


from op_table import A34, A234, F32, Row, away, bools, fixed, grid, ints, key, normal, spot, uniform, with_nans  # noqa: F401,E501
from tvm_helper import run_tvm, tvm_compiled


# -- independent numpy formulas --------------------------------------------------------------
def _reordered(pieces):
    """Split's pieces put back in another order, one scaled: every piece's gradient differs."""
    first, second, third = pieces
    return ops.concatenate([third, first, second * 3.0], axis=1)


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_logsumexp(x, axis=None, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1))


def np_keras_relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras 3 `activations.relu`: x above threshold, clipped at max_value, slope below."""
    out = np.where(x > threshold, x, 0.0)
    if max_value is not None:
        out = np.minimum(out, max_value)
    return out - negative_slope * np.maximum(threshold - x, 0.0)


def np_lowbias32(h):
    """The 'lowbias32' integer hash, written independently with uint64 arithmetic mod 2**32."""
    mask = np.uint64(0xFFFFFFFF)
    h = np.asarray(h, dtype=np.uint64) & mask
    with np.errstate(over="ignore"):
        h ^= h >> np.uint64(16)
        h = (h * np.uint64(0x7FEB352D)) & mask
        h ^= h >> np.uint64(15)
        h = (h * np.uint64(0x846CA68B)) & mask
        h ^= h >> np.uint64(16)
    return h


def np_uniform(shape, key_value, seed):
    mixed = np_lowbias32((int(key_value) * 0x9E3779B9 + seed) & 0xFFFFFFFF)
    bits = np_lowbias32(np.arange(int(np.prod(shape)), dtype=np.uint64) ^ mixed)
    return ((bits >> np.uint64(8)).astype(np.float64) / 2.0 ** 24).reshape(shape)


def np_dropout(x, key_value, rate, seed):
    keep = np_uniform(x.shape, key_value, seed) >= np.float32(rate)
    return np.where(keep, x / (1.0 - rate), 0.0)


def np_pad(x, pads, value):
    return np.pad(x, pads, constant_values=value)


ROWS = [
    # unary elementwise
    Row("Neg", ops.negative, (normal(*A34),), np.negative, op="Neg",
        spots=(spot([F32([1, -2, 0])], [-1, 2, 0]),)),
    Row("Exp", ops.exp, (normal(*A34),), np.exp, op="Exp",
        spots=(spot([F32([0, 1])], [1, math.e]),)),
    Row("Log", ops.log, (uniform(0.5, 3, *A34),), np.log, op="Log",
        spots=(spot([F32([1, math.e])], [0, 1]),)),
    Row("Sqrt", ops.sqrt, (uniform(0.5, 3, *A34),), np.sqrt, op="Sqrt",
        spots=(spot([F32([4, 9, 0.25])], [2, 3, 0.5]),)),
    Row("Tanh", ops.tanh, (normal(*A34),), np.tanh, op="Tanh",
        spots=(spot([F32([0])], [0]),)),
    Row("Sigmoid", ops.sigmoid, (normal(*A34, scale=3),), np_sigmoid, op="Sigmoid",
        spots=(spot([F32([0, 100, -100])], [0.5, 1, 0]),)),
    Row("Abs", ops.abs, (away(*A34),), np.abs, op="Abs",
        spots=(spot([F32([-2, 3])], [2, 3]),)),
    Row("Sin", ops.sin, (normal(*A34),), np.sin, op="Sin",
        spots=(spot([F32([0, math.pi / 2])], [0, 1]),)),
    Row("Cos", ops.cos, (normal(*A34),), np.cos, op="Cos",
        spots=(spot([F32([0, math.pi])], [1, -1]),)),
    Row("Sign", ops.sign, (away(*A34),), np.sign, op="Sign", grad="none",
        spots=(spot([F32([-3, 0, 2])], [-1, 0, 1]),)),
    Row("Floor", ops.floor, (normal(*A34, scale=3),), np.floor, op="Floor", grad="none",
        spots=(spot([F32([-1.5, 1.5, 2.0])], [-2, 1, 2]),)),
    Row("Round", ops.round, (normal(*A34, scale=3),), np.round, op="Round", grad="none",
        spots=(spot([F32([0.5, 1.5, 2.5, -0.5, -1.7])], [0, 2, 2, -0.0, -2]),)),  # half to even
    Row("Relu", ops.relu, (away(*A34),), lambda x: np.maximum(x, 0), op="Relu",
        spots=(spot([F32([-1, 0, 2])], [0, 0, 2]),)),
    Row("Erf", ops.erf, (normal(*A34),), scipy_erf, op="Erf",
        spots=(spot([F32([0, 10])], [0, 1]),)),
    Row("Reciprocal", ops.reciprocal, (away(*A34, gap=0.5),), lambda x: 1.0 / x,
        op="Reciprocal", spots=(spot([F32([2, -4])], [0.5, -0.25]),)),
    Row("Not", ops.logical_not, (bools(*A34),), np.logical_not, op="Not", grad="none",
        spots=(spot([np.array([True, False])], [False, True]),)),
    Row("IsNaN", ops.isnan, (with_nans(*A34),), np.isnan, op="IsNaN", grad="none",
        spots=(spot([F32([np.nan, 1, np.inf])], [True, False, False]),)),
    # binary elementwise (with broadcasting)
    Row("Add", ops.add, (normal(*A34), normal(4)), np.add, op="Add",
        spots=(spot([F32([1, 2]), F32([3, 4])], [4, 6]),)),
    Row("Sub", ops.subtract, (normal(*A34), normal(3, 1)), np.subtract, op="Sub",
        spots=(spot([F32([1, 2]), F32([3, 5])], [-2, -3]),)),
    Row("Mul", ops.multiply, (normal(*A234), normal(3, 1)), np.multiply, op="Mul",
        spots=(spot([F32([2, 3]), F32([4, -1])], [8, -3]),)),
    # the Div primitive (keras.ops.divide and `/` are true division over it: ints as floats)
    Row("Div", ops.elementwise.divide, (normal(*A34), away(4, gap=0.5)), np.divide, op="Div",
        spots=(spot([F32([1, 3]), F32([2, -4])], [0.5, -0.75]),
               # integers divide toward zero, as ONNX and TVM do
               spot([np.array([7, -7, 7, -7]), np.array([2, 2, -2, -2])], [3, -3, -3, 3]))),
    Row("Div_int", ops.elementwise.divide, (ints(-20, 20, *A34), ints(-5, 5, *A34, nonzero=True)),
        lambda a, b: np.trunc(a / b).astype(np.int64), grad="none"),
    Row("Pow", ops.power, (uniform(0.5, 2, *A34), normal(*A34)), np.power, op="Pow",
        spots=(spot([F32([2, 9]), F32([3, 0.5])], [8, 3]),)),
    Row("Max", ops.maximum, (grid(*A34), grid(*A34, offset=0.25)), np.maximum, op="Max",
        spots=(spot([F32([1, 5]), F32([3, 2])], [3, 5]),)),
    Row("Min", ops.minimum, (grid(*A34), grid(*A34, offset=0.25)), np.minimum, op="Min",
        spots=(spot([F32([1, 5]), F32([3, 2])], [1, 2]),)),
    Row("Mod_int", ops.mod, (ints(-20, 20, *A34), ints(-5, 5, *A34, nonzero=True)), np.mod,
        grad="none",
        spots=(spot([np.array([7, -7, 7, -7]), np.array([3, 3, -3, -3])], [1, 2, -2, -1]),)),
    Row("Mod", ops.mod, (normal(*A34, scale=5), away(*A34, gap=0.5)), np.mod, op="Mod",
        spots=(spot([F32([7.5, -7.5, 7.5, -7.5]), F32([2, 2, -2, -2])],
                    [1.5, 0.5, -0.5, -1.5]),)),
    Row("BitwiseXor", lambda a, b: apply("BitwiseXor", a, b),
        (ints(0, 2**32, *A34, dtype="uint32"), ints(0, 2**32, *A34, dtype="uint32")),
        lambda a, b: np.bitwise_xor(a, b), op="BitwiseXor", grad="none",
        spots=(spot([np.uint32([0b1100]), np.uint32([0b1010])], np.uint32([0b0110])),)),
    Row("BitwiseAnd", lambda a, b: apply("BitwiseAnd", a, b),
        (ints(0, 2**32, *A34, dtype="uint32"), ints(0, 2**32, *A34, dtype="uint32")),
        lambda a, b: np.bitwise_and(a, b), op="BitwiseAnd", grad="none",
        spots=(spot([np.uint32([0b1100]), np.uint32([0b1010])], np.uint32([0b1000])),)),
    Row("ShiftRight", lambda a, b: apply("ShiftRight", a, b),
        (ints(0, 2**32, *A34, dtype="uint32"), ints(0, 32, *A34, dtype="uint32")),
        lambda a, b: np.right_shift(a, b), op="ShiftRight", grad="none",
        spots=(spot([np.uint32([0x80000000, 12]), np.uint32([31, 2])], np.uint32([1, 3])),)),
    Row("Equal", ops.equal, (ints(0, 3, *A34), ints(0, 3, 4)), np.equal, op="Equal",
        grad="none"),
    Row("Equal_float", ops.equal, (grid(*A34), fixed(F32([0.0, 0.5, 1.0, -1.0]))), np.equal,
        grad="none"),
    Row("Greater", ops.greater, (ints(0, 3, *A34), ints(0, 3, *A34)), np.greater,
        op="Greater", grad="none"),
    Row("GreaterOrEqual", ops.greater_equal, (ints(0, 3, *A34), ints(0, 3, *A34)),
        np.greater_equal, op="GreaterOrEqual", grad="none"),
    Row("Less", ops.less, (grid(*A34), grid(*A34)), np.less, op="Less", grad="none"),
    Row("LessOrEqual", ops.less_equal, (ints(0, 3, *A34), ints(0, 3, *A34)), np.less_equal,
        op="LessOrEqual", grad="none"),
    Row("And", ops.logical_and, (bools(*A34), bools(*A34)), np.logical_and, op="And",
        grad="none"),
    Row("Or", ops.logical_or, (bools(*A34), bools(4)), np.logical_or, op="Or", grad="none"),
    Row("not_equal", ops.not_equal, (ints(0, 3, *A34), ints(0, 3, *A34)), np.not_equal,
        grad="none"),
    Row("Where", ops.where, (bools(*A34), normal(*A34), normal(4)), np.where, op="Where",
        spots=(spot([np.array([True, False]), F32([1, 2]), F32([3, 4])], [1, 4]),)),
    Row("Cast", lambda x: apply("Cast", apply("Cast", x, to="float32"), to="float64"),
        (normal(*A34),), lambda x: x.astype(np.float32).astype(np.float64), op="Cast",
        fd_eps=1e-2),  # the float32 round trip is piecewise constant at finer steps
    Row("Cast_to_int", lambda x: ops.cast(x, "int32"), (normal(*A34, scale=4),),
        lambda x: x.astype(np.float32).astype(np.int32), grad="none",
        spots=(spot([F32([1.7, -1.7, 0.2])], np.int32([1, -1, 0])),)),  # toward zero
    Row("Cast_bool", lambda x: ops.cast(x, "float32"), (bools(*A34),),
        lambda x: x.astype(np.float32), grad="none"),
    Row("square", ops.square, (normal(*A34),), np.square),
    # linear algebra
    Row("MatMul", ops.matmul, (normal(*A234), normal(4, 5)), np.matmul, op="MatMul",
        spots=(spot([F32([[1, 2]]), F32([[3], [4]])], [[11]]),)),
    Row("MatMul_batched", ops.matmul, (normal(2, 1, 3, 4), normal(3, 4, 2)), np.matmul),
    Row("matmul_vector", ops.matmul, (normal(4), normal(4, 3)), np.matmul),
    Row("dot_vectors", ops.dot, (normal(4), normal(4)), np.dot),
    # movement
    Row("Shape", lambda x: apply("Shape", x), (normal(*A234),),
        lambda x: np.asarray(x.shape, np.int64), op="Shape", grad="none"),
    Row("Count", lambda x: apply("Count", x, axes=(0, 2)), (normal(*A234),),
        lambda x: np.asarray(8, np.int64), op="Count", grad="none"),
    Row("Reshape", lambda x: ops.reshape(x, (-1, 6)), (normal(*A234),),
        lambda x: x.reshape(-1, 6), op="Reshape"),
    Row("Reshape_like", lambda x, y: ops.reshape_to(x, (None, None), like=y),
        (normal(*A34), normal(2, 6)), lambda x, y: x.reshape(2, 6), wrt=(0,)),
    Row("expand_squeeze", lambda x: ops.squeeze(ops.expand_dims(x, 1), -1),
        (normal(3, 4, 1),), lambda x: x[:, None, :, 0]),
    Row("Expand", lambda x: ops.broadcast_to(x, (2, 3, 4)), (normal(3, 1),),
        lambda x: np.broadcast_to(x, (2, 3, 4)), op="Expand"),
    Row("Expand_like", lambda x, y: ops.broadcast_like(x, y), (normal(4), normal(*A34)),
        lambda x, y: np.broadcast_to(x, y.shape), wrt=(0,)),
    Row("Transpose", lambda x: ops.transpose(x, (2, 0, 1)), (normal(*A234),),
        lambda x: np.transpose(x, (2, 0, 1)), op="Transpose"),
    # layout changes (kgraph's BatchTranspose natively): 8 x 8 blocks and the rows and columns
    # past them
    Row("Transpose_channels_last", lambda x: ops.transpose(x, (0, 2, 3, 1)),
        (normal(2, 9, 3, 4),), lambda x: np.transpose(x, (0, 2, 3, 1))),
    Row("Transpose_channels_first", lambda x: ops.transpose(x, (0, 3, 1, 2)),
        (normal(2, 3, 4, 10),), lambda x: np.transpose(x, (0, 3, 1, 2))),
    Row("swapaxes", lambda x: ops.swapaxes(x, 0, -1), (normal(*A234),),
        lambda x: np.swapaxes(x, 0, -1)),
    Row("Slice", lambda x: apply("Slice", x, starts=(1, -3), ends=(3, 2**62), axes=(1, 2)),
        (normal(*A234),), lambda x: x[:, 1:3, -3:], op="Slice"),
    Row("getitem", lambda x: x[1, :, 2:], (normal(*A234),), lambda x: x[1, :, 2:]),
    Row("Pad", lambda x: ops.pad(x, ((1, 0), (2, 1)), constant_values=0.5), (normal(*A34),),
        lambda x: np_pad(x, ((1, 0), (2, 1)), 0.5), op="Pad"),
    Row("Concat", lambda a, b, c: ops.concatenate([a, b, c], axis=1),
        (normal(2, 1, 4), normal(2, 3, 4), normal(2, 2, 4)),
        lambda a, b, c: np.concatenate([a, b, c], axis=1), op="Concat"),
    Row("Split", lambda x: _reordered(ops.movement.split(x, (1, 2, 3), 1)),
        (normal(2, 6, 3),), lambda x: np.concatenate([x[:, 3:], x[:, :1], 3 * x[:, 1:3]], 1),
        op="Split"),
    Row("Split_unused_piece", lambda x: ops.movement.split(x, (2, 4), 0)[1], (normal(6, 3),),
        lambda x: x[2:]),
    Row("DynamicSlice", lambda x, s, e: ops.movement.dynamic_slice(x, s, e, 1),
        (normal(*A234), fixed(np.int64(1)), fixed(np.int64(3))), lambda x, s, e: x[:, 1:3],
        op="DynamicSlice", wrt=(0,)),
    Row("Range", lambda s, e: apply("Range", s, e), (fixed(np.int64(2)), fixed(np.int64(6))),
        lambda s, e: np.arange(2, 6), op="Range", grad="none", exact=True),
    # reductions
    Row("ReduceSum", lambda x: ops.sum(x, axis=(0, 2)), (normal(*A234),),
        lambda x: x.sum(axis=(0, 2)), op="ReduceSum",
        spots=(spot([F32([[[1, 2], [3, 4]]])], [3, 7]),)),
    Row("ReduceSum_keepdims", lambda x: ops.sum(x, axis=-1, keepdims=True), (normal(*A234),),
        lambda x: x.sum(axis=-1, keepdims=True)),
    Row("ReduceSum_all", lambda x: ops.sum(x), (normal(*A234),), lambda x: x.sum()),
    # batch + space of a feature map, both layouts: emitted as a product with ones
    Row("ReduceSum_batch_and_space_channels_last", lambda x: ops.sum(x, axis=(0, 1, 2)),
        (normal(3, 8, 9, 4),), lambda x: x.sum(axis=(0, 1, 2)), tol=1e-5),
    Row("ReduceSum_batch_and_space_channels_first",
        lambda x: ops.sum(x, axis=(0, 2, 3), keepdims=True), (normal(3, 4, 8, 9),),
        lambda x: x.sum(axis=(0, 2, 3), keepdims=True), tol=1e-5),
    Row("mean", lambda x: ops.mean(x, axis=1), (normal(*A234),), lambda x: x.mean(axis=1)),
    Row("ReduceMax", lambda x: ops.max(x, axis=1), (grid(*A234),), lambda x: x.max(axis=1),
        op="ReduceMax", spots=(spot([F32([[1, 5], [7, 2]])], [5, 7]),)),
    Row("ReduceMin", lambda x: ops.min(x, axis=(0, 1), keepdims=True), (grid(*A234),),
        lambda x: x.min(axis=(0, 1), keepdims=True), op="ReduceMin"),
    Row("ArgMax", lambda x: ops.argmax(x, axis=1), (grid(*A234),),
        lambda x: np.argmax(x, axis=1), op="ArgMax", grad="none",
        spots=(spot([F32([[1, 5, 5], [7, 2, 7]])], [1, 0]),)),  # first of ties
    Row("ArgMax_keepdims", lambda x: ops.argmax(x, axis=-1, keepdims=True), (grid(*A34),),
        lambda x: np.argmax(x, axis=-1)[:, None], grad="none"),
    # randomness: bit-identical on every backend
    Row("RandomUniformLike", lambda x, k: uniform_like(x, k, seed=7), (normal(4, 5), key(123)),
        lambda x, k: np_uniform(x.shape, k, 7), op="RandomUniformLike", grad="none",
        exact=True, tol=0.0),
    Row("RandomUniformLike_large", lambda x, k: uniform_like(x, k, seed=2**32 - 5),
        (normal(5, 8001), key(2**32 - 1)), lambda x, k: np_uniform(x.shape, k, 2**32 - 5),
        grad="none", exact=True, tol=0.0),  # natively: several tasks, the last one short
    # composites of kgraph/ops/nn.py
    Row("StopGradient", ops.stop_gradient, (normal(*A34),), lambda x: x, op="StopGradient",
        composite=ops_nn.stop_gradient, grad="none"),
    Row("clip", lambda x: ops.clip(x, -0.5, 0.7), (away(*A34, gap=0.1, center=0.1),),
        lambda x: np.clip(x, -0.5, 0.7), composite=ops_nn.clip),
    Row("softmax", ops.softmax, (normal(*A234, scale=3),), np_softmax,
        composite=ops_nn.softmax, spots=(spot([F32([[0, 0], [0, math.log(3)]])],
                                              [[0.5, 0.5], [0.25, 0.75]]),)),
    Row("softmax_axis0", lambda x: ops.softmax(x, axis=0), (normal(*A34),),
        lambda x: np_softmax(x, axis=0)),
    Row("softmax_large", ops.softmax, (normal(*A34, scale=300),), np_softmax),
    Row("log_softmax", ops.log_softmax, (normal(*A234, scale=3),),
        lambda x: np.log(np_softmax(x)), composite=ops_nn.log_softmax),
    Row("logsumexp", lambda x: ops.logsumexp(x, axis=1), (normal(*A234, scale=3),),
        lambda x: np_logsumexp(x, axis=1), composite=ops_nn.logsumexp),
    Row("logsumexp_all_keepdims", lambda x: ops.logsumexp(x, keepdims=True), (normal(*A34),),
        lambda x: np_logsumexp(x, keepdims=True)),
    Row("gelu", lambda x: ops.gelu(x, approximate=False), (normal(*A34, scale=2),),
        lambda x: 0.5 * x * (1 + scipy_erf(x / math.sqrt(2))), composite=ops_nn.gelu),
    Row("gelu_approximate", lambda x: ops.gelu(x, approximate=True), (normal(*A34, scale=2),),
        lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    Row("elu", lambda x: ops.elu(x, alpha=1.5), (away(*A34),), lambda x: np_elu(x, 1.5),
        composite=ops_nn.elu, spots=(spot([F32([1, -100])], [1, -1.5]),)),
    Row("selu", ops.selu, (away(*A34),),
        lambda x: 1.0507009873554805 * np_elu(x, 1.6732632423543772), composite=ops_nn.selu),
    Row("softplus", ops.softplus, (normal(*A34, scale=3),), lambda x: np.log1p(np.exp(x)),
        composite=ops_nn.softplus, spots=(spot([F32([0, 100])], [math.log(2), 100]),)),
    Row("softsign", ops.softsign, (away(*A34),), lambda x: x / (1 + np.abs(x)),
        composite=ops_nn.softsign),
    Row("silu", ops.silu, (normal(*A34, scale=2),), lambda x: x * np_sigmoid(x),
        composite=ops_nn.silu),
    Row("leaky_relu", ops.leaky_relu, (away(*A34),), lambda x: np.where(x > 0, x, 0.2 * x),
        composite=ops_nn.leaky_relu),
    Row("leaky_relu_slope", lambda x: ops.leaky_relu(x, negative_slope=0.01), (away(*A34),),
        lambda x: np.where(x > 0, x, 0.01 * x)),
    Row("relu_args", lambda x: ops.relu(x, negative_slope=0.1, max_value=2.0, threshold=0.5),
        (grid(*A34, offset=0.25),),
        lambda x: np_keras_relu(x, negative_slope=0.1, max_value=2.0, threshold=0.5),
        composite=ops_nn.relu,
        spots=(spot([F32([-0.5, 0.25, 1.0, 3.0])], [-0.1, -0.025, 1.0, 2.0]),)),
    Row("relu_max_value", lambda x: ops.relu(x, max_value=1.0), (grid(*A34, offset=0.25),),
        lambda x: np_keras_relu(x, max_value=1.0)),
    Row("relu_slope", lambda x: ops.relu(x, negative_slope=0.3), (away(*A34),),
        lambda x: np_keras_relu(x, negative_slope=0.3)),
    Row("relu6", ops.relu6, (grid(*A34, offset=0.25),), lambda x: np.clip(x, 0, 6),
        composite=ops_nn.relu6, spots=(spot([F32([-1, 3, 7])], [0, 3, 6]),)),
    Row("hard_sigmoid", ops.hard_sigmoid, (away(*A34, gap=0.2, center=0.0),),
        lambda x: np.clip(x / 6 + 0.5, 0, 1), composite=ops_nn.hard_sigmoid,
        spots=(spot([F32([-4, 0, 4])], [0, 0.5, 1]),)),
    Row("hard_silu", ops.hard_silu, (grid(*A34, offset=0.25),),
        lambda x: x * np.clip(x / 6 + 0.5, 0, 1), composite=ops_nn.hard_silu),
    Row("exponential", ops.exponential, (normal(*A34),), np.exp, composite=ops_nn.exponential),
    Row("one_hot", lambda i: ops.one_hot(i, 5), (ints(0, 5, 6),),
        lambda i: np.eye(5, dtype=np.float32)[i], composite=ops_nn.one_hot, grad="none",
        spots=(spot([np.array([2, 0])], [[0, 0, 1, 0, 0], [1, 0, 0, 0, 0]]),)),
    Row("one_hot_int32", lambda i: ops.one_hot(i, 3, dtype="int32"),
        (ints(0, 3, 2, 2, dtype="int32"),), lambda i: np.eye(3, dtype=np.int32)[i],
        grad="none"),
    Row("dropout", lambda x, k: ops.dropout(x, 0.3, k, seed=11), (normal(6, 5), key(5)),
        lambda x, k: np_dropout(x, k, 0.3, 11), composite=ops_nn.dropout),
]

# op families with their own row files: tests/op_rows_<family>.py, each with a ROWS list
for _path in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "op_rows_*.py"))):
    ROWS += importlib.import_module(os.path.basename(_path)[:-3]).ROWS
BY_ID = {row.id: row for row in ROWS}
IDS = [row.id for row in ROWS]


# -- helpers shared by the columns -----------------------------------------------------------
def make_inputs(row, float_dtype, seed=0):
    rng = np.random.default_rng(seed)
    arrays = []
    for make in row.inputs:
        a = np.asarray(make(rng, float_dtype))
        arrays.append(a)
    return arrays


def is_float(a):
    return np.asarray(a).dtype.kind == "f"


def trace(row, arrays, name="t"):
    """(graph, placeholders, output) of `row.fn` traced on placeholders shaped like `arrays`."""
    graph = Graph(f"{name}_{row.id}")
    phs = [graph.placeholder(f"in{i}", a.shape, a.dtype) for i, a in enumerate(arrays)]
    with tracing(graph):
        out = row.fn(*phs)
    return graph, phs, out


def feeds_of(arrays):
    return {f"in{i}": a for i, a in enumerate(arrays)}


def assert_close(got, want, tol, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if tol == 0.0 or got.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=what)


# -- forward column --------------------------------------------------------------------------
@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_forward_matches_numpy_formula(row):
    arrays = make_inputs(row, "float32")
    graph, _, out = trace(row, arrays)
    if row.op is not None:
        assert row.op in {n.op for n in graph.nodes}, f"row {row.id} never emits {row.op}"
    graph.set_outputs({"out": out})
    (got,) = compile_graph(graph, "numpy").run(feeds_of(arrays))
    assert got.dtype.name == out.dtype, "the reference disagrees with the shape rule's dtype"
    assert all(d is None or d == g for d, g in zip(out.shape, got.shape)) and \
        len(out.shape) == got.ndim, f"reference shape {got.shape} vs rule's {out.shape}"
    wide = [a.astype(np.float64) if is_float(a) else a for a in arrays]
    want = np.asarray(row.expect(*wide))
    assert_close(got, want.astype(got.dtype) if got.dtype.kind in "biu" else want,
                 row.tol, f"{row.id} forward")
    for inputs, expected in row.spots:
        graph, _, out = trace(row, inputs, "spot")
        graph.set_outputs({"out": out})
        (got,) = compile_graph(graph, "numpy").run(feeds_of(inputs))
        assert_close(got, expected.astype(got.dtype), row.tol or 0.0, f"{row.id} spot {inputs}")


# -- gradient column -------------------------------------------------------------------------
def differentiated(row, arrays):
    if row.wrt is not None:
        return list(row.wrt)
    return [i for i, a in enumerate(arrays) if is_float(a)]


def loss_weights(row, arrays, dtype):
    """Fixed random weights shaped like the op's output (run once: it may have unknown dims)."""
    graph, _, out = trace(row, arrays, "shape")
    graph.set_outputs({"out": out})
    (value,) = compile_graph(graph, "numpy").run(feeds_of(arrays))
    return np.random.default_rng(1).normal(size=value.shape).astype(dtype)


def with_gradients(row, arrays, dtype, name):
    """Graph of `row` on `arrays` with outputs `out` (the op's output cast to `dtype`), `loss`
    = sum(out * W) and `g<i>` = d loss / d input i for each differentiated input i."""
    weights = loss_weights(row, arrays, dtype)
    graph, phs, out = trace(row, arrays, name)
    positions = differentiated(row, arrays)
    with tracing(graph):
        out = ops.cast(out, dtype)
        loss = ops.sum(out * graph.constant(weights))
        grads = gradients(graph, loss, [phs[i] for i in positions])
    return graph, out, loss, positions, grads


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_gradient_matches_central_differences(row):
    arrays = make_inputs(row, "float64")
    graph, _, loss, positions, grads = with_gradients(row, arrays, "float64", "grad")
    if row.grad == "none":
        assert all(g is None for g in grads), f"{row.id} must not pass gradients: {grads}"
        return
    assert positions and all(g is not None for g in grads), f"{row.id}: no gradient {grads}"
    graph.set_outputs({"loss": loss, **{f"g{i}": g for i, g in zip(positions, grads)}})
    compiled = compile_graph(graph, "numpy")
    feeds = feeds_of(arrays)
    analytic = compiled.run(feeds)[1:]
    eps = row.fd_eps
    for position, got in zip(positions, analytic):
        x = arrays[position]
        numeric = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            probe = {}
            for sign in (1, -1):
                shifted = x.copy()
                shifted[index] += sign * eps
                probe[sign] = compiled.run({**feeds, f"in{position}": shifted})[0]
            numeric[index] = (probe[1] - probe[-1]) / (2 * eps)
        assert got.shape == x.shape and got.dtype == x.dtype
        np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{row.id}: d loss / d input {position}")


# -- ONNX column -----------------------------------------------------------------------------
def forward_and_backward_graph(row, arrays, name):
    """Float32 graph whose outputs are the op's output and, when it has them, its gradients."""
    if row.grad != "fd":
        graph, _, out = trace(row, arrays, name)
        graph.set_outputs({"out": out})
        return graph
    out_dtype = trace(row, arrays, "dtype")[2].dtype
    graph, out, _, positions, grads = with_gradients(row, arrays, out_dtype, name)
    graph.set_outputs({"out": out, **{f"g{i}": g for i, g in zip(positions, grads)}})
    return graph


@pytest.mark.onnx
@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_onnxruntime_matches_numpy_reference(row):
    arrays = make_inputs(row, "float32")
    graph = forward_and_backward_graph(row, arrays, "onnx")
    onnx.checker.check_model(to_onnx(graph))
    want = compile_graph(graph, "numpy").run(feeds_of(arrays))
    compiled = compile_graph(graph)
    got = [compiled.to_numpy(o) for o in compiled.run(feeds_of(arrays))]
    for name, g, w in zip(graph.output_names, got, want):
        assert g.dtype == w.dtype, f"{row.id} {name}: onnxruntime gives {g.dtype}, numpy {w.dtype}"
        assert_close(g, w, 0.0 if row.exact else max(row.tol, 1e-5), f"{row.id} {name}")


# -- TVM column ------------------------------------------------------------------------------
@pytest.mark.tvm
@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_tvm_matches_numpy_reference(row):
    arrays = make_inputs(row, "float32")
    graph = forward_and_backward_graph(row, arrays, "tvm")
    want = compile_graph(graph, "numpy").run(feeds_of(arrays))
    got = run_tvm(graph, feeds_of(arrays))
    for name, g, w in zip(graph.output_names, got, want):
        assert_close(g.astype(w.dtype) if g.dtype != w.dtype else g, w,
                     0.0 if row.exact else max(row.tol, 1e-5), f"{row.id} {name} on TVM")


# -- coverage --------------------------------------------------------------------------------
def test_every_registered_op_has_a_row():
    covered = {row.op for row in ROWS}
    # Loop (a while_loop of unknown length) has no gradient and no TVM form: its own tests
    # are in tests/test_while_loop.py
    missing = sorted(set(REGISTRY) - {"Input", "Constant", "Loop"} - covered)
    assert not missing, f"ops without a row in tests/test_ops.py: {missing}"


def test_every_differentiable_op_has_a_gradient_rule_and_a_checked_gradient():
    no_rule = sorted(n for n, op in REGISTRY.items() if op.differentiable and op.grad is None)
    assert not no_rule, f"differentiable ops without a gradient rule: {no_rule}"
    # StopGradient is differentiable by design: its rule returns None (zero gradient)
    unchecked = sorted(row.op for row in ROWS if row.op and REGISTRY[row.op].differentiable
                       and row.grad != "fd" and row.op != "StopGradient")
    assert not unchecked, f"differentiable ops whose row skips the gradient check: {unchecked}"
    wrongly = sorted(row.op for row in ROWS if row.op and not REGISTRY[row.op].differentiable
                     and row.grad == "fd")
    assert not wrongly, f"non-differentiable ops whose row expects gradients: {wrongly}"


def test_every_composite_of_ops_nn_has_a_row():
    helpers = {"mv_stop"}  # stop_gradient under another name, used inside softmax
    composites = {inspect.unwrap(fn) for name, fn in vars(ops_nn).items()  # (KerasTensor
                  if inspect.isfunction(fn) and fn.__module__ == ops_nn.__name__  # dispatch)
                  and not name.startswith("_") and name not in helpers}
    covered = {inspect.unwrap(row.composite) for row in ROWS if row.composite is not None}
    missing = sorted(fn.__name__ for fn in composites - covered)
    assert not missing, f"composites of kgraph/ops/nn.py without a row: {missing}"


def test_row_ids_are_unique():
    assert len(BY_ID) == len(ROWS)


# -- op-specific checks that a row cannot express ---------------------------------------------
def _run_both(graph, feeds):
    want = compile_graph(graph, "numpy").run(feeds)
    compiled = compile_graph(graph)
    return want, [compiled.to_numpy(o) for o in compiled.run(feeds)]


def test_random_uniform_is_bit_identical_uniform_and_keyed():
    graph = Graph("uniform")
    x = graph.placeholder("x", (None, 64), "float32")
    k = graph.placeholder("k", (), "uint32")
    with tracing(graph):
        graph.set_outputs({"a": uniform_like(x, k, seed=3), "b": uniform_like(x, k, seed=4)})
    like = np.zeros((50, 64), np.float32)
    draws = {}
    for key_value in (0, 1, 2**32 - 1):
        feeds = {"x": like, "k": np.asarray(key_value, np.uint32)}
        want, got = _run_both(graph, feeds)
        for w, g in zip(want, got):
            assert g.dtype == np.float32
            np.testing.assert_array_equal(g, w)  # bit-identical
            assert w.min() >= 0.0 and w.max() < 1.0
            assert abs(w.mean() - 0.5) < 0.02 and abs(w.std() - math.sqrt(1 / 12)) < 0.02
        assert not np.array_equal(want[0], want[1]), "different seeds give the same noise"
        np.testing.assert_array_equal(want[0], np_uniform(like.shape, key_value, 3))
        draws[key_value] = want[0]
    assert not np.array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[1], draws[2**32 - 1])
    # the same key gives the same noise; a different batch size keeps the shared prefix
    _, again = _run_both(graph, {"x": like[:7], "k": np.asarray(1, np.uint32)})
    np.testing.assert_array_equal(again[0], draws[1][:7])


def test_dropout_keeps_about_one_minus_rate_and_rescales():
    x = np.ones((200, 50), np.float32)
    graph = Graph("dropout")
    xv = graph.placeholder("x", (None, 50), "float32")
    k = graph.placeholder("k", (), "uint32")
    with tracing(graph):
        graph.set_outputs({"y": ops.dropout(xv, 0.25, k, seed=1)})
    want, got = _run_both(graph, {"x": x, "k": np.asarray(9, np.uint32)})
    np.testing.assert_array_equal(got[0], want[0])
    kept = want[0] != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(want[0][kept], 1 / 0.75, rtol=1e-6)


def test_reduce_max_gradient_splits_ties_equally():
    graph = Graph("ties")
    x = graph.placeholder("x", (3,), "float64")
    with tracing(graph):
        (g,) = gradients(graph, ops.max(x), [x])
    graph.set_outputs({"g": g})
    (got,) = compile_graph(graph, "numpy").run({"x": np.array([1.0, 3.0, 3.0])})
    np.testing.assert_allclose(got, [0.0, 0.5, 0.5])


def test_concrete_arrays_run_the_reference_outside_a_graph():
    x = np.array([-1.0, 2.0], np.float32)
    np.testing.assert_array_equal(ops.relu(x), [0.0, 2.0])
    np.testing.assert_allclose(ops.exp(x), np.exp(x), rtol=1e-6)


@pytest.mark.tvm
def test_random_uniform_on_tvm_with_a_dynamic_batch_is_bit_identical():
    graph = Graph("uniform_tvm")
    x = graph.placeholder("x", (None, 8), "float32")
    k = graph.placeholder("k", (), "uint32")
    with tracing(graph):
        graph.set_outputs({"u": uniform_like(x, k, seed=5)})
    compiled = tvm_compiled(graph)
    reference = compile_graph(graph, "numpy")
    for batch in (1, 6):
        feeds = {"x": np.zeros((batch, 8), np.float32), "k": np.asarray(3, np.uint32)}
        got = compiled.to_numpy(compiled.run(feeds)[0])
        np.testing.assert_array_equal(got, reference.run(feeds)[0])
