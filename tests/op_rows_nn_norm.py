"""Op-table rows for the normalization and noise composites of kgraph/ops/nn.py:
moments, batch_normalization and random_normal_like (picked up by tests/test_ops.py)."""
from __future__ import annotations

import math

import numpy as np

from kgraph.ops import nn as ops_nn
from op_table import A234, Row, key, normal, uniform


def np_moments(x, axes, keepdims=False):
    return x.mean(axis=axes, keepdims=keepdims), x.var(axis=axes, keepdims=keepdims)


def np_batch_norm(x, mean, variance, offset, scale, epsilon=1e-3):
    return scale * (x - mean) / np.sqrt(variance + epsilon) + offset


def _lowbias32(h):
    """The 'lowbias32' hash in uint64 arithmetic mod 2**32 (independent of kgraph's)."""
    mask = np.uint64(0xFFFFFFFF)
    h = np.asarray(h, dtype=np.uint64) & mask
    for shift, mult in ((16, 0x7FEB352D), (15, 0x846CA68B)):
        h ^= h >> np.uint64(shift)
        h = (h * np.uint64(mult)) & mask
    return h ^ (h >> np.uint64(16))


def np_uniform(shape, key_value, seed):
    mixed = _lowbias32((int(key_value) * 0x9E3779B9 + seed) & 0xFFFFFFFF)
    bits = _lowbias32(np.arange(int(np.prod(shape)), dtype=np.uint64) ^ mixed)
    return ((bits >> np.uint64(8)).astype(np.float64) / 2.0 ** 24).reshape(shape)


def np_normal(shape, key_value, seed, mean=0.0, stddev=1.0):
    """Box-Muller: sqrt(-2 log(1 - u1)) cos(2 pi u2), u2 from the seed ^ 0x5BD1E995 stream."""
    u1 = np_uniform(shape, key_value, seed)
    u2 = np_uniform(shape, key_value, seed ^ 0x5BD1E995)
    return mean + stddev * np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * math.pi * u2)


C4 = (4,)

ROWS = [
    Row("moments_mean", lambda x: ops_nn.moments(x, axes=(0, 1))[0], (normal(*A234, scale=2),),
        lambda x: np_moments(x, (0, 1))[0], composite=ops_nn.moments),
    Row("moments_variance", lambda x: ops_nn.moments(x, axes=(0, 1))[1],
        (normal(*A234, scale=2),), lambda x: np_moments(x, (0, 1))[1]),
    Row("moments_variance_keepdims", lambda x: ops_nn.moments(x, axes=-1, keepdims=True)[1],
        (normal(*A234),), lambda x: np_moments(x, -1, keepdims=True)[1]),
    Row("moments_large_mean", lambda x: ops_nn.moments(x + 1000.0, axes=0)[1],
        (normal(64, 3),), lambda x: np_moments(x, 0)[1], tol=2e-3),
    Row("batch_normalization",
        lambda x, m, v, b, g: ops_nn.batch_normalization(x, m, v, axis=-1, offset=b, scale=g),
        (normal(*A234), normal(*C4), uniform(0.5, 2.0, *C4), normal(*C4), normal(*C4)),
        np_batch_norm, composite=ops_nn.batch_normalization),
    Row("batch_normalization_axis1_no_affine",
        lambda x, m, v: ops_nn.batch_normalization(x, m, v, axis=1, epsilon=0.1),
        (normal(2, 4, 3), normal(*C4), uniform(0.5, 2.0, *C4)),
        lambda x, m, v: (x - m[:, None]) / np.sqrt(v[:, None] + 0.1)),
    Row("random_normal_like", lambda x, k: ops_nn.random_normal_like(x, k, seed=3),
        (normal(6, 5), key(9)), lambda x, k: np_normal(x.shape, k, 3),
        composite=ops_nn.random_normal_like, grad="none"),
    Row("random_normal_like_scaled",
        lambda x, k: ops_nn.random_normal_like(x, k, seed=4, mean=1.0, stddev=0.5),
        (normal(3, 7), key(2)), lambda x, k: np_normal(x.shape, k, 4, 1.0, 0.5), grad="none"),
]
