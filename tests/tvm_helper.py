"""The one way tests build and run graphs on TVM: kgraph's TVM executor (`compile_graph(graph,
"tvm")`, or `compile_onnx` for an ONNX model), skipped cleanly where TVM or its Relax ONNX
frontend is not installed. Compiled libraries land in the disk cache, so a second test session
reuses them."""
import numpy as np
import pytest


def require_tvm():
    """The tvm module, or a clean skip where TVM or its Relax ONNX frontend is absent."""
    tvm = pytest.importorskip("tvm")
    try:
        import tvm.relax.frontend.onnx  # noqa: F401
    except ImportError as error:
        pytest.skip(f"TVM's Relax ONNX frontend cannot be imported: {error}")
    return tvm


def tvm_compiled(graph_or_model, optimized=False, static_shapes=None):
    """A TvmCompiled for a kgraph Graph (through compile_graph) or an ONNX ModelProto."""
    require_tvm()
    import onnx

    if isinstance(graph_or_model, onnx.ModelProto):
        from kgraph.compiler.tvm import compile_onnx

        return compile_onnx(graph_or_model, static_shapes=static_shapes)
    from kgraph.compiler.build import compile_graph

    return compile_graph(graph_or_model, "tvm", optimized=optimized)


def run_tvm(graph_or_model, feeds, optimized=False) -> list:
    """The graph's outputs on TVM as numpy arrays, in output order."""
    compiled = tvm_compiled(graph_or_model, optimized)
    return [np.asarray(compiled.to_numpy(o)) for o in compiled.run(feeds)]


def assert_outputs_close(got, want, rtol=1e-4, atol=1e-5, names=None):
    """Element-wise comparison of two output lists of the same length."""
    assert len(got) == len(want), f"{len(got)} outputs on TVM, {len(want)} expected"
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol,
                                   err_msg=names[i] if names else f"output {i}")
