"""Op-table rows of the ops kgraph's onnxruntime operators run (runtime/native/ortops.cc):
LSTMGates, LSTMGatesGrad (kgraph/ops/lstm_gates.py), Im2ColRows and Conv2DKernelGrad
(kgraph/ops/conv_kernel_grad.py), AdamUpdate (kgraph/ops/adam_update.py), Softmax and
SoftmaxGrad (kgraph/ops/softmax_ops.py), LayerNorm and LayerNormGrad (kgraph/ops/layer_norm.py),
ReluGrad (kgraph/ops/elementwise.py). Each op's outputs get a row of their own (a row has
one output). In this process the onnxruntime column runs the native kernels where the library
is built; TVM runs the standard expansions.

The expectations are written independently of the ops' references: the LSTM step gate by gate
with named slices, the im2col and the kernel gradient by `sliding_window_view`, Adam as Keras
writes it."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kgraph import ops
from kgraph.ops.adam_update import adam_update
from kgraph.ops.lstm_gates import lstm_gates
from op_table import Row, away, normal, spot, uniform

N, U = 3, 4


def _sig(x):
    return 1 / (1 + np.exp(-x))


def np_lstm(a, b, c):
    """(h, c', and the gates) of Keras' LSTM step from its products a, b and carry c."""
    z = a + b
    i, f = _sig(z[:, :U]), _sig(z[:, U:2 * U])
    cand, o = np.tanh(z[:, 2 * U:3 * U]), _sig(z[:, 3 * U:])
    c_new = f * c + i * cand
    return o * np.tanh(c_new), c_new, (i, f, cand, o)


def np_lstm_saved(a, b, c):
    """The activations LSTMGates saves for its gradient: i, f, c~, o, tanh(c')."""
    _, c_new, (i, f, cand, o) = np_lstm(a, b, c)
    return np.concatenate([i, f, cand, o, np.tanh(c_new)], axis=1)


def np_lstm_grad(dh, dc, saved, c):
    """(dz, dc_prev): the chain rule through `np_lstm`, written out from its activations."""
    i, f, cand, o, tc = (saved[:, k * U:(k + 1) * U] for k in range(5))
    dc_total = dc + dh * o * (1 - tc ** 2)
    dz = np.concatenate([dc_total * cand * i * (1 - i), dc_total * c * f * (1 - f),
                         dc_total * i * (1 - cand ** 2), dh * tc * o * (1 - o)], axis=1)
    return dz, dc_total * f


def np_im2col_rows(x, window, strides, pads):
    """Rows (offset, channel) by columns (image, site), from one strided sliding-window view."""
    padded = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads])
    views = sliding_window_view(padded, window, (2, 3))[:, :, ::strides[0], ::strides[1]]
    # views: (n, c, oh, ow, kh, kw) -> (kh, kw, c, n, oh, ow)
    return views.transpose(4, 5, 1, 0, 2, 3).reshape(window[0] * window[1] * x.shape[1], -1)


def np_conv_kernel_grad(x, g, window, strides, pads):
    """d/dk sum(g * Conv(x, k)): each kernel entry (o, c, i, j) meets x's channel c at window
    offset (i, j) of every output site, weighted by g's channel o there."""
    padded = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads])
    views = sliding_window_view(padded, window, (2, 3))[:, :, ::strides[0], ::strides[1]]
    return np.einsum("nopq,ncpqij->ocij", g, views)


