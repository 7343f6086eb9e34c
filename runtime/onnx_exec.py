"""onnxruntime executor: an InferenceSession over serialized ONNX, fed and answered with
OrtValues so that parameters and optimizer state stay inside onnxruntime between steps.

Each session owns its thread pool (`KGRAPH_NUM_THREADS` threads, default one per physical
core), drawn from a process-wide budget of pool threads (`KGRAPH_MAX_THREADS`, default
16 per core: the dozens of sessions one script's models, eager layer calls, tape steps and
optimizer updates make all run at full width); a session made when the budget is spent runs
on its calling thread only, and a session that goes away gives
its threads back. Sessions live only as long as a model, layer, optimizer or the compile
cache's few most recent entries hold them (compiler/build.py), so threads stay bounded however
many models a process builds, keeps or discards. `KGRAPH_ORT_GLOBAL_THREADS=1` makes every
kgraph session share onnxruntime's process-wide pool instead; onnxruntime then refuses, in that
process, any other session that does not set `use_per_session_threads = False` (which is why it
is not the default: a user checking an exported model with a plain `InferenceSession` would
fail). onnxruntime's telemetry store (`~/.cache/Microsoft/DeveloperTools/`)
is switched off before onnxruntime loads unless `KGRAPH_ORT_TELEMETRY=1` (docs/security.md).
"""
from __future__ import annotations

import functools
import os
import threading
import time
import warnings
import weakref

import numpy as np

from kgraph.config import ConfigWarning

if os.environ.get("KGRAPH_ORT_TELEMETRY") != "1":
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # read when onnxruntime loads
import onnxruntime as ort  # noqa: E402
from onnxruntime.capi import _pybind_state as _C  # noqa: E402

if os.environ.get("KGRAPH_ORT_TELEMETRY") != "1":
    ort.disable_telemetry_events()

_POOL_LOCK = threading.Lock()
_pool_sized = False


