"""ONNX model bytes written directly in protobuf's wire format, without the `onnx` package.

Importing `onnx` costs 0.3-1 s on this machine (mostly its `ml_dtypes` extension) and
building its message objects node by node is slow for large graphs, yet onnxruntime only
needs the serialized bytes. This writes the subset kgraph's emitter produces (see
`emit.Emitted`) — a ModelProto with one graph of nodes, attributes of int/float/string and
lists of them and loop bodies (graphs), raw-data initializers and tensor value infos — field
for field as `onnx.helper` + `SerializeToString()` would: the same fields, set the same way, in field-number
order (tests compare the bytes). Field numbers are those of onnx/onnx.proto (proto2: repeated
scalars are not packed).
"""
from __future__ import annotations

import numbers
import struct

import numpy as np

# TensorProto.DataType
DTYPES = {"float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7,
          "bool": 9, "float16": 10, "float64": 11, "uint32": 12, "uint64": 13, "bfloat16": 16}
_INT, _FLOAT, _STRING, _GRAPH, _INTS, _FLOATS, _STRINGS = 2, 1, 3, 5, 7, 6, 8  # AttributeProto.type


class Unsupported(Exception):
    """A value this writer does not encode (the caller falls back to the onnx package)."""


class GraphBytes(bytes):
    """An encoded GraphProto given as an attribute value (a loop body)."""


def _varint(n: int) -> bytes:
    n &= 0xFFFFFFFFFFFFFFFF  # int64: negatives as ten-byte two's complement
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_TAGS: dict = {}


def _tag(field: int, wire: int) -> bytes:
    key = (field << 3) | wire
    tag = _TAGS.get(key)
    if tag is None:
        tag = _TAGS[key] = _varint(key)
    return tag


def _int(field, n) -> bytes:
    return _tag(field, 0) + _varint(n)


def _bytes(field, data) -> bytes:
    return _tag(field, 2) + _varint(len(data)) + data


def _str(field, text) -> bytes:
    return _bytes(field, text.encode("utf-8"))


def _float(field, x) -> bytes:
    return _tag(field, 5) + struct.pack("<f", x)


def attribute(name: str, value) -> bytes:
    """AttributeProto as `onnx.helper.make_attribute(name, value)` makes it."""
    out = _str(1, name)
    if isinstance(value, GraphBytes):
        return out + _bytes(6, value) + _int(20, _GRAPH)
    if isinstance(value, numbers.Integral):
        return out + _int(3, int(value)) + _int(20, _INT)
    if isinstance(value, numbers.Real):
        return out + _float(2, float(value)) + _int(20, _FLOAT)
    if isinstance(value, (str, bytes)):
        data = value.encode("utf-8") if isinstance(value, str) else value
        return out + _bytes(4, data) + _int(20, _STRING)
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        types = {type(v) for v in items}
        if not items:
            raise Unsupported(f"empty list attribute {name!r}")
        if all(issubclass(t, numbers.Integral) for t in types):
            return out + b"".join(_int(8, int(v)) for v in items) + _int(20, _INTS)
        if all(issubclass(t, numbers.Real) for t in types):
            return out + b"".join(_float(7, float(v)) for v in items) + _int(20, _FLOATS)
        if all(issubclass(t, (str, bytes)) for t in types):
            return out + b"".join(_bytes(9, v.encode("utf-8") if isinstance(v, str) else v)
                                  for v in items) + _int(20, _STRINGS)
    raise Unsupported(f"attribute {name!r} of type {type(value).__name__}")


def node(op_type: str, inputs, outputs, attrs: dict) -> bytes:
    """NodeProto as `onnx.helper.make_node(op_type, inputs, outputs, **attrs)` makes it; an
    `op_type` of the form "domain.Op" is Op of that domain (`split_domain`)."""
    domain, op_type = split_domain(op_type)
    out = b"".join(_str(1, i) for i in inputs) + b"".join(_str(2, o) for o in outputs)
    out += _str(4, op_type)
    for key in sorted(attrs):
        value = attrs[key]
        if value is not None:
            out += _bytes(5, attribute(key, value))
    return out + (_str(7, domain) if domain else b"")


def split_domain(op_type: str) -> tuple[str, str]:
    """("kgraph", "MaxPoolGrad") for "kgraph.MaxPoolGrad", ("", op) for a standard op (ONNX op
    names have no dots)."""
    domain, _, op = op_type.rpartition(".")
    return domain, op


def tensor(array: np.ndarray, name: str) -> bytes:
    """TensorProto as `onnx.numpy_helper.from_array(array, name)` makes it (raw data)."""
    dtype = DTYPES.get(array.dtype.name)
    if dtype is None or array.dtype.byteorder == ">":
        raise Unsupported(f"initializer dtype {array.dtype}")
    out = b"".join(_int(1, d) for d in array.shape) + _int(2, dtype)
    if name:
        out += _str(8, name)
    return out + _bytes(9, np.ascontiguousarray(array).tobytes())


def value_info(name: str, dtype: str, dims) -> bytes:
    """ValueInfoProto as `onnx.helper.make_tensor_value_info(name, elem, dims)` makes it
    (dims: ints, strings (symbolic) or None)."""
    shape = b""
    for d in dims:
        if d is None:
            dim = b""
        elif isinstance(d, str):
            dim = _str(2, d)
        else:
            dim = _int(1, int(d))
        shape += _bytes(1, dim)
    tensor_type = _int(1, DTYPES[dtype]) + _bytes(2, shape)
    return _str(1, name) + _bytes(2, _bytes(1, tensor_type))


def graph(nodes, name, initializers, inputs, outputs) -> bytes:
    """GraphProto bytes: `nodes`, `initializers`, `inputs`, `outputs` already encoded."""
    out = b"".join(_bytes(1, n) for n in nodes) + _str(2, name)
    out += b"".join(_bytes(5, t) for t in initializers)
    return out + b"".join(_bytes(11, i) for i in inputs) + \
        b"".join(_bytes(12, o) for o in outputs)


def model(nodes, name, initializers, inputs, outputs, opset, ir_version, producer,
          domains=()) -> bytes:
    """ModelProto bytes: `nodes`, `initializers`, `inputs`, `outputs` already encoded;
    `domains`: the other op domains the nodes use (each imported at version 1)."""
    opset_ids = _bytes(8, _str(1, "") + _int(2, opset))
    opset_ids += b"".join(_bytes(8, _str(1, d) + _int(2, 1)) for d in sorted(domains))
    return _int(1, ir_version) + _str(2, producer) + \
        _bytes(7, graph(nodes, name, initializers, inputs, outputs)) + opset_ids
