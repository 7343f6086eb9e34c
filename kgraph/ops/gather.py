"""Gather primitives: `Gather` (take along an axis) and `ScatterAdd`, its adjoint.

`Gather(data, indices, axis)` is numpy's `take` with integer indices of any rank; negative
indices count from the end, as in numpy. Its gradient with respect to `data` scatter-adds the
output gradient into zeros shaped like `data`: repeated indices accumulate (an embedding row
looked up twice gets both gradients). Constant indices that reorder the axis (a `flip`, a
permutation) have the inverse reordering, a `Gather`, as their gradient instead.

`ScatterAdd(updates, indices, shape)` is that scatter-add along axis 0 only; the gradient rule
of `Gather` moves `axis` to the front and back with transposes, so one simple primitive serves
every axis. Its numpy reference is `np.add.at` (independent of the ONNX emission), and its own
gradient is a `Gather` of the incoming gradient, so second derivatives come for free.

Gradient emission (`_scatter_add_onnx`): kgraph's ScatterAddRows operator for this process's
onnxruntime, else ONNX `ScatterElements` with `reduction="add"` into zeros made by `Expand`
(not `ScatterND`, which onnxruntime gets wrong on repeated indices). TVM's Relax ONNX frontend
imports it as `relax.scatter_elements`. It costs O(indices x row) work and memory; the other
TVM-friendly form, `matmul(one_hot(indices)^T, g)`, costs O(indices x vocabulary x row) and a dense one-hot of
indices x vocabulary (a 10k vocabulary and a 64x50 batch: 128 MB per step). Two TVM importer
limits shape the emission: `ConstantOfShape` of a constant shape fails to build (so zeros come
from `Expand`), and arithmetic on a shape expression is refused (so an unknown target shape is a
`Concat` of constants and `Slice`s of `Shape`, never arithmetic). Indices are cast to int64
(ScatterElements needs it); negative ones are wrapped in the emission when the scattered dim is
static, and by the backend otherwise (onnxruntime and TVM both wrap them).
"""
from __future__ import annotations

import numpy as np

from kgraph.ir.types import TensorType
from kgraph.ops.registry import apply, defop


def _check_indices(op, t):
    if t.dtype not in ("int32", "int64"):  # what ONNX Gather and ScatterND take
        raise TypeError(f"{op}: indices must be int32 or int64. Received: indices dtype "
                        f"{t.dtype}")


# -- Gather ------------------------------------------------------------------------------------
def _gather_infer(types, axis):
    data, indices = types
    _check_indices("Gather", indices)
    rank = len(data.shape)
    if not 0 <= axis < rank:
        raise ValueError(f"Gather: axis out of range for data of rank {rank}. Received: "
                         f"axis={axis}")
    shape = data.shape[:axis] + tuple(indices.shape) + data.shape[axis + 1:]
    return [TensorType(shape, data.dtype)]


def _gather_ref(data, indices, axis):
    return np.take(data, indices.astype(np.int64), axis=axis)


def _gather_grad(g, y, data, indices, axis):
    order = _permutation(indices, data.shape[axis])
    if order is not None:  # a reordering (`flip`): its gradient is the inverse reordering
        return apply("Gather", g, np.argsort(order).astype(order.dtype), axis=axis), None
    return gather_grad(g, data, indices, axis)


def _permutation(indices, size):
    """The constant 1-D `indices` when they are a permutation of range(size), else None."""
    if indices.node.op != "Constant" or len(indices.shape) != 1 or size is None:
        return None
    order = np.asarray(indices.node.attrs["value"])
    order = np.where(order < 0, order + size, order)
    return order if order.size == size and np.array_equal(np.sort(order), np.arange(size)) \
        else None


def gather_grad(g, data, indices, axis):
    """The gradient of `Gather(data, indices, axis)` for its output gradient `g`: `g` summed
    into zeros shaped as `data` at `indices` (one ScatterAdd, the gathered axis moved first),
    and None for the indices."""
    from kgraph.ops.movement import transpose

    k, rank = len(indices.shape), len(data.shape)
    # g is data.shape[:axis] + indices.shape + data.shape[axis+1:]; bring the index dims first
    to_front = list(range(axis, axis + k)) + list(range(axis)) + list(range(axis + k, rank - 1 + k))
    moved = g if to_front == sorted(to_front) else transpose(g, to_front)
    front_shape = (data.shape[axis],) + data.shape[:axis] + data.shape[axis + 1:]
    summed = apply("ScatterAdd", moved, indices, _shape_of(data, axis), shape=front_shape)
    back = list(range(1, axis + 1)) + [0] + list(range(axis + 1, rank))
    return (summed if axis == 0 else transpose(summed, back), None)


def _shape_of(data, axis):
    """The shape of `data` with `axis` moved to the front: a constant when static, else a
    concat of constant dims and one-dim slices of `Shape(data)` (TVM's importer keeps that a
    shape expression with its known dims, so ScatterND's shape check passes)."""
    perm = [axis] + [i for i in range(len(data.shape)) if i != axis]
    if all(d is not None for d in data.shape):
        return _int64_constant([data.shape[i] for i in perm])
    runtime = apply("Shape", data)
    pieces = [_int64_constant([data.shape[i]]) if data.shape[i] is not None else
              apply("Slice", runtime, starts=(i,), ends=(i + 1,), axes=(0,)) for i in perm]
    return apply("Concat", *pieces, axis=0)


def _int64_constant(values):
    # graph.constant, not a bare array: inside a GradientTape a bare array becomes a fed capture
    from kgraph.ir.graph import current_graph

    return current_graph().constant(np.asarray(values, np.int64))