def _count_variable(name: str, default_text: str) -> int:
    """Environment variable `name` as a non-negative count, -1 when unset or invalid (an
    invalid value warns naming the variable and the value)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return -1
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        warnings.warn(f"{name} must be a non-negative integer; using the default "
                      f"({default_text}). Received: {name}={raw!r}", ConfigWarning,
                      stacklevel=4)
    return value


def num_threads() -> int:
    """`KGRAPH_NUM_THREADS` as a thread count (0 = onnxruntime's default, one per core).

    An invalid value warns (naming the variable and the value) and falls back to 0."""
    return max(_count_variable("KGRAPH_NUM_THREADS", "one thread per core"), 0)


@functools.lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical cores this process may run on: onnxruntime's default pool width."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        try:
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/core_id") as f:
                core = f.read().strip()
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id") as f:
                cores.add((f.read().strip(), core))
        except OSError:
            cores.add(("cpu", cpu))
    return max(len(cores), 1)


def thread_budget() -> int:
    """Pool threads all of kgraph's sessions may hold together: `KGRAPH_MAX_THREADS`, default
    16 per core. A typical script holds dozens of sessions (each model's train, evaluate and
    predict steps, eager layer calls, a tape's programs, optimizer updates); a budget of one
    model's three steps left the rest single-threaded (the benchmark MLP's tape loop ran 3x
    slower), while 16 per core still bounds a process whatever the number of live models."""
    value = _count_variable("KGRAPH_MAX_THREADS", "16 per core")
    return value if value >= 0 else 16 * physical_cores()


class _ThreadBudget:
    """Pool threads held by live sessions, counted so that their sum stays within
    `thread_budget()` whatever the number of live models (per-session pools keep the
    per-step speed of onnxruntime's default; a global pool would refuse other sessions)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.held = 0

    def take(self, wanted: int) -> int:
        with self._lock:
            granted = max(0, min(wanted, thread_budget() - self.held))
            self.held += granted
            return granted

    def give_back(self, count: int):
        with self._lock:
            self.held -= count


_BUDGET = _ThreadBudget()


def _size_global_pool():
    """Size the process-wide pool before the first session creates it (once)."""
    global _pool_sized
    with _POOL_LOCK:
        if not _pool_sized:
            ort.set_global_thread_pool_sizes(num_threads(), 1)
            _pool_sized = True


_LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED",
           "basic": "ORT_ENABLE_BASIC", "disable": "ORT_DISABLE_ALL"}
# Above this many nodes onnxruntime's own graph optimisation costs seconds per compile
# (measured: 49k nodes of an unrolled 200-step BiLSTM, 1.7 s with none, 5.7 s basic, 9.7 s
# all) and the step ran no faster for it (105 / 104 / 147 ms).
LARGE_GRAPH_NODES = 20000
# Unrolled recurrences (thousands of small kernels) ran fastest at "basic" (LSTM(64) x 50
# steps: 8.6 ms against 10.1 ms at "all"); convolution and dense steps at "all" (NCHWc
# layouts, fused GEMMs: CNN 12.9 against 14.6 ms, MLP 1.66 against 2.44 ms). docs/benchmarks.md.
RECURRENT_GRAPH_NODES = 1000
_CONVOLUTIONS = frozenset({"Conv", "ConvTranspose", "MaxPool", "AveragePool", "kgraph.Conv2D",
                           "kgraph.ConvTranspose2D"})


def optimization_level(op_types) -> str:
    """The onnxruntime graph optimisation level for a graph with these node op types:
    `KGRAPH_ORT_OPTIMIZATION` (all, extended, basic, disable) when set, else by the graph's
    size and content (see the measured constants above)."""
    wanted = os.environ.get("KGRAPH_ORT_OPTIMIZATION")
    if wanted:
        if wanted not in _LEVELS:
            warnings.warn(f"KGRAPH_ORT_OPTIMIZATION={wanted!r} is not one of {sorted(_LEVELS)}; "
                          f"choosing by the graph", ConfigWarning, stacklevel=2)
        else:
            return wanted
    op_types = list(op_types)
    if len(op_types) > LARGE_GRAPH_NODES:
        return "disable"
    if len(op_types) > RECURRENT_GRAPH_NODES and not _CONVOLUTIONS.intersection(op_types):
        return "basic"
    return "all"


def _session_options(level="all", threads=None, native=False):
    """Options of a kgraph session; `threads` (intra-op threads, the caller included) overrides
    `KGRAPH_NUM_THREADS` (0 = onnxruntime's default); `native` registers kgraph's operators
    (runtime/native_ops.py)."""
    opts = ort.SessionOptions()
    if native:
        from kgraph.runtime import native_ops

        native_ops.register(opts)
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[level])
    opts.log_severity_level = 3
    if _denormal_flags() is not None:  # its pool threads flush denormals (see native_ops)
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    if _global_threads():
        _size_global_pool()
        opts.use_per_session_threads = False
    else:
        threads = num_threads() if threads is None else threads
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return opts


def _denormal_flags():
    """native_ops.denormal_flags(): (set, flush) of the calling thread's MXCSR where sessions
    flush denormals, else None."""
    from kgraph.runtime import native_ops

    return native_ops.denormal_flags()


def _flushing(flags, fn, *args):
    """fn(*args) with denormals flushed on this thread, its flags put back after (`flags`:
    `_denormal_flags()`; None: as it is)."""
    if flags is None:
        return fn(*args)
    set_, flush = flags
    before = flush()
    try:
        return fn(*args)
    finally:
        set_(before)


def _global_threads() -> bool:
    return os.environ.get("KGRAPH_ORT_GLOBAL_THREADS") == "1"


class _Collector:
    """Full collections run for the thread budget, at most 10% of the time: in a process
    with many live objects one takes 0.2 s and frees nothing while the short sessions are
    live ones (a test suite's), so one was due before every new session."""

    SHARE = 0.1

    def __init__(self, clock=time.monotonic, collect=None):
        import gc

        self.clock, self.full_collection = clock, collect or gc.collect
        self.lock = threading.Lock()
        self.ended, self.cost = float("-inf"), 0.0

    def due(self) -> bool:
        return self.clock() - self.ended >= self.cost / self.SHARE

    def collect(self):
        with self.lock:
            start = self.clock()
            self.full_collection()
            self.ended = self.clock()
            self.cost = self.ended - start


_COLLECTOR = _Collector()


