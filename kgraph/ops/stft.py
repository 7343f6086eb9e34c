"""`keras.ops.stft` and `keras.ops.istft`: short-time Fourier transforms over `(real, imag)`
pairs of float tensors, as Keras 3 gives them (no complex dtype needed).

Both are compositions of kgraph's DFT matmuls (`kgraph.ops.fft`), so they lower to Gather,
MatMul, Pad and Slice and have gradients. As Keras' JAX backend (scipy's `stft`/`istft` with
`boundary=None`, `padded=False`, rescaled by Keras):

- `stft`: the signal reflect-padded by `fft_length // 2` on both sides when `center`, cut into
  frames of `fft_length` every `sequence_stride`, each multiplied by the window (of
  `sequence_length`, zero-padded to `fft_length` in the middle) and `rfft`-ed;
- `istft`: each frame `irfft`-ed, multiplied by the window and overlap-added, divided by the
  overlap-added squared window where that exceeds 1e-10 (without a window: by the count of
  frames covering each sample, times `fft_length / sequence_stride`), then cut as Keras cuts.

The signal length (stft) and the number of frames (istft) must be known while tracing; the
leading (batch) dims may be unknown."""
from __future__ import annotations

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import movement as mv
from kgraph.ops.api_util import constant, dtype_of, is_symbolic, rank, shape_of, static_dim
from kgraph.ops.fft import _pair, irfft, rfft


def _check_lengths(sequence_length, sequence_stride, fft_length, op):
    if not isinstance(sequence_stride, (int, np.integer)) or sequence_stride <= 0:
        raise ValueError(f"{op}: `sequence_stride` must be a positive integer. "
                         f"Received: sequence_stride={sequence_stride!r}")
    if fft_length < sequence_length:
        raise ValueError(f"{op}: `fft_length` must equal or larger than `sequence_length`. "
                         f"Received: sequence_length={sequence_length}, "
                         f"fft_length={fft_length}")


def _window(window, sequence_length, fft_length, dtype, op):
    """The window, zero-padded to `fft_length` as Keras pads it (the extra zero on the
    right): a numpy array unless a traced tensor was given; or None. Named windows are
    scipy's periodic `get_window` ones."""
    if window is None:
        return None
    if isinstance(window, str):
        if window not in ("hann", "hamming"):
            raise ValueError(f'{op}: if a string is passed to `window`, it must be one of '
                             f'"hann", "hamming". Received: window={window!r}')
        a0 = 0.5 if window == "hann" else 0.54
        window = a0 - (1 - a0) * np.cos(2 * np.pi * np.arange(sequence_length) /
                                        sequence_length)
    if tuple(shape_of(window)) != (sequence_length,):
        raise ValueError(f"{op}: the shape of `window` must be equal to [sequence_length] "
                         f"({sequence_length}). Received: window shape="
                         f"{tuple(shape_of(window))}")
    left = (fft_length - sequence_length) // 2
    pads = [(left, fft_length - sequence_length - left)]
    if is_symbolic(window):
        return mv.pad(ew.cast(window, dtype) if dtype_of(window) != dtype else window, pads)
    return np.pad(np.asarray(window, np.float64), pads).astype(ew._np_dtype(dtype))


def _reflect_indices(n, pad):
    """Indices of numpy's `mode="reflect"` padding (the edge sample not repeated) by `pad` on
    both sides of an axis of length `n`."""
    positions = np.arange(-pad, n + pad)
    if n == 1:
        return np.zeros_like(positions)
    period = 2 * (n - 1)
    folded = positions % period
    return np.where(folded >= n, period - folded, folded)


