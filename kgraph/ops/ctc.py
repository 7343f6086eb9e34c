"""`keras.ops.ctc_loss` and `keras.ops.ctc_decode` (also under `keras.ops.nn`), as Keras 3
defines them (`keras/src/ops/nn.py`, the numpy backend's `nn.py`).

The loss is the CTC forward recursion in log space (Keras follows optax's formulation: one
"phi" state per label prefix, blank last, and one "emit" state per label). The time axis of
the logits is static while tracing, so the recursion is unrolled over it with primitives; its
gradient comes from kgraph's autodiff. Log-space sums shift by a `stop_gradient` maximum, so a
tie between two terms still splits the gradient by their weights.

Greedy decoding is a composition too (argmax, masks, a stable argsort that moves blanks to the
end). Beam search on arrays follows Keras' numpy backend step by step (kgraph/ops/ctc_beam.py);
on traced tensors it is the same search with fixed shapes (kgraph/ops/ctc_beam_graph.py)."""
from __future__ import annotations

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import movement as mv
from kgraph.ops import reduce as rd
from kgraph.ops.api_util import any_symbolic, dtype_of, rank, shape_of, static_dim

LOG_EPSILON = -1e5  # Keras' "log zero": finite, so masked sums stay finite


def _float_dtype(x):
    """Keras' `result_type(x.dtype, "float32")`: float64 stays, the rest computes in float32."""
    return "float64" if dtype_of(x) == "float64" else "float32"


def _check_batch(name1, shape1, name2, shape2):
    if shape1[0] is not None and shape2[0] is not None and shape1[0] != shape2[0]:
        raise ValueError(f"Arguments `{name1}` and `{name2}` must have the same first "
                         f"dimension. Received shapes: `{tuple(shape1)}` and `{tuple(shape2)}`.")


def _check_mask_index(mask_index, classes, op):
    if not isinstance(mask_index, (int, np.integer)) or not 0 <= mask_index < classes:
        raise ValueError(f"{op}: mask_index must be a class index in [0, {classes}). "
                         f"Received: mask_index={mask_index!r}")
    return int(mask_index)


def _log_add(a, b):
    """`log(exp(a) + exp(b))`, shifted by a maximum that carries no gradient."""
    from kgraph.ops.nn import stop_gradient

    high = stop_gradient(ew.maximum(a, b))
    return high + ew.log(ew.exp(a - high) + ew.exp(b - high))


def _column(x, t):
    """`x[:, t]` of a rank-3 tensor, as rank 2."""
    return mv.squeeze(mv.slice_axis(x, t, t + 1, 1), 1)


END = 2**62  # a slice bound past any axis


def _add_to_phi(phi, added):
    """`phi[:, 1:]` log-added with `added`; `phi[:, 0]` (the empty prefix) unchanged."""
    return mv.concatenate([mv.slice_axis(phi, 0, 1, 1),
                           _log_add(mv.slice_axis(phi, 1, END, 1), added)], 1)


def _valid_steps(lengths, size):
    """`(batch, size)` bool: position `i` is below the row's length."""
    return _below(np.arange(size, dtype=np.int32)[None, :], lengths)


def _below(positions, lengths):
    return ew.less(positions, mv.expand_dims(ew.cast(lengths, "int32"), -1))


def _label_positions(target):
    """`[[0, 1, ..., labels]]` (int32, `labels + 1` entries): an array, or a tensor of the
    graph when the label width is unknown while tracing (`Input(shape=(None,))` labels)."""
    from kgraph.ops.numpy_api import arange
    from kgraph.ops.symbolic_shape import dim

    return mv.expand_dims(arange(dim(target, 1) + 1), 0)


