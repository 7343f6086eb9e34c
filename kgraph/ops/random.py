"""Counter-based random numbers: a pure function of (key, op seed, element index).

The key is a graph input (the trainer derives it from the global seed and the step counter), so
every step is a pure function of its inputs: runs are bit-reproducible and resumable, with no
generator state hidden in an executor. The bits come from a 32-bit integer hash (the
"lowbias32" finaliser) evaluated with uint32 wrap-around, which numpy and ONNX agree on exactly.
"""
from __future__ import annotations

import numpy as np

from kgraph.ir.types import TensorType
from kgraph.ops.registry import apply, defop

GOLDEN = np.uint32(0x9E3779B9)
MIX1, MIX2 = np.uint32(0x7FEB352D), np.uint32(0x846CA68B)


def hash_uint32(h):
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint32(16))
        h = h * MIX1
        h = h ^ (h >> np.uint32(15))
        h = h * MIX2
        return h ^ (h >> np.uint32(16))


def _uniform_ref(like, key, seed):
    with np.errstate(over="ignore"):
        index = np.arange(like.size, dtype=np.uint32).reshape(like.shape)
        mixed = hash_uint32(np.uint32(key) * GOLDEN + np.uint32(seed & 0xFFFFFFFF))
        bits = hash_uint32(index ^ mixed)
    # top 24 bits -> float32 in [0, 1) exactly representable
    return ((bits >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)).astype(np.float32)


def _emit_hash(ctx, h):
    def shift_xor(h, n):
        return ctx.node("BitwiseXor", [h, ctx.node("BitShift", [h, ctx.const(np.uint32(n))],
                                                   direction="RIGHT")])
    h = ctx.node("Mul", [shift_xor(h, 16), ctx.const(MIX1)])
    h = ctx.node("Mul", [shift_xor(h, 15), ctx.const(MIX2)])
    return shift_xor(h, 16)


def _uniform_onnx(ctx, node, ins, outs):
    """kgraph's RandomUniformLike (runtime/native/ortops.cc: one pass, the same bits) for a
    float32 `like` in a native graph, else the hash in standard ONNX ops."""
    like, key = ins
    seed = np.uint32(node.attrs["seed"])
    if ctx.native and node.inputs[0].dtype == "float32":
        return ctx.node("kgraph.RandomUniformLike", ins, outs, seed=int(seed))
    shape = ctx.node("Shape", [like])
    size = ctx.node("Size", [like])  # not ReduceProd(Shape): TVM's importer refuses that
    index = ctx.node("Range", [ctx.const(np.int64(0)), size, ctx.const(np.int64(1))])
    index = ctx.node("Reshape", [ctx.node("Cast", [index], to="uint32"), shape])
    scaled = ctx.node("Mul", [key, ctx.const(GOLDEN)])
    # + seed, as - (2^32 - seed) where seed >= 2^31: TVM's importer adds a uint32 constant that
    # large wrongly (measured; multiplying by one is right), and the sums are equal mod 2^32
    mixed = ctx.node("Add", [scaled, ctx.const(seed)]) if seed < 2**31 else \
        ctx.node("Sub", [scaled, ctx.const(np.uint32(2**32 - int(seed)))])
    bits = _emit_hash(ctx, ctx.node("BitwiseXor", [index, _emit_hash(ctx, mixed)]))
    top = ctx.node("Cast", [ctx.node("BitShift", [bits, ctx.const(np.uint32(8))],
                                     direction="RIGHT")], to="float32")
    ctx.node("Mul", [top, ctx.const(np.float32(2.0 ** -24))], outputs=outs)


def _uniform_infer(types, seed):
    if types[1].dtype != "uint32" or types[1].shape != ():
        raise TypeError(f"RandomUniformLike: the key must be a uint32 scalar, got {types[1]}")
    return [TensorType(types[0].shape, "float32")]


defop("RandomUniformLike", _uniform_infer, _uniform_ref, differentiable=False,
      attrs=("seed",), onnx=_uniform_onnx)


def uniform_like(x, key, seed):
    """Uniform [0, 1) float32 noise shaped like `x`; `key` is a uint32 scalar input."""
    return apply("RandomUniformLike", x, key, seed=int(seed) & 0xFFFFFFFF)


# -- distributions over uniform bits: each a function of (like, key, seed) ------------------
# `like` is any tensor (or array) of the output's shape; its values are never read.
_STREAMS = (0x68E31DA4, 0xB5297A4D, 0x1B56C4E9, 0x2545F491)  # decorrelated candidate draws


def truncated_normal_like(like, key, seed, mean=0.0, stddev=1.0):
    """Normal noise with draws beyond two standard deviations drawn again (as Keras): the
    first of four candidate draws that lands inside is kept (all four outside: p < 5e-6,
    clipped)."""
    from kgraph.ops import elementwise as ew
    from kgraph.ops.nn import clip, random_normal_like

    out = None
    for stream in reversed(_STREAMS):
        z = random_normal_like(like, key, seed ^ stream)
        out = clip(z, -2.0, 2.0) if out is None else ew.where(ew.abs(z) <= 2.0, z, out)
    return out * np.float32(stddev) + np.float32(mean)


def gamma_like(like, key, seed, alpha, candidates=8):
    """Gamma(alpha, 1) noise by Marsaglia and Tsang's method: the first of `candidates` proposals
    `d (1 + c z)^3` that passes the squeeze test is kept. A proposal passes with probability
    >= 0.95 for alpha >= 1, so all eight fail with p < 4e-11 (then `d`, the mode region, is
    used). alpha < 1 draws Gamma(alpha + 1) scaled by `u ** (1 / alpha)`, as Marsaglia and Tsang.

    Args:
        like: tensor of the output's shape; alpha: float or array broadcasting to it.
    """
    from kgraph.ops import elementwise as ew
    from kgraph.ops.nn import random_normal_like

    alpha = np.asarray(alpha, np.float32)
    boosted = alpha < 1.0
    d = np.where(boosted, alpha + 1.0, alpha).astype(np.float32) - np.float32(1.0 / 3.0)
    c = (1.0 / np.sqrt(9.0 * d)).astype(np.float32)
    out = None
    for i in reversed(range(candidates)):
        stream = seed ^ ((0x9E3779B9 * (i + 1)) & 0xFFFFFFFF)
        z = random_normal_like(like, key, stream)
        u = 1.0 - uniform_like(like, key, stream ^ _STREAMS[0])  # in (0, 1]: log(u) is finite
        v = (1.0 + c * z) ** 3
        safe_v = ew.maximum(v, np.float32(1e-30))
        accept = ew.logical_and(
            v > 0.0, ew.log(u) < 0.5 * z * z + d - d * safe_v + d * ew.log(safe_v))
        out = ew.where(accept, d * safe_v, d + 0.0 * z if out is None else out)
    if boosted.any():
        u = uniform_like(like, key, seed ^ _STREAMS[1])
        scale = ew.pow(u, np.where(boosted, 1.0 / np.maximum(alpha, 1e-30), 0.0).astype(
            np.float32))
        out = out * ew.where(boosted, scale, np.float32(1.0))
    return out


def gumbel_like(like, key, seed):
    """Gumbel(0, 1) noise: argmax(logits + noise) samples the categorical of `logits`."""
    from kgraph.ops import elementwise as ew

    u = uniform_like(like, key, seed) * np.float32(1.0 - 2.0 ** -24) + np.float32(2.0 ** -25)
    return -ew.log(-ew.log(u))
