"""Elementwise primitives: unary math, binary arithmetic and comparison, where, cast.

Binary ops broadcast like numpy; their gradient rules return gradients of the broadcast shape
and the autodiff core reduces them to each input's shape (see compiler/autodiff.py).
"""
from __future__ import annotations

import math

import numpy as np

from kgraph.ir.graph import Value, current_graph
from kgraph.ir.types import TensorType, broadcast_shapes, dtype_name, is_float
from kgraph.ops.registry import apply, defop, same_as_input



def _erf(x):
    # scipy is imported on first use: it costs a quarter second at `import kgraph`
    from scipy.special import erf

    return erf(x)


def _typed(fn):
    """Wrap a numpy function so that its result keeps the input dtype."""
    return lambda x, **a: np.asarray(fn(x)).astype(x.dtype, copy=False)


# -- unary -------------------------------------------------------------------------------------
defop("Neg", same_as_input, np.negative, grad=lambda g, y, x: (-g,))
defop("Exp", same_as_input, _typed(np.exp), grad=lambda g, y, x: (g * y,))
defop("Log", same_as_input, _typed(np.log), grad=lambda g, y, x: (g / x,))
defop("Sqrt", same_as_input, _typed(np.sqrt), grad=lambda g, y, x: (g / (y * 2.0),))
defop("Tanh", same_as_input, _typed(np.tanh), grad=lambda g, y, x: (g * (1.0 - y * y),))
defop("Sigmoid", same_as_input, _typed(lambda x: 0.5 * (1 + np.tanh(0.5 * x))),
      grad=lambda g, y, x: (g * y * (1.0 - y),))
defop("Abs", same_as_input, np.abs, grad=lambda g, y, x: (g * sign(x),))
defop("Sin", same_as_input, _typed(np.sin), grad=lambda g, y, x: (g * cos(x),))
defop("Cos", same_as_input, _typed(np.cos), grad=lambda g, y, x: (-g * sin(x),))
defop("Sign", same_as_input, np.sign, differentiable=False)
defop("Floor", same_as_input, np.floor, differentiable=False)
defop("Round", same_as_input, np.round, differentiable=False)  # half to even, as ONNX


# A ReLU's gradient, g * (y > 0) from its output y: a multiply, as TF's ReluGrad. Relu's rule
# traces it as Greater, Cast and Mul, which the mask passes move through pooling gradients; the
# pass compiler/passes/fuse_relu_gradients.py then fuses them into the one op ReluGrad below.
# kgraph's ReluGrad operator runs it where the graph is native (runtime/native/ortops.cc: one
# pass instead of three), this expansion everywhere else.
def _relu_grad_expansion(g, y):
    return g * cast(y > 0, g.dtype)


defop("Relu", same_as_input, lambda x: np.maximum(x, 0).astype(x.dtype),
      grad=lambda g, y, x: (_relu_grad_expansion(g, y),))


def _relu_grad_infer(types):
    g, y = types
    if g != y or not is_float(g.dtype):
        raise ValueError(f"ReluGrad: the gradient {g!r} must be a float tensor like the ReLU "
                         f"output {y!r}")
    return [g]


def _relu_grad_grad(dz, z, g, y):
    from kgraph.compiler.autodiff import expansion_vjp

    return expansion_vjp(_relu_grad_expansion, (g, y), [dz])


def _relu_grad_onnx(ctx, node, ins, outs):
    if ctx.native and node.inputs[0].dtype == "float32":
        return ctx.node("kgraph.ReluGrad", ins, outs)
    return ctx.expand(_relu_grad_expansion, node, ins, outs)


defop("ReluGrad", _relu_grad_infer, lambda g, y: (g * (y > 0)).astype(g.dtype),
      grad=_relu_grad_grad, onnx=_relu_grad_onnx)


defop("Erf", same_as_input, _typed(_erf),
      grad=lambda g, y, x: (g * exp(-(x * x)) * (2.0 / math.sqrt(math.pi)),))
defop("Reciprocal", same_as_input, _typed(np.reciprocal), grad=lambda g, y, x: (-g * y * y,))
defop("Not", same_as_input, np.logical_not, differentiable=False)
defop("IsNaN", lambda t, **a: [TensorType(t[0].shape, "bool")], np.isnan, differentiable=False)


def _route(g, condition):
    """The gradient `g` split by a boolean mask, as multiplies by the cast mask (the way TF's
    ReluGrad and dropout compute it): onnxruntime's Where is unvectorised and 6-10x slower
    than Cast+Mul. Differs from a select only where `g` is inf/NaN."""
    keep = cast(condition, g.dtype)
    return g * keep, g * (1.0 - keep)


# -- binary ------------------------------------------------------------------------------------
def _binary_infer(name, out_dtype=None):
    def infer(types, **attrs):
        a, b = types
        if a.dtype != b.dtype:
            raise TypeError(f"{name}: operands have different dtypes. Received: "
                            f"{a.dtype} and {b.dtype}; cast one of them first")
        return [TensorType(broadcast_shapes(a.shape, b.shape, name), out_dtype or a.dtype)]
    return infer