def _budgeted_session(model_bytes: bytes, level: str, native: bool = False):
    """An InferenceSession whose pool threads come from the process-wide budget and go back
    to it when the session is freed. onnxruntime sets the flags of the thread that makes a
    session that flushes denormals for good: they are put back (numpy keeps its denormals)."""
    return _flushing(_denormal_flags(), _new_session, model_bytes, level, native)


def _new_session(model_bytes: bytes, level: str, native: bool):
    if _global_threads():
        return ort.InferenceSession(model_bytes, _session_options(level, native=native),
                                    providers=providers())
    wanted = num_threads()
    width = wanted or physical_cores()
    workers = _BUDGET.take(width - 1)  # the calling thread runs work too
    if workers < width - 1 and _COLLECTOR.due():
        # Discarded models in reference cycles hold their sessions until the cyclic collector
        # runs: collect them before running this session short of threads.
        _BUDGET.give_back(workers)
        _COLLECTOR.collect()
        workers = _BUDGET.take(width - 1)
    # all granted and no explicit count: onnxruntime's default (it also pins its threads)
    threads = wanted if workers == width - 1 else 1 + workers
    try:
        session = ort.InferenceSession(model_bytes, _session_options(level, threads, native),
                                       providers=providers())
    except BaseException:
        _BUDGET.give_back(workers)
        raise
    if workers:
        weakref.finalize(session, _BUDGET.give_back, workers)
    return session


def providers():
    available = ort.get_available_providers()
    wanted = os.environ.get("KGRAPH_ORT_PROVIDERS")
    if wanted:
        return [p for p in wanted.split(",") if p in available]
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class _Uploader:
    """numpy -> OrtValue on one device."""

    def __init__(self, device):
        self.device = device
        self._c_device = ort.OrtDevice.make(device, 0)._get_c_device()
        self._host = device == "cpu"

    def __call__(self, array):
        array = np.asarray(array)
        if not array.flags.c_contiguous:  # (np.ascontiguousarray would turn 0-d into 1-d)
            array = array.copy(order="C")
        # OrtValue.ortvalue_from_numpy without its wrapper, which makes the device anew per
        # call; a host value is the array's own memory, so it holds the array
        return ort.OrtValue(_C.OrtValue.ortvalue_from_numpy(array, self._c_device),
                            array if self._host else None)


_UPLOADERS: dict = {}


class OrtCompiled:
    """One onnxruntime session. Buffers live on the session's device: the first CUDA device
    when the CUDA execution provider runs it (onnxruntime-gpu), else the host; parameters
    and results stay there between steps. `native`: the model uses kgraph's operators.
    `aliases`: {output: input} names whose output may be written into the input's buffer
    (compiler/onnx/emit._updates_in_place; `OrtBinder.run`'s `into`)."""

    def __init__(self, model_bytes: bytes, output_names=None, optimization="all",
                 native=False, aliases=None):
        self.session = _budgeted_session(model_bytes, optimization, native)
        self.aliases = dict(aliases or {})
        self.denormal_flags = _denormal_flags()  # (set, flush) around each run, or None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = output_names or [o.name for o in self.session.get_outputs()]
        on_gpu = self.session.get_providers()[0] == "CUDAExecutionProvider"
        self.device = "cuda" if on_gpu else "cpu"
        # one uploader per device, shared by every session on it: a variable's buffer made for
        # one session is then fed to the others as it is (Variable.device_buffer compares them)
        self.upload = _UPLOADERS.setdefault(self.device, _Uploader(self.device))
        self._run_options = ort.RunOptions()
        self._required = frozenset(i.name for i in self.session.get_inputs()
                                   if not i.type.startswith("optional"))

    def binder(self):
        return OrtBinder(self)

    def run(self, feeds: dict) -> list:
        # onnxruntime's C++ session directly: the Python wrapper re-reads the session's input
        # metadata and runs its WebGPU checks on every call, 33 of the 36 µs a one-node run
        # takes here (an unknown input still raises, from onnxruntime itself)
        missing = self._required - feeds.keys()
        if missing:
            raise ValueError(f"Required inputs ({sorted(missing)}) are missing from input feed "
                             f"({list(feeds)}).")
        values = [v if isinstance(v, ort.OrtValue) else self.upload(v) for v in feeds.values()]
        result = _flushing(self.denormal_flags, self.session._sess.run_with_ort_values,
                           {k: v._ortvalue for k, v in zip(feeds, values)}, self.output_names,
                           self._run_options)
        return [ort.OrtValue(result[i]) for i in range(len(result))]  # (see OrtBinder.run)

    def run_numpy(self, feeds: dict) -> list:
        return _flushing(self.denormal_flags, self.session.run, self.output_names,
                         {k: np.asarray(v) for k, v in feeds.items()})


    @staticmethod
    def to_numpy(buffer):
        return buffer.numpy() if isinstance(buffer, ort.OrtValue) else np.asarray(buffer)


