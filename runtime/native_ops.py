"""kgraph's onnxruntime operators (runtime/native/ortops.cc, ONNX domain "kgraph"): finding
the library the install built and registering it with a session.

The ops each replace a chain of standard ONNX kernels in the train step (the max-pooling
gradient, the LSTM step's gate arithmetic and its gradient). A graph uses them only where
`available()`: the library was built (setup.py builds it when a C++ compiler is present),
loads into this onnxruntime (>= 1.21), and `KGRAPH_NATIVE_OPS` is not "0". Everything else
(TVM, exported ONNX files, artifacts) gets the standard-ONNX expansion of the same op.
"""
from __future__ import annotations

import ctypes
import functools
import glob
import os
import platform

DOMAIN = "kgraph"


@functools.lru_cache(maxsize=None)
def library_path() -> str | None:
    """The built library next to this module, or None."""
    found = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "_ortops*.so")))
    return found[0] if found else None


@functools.lru_cache(maxsize=None)
def _loads(path: str) -> bool:
    from kgraph.runtime.onnx_exec import ort  # (which sets onnxruntime's environment first)

    try:
        ort.SessionOptions().register_custom_ops_library(path)
    except Exception:  # an older onnxruntime, or a library built for another machine
        return False
    return True


def available() -> bool:
    """Whether graphs for onnxruntime may use the "kgraph" domain's operators."""
    if os.environ.get("KGRAPH_NATIVE_OPS", "1") == "0":
        return False
    path = library_path()
    return path is not None and _loads(path)


def register(session_options) -> None:
    """Make the "kgraph" domain known to sessions made with `session_options`."""
    path = library_path()
    if path is None:
        raise RuntimeError("kgraph's onnxruntime operator library is not built "
                           "(reinstall kgraph with a C++ compiler present)")
    session_options.register_custom_ops_library(path)


@functools.lru_cache(maxsize=None)
def _mxcsr():
    """The library's functions on the calling thread's MXCSR, (set (returns the previous
    value), flush (sets flush-to-zero and denormals-are-zero, returns the previous value)),
    or None (not x86, or the library is not built)."""
    path = library_path()
    if path is None or platform.machine().lower() not in ("x86_64", "amd64") or \
            not _loads(path):
        return None
    lib = ctypes.CDLL(path)
    set_, flush = lib.kgraph_set_mxcsr, lib.kgraph_flush_denormals
    for fn, args in ((set_, [ctypes.c_uint]), (flush, [])):
        fn.restype, fn.argtypes = ctypes.c_uint, args
    return set_, flush


def denormal_flags():
    """(set, flush) of the calling thread's MXCSR (see `_mxcsr`) where kgraph's sessions
    run with denormals flushed to zero, else None. TensorFlow's CPU kernels flush them too:
    arithmetic on denormals is ~100x slower (an MLP's Adam moments of always-zero inputs reach
    them after ~700 steps, and its epochs took twice as long from the fifth on). onnxruntime
    flushes on its pool threads ("session.set_denormal_as_zero"); the thread that calls a run
    flushes for that call only (runtime/onnx_exec.py). KGRAPH_FLUSH_DENORMALS=0: never."""
    if os.environ.get("KGRAPH_FLUSH_DENORMALS", "1") == "0":
        return None
    return _mxcsr()