def _numpy_binary(fn):
    return lambda a, b: np.asarray(fn(a, b)).astype(np.result_type(a, b), copy=False)


def _defbinary(name, fn, grad=None, onnx=None, out_dtype=None):
    ref = (lambda a, b: np.asarray(fn(a, b))) if out_dtype else _numpy_binary(fn)
    defop(name, _binary_infer(name, out_dtype), ref, grad=grad, onnx=onnx,
          differentiable=grad is not None)


def _divide_ref(a, b):
    if a.dtype.kind in "iu":  # integers divide toward zero, as ONNX and TVM do
        q = np.floor_divide(a, b)
        return q + ((q < 0) & (q * b != a))
    return a / b


def _mod_onnx(ctx, node, ins, outs):
    """ONNX Mod on floats needs fmod=1 (C's sign rule); shift to numpy's sign-of-divisor rule."""
    if not is_float(node.outputs[0].dtype):
        return ctx.node("Mod", ins, outs)
    a, b = ins
    r = ctx.node("Mod", [a, b], fmod=1)
    zero = ctx.const(np.zeros((), dtype=node.outputs[0].dtype))
    signs_differ = ctx.node("Xor", [ctx.node("Less", [r, zero]), ctx.node("Less", [b, zero])])
    fix = ctx.node("And", [ctx.node("Not", [ctx.node("Equal", [r, zero])]), signs_differ])
    ctx.node("Where", [fix, ctx.node("Add", [r, b]), r], outs)


_defbinary("Add", np.add, lambda g, y, a, b: (g, g))
_defbinary("Sub", np.subtract, lambda g, y, a, b: (g, -g))
_defbinary("Mul", np.multiply, lambda g, y, a, b: (g * b, g * a))
_defbinary("Div", _divide_ref, lambda g, y, a, b: (g / b, -g * y / b))
_defbinary("Pow", np.power,
           lambda g, y, a, b: (g * b * pow(a, b - 1.0), g * y * log(where(a > 0, a, 1.0))))
_defbinary("Max", np.maximum, lambda g, y, a, b: _route(g, a >= b))
_defbinary("Min", np.minimum, lambda g, y, a, b: _route(g, a <= b))
# a mod b = a - b floor(a / b) (numpy's sign-of-divisor rule): d/da = 1, d/db = -floor(a / b)
_defbinary("Mod", np.mod, lambda g, y, a, b: (g, -g * floor(a / b)), onnx=_mod_onnx)
_defbinary("BitwiseXor", np.bitwise_xor)
_defbinary("BitwiseAnd", np.bitwise_and)
_defbinary("ShiftRight", np.right_shift,
           onnx=lambda ctx, node, ins, outs: ctx.node("BitShift", ins, outs, direction="RIGHT"))
def _equal_onnx(ctx, node, ins, outs):
    """Equal; bool operands compared as int32: TVM's LLVM code generator emits a float
    comparison (`fcmp`) for an Equal of two bool tensors and fails to build (TVM 0.27)."""
    if node.inputs[0].dtype == "bool":
        ins = [ctx.node("Cast", [i], to="int32") for i in ins]
    ctx.node("Equal", ins, outs)


_defbinary("Equal", np.equal, onnx=_equal_onnx, out_dtype="bool")
for _name, _fn in [("Greater", np.greater), ("GreaterOrEqual", np.greater_equal),
                   ("Less", np.less), ("LessOrEqual", np.less_equal),
                   ("And", np.logical_and), ("Or", np.logical_or)]:
    _defbinary(_name, _fn, out_dtype="bool")


def _where_infer(types, **attrs):
    c, a, b = types
    if c.dtype != "bool":
        raise TypeError(f"Where: the condition must be bool. Received: {c.dtype}")
    if a.dtype != b.dtype:
        raise TypeError(f"Where: branches have different dtypes: {a.dtype} and {b.dtype}")
    return [TensorType(broadcast_shapes(broadcast_shapes(c.shape, a.shape), b.shape), a.dtype)]


defop("Where", _where_infer, lambda c, a, b: np.where(c, a, b).astype(np.result_type(a, b)),
      grad=lambda g, y, c, a, b: (None,) + _route(g, c))


def _cast_grad(g, y, x, to):
    return (cast(g, x.dtype) if is_float(x.dtype) else None,)


defop("Cast", lambda t, to: [TensorType(t[0].shape, to)],
      lambda x, to: x.astype(_np_dtype(to)), grad=_cast_grad, attrs=("to",))


def _np_dtype(name):
    if name == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(name)


# -- public functions --------------------------------------------------------------------------
def _dtype_of(x):
    if isinstance(x, Value):  # the common case, before the import below
        return x.dtype
    from kgraph.variables import Variable  # (kgraph.variables imports kgraph.ops)

    if isinstance(x, Variable):
        return x.dtype
    if isinstance(x, (np.ndarray, np.generic)):  # numpy data has a dtype, even 0-d
        return x.dtype.name
    return None  # python scalars are weakly typed


def _weak(x, dtype, other):
    array = np.asarray(x, dtype=_np_dtype(dtype))
    graph = current_graph() or getattr(other, "graph", None)
    # a constant node keeps the dtype; `to_value` would turn a float64 array into floatx
    return graph.constant(array) if graph is not None else array


