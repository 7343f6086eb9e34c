"""Seeds. `set_seed` makes initial weights, shuffling and dropout masks reproducible.

Initializers and shuffling draw from one numpy Generator seeded here. Dropout and noise layers
inside compiled graphs get their randomness from a uint32 key fed to each step, derived from
the seed and a step counter, so a step is a pure function of its inputs.
"""
from __future__ import annotations

import itertools
import weakref

import numpy as np

_state = {"seed": None, "generator": np.random.default_rng(), "counter": 0}
_counters: "weakref.WeakValueDictionary[int, IterationCounter]" = weakref.WeakValueDictionary()
_serials = itertools.count()


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


class IterationCounter:
    """`next(counter)` gives 0, 1, 2, ...: how many times a pipeline (a `Dataset.shuffle`) has
    been iterated. Counters are numbered in creation order, so `get_state`/`set_state` carry
    their values into a restarted process that builds the same pipelines (BackupAndRestore)."""

    def __init__(self):
        self.value = 0
        self.serial = next(_serials)
        _counters[self.serial] = self

    def __iter__(self):
        return self

    def __next__(self) -> int:
        self.value += 1
        return self.value - 1


def get_state() -> dict:
    """Everything that decides kgraph's next random draws, as JSON-ready values: the seed,
    the numpy Generator's state (shuffles, initializers), the dropout-key counter and the
    iteration counters of data pipelines. `set_state` puts it back."""
    return {"seed": _state["seed"], "entropy": _state.get("entropy"),
            "counter": _state["counter"],
            "generator": _state["generator"].bit_generator.state,
            "iterations": {str(k): c.value for k, c in list(_counters.items())}}


def set_state(state: dict) -> None:
    """Restore what `get_state` returned (pipeline counters are matched by creation order)."""
    generator = np.random.default_rng()
    generator.bit_generator.state = state["generator"]
    _state.update(seed=state["seed"], generator=generator, counter=int(state["counter"]))
    if state.get("entropy") is not None:
        _state["entropy"] = int(state["entropy"])
    for serial, value in state.get("iterations", {}).items():
        counter = _counters.get(int(serial))
        if counter is not None:
            counter.value = int(value)


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
