from kgraph.compiler.onnx.emit import IR_VERSION, ONNX_OPSET, to_onnx

__all__ = ["IR_VERSION", "ONNX_OPSET", "to_onnx"]
