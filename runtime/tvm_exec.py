"""TVM executor: a Relax VM over a compiled executable or an exported library.

Feeds and results are TVM tensors on the executor's device, so parameters, optimizer slots and
metric state stay resident between steps (`runtime/program.py` stores each updated variable's
output buffer back on the variable). Only TVM's runtime side is imported here (no
`tvm.relax.frontend`, no `tvm.compile`): a deployment box with TVM's runtime library alone
(`TVM_USE_RUNTIME_LIB=1`) can load and run an exported library.
"""
from __future__ import annotations

import ctypes
import os

import numpy as np


class TvmDeviceError(RuntimeError):
    """The requested TVM device does not exist on this machine."""


def _tvm():
    import tvm
    import tvm.runtime.vm  # noqa: F401  (not imported by `import tvm` with the runtime alone)

    return tvm


def tvm_device(device="cpu"):
    """The TVM device for "cpu", "cuda" or "cuda:N"."""
    tvm = _tvm()
    kind, _, index = str(device).partition(":")
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"Unknown TVM device. Received: device={device!r}; expected 'cpu', "
                         f"'cuda' or 'cuda:N'")
    if kind == "cuda":
        _load_cuda_runtime(tvm)
    dev = tvm.runtime.device(kind, int(index or 0))
    if not dev.exist:
        raise TvmDeviceError(f"No TVM device {device!r} on this machine (is the driver and a "
                             f"CUDA-enabled TVM runtime installed?)")
    return dev


def _load_cuda_runtime(tvm):
    """With TVM's runtime library alone the CUDA device API lives in a separate library that
    must be loaded globally before a CUDA module is (see DESIGN.md)."""
    path = os.path.join(os.path.dirname(tvm.__file__), "lib", "libtvm_runtime_cuda.so")
    if os.environ.get("TVM_USE_RUNTIME_LIB") == "1" and os.path.exists(path):
        ctypes.CDLL(path, ctypes.RTLD_GLOBAL)


class TvmUploader:
    """`upload` of every TvmCompiled on one device. Equal uploaders mean interchangeable
    buffers, which is how a Variable knows its cached buffer can be fed without a copy."""

    def __init__(self, device):
        self.device = device

    def __eq__(self, other):
        return isinstance(other, TvmUploader) and other.device == self.device

    def __hash__(self):
        return hash(("tvm", str(self.device)))

    def __call__(self, array):
        tvm = _tvm()
        if isinstance(array, tvm.runtime.Tensor):
            if array.device == self.device:
                return array
            return array.copyto(self.device)
        if hasattr(array, "numpy") and not isinstance(array, np.ndarray):
            array = array.numpy()  # another executor's buffer (an OrtValue)
        array = np.asarray(array)
        if not array.flags.c_contiguous:
            array = array.copy(order="C")
        return tvm.runtime.tensor(array, self.device)


class TvmCompiled:
    """A compiled graph on a Relax VM (the executor protocol of runtime/executor.py).

    Args:
        executable: a `tvm.runtime.Executable` (from `tvm.compile`) or a loaded library module.
        input_names: graph input names, in the order of the VM function's parameters.
        output_names: graph output names, in the order the VM function returns them.
        device: "cpu", "cuda" or "cuda:N".
        input_dtypes: optional numpy dtype names per input; numpy feeds are cast to them.
    """

    def __init__(self, executable, input_names, output_names, device="cpu", input_dtypes=None):
        tvm = _tvm()
        self.device_name = str(device)
        self.device = tvm_device(device)
        self.executable = executable
        self._main = self._new_vm_function()
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.input_dtypes = dict(input_dtypes or {})
        self.upload = TvmUploader(self.device)

    def _new_vm_function(self):
        return _tvm().runtime.vm.VirtualMachine(self.executable, self.device)["main"]

    def binder(self):
        """A runner with its own VM over the same library: a Relax VM keeps per-call state,
        so each thread (runtime/program.py keeps one runner per thread) gets its own."""
        return TvmRunner(self)

    def run(self, feeds: dict) -> list:
        return self.run_with(self._main, feeds)

    def run_with(self, main, feeds: dict) -> list:
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise KeyError(f"Missing TVM graph inputs. Received feeds for {sorted(feeds)}; "
                           f"missing {missing}")
        args = [self._argument(name, feeds[name]) for name in self.input_names]
        return self._outputs(main(*args))

    def run_numpy(self, feeds: dict) -> list:
        return [self.to_numpy(out) for out in self.run(feeds)]

    def _argument(self, name, value):
        dtype = self.input_dtypes.get(name)
        if isinstance(value, np.ndarray | np.generic | int | float | list) and dtype:
            value = np.asarray(value, dtype=dtype)
        return self.upload(value)

    def _outputs(self, result) -> list:
        tvm = _tvm()
        single = isinstance(result, tvm.runtime.Tensor) or _is_shape(result)
        results = [result] if single else list(result)
        if len(results) != len(self.output_names):
            raise RuntimeError(f"The TVM function returned {len(results)} outputs; the graph "
                               f"declares {len(self.output_names)}: {self.output_names}")
        return [self.upload(np.asarray(list(r), dtype=np.int64)) if _is_shape(r) else r
                for r in results]

    @staticmethod
    def to_numpy(buffer):
        return buffer.numpy() if hasattr(buffer, "numpy") else np.asarray(buffer)


class TvmRunner:
    """`run` on a VM of its own (see TvmCompiled.binder)."""

    def __init__(self, compiled: TvmCompiled):
        self.compiled = compiled
        self.output_names = compiled.output_names
        self._main = compiled._new_vm_function()

    def run(self, feeds: dict) -> list:
        return self.compiled.run_with(self._main, feeds)


def _is_shape(value) -> bool:
    return type(value).__name__ in ("Shape", "ShapeTuple")


def load_library(path, input_names, output_names, device="cpu", input_dtypes=None):
    """Load a library written by `kgraph.compiler.tvm.export_library` into a TvmCompiled.

    Args:
        path: the shared library file (`.so`).
        input_names, output_names: the graph's names, as the artifact's manifest records them.
        device: "cpu", "cuda" or "cuda:N"; a CUDA library compiles its kernels when loaded
            (register `tvm_callback_cuda_compile` first where NVRTC is not available).
        input_dtypes: optional numpy dtype names per input.

    Returns:
        A TvmCompiled running the library's `main`.

    Example:
        >>> compiled = load_library("model.so", ["x_0"], ["output_0"])  # doctest: +SKIP
        >>> compiled.run_numpy({"x_0": x})[0]  # doctest: +SKIP
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No TVM library at {path!r}")
    tvm = _tvm()
    if str(device).startswith("cuda"):
        _load_cuda_runtime(tvm)
    module = tvm.runtime.load_module(os.fspath(path))
    return TvmCompiled(module, input_names, output_names, device, input_dtypes)
