"""`keras.ops.fft`, `fft2`, `ifft2`, `rfft`, `irfft`: discrete Fourier transforms over
`(real, imag)` pairs of float tensors, as Keras 3 gives them (no complex dtype needed).

Each transform along one axis is a product with the constant DFT matrices
`cos(2 pi k t / n)` and `sin(2 pi k t / n)`, so it lowers to MatMul and has gradients.
That is O(n^2) per axis: fine for the patch/sequence lengths models use; the axes
transformed must have a size known while tracing."""
from __future__ import annotations

import numpy as np

from kgraph.ops.api_util import static_dim, to_float
from kgraph.ops.image import _along


def _matrices(n_in, n_out, inverse):
    """(n_in, n_out) cos and signed sin matrices: `y[k] = sum_t x[t] exp(-+2 pi i k t / n)`."""
    n = max(n_in, n_out)
    angle = 2 * np.pi * np.outer(np.arange(n_in), np.arange(n_out)) / n
    sign = 1.0 if inverse else -1.0
    return np.cos(angle), sign * np.sin(angle)


def _contract(x, axis, matrix):
    """`x`'s `axis` (size matrix.shape[0]) contracted with `matrix`, the axis kept in place."""
    return _along(x, axis, matrix.T)


def _pair(x, op):
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise ValueError(f"{op}: expects a tuple (real, imag) of two tensors of the same shape. "
                         f"Received: x={x!r}")
    real, imag = to_float(x[0]), to_float(x[1])
    if tuple(real.shape) != tuple(imag.shape):
        raise ValueError(f"{op}: real and imag differ in shape: {tuple(real.shape)} and "
                         f"{tuple(imag.shape)}")
    return real, imag


def _dft(real, imag, axis, inverse, op):
    n = static_dim(real, axis, op)
    cos, sin = _matrices(n, n, inverse)
    out_real = _contract(real, axis, cos) - _contract(imag, axis, sin)
    out_imag = _contract(imag, axis, cos) + _contract(real, axis, sin)
    if inverse:
        out_real, out_imag = out_real / n, out_imag / n
    return out_real, out_imag


def fft(x):
    """Fast Fourier transform along the last axis (`keras.ops.fft`).

    Args:
        x: tuple `(real, imag)` of float tensors of one shape.

    Returns:
        Tuple `(real, imag)` of the transform.

    Example:
    >>> real, imag = fft((np.array([1.0, 2.0, 3.0]), np.zeros(3)))  # real ~ [6, -1.5, -1.5]
    """
    real, imag = _pair(x, "fft")
    return _dft(real, imag, -1, False, "fft")


def fft2(x):
    """2-D Fourier transform along the last two axes (`keras.ops.fft2`), on `(real, imag)`."""
    real, imag = _pair(x, "fft2")
    for axis in (-2, -1):
        real, imag = _dft(real, imag, axis, False, "fft2")
    return real, imag


def ifft2(x):
    """Inverse 2-D Fourier transform along the last two axes (`keras.ops.ifft2`)."""
    real, imag = _pair(x, "ifft2")
    for axis in (-2, -1):
        real, imag = _dft(real, imag, axis, True, "ifft2")
    return real, imag


def rfft(x, fft_length=None):
    """Fourier transform of a real signal along the last axis (`keras.ops.rfft`): the
    `fft_length // 2 + 1` non-negative frequencies, the signal cut or zero-padded to
    `fft_length` (default: its length)."""
    x = to_float(x)
    n_in = static_dim(x, -1, "rfft")
    n = n_in if fft_length is None else int(fft_length)
    cos, sin = _matrices(n, n // 2 + 1, False)
    cos, sin = _fit_rows(cos, n_in), _fit_rows(sin, n_in)
    return _contract(x, -1, cos), _contract(x, -1, sin)


def irfft(x, fft_length=None):
    """Inverse of `rfft` (`keras.ops.irfft`): `(real, imag)` of the non-negative frequencies
    to a real signal of `fft_length` (default `2 * (n - 1)`), the other half taken as their
    complex conjugates."""
    real, imag = _pair(x, "irfft")
    n_in = static_dim(real, -1, "irfft")
    n = 2 * (n_in - 1) if fft_length is None else int(fft_length)
    bins = n // 2 + 1
    # y[t] = 1/n sum_k w_k (re_k cos - im_k sin), w = 2 but for the DC and Nyquist bins
    weight = np.full(bins, 2.0)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    angle = 2 * np.pi * np.outer(np.arange(bins), np.arange(n)) / n
    cos = _fit_rows(weight[:, None] * np.cos(angle) / n, n_in)
    sin = _fit_rows(weight[:, None] * np.sin(angle) / n, n_in)
    return _contract(real, -1, cos) - _contract(imag, -1, sin)


def _fit_rows(matrix, rows):
    """Drop the rows past `rows` or add zero rows up to it: the input axis's own length."""
    if matrix.shape[0] >= rows:
        return matrix[:rows]
    return np.concatenate([matrix, np.zeros((rows - matrix.shape[0], matrix.shape[1]))])


__all__ = ["fft", "fft2", "ifft2", "irfft", "rfft"]
