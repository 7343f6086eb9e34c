"""Op-table rows of the Keras-namespace ops (kgraph/ops/{sort,numpy_api,reduce_api,shape_api,
einsum,nn_api,core_api,image}.py): the primitives Asin/Acos/Atan/TopK and the composites,
each against an independent numpy formula (forward, FD gradient, onnxruntime, TVM)."""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.ops import image
from kgraph.ops.sort import _topk_indices
from op_table import A34, A234, F32, Row, away, fixed, grid, normal, spot, uniform


def np_sparsemax(z):
    s = -np.sort(-z, -1)
    k = np.arange(1, z.shape[-1] + 1)
    cum = np.cumsum(s, -1)
    support = (1 + k * s) > cum
    count = support.sum(-1, keepdims=True)
    tau = (np.take_along_axis(cum, count - 1, -1) - 1) / count
    return np.maximum(z - tau, 0)


ROWS = [
    Row("Asin", ops.arcsin, (uniform(-0.9, 0.9, *A34),), np.arcsin, op="Asin",
        spots=(spot([F32([0, 1])], [0, np.pi / 2]),)),
    Row("Acos", ops.arccos, (uniform(-0.9, 0.9, *A34),), np.arccos, op="Acos"),
    Row("Atan", ops.arctan, (normal(*A34, scale=2),), np.arctan, op="Atan"),
    Row("TopK", lambda x: _topk_indices(x, 2, True), (grid(*A34),),
        lambda x: np.argsort(-x, -1, kind="stable")[..., :2], op="TopK", grad="none",
        spots=(spot([F32([[1, 3, 3, 0]])], [[1, 2]]),)),  # ties: lower index first
    Row("sort", lambda x: ops.sort(x, axis=0), (grid(*A34),), lambda x: np.sort(x, 0)),
    Row("argsort", ops.argsort, (grid(*A34),), lambda x: np.argsort(x, -1), grad="none"),
    Row("top_k_values", lambda x: ops.top_k(x, 3)[0], (grid(*A34),),
        lambda x: -np.sort(-x, -1)[..., :3]),
    Row("take_along_axis", lambda x: ops.take_along_axis(x, np.array([[2, -1], [0, 0], [3, 1]]),
                                                         1), (normal(*A34),),
        lambda x: np.take_along_axis(x, np.array([[2, 3], [0, 0], [3, 1]]), 1)),
    Row("median", lambda x: ops.median(x, axis=1), (grid(*A34),), lambda x: np.median(x, 1)),
    Row("arctan2", ops.arctan2, (away(*A34), away(*A34)), np.arctan2),
    Row("cumsum", lambda x: ops.cumsum(x, axis=1), (normal(*A234),), lambda x: np.cumsum(x, 1)),
    Row("cumprod", lambda x: ops.cumprod(x, axis=0), (normal(*A34),),
        lambda x: np.cumprod(x, 0)),
    Row("prod", lambda x: ops.prod(x, axis=-1), (normal(*A34),), lambda x: np.prod(x, -1)),
    Row("var_std", lambda x: ops.std(x, axis=0) + ops.var(x), (normal(*A34),),
        lambda x: np.std(x, 0) + np.var(x)),
    Row("log1p_expm1", lambda x: ops.log1p(x) + ops.expm1(x), (uniform(-0.5, 2, *A34),),
        lambda x: np.log1p(x) + np.expm1(x)),
    Row("hyperbolic", lambda x: ops.sinh(x) + ops.cosh(x) + ops.arcsinh(x) + ops.tan(x),
        (uniform(-1, 1, *A34),),
        lambda x: np.sinh(x) + np.cosh(x) + np.arcsinh(x) + np.tan(x)),
    Row("logaddexp", ops.logaddexp, (normal(*A34, scale=3), normal(*A34, scale=3)),
        np.logaddexp),
    Row("stack_split", lambda x: ops.stack(ops.split(x, 2, axis=1), axis=0), (normal(*A34),),
        lambda x: np.stack(np.split(x, 2, 1), 0)),
    Row("tile_repeat", lambda x: ops.repeat(ops.tile(x, (2, 1)), 2, axis=1), (normal(*A34),),
        lambda x: np.repeat(np.tile(x, (2, 1)), 2, 1)),
    Row("flip_roll", lambda x: ops.roll(ops.flip(x, 1), 1, axis=0), (normal(*A34),),
        lambda x: np.roll(np.flip(x, 1), 1, 0)),
    Row("tril_triu_diagonal", lambda x: ops.tril(x, 1) - ops.triu(x) + ops.trace(x),
        (normal(4, 4),), lambda x: np.tril(x, 1) - np.triu(x) + np.trace(x)),
    Row("tensordot", lambda a, b: ops.tensordot(a, b, axes=([1, 2], [0, 1])),
        (normal(*A234), normal(3, 4, 5)), lambda a, b: np.tensordot(a, b, ([1, 2], [0, 1]))),
    Row("einsum_batched", lambda a, b: ops.einsum("bij,bkj->bki", a, b),
        (normal(*A234), normal(2, 5, 4)), lambda a, b: np.einsum("bij,bkj->bki", a, b)),
    Row("einsum_three", lambda a, b, c: ops.einsum("ij,jk,k->i", a, b, c),
        (normal(*A34), normal(4, 5), normal(5)), lambda a, b, c: np.einsum("ij,jk,k->i", a, b, c)),
    Row("outer_kron", lambda a, b: ops.kron(ops.outer(a, b), a[:2]), (normal(3), normal(2)),
        lambda a, b: np.kron(np.outer(a, b), a[:2])),
    Row("slice_update", lambda x, u: ops.slice_update(x, (1, 1), u), (normal(*A34), normal(2, 2)),
        lambda x, u: np.concatenate([x[:1], np.concatenate([x[1:, :1], u, x[1:, 3:]], 1)], 0)),
    Row("scatter_update", lambda x, u: ops.scatter_update(x, np.array([[0, 1], [2, 3]]), u),
        (normal(*A34), normal(2)),
        lambda x, u: np.where(np.isin(np.arange(12).reshape(3, 4), [1, 11]),
                              np.zeros_like(x) + np.array([[0, u[0], 0, 0], [0] * 4,
                                                           [0, 0, 0, u[1]]]), x)),
    Row("sparsemax", ops.sparsemax, (normal(*A34, scale=2),), np_sparsemax),
    Row("celu_glu", lambda x: ops.glu(ops.celu(x)), (away(*A34),),
        lambda x: (lambda c: c[:, :2] / (1 + np.exp(-c[:, 2:])))(
            np.where(x > 0, x, np.exp(np.minimum(x, 0)) - 1))),
    Row("categorical_crossentropy_logits",
        lambda t, x: ops.categorical_crossentropy(t, x, from_logits=True),
        (fixed(np.eye(4)[[0, 2, 3]]), normal(*A34)),
        lambda t, x: -(t * (x - np.log(np.exp(x).sum(-1, keepdims=True)))).sum(-1), wrt=(1,)),
    Row("binary_crossentropy_logits",
        lambda t, x: ops.binary_crossentropy(t, x, from_logits=True),
        (uniform(0, 1, *A34), normal(*A34)),
        lambda t, x: np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))),
    Row("normalize", ops.normalize, (normal(*A34),),
        lambda x: x / np.sqrt((x * x).sum(-1, keepdims=True))),
    Row("dot_product_attention_causal",
        lambda q, k, v: ops.dot_product_attention(q, k, v, is_causal=True),
        (normal(2, 3, 2, 4), normal(2, 3, 2, 4), normal(2, 3, 2, 4)),
        lambda q, k, v: np_attention(q, k, v)),
    Row("resize_bilinear", lambda x: image.resize(x, (6, 2)), (normal(1, 3, 4, 2),),
        lambda x: np_resize_bilinear(x, 6, 2), tol=1e-5),
    Row("norm_matrix", lambda x: ops.norm(x, ord=1, axis=(0, 1)), (away(*A34),),
        lambda x: np.linalg.norm(x, 1, (0, 1))),
]


def np_attention(q, k, v):
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
    logits = np.where(np.tril(np.ones((q.shape[1], k.shape[1]), bool)), logits, -1e30)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return np.einsum("bhqk,bkhd->bqhd", w, v)


def np_resize_bilinear(x, h, w):
    def axis_weights(n_in, n_out):
        c = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        c = np.clip(c, 0, n_in - 1)
        lo = np.floor(c).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        m = np.zeros((n_out, n_in))
        m[np.arange(n_out), lo] += 1 - (c - lo)
        m[np.arange(n_out), hi] += c - lo
        return m
    return np.einsum("hH,wW,bHWc->bhwc", axis_weights(x.shape[1], h), axis_weights(x.shape[2], w),
                     x)
