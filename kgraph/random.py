"""Seeds. `set_seed` makes initial weights, shuffling and dropout masks reproducible.

Initializers and shuffling draw from one numpy Generator seeded here. Dropout and noise layers
inside compiled graphs get their randomness from a uint32 key fed to each step, derived from
the seed and a step counter, so a step is a pure function of its inputs.
"""
from __future__ import annotations

import numpy as np

_state = {"seed": None, "generator": np.random.default_rng(), "counter": 0}


def set_seed(seed: int):
    """Seed kgraph's generators (initializers, shuffling, dropout keys)."""
    seed = int(seed)
    _state.update(seed=seed, generator=np.random.default_rng(seed), counter=0)


def generator() -> np.random.Generator:
    return _state["generator"]


def draw_seed() -> int:
    """A fresh 31-bit seed for an object that needs its own stream (a layer, an initializer)."""
    return int(generator().integers(0, 2**31 - 1))


def next_key() -> np.ndarray:
    """The uint32 key for the next compiled step that uses randomness."""
    _state["counter"] += 1
    base = _state["seed"] if _state["seed"] is not None else _entropy()
    from kgraph.ops.random import hash_uint32

    with np.errstate(over="ignore"):
        mixed = np.uint32(base & 0xFFFFFFFF) * np.uint32(0x9E3779B9) + np.uint32(_state["counter"])
    return np.asarray(hash_uint32(np.uint32(mixed)), dtype=np.uint32)


def _entropy():
    if "entropy" not in _state:
        _state["entropy"] = int(np.random.SeedSequence().entropy & 0xFFFFFFFF)
    return _state["entropy"]


class SeedGenerator:
    """`keras.random.SeedGenerator`: a seed for one layer's random ops."""

    def __init__(self, seed=None):
        self.seed = draw_seed() if seed is None else int(seed)


def graph_key():
    """The rng key input of the graph being traced (created on first use)."""
    from kgraph.ir.graph import current_graph

    graph = current_graph()
    key = getattr(graph, "rng_key", None)
    if key is None:
        key = graph.rng_key = graph.placeholder("rng_key", (), "uint32")
    step = getattr(graph, "rng_step", 0)
    if step:  # step k of a multi-step graph (steps_per_execution): a key of its own
        derived = graph.__dict__.setdefault("_rng_step_keys", {})
        if step not in derived:
            from kgraph import ops

            derived[step] = ops.add(key, np.uint32((step * 0x9E3779B9) & 0xFFFFFFFF))
        key = derived[step]
    return key


def uniform(shape, minval=0.0, maxval=1.0, dtype="float32", seed=None):
    rng = np.random.default_rng(seed) if seed is not None else generator()
    return rng.uniform(minval, maxval, size=shape).astype(dtype)


def normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None):
    rng = np.random.default_rng(seed) if seed is not None else generator()
    return rng.normal(mean, stddev, size=shape).astype(dtype)