defop("Gather", _gather_infer, _gather_ref, grad=_gather_grad, attrs=("axis",), onnx="Gather")


# -- ScatterAdd --------------------------------------------------------------------------------
def _scatter_add_infer(types, shape):
    updates, indices, dims = types
    _check_indices("ScatterAdd", indices)
    k = len(indices.shape)
    if dims.shape != (len(shape),) or len(updates.shape) != k + len(shape) - 1:
        raise ValueError(f"ScatterAdd: updates of shape {updates.shape} and indices of shape "
                         f"{indices.shape} do not scatter into shape {shape}")
    return [TensorType(tuple(shape), updates.dtype)]


def _scatter_add_ref(updates, indices, dims, shape):
    out = np.zeros(tuple(int(d) for d in dims), dtype=updates.dtype)
    np.add.at(out, indices.astype(np.int64), updates)  # repeated indices accumulate
    return out


def _scatter_add_grad(g, y, updates, indices, dims, shape):
    return (apply("Gather", g, indices, axis=0), None, None)


def _scatter_add_onnx(ctx, node, ins, outs):
    """kgraph's ScatterAddRows where the graph is `native` (float32), else ScatterElements
    with reduction "add" along axis 0, whose indices name a row per updated value.

    Not ScatterND with reduction "add", the natural spelling: onnxruntime's CPU kernel runs
    it on several threads that race on repeated indices (onnxruntime issues 18048 and 23396;
    measured with onnxruntime 1.32: 4096 updates into 1000 rows lost whole rows, max error
    3.9, a different result on every run), and an embedding's gradient always repeats its
    rows. onnxruntime runs ScatterElements serially: exact, 30x slower than the racing
    ScatterND (2.9 ms for that case; kgraph's operator 0.1 ms); TVM imports both."""
    updates, indices, dims = ins
    if node.inputs[1].dtype != "int64":
        indices = ctx.node("Cast", [indices], to="int64")
    if ctx.native and node.inputs[0].dtype == "float32":  # wraps negative indices itself
        return ctx.node("kgraph.ScatterAddRows", [updates, indices, dims], outs)
    shape = node.attrs["shape"]
    rows, rank = shape[0], len(shape)
    if rows is not None:  # wrap negative indices here; an unknown dim is left to the backend
        negative = ctx.node("Less", [indices, ctx.const(np.int64(0))])
        wrapped = ctx.node("Add", [indices, ctx.const(np.int64(rows))])
        indices = ctx.node("Where", [negative, wrapped, indices])
    zeros = ctx.node("Expand", [ctx.const(np.zeros((), node.outputs[0].dtype)), dims])
    if len(node.inputs[1].shape) != 1:  # one axis of updates per index: (n, *shape[1:])
        if all(d is not None for d in shape[1:]):
            target = ctx.const(np.int64([-1, *shape[1:]]))
        else:
            rest = ctx.node("Slice", [dims, ctx.const(np.int64([1])),
                                      ctx.const(np.int64([rank]))])
            target = ctx.node("Concat", [ctx.const(np.int64([-1])), rest], axis=0)
        updates = ctx.node("Reshape", [updates, target])
    column = ctx.node("Reshape", [indices, ctx.const(np.int64([-1] + [1] * (rank - 1)))])
    spread = ctx.node("Expand", [column, ctx.node("Shape", [updates])])
    ctx.node("ScatterElements", [zeros, spread, updates], outs, axis=0, reduction="add")


defop("ScatterAdd", _scatter_add_infer, _scatter_add_ref, grad=_scatter_add_grad,
      attrs=("shape",), onnx=_scatter_add_onnx)


# -- public functions --------------------------------------------------------------------------
def _rank(x):
    return len(x.shape) if hasattr(x, "shape") else np.ndim(x)


def take(x, indices, axis=None):
    """Takes elements from a tensor along an axis (`keras.ops.take`).

    Args:
        x: Input tensor.
        indices: Integer indices of any rank; negative ones count from the end of `axis`.
        axis: The axis to take along. `None` (the default) takes from the flattened input.

    Returns:
        A tensor of shape `x.shape[:axis] + indices.shape + x.shape[axis + 1:]`. Its gradient
        with respect to `x` scatter-adds, so repeated indices accumulate.

    Example:

    >>> take(np.array([[1., 2.], [3., 4.]]), np.array([1, 1, 0]), axis=0)
    array([[3., 4.], [3., 4.], [1., 2.]])
    """
    if isinstance(indices, (list, tuple)):
        # a list holding traced scalars (a model called on `[1, 10, 100]`: one input each)
        # is packed into one index tensor, as TensorFlow's gather packs it
        from kgraph.ops.core_api import convert_to_tensor

        indices = convert_to_tensor(indices)
    if axis is None:
        from kgraph.ops.movement import reshape

        x, axis = reshape(x, (-1,)), 0
    rank = _rank(x)
    if not -rank <= axis < rank:
        raise ValueError(f"take: axis out of range for a tensor of rank {rank}. Received: "
                         f"axis={axis}")
    return apply("Gather", x, indices, axis=axis % rank)


def gather(x, indices, axis=0):
    """Gathers slices of `x` along `axis` (`tf.gather`): `take` with `axis=0` by default.

    Args:
        x: Input tensor.
        indices: Integer indices of any rank.
        axis: The axis to gather along.

    Returns:
        A tensor of shape `x.shape[:axis] + indices.shape + x.shape[axis + 1:]`.
    """
    return take(x, indices, axis=axis)