def stft(x, sequence_length, sequence_stride, fft_length, window="hann", center=True):
    """Short-time Fourier transform along the last axis (`keras.ops.stft`).

    Args:
        x: float32 or float64 tensor `(..., samples)`.
        sequence_length: int, the window length.
        sequence_stride: int, the hop between frames.
        fft_length: int >= `sequence_length`, the size of each frame's FFT.
        window: `"hann"`, `"hamming"`, a tensor of length `sequence_length`, or None.
        center: reflect-pad `fft_length // 2` on both sides so frame t is centred at
            `t * sequence_stride`.

    Returns:
        Tuple `(real, imag)`, each `(..., frames, fft_length // 2 + 1)`.

    Example:
    >>> real, imag = stft(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), 3, 2, 3)
    >>> real.shape
    (3, 2)
    """
    _check_lengths(sequence_length, sequence_stride, fft_length, "stft")
    if dtype_of(x) not in ("float32", "float64"):
        raise TypeError(f"stft: invalid input type. Expected `float32` or `float64`. "
                        f"Received: input type={dtype_of(x)}")
    win = _window(window, sequence_length, fft_length, dtype_of(x), "stft")
    if center:
        n = static_dim(x, -1, "stft")
        x = mv.apply("Gather", x, _reflect_indices(n, fft_length // 2), axis=rank(x) - 1)
    from kgraph.ops.shape_api import extract_sequences

    frames = extract_sequences(x, fft_length, sequence_stride)
    return rfft(frames if win is None else frames * constant(win, frames), fft_length)


def istft(x, sequence_length, sequence_stride, fft_length, length=None, window="hann",
          center=True):
    """Inverse short-time Fourier transform along the last axis (`keras.ops.istft`).

    Args:
        x: tuple `(real, imag)` of float tensors `(..., frames, fft_length // 2 + 1)`.
        sequence_length, sequence_stride, fft_length, window, center: as `stft`.
        length: int, the number of samples to keep (after the centring cut); default: all.

    Returns:
        Float tensor `(..., samples)`.

    Example:
    >>> signal = np.sin(np.arange(32.0))
    >>> back = istft(stft(signal, 8, 4, 8), 8, 4, 8)  # ~ signal
    """
    _check_lengths(sequence_length, sequence_stride, fft_length, "istft")
    real, imag = _pair(x, "istft")
    if rank(real) < 2:
        raise ValueError(f"istft: input should have rank >= 2. Received: input.shape = "
                         f"{tuple(real.shape)}")
    frames = static_dim(real, -2, "istft")
    win = _window(window, sequence_length, fft_length, dtype_of(real), "istft")
    segments = irfft((real, imag), fft_length)
    if win is not None:
        segments = segments * constant(win, segments)
    if win is not None and not isinstance(win, np.ndarray):
        raise ValueError("istft: `window` must be a string, None or an array: the "
                         "normalization by the overlapped squared window is computed while "
                         "tracing. Received a traced tensor")
    window_array = np.ones(fft_length) if win is None else win.astype(np.float64)
    norm = _overlap_add_array(np.broadcast_to(window_array ** 2, (frames, fft_length)),
                              sequence_stride)
    scale = 1.0 / np.where(norm > 1e-10, norm, 1.0)
    if win is None:
        scale = scale * fft_length / sequence_stride
    out = _overlap_add(segments, sequence_stride)
    out = out * constant(scale.astype(ew._np_dtype(dtype_of(out))), out)
    total = norm.shape[0]
    start = fft_length // 2 if center else 0
    if length is not None:
        end = start + int(length)
    else:
        end = total - fft_length // 2 if center else total
    return mv.slice_axis(out, start, min(max(end, start), total), -1)


def _overlap_add_array(segments, hop):
    frames, length = segments.shape
    out = np.zeros((frames - 1) * hop + length)
    for t in range(frames):
        out[t * hop:t * hop + length] += segments[t]
    return out


def _overlap_add(segments, hop):
    """`(..., frames, length)` segments summed into `(..., (frames - 1) * hop + length)`, frame
    t starting at `t * hop`: each frame cut into `ceil(length / hop)` blocks of `hop`, block k
    of every frame shifted k blocks along the frame axis, the shifted blocks summed."""
    from kgraph.ops.symbolic_shape import shape as shape_of_tensor

    frames, length = segments.shape[-2], segments.shape[-1]
    blocks = -(-length // hop)
    segments = mv.pad(segments, [(0, 0)] * (rank(segments) - 1) + [(0, blocks * hop - length)])
    lead = tuple(shape_of_tensor(segments)[:-2])
    split = mv.reshape(segments, lead + (frames, blocks, hop))
    out = None
    for k in range(blocks):
        block = mv.squeeze(mv.slice_axis(split, k, k + 1, -2), -2)
        shifted = mv.pad(block, [(0, 0)] * (rank(block) - 2) + [(k, blocks - 1 - k), (0, 0)])
        out = shifted if out is None else out + shifted
    out = mv.reshape(out, lead + ((frames + blocks - 1) * hop,))
    return mv.slice_axis(out, 0, (frames - 1) * hop + length, -1)


__all__ = ["istft", "stft"]
