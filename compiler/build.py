"""compile(graph, target) -> Compiled: optimise, emit and hand to an executor.

Compiled programs are cached by the STRUCTURE of the graph handed in (`compiler/graph_key.py`)
and the target, looked up before anything is optimised or emitted: a hit costs one walk over
the graph. Every entry is found while anything holds it (a model's, layer's or optimizer's
programs: two models of one architecture share a session); entries put with `hold=True`
(GradientTape loops, direct `compile_graph` calls) are also kept alive among the
`KGRAPH_COMPILE_CACHE_SIZE` (default 64) most recently used. So a session, and its threads,
is freed once the last model holding it goes away and no recent use holds it.
`stats()` counts the work done
(traces, optimisations, emissions, compilations, autodiffs, cache hits) for tests and benches.
"""
from __future__ import annotations

import contextlib
import gc
import os
import threading
import weakref
from collections import Counter, OrderedDict

from kgraph.compiler.graph_key import graph_key
from kgraph.compiler.passes import optimize
from kgraph.ir.graph import Graph


_GC_LOCK = threading.Lock()
_gc_pauses = [0, False]  # (nesting depth, whether the collector was on when the first began)


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while a graph is traced and compiled. Tracing,
    autodiff, the passes and emission allocate hundreds of thousands of IR objects that stay
    alive; the collector's passes over them are pure overhead (a 200-step BiLSTM's first
    train step: 8.3 s with it, 6.1 s without). Nests, and is safe from several threads: the
    collector is switched back on when the last pause ends, if it was on before the first."""
    with _GC_LOCK:
        if _gc_pauses[0] == 0:
            _gc_pauses[1] = gc.isenabled()
            gc.disable()
        _gc_pauses[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_pauses[0] -= 1
            if _gc_pauses[0] == 0 and _gc_pauses[1]:
                gc.enable()


class CompileCache:
    """Structural keys -> compiled programs: every entry while something else holds it (weak
    references), the `capacity` most recently used `hold` entries whatever holds them. Safe to
    use from several threads (two threads missing at once may both compile; one entry stays)."""

    def __init__(self, capacity: int):
        self.capacity = _check_capacity(capacity)
        self._entries: OrderedDict = OrderedDict()  # held: least recently used first
        self._alive = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry
            return self._alive.get(key)

    def put(self, key, entry, hold=True):
        with self._lock:
            self._alive[key] = entry
            if hold:
                self._entries[key] = entry
                self._entries.move_to_end(key)
        self.trim()
        return entry

    def trim(self):
        with self._lock:
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
                count("evictions")

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._alive.clear()

    def __len__(self):
        return len(self._entries)


def _check_capacity(capacity) -> int:
    """`capacity` as a positive int (an int or its decimal string, as the variable holds)."""
    try:
        value = int(capacity)
    except (TypeError, ValueError):
        value = 0
    if value < 1 or str(value) != str(capacity).strip():
        raise ValueError(f"The compile cache size must be a positive integer. Received: "
                         f"capacity={capacity!r} (set KGRAPH_COMPILE_CACHE_SIZE or call "
                         f"set_cache_capacity)")
    return value


_CACHE = CompileCache(os.environ.get("KGRAPH_COMPILE_CACHE_SIZE", "64"))
_STATS: Counter = Counter()
# Executors a graph can be compiled for in this process. "tvm" is TVM on the CPU (LLVM);
# "tvm:cuda" TVM on the first CUDA device; "static" / "static:cuda" TVM with every shape fixed
# (the trainer traces such graphs with concrete batch dimensions: see keras/execution.py).
TARGETS = ("onnxruntime", "numpy", "tvm", "tvm:cuda", "static", "static:cuda")


def resolve_target(target=None) -> str:
    """The canonical executor name for `target`; None means the configured backend
    (`kgraph.config.set_backend`, `KGRAPH_BACKEND`, `$KGRAPH_HOME/kgraph.json`)."""
    if target is None:
        from kgraph import config

        target = config.backend()
    target = {"llvm": "tvm", "tvm:llvm": "tvm", "cuda": "tvm:cuda"}.get(target, target)
    if target not in TARGETS:
        raise ValueError(f"Unknown executor target. Received: target={target!r}; expected one "
                         f"of {TARGETS}")
    return target


def compile_graph(graph: Graph, target: str | None = None, optimized: bool = False,
                  cache: bool = True):
    """`graph` compiled for `target`, from the cache when a graph of the same structure was
    compiled before (looked up before any pass or emission runs).

    Args:
        graph: a traced Graph; left as it was (the passes run on a copy).
        target: an executor name (`TARGETS`); None is the configured backend.
        optimized: True when the caller already ran the passes.
        cache: False neither reads nor fills the cache (for callers that cache what they
            build around the compiled graph, such as `compiler.program`'s plans).

    Returns:
        An executor (`runtime.executor.Compiled`). The numpy reference executor is never
        cached: it holds the graph, which callers may go on rewriting.
    """
    from kgraph.runtime import native_ops

    target = resolve_target(target)
    native = target == "onnxruntime" and native_ops.available()  # kgraph's own operators
    key = (target, native, optimized, graph_key(graph)) if cache and target != "numpy" else None
    compiled = lookup(key) if key is not None else None
    if compiled is not None:
        return compiled
    if not optimized:  # on a copy: the passes rewrite in place, and `graph` is the caller's
        count("optimizations")
        graph = optimize(graph.clone()[0])
    if target == "numpy":
        from kgraph.runtime.numpy_exec import NumpyCompiled

        return NumpyCompiled(graph)
    from kgraph.compiler.onnx.emit import emit
    from kgraph.runtime.onnx_exec import OrtCompiled

    if target != "onnxruntime":  # TVM's ONNX importer has no loop construct
        from kgraph.compiler.passes.scans import unroll_scans

        graph = unroll_scans(graph)

    if target == "onnxruntime":  # its CPU provider has no bfloat16 arithmetic kernels
        from kgraph.compiler.passes.compute_bfloat16_in_float32 import (
            compute_bfloat16_in_float32)

        graph = compute_bfloat16_in_float32(graph)
    count("emissions")
    emitted = emit(graph, native=native)
    count("compilations")
    if target == "onnxruntime":  # bytes written directly: the onnx package is not imported
        from kgraph.runtime.onnx_exec import optimization_level

        compiled = OrtCompiled(emitted.to_bytes(),
                               optimization=optimization_level(emitted.op_types()),
                               native=bool(emitted.domains), aliases=emitted.aliases)
    else:
        from kgraph.compiler.tvm import compile_onnx

        compiled = compile_onnx(emitted.to_proto(),
                                device="cuda" if target.endswith(":cuda") else "cpu")
    return remember(key, compiled) if key is not None else compiled


def lookup(key):
    """The cached entry under `key`, or None; counts a hit or a miss."""
    entry = _CACHE.get(key)
    count("cache_hits" if entry is not None else "cache_misses")
    return entry


def remember(key, entry, hold=True):
    """Cache `entry` under `key`. With `hold`, the cache keeps it alive among its most
    recently used entries; without, only while something else holds it."""
    return _CACHE.put(key, entry, hold)


def count(event: str, n: int = 1):
    _STATS[event] += n


def stats() -> dict:
    """Counts of the compiler's work since the last `reset_stats()`: traces, optimizations,
    emissions, compilations, autodiffs, cache_hits, cache_misses, evictions.

    Example:

        before = stats()
        train_one_batch()
        assert stats().get("emissions", 0) == before.get("emissions", 0)
    """
    return dict(_STATS)


def reset_stats():
    _STATS.clear()


def cache_size() -> int:
    """How many entries the compile cache holds alive itself (it also finds, without holding
    them, the entries that models, layers and optimizers hold)."""
    return len(_CACHE)


def set_cache_capacity(capacity: int) -> int:
    """Bound the compile cache to `capacity` entries (evicting at once); returns the old bound."""
    old, _CACHE.capacity = _CACHE.capacity, _check_capacity(capacity)
    _CACHE.trim()
    return old


def clear_cache():
    _CACHE.clear()
