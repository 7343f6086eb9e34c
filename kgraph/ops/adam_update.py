"""`AdamUpdate`: Keras 3's Adam step of one variable as one op.

`AdamUpdate(var, g, m, v, alpha) -> (var', m', v')` with `m' = m + (g - m) decay_m`,
`v' = v + (g² - v) decay_v`, `var' = var - (m' alpha) / (sqrt(v') + epsilon)`: the float32
operations, in the order, of the separate ops it replaces (`expansion`), so its results are
equal bit for bit. `decay_m = 1 - beta_1` and `decay_v = 1 - beta_2` are attributes, `alpha`
(the bias-corrected learning rate) a scalar input.

Traced only where kgraph's onnxruntime operators run the step (runtime/native_ops.py): one
pass over the four tensors instead of twelve kernels per variable. Not differentiable (an
optimizer update is not differentiated).
"""
from __future__ import annotations

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops.registry import apply, defop, native_or_expanded

ATTRS = ("decay_m", "decay_v", "epsilon")


def expansion(var, g, m, v, alpha, decay_m, decay_v, epsilon):
    """`AdamUpdate` in standard ops (the same formula Adam traces without it)."""
    m_new = m + (g - m) * decay_m
    v_new = v + (ew.square(g) - v) * decay_v
    return var - (m_new * alpha) / (ew.sqrt(v_new) + epsilon), m_new, v_new


def _ref(var, g, m, v, alpha, decay_m, decay_v, epsilon):
    f = var.dtype.type
    m_new = m + (g - m) * f(decay_m)
    v_new = v + (g * g - v) * f(decay_v)
    return var - (m_new * alpha) / (np.sqrt(v_new) + f(epsilon)), m_new, v_new


def _infer(types, decay_m, decay_v, epsilon):
    var, g, m, v, alpha = types
    if not (tuple(var.shape) == tuple(g.shape) == tuple(m.shape) == tuple(v.shape)
            and alpha.shape == () and var.dtype == g.dtype == m.dtype == v.dtype == alpha.dtype):
        raise ValueError(f"AdamUpdate takes a variable, its gradient and two slots of one shape "
                         f"and dtype, and a scalar step size. Received: {types!r}")
    return [var, m, v]


defop("AdamUpdate", _infer, _ref, num_outputs=3, differentiable=False, attrs=ATTRS,
      onnx=native_or_expanded("AdamUpdate", expansion, ATTRS))


def adam_update(var, g, m, v, alpha, beta_1, beta_2, epsilon):
    """(var', m', v') of one Adam step (see the module docstring)."""
    return apply("AdamUpdate", var, g, m, v, alpha, decay_m=1.0 - float(beta_1),
                 decay_v=1.0 - float(beta_2), epsilon=float(epsilon))
