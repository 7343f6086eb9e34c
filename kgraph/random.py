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
    """`keras.random.SeedGenerator`: a seed plus a counter that every draw advances.

    Random functions given a `SeedGenerator` read its counter and increment it, eagerly and
    inside traced graphs alike (there the counter is a non-trainable uint32 variable the step
    updates), so a model's noise is reproducible from `seed` alone, step after step.

    Args:
        seed: int, the generator's seed; None draws one from `kgraph.random.set_seed`'s stream.
        name: str, the name of the counter variable.

    Example:

    >>> gen = SeedGenerator(1337)
    >>> a, b = normal((2,), seed=gen), normal((2,), seed=gen)   # two different draws
    """

    def __init__(self, seed=None, name=None, **kwargs):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError(f"SeedGenerator: `seed` must be an int or None. Received: "
                             f"seed={seed!r}")
        self.seed = draw_seed() if seed is None else int(seed)
        self.name = name or "seed_generator_state"
        self._state = None  # made on first draw: layers that only read `.seed` stay light

    @property
    def state(self):
        if self._state is None:
            from kgraph.variables import Variable

            self._state = Variable(np.uint32(0), shape=(), dtype="uint32", trainable=False,
                                   name=self.name)
        return self._state

    def next(self):
        """The key of the next draw (a uint32 scalar); advances the counter."""
        key = self.state.value
        self.state.assign(key + np.uint32(1))
        return key

    def get_config(self):
        return {"seed": self.seed, "name": self.name}


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


# -- keras.random: eager on arrays, in-graph while tracing -----------------------------------
def _key_and_seed(seed):
    """(key, op seed) for one draw: an int seed gives the same draw every time, a
    `SeedGenerator` the next draw of its stream, None the global stream (`set_seed`)."""
    from kgraph.ir.graph import current_graph

    if isinstance(seed, SeedGenerator):
        return seed.next(), seed.seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.uint32(0), int(seed)
    if seed is not None:
        raise ValueError(f"`seed` must be an int, a keras.random.SeedGenerator or None. "
                         f"Received: seed={seed!r}")
    if current_graph() is not None:
        return graph_key(), draw_seed()
    return np.uint32(generator().integers(0, 2**32)), 0


def _like(shape):
    """A float32 zeros tensor of `shape` for a draw to fill: an array eagerly, a constant of the
    graph while tracing, and a tensor that follows their run-time sizes when `shape` holds dims
    of traced tensors (`keras.random.normal((ops.shape(z)[0], dim))`)."""
    from kgraph import ops
    from kgraph.ir.graph import current_graph
    from kgraph.ops.symbolic_shape import as_dims, fill_open_dim, has_dims

    dims = fill_open_dim(as_dims(shape, "keras.random"))
    if None in dims:
        raise ValueError(f"keras.random: every dimension must be a known int or a dim of a "
                         f"traced tensor (`ops.shape(x)[0]`). Received: shape={shape}")
    if has_dims(dims):
        return ops.zeros(dims, "float32")
    graph = current_graph()
    zeros = np.zeros(dims, np.float32)
    return graph.constant(zeros) if graph is not None else zeros


