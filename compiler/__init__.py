"""kgraph.compiler: lowering, autodiff, passes and code generation (ONNX, TVM)."""