class OrtBinder:
    """Runs one session through an IOBinding that outlives the call: an input whose buffer is
    the one bound last time is not bound again (a parameter between two predictions). The
    binding is driven through onnxruntime's C++ binding object directly: its Python wrapper
    checks and re-creates a device per call, ~4 µs for each of a train step's dozens of
    inputs and outputs (its checks are for WebGPU graph capture, which kgraph does not use);
    `bound` keeps the bound inputs alive as the wrapper would."""

    def __init__(self, compiled: OrtCompiled):
        self.session = compiled.session
        self.binding = self.session.io_binding()
        self.output_names = compiled.output_names
        self.upload, self.device = compiled.upload, compiled.device
        self._bound: dict = {}
        self._bound_out: dict = {}  # outputs bound to a given buffer (in place) last time
        self._run_options = ort.RunOptions()
        self._c_device = ort.OrtDevice.make(self.device, 0)._get_c_device()
        self._flags = compiled.denormal_flags
        self._last = None  # the last call's feeds and what to give back (see run)

    def unbind(self, names):
        """Drop the references to the inputs `names` (the next run binds them again; the
        binding's own stale entries are never read before that)."""
        for name in names:
            self._bound.pop(name, None)
        self._last = None

    def run(self, feeds: dict, into=None) -> list:
        """`into`: {output name: OrtValue} written in place (an input's buffer where the
        compiled graph's `aliases` allow it), returned as they are (kept bound while the
        next call names the same buffer); every other output gets a fresh buffer."""
        binding, last = self.binding._iobinding, self._last
        if last is None or last[0] is not feeds or last[1] is not into:
            last = self._bind(feeds, into)
        else:  # the same feeds again (Program's repeated call): only fresh outputs anew
            for name in last[2]:
                binding.bind_output(name, self._c_device)
        _flushing(self._flags, self.session._sess.run_with_iobinding, binding, self._run_options)
        # Indexing copies each OrtValue (a new reference to its tensor); iterating the
        # vector would yield references INTO the binding's output slots, which the next run
        # on this binding re-points at its new results (a held weight, snapshot or pinned
        # buffer would silently change to a later step's value).
        outputs, outs = binding.get_outputs(), list(last[4])
        for i in last[3]:
            outs[i] = ort.OrtValue(outputs[i])
        return outs

    def _bind(self, feeds, into):
        """Bind the inputs and in-place outputs that changed since the last call, and fresh
        buffers for the other outputs. Returns (feeds, into, the fresh outputs' names, their
        positions, the outputs to give back with None at those positions), kept for a call
        with the same feeds and `into`."""
        binding, bound = self.binding._iobinding, self._bound
        for name, value in feeds.items():
            if bound.get(name) is value:
                continue
            if not isinstance(value, ort.OrtValue):
                value = self.upload(value)
            binding.bind_ortvalue_input(name, value._ortvalue)
            bound[name] = value
        device, bound_out, given = self._c_device, self._bound_out, []
        # in the outputs' order: the binding keeps a name where it was first bound, and the
        # results are read back by position
        for name in self.output_names:  # fresh output buffers: earlier results stay valid
            target = into.get(name) if into else None
            given.append(target)
            if target is None:
                binding.bind_output(name, device)
                if bound_out:
                    bound_out.pop(name, None)
            elif bound_out.get(name) is not target:
                binding.bind_ortvalue_output(name, target._ortvalue)
                bound_out[name] = target
        fresh = [i for i, target in enumerate(given) if target is None]
        last = (feeds, into, [self.output_names[i] for i in fresh], fresh, given)
        self._last = last if into else None  # (only Program's repeats pass the same dicts)
        return last
