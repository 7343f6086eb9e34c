from kgraph.compiler.onnx.emit import IR_VERSION, ONNX_OPSET, to_onnx, to_onnx_bytes

__all__ = ["IR_VERSION", "ONNX_OPSET", "to_onnx", "to_onnx_bytes"]
