"""TVM targets by name: "llvm" (this CPU family, generic), "cuda" / "cuda:sm_XX", "static"."""
from __future__ import annotations

DEFAULT_CUDA_ARCH = "sm_90"
TARGET_NAMES = ("llvm", "cuda", "cuda:sm_XX", "static")


def tvm_target(name: str):
    """The `tvm.target.Target` for a kgraph target name.

    "llvm" and "static" build for a generic x86-64/ARM host (no `-mcpu`, so a library runs on
    any machine of the family); "cuda" is `sm_90` unless spelled "cuda:sm_80" etc., with an
    LLVM host for the VM's glue code.
    """
    from tvm.target import Target

    kind, _, arch = str(name).partition(":")
    if kind in ("llvm", "cpu", "static") and not arch:
        return Target({"kind": "llvm"})
    if kind == "cuda":
        arch = arch or DEFAULT_CUDA_ARCH
        if not (arch.startswith("sm_") and arch[3:].isdigit()):
            raise ValueError(f"A CUDA target names its architecture as sm_XX. Received: "
                             f"target={name!r}")
        return Target({"kind": "cuda", "arch": arch}, host={"kind": "llvm"})
    raise ValueError(f"Unknown TVM target. Received: target={name!r}; expected one of "
                     f"{TARGET_NAMES}")

