"""kgraph's onnxruntime operators (runtime/native/ortops.cc, ONNX domain "kgraph"): finding
the library the install built and registering it with a session.

The ops each replace a chain of standard ONNX kernels in the train step (the max-pooling
gradient, the LSTM step's gate arithmetic and its gradient). A graph uses them only where
`available()`: the library was built (setup.py builds it when a C++ compiler is present),
loads into this onnxruntime (>= 1.21), and `KGRAPH_NATIVE_OPS` is not "0". Everything else
(TVM, exported ONNX files, artifacts) gets the standard-ONNX expansion of the same op.
"""
from __future__ import annotations

import functools
import glob
import os

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