def ctc_loss(target, output, target_length, output_length, mask_index=0):
    """CTC (Connectionist Temporal Classification) loss (`keras.ops.ctc_loss`).

    Args:
        target: `(batch_size, max_label_length)` integer labels; entries past a row's
            `target_length` are ignored.
        output: `(batch_size, max_length, num_classes)` logits (not softmax-normalized);
            `max_length` must be known while tracing.
        target_length: `(batch_size,)` label lengths.
        output_length: `(batch_size,)` lengths of the logit sequences; later steps are ignored.
        mask_index: the class index of the blank. Defaults to `0`.

    Returns:
        `(batch_size,)` negative log likelihoods, float32 (float64 for float64 logits).

    Example:
    >>> logits = np.zeros((1, 4, 3), "float32")
    >>> ctc_loss(np.array([[1, 2]]), logits, np.array([2]), np.array([4])).shape
    (1,)
    """
    from kgraph.ops.nn import log_softmax, one_hot

    if rank(output) != 3 or rank(target) != 2:
        raise ValueError(f"ctc_loss: `output` must be (batch, time, classes) and `target` "
                         f"(batch, labels). Received shapes: output={shape_of(output)}, "
                         f"target={shape_of(target)}")
    _check_batch("target", shape_of(target), "output", shape_of(output))
    _check_batch("target_length", shape_of(target_length), "target", shape_of(target))
    _check_batch("output_length", shape_of(output_length), "output", shape_of(output))
    steps = static_dim(output, 1, "ctc_loss")
    classes = static_dim(output, 2, "ctc_loss")
    mask_index = _check_mask_index(mask_index, classes, "ctc_loss")
    dtype = _float_dtype(output)
    target = ew.cast(target, "int32")
    logprobs = log_softmax(ew.cast(output, dtype), axis=-1)
    positions = _label_positions(target)                               # (1, N + 1)
    label_count = rd.sum(ew.cast(_below(mv.slice_axis(positions, 0, -1, 1), target_length),
                                 "int32"), 1)
    padded = ew.logical_not(_valid_steps(output_length, steps))

    # repeat[b, n]: label n equals label n + 1 (a blank must separate them); 0 for the last
    same = ew.cast(ew.equal(mv.slice_axis(target, 0, -1, 1), mv.slice_axis(target, 1, END, 1)),
                   dtype)
    repeat = mv.pad(same, ((0, 0), (0, 1)))
    blank_lp = mv.slice_axis(logprobs, mask_index, mask_index + 1, 2)
    hot = one_hot(target, classes, dtype=dtype)                        # (B, N, K)
    emit_lp = _matmul_last(logprobs, hot)                              # (B, T, N)

    batch_zeros = ew.cast(mv.slice_axis(padded, 0, 1, 1), dtype) * 0.0     # (B, 1)
    phi = batch_zeros + ew.where(ew.equal(positions, 0), 0.0, LOG_EPSILON)  # (B, N + 1)
    phi = ew.cast(phi, dtype)
    emit = mv.slice_axis(phi, 1, END, 1)                               # all "log zero"
    block_repeat, block_distinct = repeat * LOG_EPSILON, (1.0 - repeat) * LOG_EPSILON
    for t in range(steps):
        step_emit, step_blank = _column(emit_lp, t), _column(blank_lp, t)
        skip = mv.slice_axis(padded, t, t + 1, 1)                      # (B, 1)
        phi_in = _add_to_phi(phi, emit + block_repeat)     # label -> next prefix, no repeat
        next_emit = _log_add(mv.slice_axis(phi_in, 0, -1, 1) + step_emit, emit + step_emit)
        next_phi = _add_to_phi(phi_in + step_blank, emit + step_blank + block_distinct)
        phi, emit = ew.where(skip, phi, next_phi), ew.where(skip, emit, next_emit)
    final = _add_to_phi(phi, emit)
    picked = ew.cast(ew.equal(positions, mv.expand_dims(label_count, -1)), dtype)
    return ew.negative(rd.sum(final * picked, 1))


def _matmul_last(x, hot):
    """`einsum("btk,bnk->btn", x, hot)`."""
    from kgraph.ops.linalg import matmul

    return matmul(x, mv.transpose(hot, (0, 2, 1)))