def np_adam(var, g, m, v, alpha, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    m_new = m + (g - m) * (1 - beta_1)
    v_new = v + (g * g - v) * (1 - beta_2)
    return var - m_new * alpha / (np.sqrt(v_new) + epsilon), m_new, v_new


_GATES = (normal(N, 4 * U, scale=1.5), normal(N, 4 * U, scale=1.5), normal(N, U))
# the saved activations: sigmoids and tanhs in (0, 1) and (-1, 1)
_GRADS = (normal(N, U), normal(N, U), uniform(0.05, 0.95, N, 5 * U), normal(N, U))
_IM2COL = dict(window=(2, 3), strides=(2, 1), dilations=(1, 1), pads=((1, 0), (0, 1)),
               sizes=(3, 3))
_ADAM = (normal(5, 3), normal(5, 3), normal(5, 3), uniform(0.1, 2.0, 5, 3), uniform(1e-3, 1e-2))


def _adam(k):
    return lambda *args: adam_update(*args, beta_1=0.9, beta_2=0.999, epsilon=1e-7)[k]


ROWS = [
    Row("LSTMGates_h", lambda a, b, c: lstm_gates(a, b, c)[0], _GATES,
        lambda a, b, c: np_lstm(a, b, c)[0], op="LSTMGates"),
    Row("LSTMGates_c", lambda a, b, c: lstm_gates(a, b, c)[1], _GATES,
        lambda a, b, c: np_lstm(a, b, c)[1]),
    Row("LSTMGates_saved", lambda a, b, c: ops.apply("LSTMGates", a, b, c)[2], _GATES,
        np_lstm_saved),
    Row("LSTMGatesGrad_dz", lambda *args: ops.apply("LSTMGatesGrad", *args)[0], _GRADS,
        lambda *args: np_lstm_grad(*args)[0], op="LSTMGatesGrad"),
    Row("LSTMGatesGrad_dc", lambda *args: ops.apply("LSTMGatesGrad", *args)[1], _GRADS,
        lambda *args: np_lstm_grad(*args)[1], wrt=(0, 1, 2)),  # dc_prev = dct f: not of c
    Row("Im2ColRows", lambda x: ops.apply("Im2ColRows", x, **_IM2COL), (normal(2, 3, 5, 4),),
        lambda x: np_im2col_rows(x, (2, 3), (2, 1), ((1, 0), (0, 1))), op="Im2ColRows"),
    Row("Conv2DKernelGrad", lambda x, g: ops.apply("Conv2DKernelGrad", x, g, **_IM2COL),
        (normal(2, 3, 5, 4), normal(2, 4, 3, 3)),
        lambda x, g: np_conv_kernel_grad(x, g, (2, 3), (2, 1), ((1, 0), (0, 1))),
        op="Conv2DKernelGrad"),
    Row("AdamUpdate_var", _adam(0), _ADAM, lambda *args: np_adam(*args)[0], op="AdamUpdate",
        grad="none"),
    Row("AdamUpdate_m", _adam(1), _ADAM, lambda *args: np_adam(*args)[1], grad="none"),
    Row("AdamUpdate_v", _adam(2), _ADAM, lambda *args: np_adam(*args)[2], grad="none"),
]


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_softmax_grad(g, y, axis):
    """The softmax's vector-Jacobian product: sum_j g_j dy_j/dx_i with dy_j/dx_i =
    y_j (δij - y_i), from the Jacobian written out."""
    out = np.empty_like(y)
    for index in np.ndindex(*np.delete(y.shape, axis)):
        at = list(index)
        at.insert(axis, slice(None))
        yv, gv = y[tuple(at)], g[tuple(at)]
        out[tuple(at)] = (np.diag(yv) - np.outer(yv, yv)) @ gv
    return out


ROWS += [
    Row("Softmax_op", lambda x: ops.apply("Softmax", x, axis=1), (normal(3, 5, scale=2.0),),
        lambda x: np_softmax(x, 1), op="Softmax"),
    Row("Softmax_op_axis0", lambda x: ops.apply("Softmax", x, axis=0), (normal(4, 3, scale=2.0),),
        lambda x: np_softmax(x, 0)),  # not the last axis: the expansion, also natively
    Row("SoftmaxGrad_op", lambda g, y: ops.apply("SoftmaxGrad", g, y, axis=1),
        (normal(3, 5), uniform(0.05, 0.5, 3, 5)), lambda g, y: np_softmax_grad(g, y, 1),
        op="SoftmaxGrad"),
    Row("SoftmaxGrad_op_axis0", lambda g, y: ops.apply("SoftmaxGrad", g, y, axis=0),
        (normal(4, 3), uniform(0.05, 0.5, 4, 3)), lambda g, y: np_softmax_grad(g, y, 0)),
]

def np_layer_norm(x, gamma, beta, eps=1e-3):
    mean = x.mean(-1, keepdims=True)
    return gamma * (x - mean) / np.sqrt(x.var(-1, keepdims=True) + eps) + beta


def np_layer_norm_grad(dy, x, gamma, eps=1e-3):
    """(dx, dgamma, dbeta): each row's dx as the projection (I - 1/w - xhat xhat'/w) of
    gamma dy, over the row's sqrt(var + eps)."""
    w = x.shape[-1]
    sigma = np.sqrt(x.var(-1, keepdims=True) + eps)
    xhat = (x - x.mean(-1, keepdims=True)) / sigma
    rows_x, rows_g = xhat.reshape(-1, w), (gamma * dy).reshape(-1, w)
    dx = np.stack([(np.eye(w) - 1.0 / w - np.outer(h, h) / w) @ d
                   for h, d in zip(rows_x, rows_g)]).reshape(x.shape) / sigma
    rows = tuple(range(x.ndim - 1))
    return dx, (dy * xhat).sum(rows), dy.sum(rows)


def _offset(*shape, center=5.0):  # a mean far from 0: the variance must be two-pass
    return lambda rng, f: (center + rng.normal(size=shape)).astype(f)


def _layer_norm(x, gamma, beta):
    return ops.apply("LayerNorm", x, gamma, beta, epsilon=1e-3)


def _layer_norm_grad(k):
    return lambda dy, x, gamma: ops.apply("LayerNormGrad", dy, x, gamma, epsilon=1e-3)[k]


ROWS += [
    Row("LayerNorm_op", _layer_norm, (_offset(3, 5), normal(5), normal(5)), np_layer_norm,
        op="LayerNorm"),
    Row("LayerNorm_op_rank3", _layer_norm, (normal(2, 3, 4, scale=3.0), normal(4), normal(4)),
        np_layer_norm),
    Row("LayerNorm_op_wide", _layer_norm, (normal(2, 37), normal(37), normal(37)),
        np_layer_norm),  # a width past the kernel's 8-lane sums
] + [
    Row(f"LayerNormGrad_op_{name}", _layer_norm_grad(k),
        (normal(2, 3, 5), _offset(2, 3, 5), normal(5)),
        lambda dy, x, gamma, k=k: np_layer_norm_grad(dy, x, gamma)[k],
        op="LayerNormGrad" if k == 0 else None, wrt=wrt)
    for k, name, wrt in ((0, "dx", (0, 1, 2)), (1, "dgamma", (0, 1)), (2, "dbeta", (0,)))
]

ROWS += [
    Row("ReluGrad_op", lambda g, y: ops.apply("ReluGrad", g, y), (normal(3, 5), away(3, 5)),
        lambda g, y: g * (y > 0), op="ReluGrad", exact=True, wrt=(0,),  # 0 a.e. in y
        spots=(spot(([[np.nan, 2.0, 3.0, -1.0]], [[1.0, 0.0, np.nan, 5.0]]),
                    [[np.nan, 0.0, 0.0, -1.0]]),)),  # a multiply: NaN in g stays, NaN y masks
]
