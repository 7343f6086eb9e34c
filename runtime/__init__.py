"""kgraph.runtime: executors that run compiled graphs. Imports neither onnx nor TVM's compiler,
so a deployment box needs only numpy plus onnxruntime (or TVM's runtime library)."""