def ctc_decode(inputs, sequence_lengths, strategy="greedy", beam_width=100, top_paths=1,
               merge_repeated=True, mask_index=0):
    """Decodes the output of a CTC model (`keras.ops.ctc_decode`).

    Args:
        inputs: `(batch_size, max_length, num_classes)` logits (not softmax-normalized).
        sequence_lengths: `(batch_size,)` lengths; later steps are ignored.
        strategy: `"greedy"` or `"beam_search"`.
        beam_width: beams kept by beam search. Defaults to 100.
        top_paths: paths returned by beam search (at most `beam_width` on traced tensors).
            Defaults to 1.
        merge_repeated: greedy only: merge repeated labels. Defaults to True.
        mask_index: the blank's class index (`None`: the last class). Defaults to `0`.

    Returns:
        `(decoded, scores)`: `decoded` int32 `(top_paths, batch_size, max_length)` (`top_paths`
        is 1 for greedy), each path's labels first and `-1` after; `scores` `(batch_size,
        top_paths)`: greedy, minus the sum of each step's largest logit; beam search, each
        path's log probability.

    Example:
    >>> logits = np.log(np.array([[[.1, .9], [.9, .1], [.1, .9]]], "float32"))
    >>> ctc_decode(logits, np.array([3]))[0]
    array([[[ 1,  1, -1]]], dtype=int32)
    """
    if strategy not in ("greedy", "beam_search"):
        raise ValueError(f"Invalid strategy {strategy}. Supported values are 'greedy' and "
                         f"'beam_search'. Received: strategy={strategy!r}")
    if rank(inputs) != 3:
        raise ValueError(f"ctc_decode: `inputs` must be (batch, time, classes). Received: "
                         f"inputs.shape={shape_of(inputs)}")
    classes = static_dim(inputs, 2, "ctc_decode")
    mask_index = classes - 1 if mask_index is None else _check_mask_index(mask_index, classes,
                                                                          "ctc_decode")
    inputs = ew.cast(inputs, _float_dtype(inputs))
    if strategy == "greedy":
        return _greedy_decode(inputs, sequence_lengths, merge_repeated, mask_index)
    if any_symbolic(inputs, sequence_lengths):
        from kgraph.ops.ctc_beam_graph import beam_search_decode_traced

        static_dim(inputs, 1, "ctc_decode")
        return beam_search_decode_traced(inputs, sequence_lengths, int(beam_width),
                                         int(top_paths), mask_index)
    from kgraph.ops.ctc_beam import beam_search_decode

    return beam_search_decode(np.asarray(inputs), np.asarray(sequence_lengths),
                              int(beam_width), int(top_paths), mask_index)


def _greedy_decode(inputs, sequence_lengths, merge_repeated, mask_index):
    from kgraph.ops.sort import argsort, take_along_axis

    steps = static_dim(inputs, 1, "ctc_decode")
    past_end = ew.logical_not(_valid_steps(sequence_lengths, steps))
    best = ew.where(past_end, mask_index, ew.cast(rd.argmax(inputs, -1), "int32"))
    scores = ew.where(past_end, ew.cast(0.0, dtype_of(inputs)), rd.max(inputs, -1))
    if merge_repeated and steps > 1:
        again = ew.cast(ew.equal(mv.slice_axis(best, 1, steps, 1),
                                 mv.slice_axis(best, 0, steps - 1, 1)), "int32")
        again = ew.greater(mv.pad(again, ((0, 0), (1, 0))), 0)  # never the first
        best = ew.where(again, mask_index, best)
    blank = ew.equal(best, mask_index)
    best = ew.where(blank, -1, best)
    # labels first in their order, blanks last: a stable sort of (position, or `steps`)
    order = ew.where(blank, steps, np.arange(steps, dtype=np.int32)[None, :])
    decoded = ew.cast(take_along_axis(best, argsort(order, -1), -1), "int32")
    return mv.expand_dims(decoded, 0), ew.negative(rd.sum(scores, 1, keepdims=True))