def _pair(a, b):
    """Give python scalars the dtype of the tensor they meet (Keras' weak typing), and bring
    operands of different dtypes to the one they compute in (`promoted_dtype`)."""
    da, db = _dtype_of(a), _dtype_of(b)
    if da is None and db is not None:
        a = _weak(a, db, b)
    elif db is None and da is not None:
        b = _weak(b, da, a)
    elif da != db and da is not None:
        # a numpy float scalar takes the float tensor's dtype (a constant written in a layer
        # keeps a float16 layer in float16)
        if is_float(da) and is_float(db) and _numpy_scalar(a):
            return cast(a, db), b
        if is_float(da) and is_float(db) and _numpy_scalar(b):
            return a, cast(b, da)
        wide = promoted_dtype(da, db)
        if wide is not None and is_float(da) and is_float(db):
            # both, even the one already wide: a bare float64 array would enter the graph
            # as floatx (`to_value`), a Cast keeps it float64
            a, b = cast(a, wide), cast(b, wide)
        elif wide is not None:
            a = a if da == wide else cast(a, wide)
            b = b if db == wide else cast(b, wide)
    return a, b


def promoted_dtype(da, db):
    """The dtype tensors of dtypes `da` and `db` compute in (Keras' result_type, where kgraph
    promotes): integer or bool data meeting float data computes in the float type (a bool
    Input feeding Dense multiplies as float32); two floats in the wider one, float16 with
    bfloat16 in float32 (mixed precision meeting float32 data); integer and bool types in the
    integer type holding both (int32 with int64: int64; uint8 with int8: int16), as numpy."""
    if da == db:
        return da
    if is_float(da) != is_float(db):
        return da if is_float(da) else db
    if not is_float(da):
        wide = np.promote_types(da, db).name
        return None if is_float(wide) else wide  # (uint64 with int64 is float64 in numpy)
    if {da, db} == {"float16", "bfloat16"}:
        return "float32"
    order = ("float16", "bfloat16", "float32", "float64")
    return max(da, db, key=order.index)


def _numpy_scalar(x):
    return isinstance(x, (np.ndarray, np.generic)) and np.ndim(x) == 0


def _binary(name, keras_name):
    def fn(x1, x2):  # Keras' parameter names: `ops.add(x1=a, x2=b)`
        return apply(name, *_pair(x1, x2))
    fn.__name__ = fn.__qualname__ = keras_name
    return fn


add, subtract = _binary("Add", "add"), _binary("Sub", "subtract")
multiply, power = _binary("Mul", "multiply"), _binary("Pow", "power")
maximum, minimum, mod = _binary("Max", "maximum"), _binary("Min", "minimum"), _binary("Mod", "mod")
equal, greater = _binary("Equal", "equal"), _binary("Greater", "greater")
greater_equal = _binary("GreaterOrEqual", "greater_equal")
less, less_equal = _binary("Less", "less"), _binary("LessOrEqual", "less_equal")
logical_and, logical_or = _binary("And", "logical_and"), _binary("Or", "logical_or")


def divide(x1, x2):
    return apply("Div", *_pair(x1, x2))


def not_equal(x1, x2):
    return apply("Not", equal(x1, x2))


def pow(x1, x2):  # noqa: A001 - the Keras name
    return power(x1, x2)


def negative(x):
    return apply("Neg", x)


def exp(x):
    return apply("Exp", x)


def log(x):
    return apply("Log", x)


def sqrt(x):
    return apply("Sqrt", x)


def tanh(x):
    return apply("Tanh", x)


def sigmoid(x):
    return apply("Sigmoid", x)


def abs(x):  # noqa: A001
    return apply("Abs", x)


def sin(x):
    return apply("Sin", x)


def cos(x):
    return apply("Cos", x)


def sign(x):
    return apply("Sign", x)


def floor(x):
    return apply("Floor", x)


def round(x):  # noqa: A001
    return apply("Round", x)


def relu(x):
    return apply("Relu", x)


def erf(x):
    return apply("Erf", x)


def reciprocal(x):
    return apply("Reciprocal", x)


def logical_not(x):
    return apply("Not", x)


def isnan(x):
    return apply("IsNaN", x)


def square(x):
    return multiply(x, x)


def where(condition, x1=None, x2=None):
    """`x1` where `condition` holds, else `x2`; with neither, `nonzero(condition)` (Keras)."""
    if x1 is None and x2 is None:
        from kgraph.ops.shape_api import nonzero

        return nonzero(condition)
    if x1 is None or x2 is None:
        raise ValueError(f"where needs both x1 and x2, or neither. Received: "
                         f"x1={x1!r}, x2={x2!r}")
    x1, x2 = _pair(x1, x2)
    return apply("Where", condition, x1, x2)


def cast(x, dtype):
    dtype = dtype_name(dtype)
    from kgraph.ir.graph import Value
    from kgraph.variables import Variable

    if isinstance(x, (Value, Variable)) and x.dtype == dtype:
        return x
    return apply("Cast", x, to=dtype)