def _as(x, dtype):
    from kgraph import ops

    return x if dtype in (None, "float32") else ops.cast(x, dtype)


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Uniform draws in [minval, maxval) (`keras.random.uniform`).

    Args:
        shape: tuple of ints and dims of traced tensors (`ops.shape(x)[0]`), whose run-time
            sizes the draw follows.
        minval, maxval: floats, the bounds.
        dtype: float dtype of the result (default float32).
        seed: int, `SeedGenerator` or None.

    Returns:
        An array eagerly, a graph tensor while tracing.
    """
    from kgraph.ops.random import uniform_like

    key, op_seed = _key_and_seed(seed)
    u = uniform_like(_like(shape), key, op_seed)
    return _as(u * np.float32(maxval - minval) + np.float32(minval), dtype)


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal draws (`keras.random.normal`); arguments as `uniform`."""
    from kgraph.ops.nn import random_normal_like

    key, op_seed = _key_and_seed(seed)
    return _as(random_normal_like(_like(shape), key, op_seed, mean, stddev), dtype)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal draws beyond two standard deviations drawn again (`keras.random.truncated_normal`)."""
    from kgraph.ops.random import truncated_normal_like

    key, op_seed = _key_and_seed(seed)
    return _as(truncated_normal_like(_like(shape), key, op_seed, mean, stddev), dtype)


def gamma(shape, alpha, dtype=None, seed=None):
    """Gamma(alpha, 1) draws (`keras.random.gamma`; `tf.random.gamma(shape=..., alpha=...)`).

    Args:
        shape: tuple of ints and dims of traced tensors (`ops.shape(x)[0]`), whose run-time
            sizes the draw follows.
        alpha: float (or array broadcasting to `shape`), the concentration, > 0.
        dtype: float dtype of the result (default float32).
        seed: int, `SeedGenerator` or None.

    Returns:
        An array eagerly, a graph tensor while tracing.

    Example:

    >>> draws = gamma((10000,), alpha=2.0, seed=1)   # mean ~ 2, variance ~ 2
    """
    from kgraph.ops.random import gamma_like

    if np.any(np.asarray(alpha) <= 0):
        raise ValueError(f"gamma: `alpha` must be > 0. Received: alpha={alpha!r}")
    key, op_seed = _key_and_seed(seed)
    return _as(gamma_like(_like(shape), key, op_seed, alpha), dtype)


def beta(shape, alpha, beta, dtype=None, seed=None):  # noqa: A002 - Keras' argument name
    """Beta(alpha, beta) draws (`keras.random.beta`): `g1 / (g1 + g2)` of two independent gamma
    draws; arguments as `gamma`."""
    from kgraph.ops.random import _STREAMS, gamma_like

    if np.any(np.asarray(alpha) <= 0) or np.any(np.asarray(beta) <= 0):
        raise ValueError(f"beta: `alpha` and `beta` must be > 0. Received: alpha={alpha!r}, "
                         f"beta={beta!r}")
    key, op_seed = _key_and_seed(seed)
    like = _like(shape)
    first = gamma_like(like, key, op_seed, alpha)
    second = gamma_like(like, key, op_seed ^ _STREAMS[2], beta)
    return _as(first / (first + second), dtype)


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    """Binomial(counts, probabilities) draws (`keras.random.binomial`): the number of
    successes in `counts` trials, each a success with probability `probabilities`.

    Each draw counts its uniform trials below `probabilities`, so it is exact, and costs
    `max(counts)` uniforms per element.

    Args:
        shape: tuple of ints and dims of traced tensors (`ops.shape(x)[0]`).
        counts: int or array of ints broadcasting to `shape`, the trials per draw; known
            when the draw is traced (not a tensor computed in the graph).
        probabilities: float, array or tensor broadcasting to `shape`, in [0, 1].
        dtype: the result's dtype. Defaults to `floatx()`.
        seed: int, `SeedGenerator` or None.

    Returns:
        An array eagerly, a graph tensor while tracing.

    Example:

    >>> draws = binomial((10000,), counts=10, probabilities=0.3, seed=1)  # mean ~ 3, var ~ 2.1
    """
    from kgraph import config, ops
    from kgraph.ir.graph import Value

    if isinstance(counts, Value):
        raise ValueError("binomial: `counts` must be known when the draw is traced (an int or "
                         "an array of ints), not a tensor computed in the graph. Received: "
                         f"counts={counts!r}")
    counts = np.asarray(counts)
    if counts.size == 0 or np.any(counts < 0) or np.any(counts != np.floor(counts)):
        raise ValueError(f"binomial: `counts` must be integers >= 0. Received: counts={counts!r}")
    trials = int(counts.max())
    shape = tuple(shape)
    if trials == 0:
        return ops.cast(_like(shape), dtype or config.floatx())
    draws = uniform((trials,) + shape, seed=seed)
    trial = np.arange(trials, dtype=np.float32).reshape((trials,) + (1,) * len(shape))
    probabilities = ops.cast(probabilities, "float32") if isinstance(probabilities, Value) \
        else np.asarray(probabilities, np.float32)
    success = ops.logical_and(ops.less(draws, probabilities),
                              ops.less(trial, counts.astype(np.float32)))
    return ops.cast(ops.sum(ops.cast(success, "float32"), axis=0), dtype or config.floatx())


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Integers in [minval, maxval) (`keras.random.randint`)."""
    from kgraph import ops

    u = uniform(shape, float(minval), float(maxval), seed=seed)
    return ops.cast(ops.minimum(ops.floor(u), np.float32(maxval - 1)), dtype)


def dropout(inputs, rate, noise_shape=None, seed=None):
    """Zero entries with probability `rate` and scale the rest by 1/(1-rate)
    (`keras.random.dropout`); `noise_shape` (None entries follow `inputs`) shares the mask."""
    from kgraph import ops

    if not 0 <= rate < 1:
        raise ValueError(f"dropout: `rate` must be in [0, 1). Received: rate={rate!r}")
    shape = tuple(ops.shape(inputs)) if noise_shape is None else tuple(
        d if d is not None else s for d, s in zip(noise_shape, ops.shape(inputs)))
    keep = ops.greater_equal(uniform(shape, seed=seed), np.float32(rate))
    return inputs * ops.cast(keep, inputs.dtype) * np.asarray(1.0 / (1.0 - rate), inputs.dtype)


def shuffle(x, axis=0, seed=None):
    """`x` permuted along `axis` (`keras.random.shuffle`)."""
    from kgraph import ops

    keys = uniform((ops.shape(x)[axis],), seed=seed)
    return ops.take(x, ops.argsort(keys), axis=axis)


def categorical(logits, num_samples, dtype="int32", seed=None):
    """`num_samples` class indices per row of `logits` (batch, classes), drawn with the
    Gumbel-max trick (`keras.random.categorical`); returns (batch, num_samples)."""
    from kgraph import ops
    from kgraph.ops.random import gumbel_like

    batch, classes = ops.shape(logits)
    key, op_seed = _key_and_seed(seed)
    noise = gumbel_like(_like((batch, num_samples, classes)), key, op_seed)
    scores = ops.expand_dims(ops.cast(logits, "float32"), 1) + noise
    return ops.cast(ops.argmax(scores, axis=-1), dtype)
