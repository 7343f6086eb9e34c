"""CTC prefix beam search as a composition of primitives, for `ctc_decode(strategy=
"beam_search")` on traced tensors (the eager form, kgraph/ops/ctc_beam.py, follows Keras' numpy
backend step by step).

The same search with fixed shapes: `beam_width` beams, each a `(steps,)` row of labels padded
with -1, its length, last label and two log scores (paths ending in a label, "emit", and in a
blank). A step (unrolled over the static time axis) scores every beam staying as it is (a
blank, or a repeat of its last label after an emit) and every beam extended by each label; an
extension equal to another beam merges into it, duplicate beams merge into their first copy,
and the `beam_width` best totals survive. Where Keras merges equal rows with `np.unique`, this
compares beams pairwise (`beam_width**2 * steps` per step). The kept set and the results are
Keras' whenever scores differ; equal scores may be ordered differently. A score of no path is
`-inf`, as Keras; inside, `FLOOR` stands for it so that one-hot gathers stay finite."""
from __future__ import annotations

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import movement as mv
from kgraph.ops import reduce as rd
from kgraph.ops.ctc import _log_add

FLOOR = -1e30  # "log 0" that a multiply by 0 keeps finite
PAD = -1


def _take(x, indices, axis):
    from kgraph.ops.sort import take_along_axis

    return take_along_axis(x, indices, axis)


def _log_sum(scores, weights, top):
    """`log(sum_i weights[..., i, j] * exp(scores[..., i]))` for 0/1 `weights`, shifted by
    `top` (the batch row's best score, `(B, 1)`)."""
    from kgraph.ops.linalg import matmul

    mass = mv.squeeze(matmul(mv.expand_dims(ew.exp(scores - top), 1), weights), 1)  # (B, W')
    # no mass (or less than float underflow, where Keras' log also gives -inf): FLOOR
    return ew.where(ew.greater(mass, 0.0), ew.log(ew.maximum(mass, 1e-37)) + top, FLOOR)


def _as_float(mask, dtype):
    return ew.cast(mask, dtype)


def _beam_relations(paths, lengths, steps):
    """`same[b, i, j]`: beams i and j hold the same labels; `first[b, j]`: no earlier beam does;
    `grows[b, i, j]`: beam j is beam i followed by one label."""
    eq = ew.equal(mv.expand_dims(paths, 2), mv.expand_dims(paths, 1))         # (B, W, W, T)
    same = ew.equal(rd.min(ew.cast(eq, "int32"), 3), 1)
    width = paths.shape[1]
    earlier = np.tril(np.ones((width, width), bool), -1)                        # i < j
    first = ew.logical_not(ew.greater(rd.max(ew.cast(ew.logical_and(same, earlier), "int32"),
                                             1), 0))
    at_end = ew.equal(np.arange(steps, dtype=np.int32)[None, None, None, :],
                      mv.expand_dims(mv.expand_dims(lengths, 2), 3))            # t == len_i
    prefix = ew.equal(rd.min(ew.cast(ew.logical_or(eq, at_end), "int32"), 3), 1)
    longer = ew.equal(mv.expand_dims(lengths, 1), mv.expand_dims(lengths, 2) + 1)
    return same, first, ew.logical_and(prefix, longer)


def _merge_copies(same, first, emit, ends_blank, top):
    """Duplicate beams' scores summed into their first copy; the other copies score FLOOR."""
    into_first = _as_float(ew.logical_and(same, mv.expand_dims(first, 1)), emit.dtype)
    return _log_sum(emit, into_first, top), _log_sum(ends_blank, into_first, top)


def _step(state, logprobs, blank, steps):
    """One step of the search: `state` = (paths, lengths, last, emit, blank_scores)."""
    paths, lengths, last, emit, ends_blank = state
    width, classes = paths.shape[1], logprobs.shape[-1]
    dtype = emit.dtype
    same, first, grows = _beam_relations(paths, lengths, steps)
    top = rd.max(_log_add(emit, ends_blank), 1, keepdims=True)
    emit, ends_blank = _merge_copies(same, first, emit, ends_blank, top)
    total = _log_add(emit, ends_blank)
    lp = mv.expand_dims(logprobs, 1)                                            # (B, 1, K)
    safe_last = ew.maximum(last, 0)
    last_lp = mv.squeeze(_take(lp, mv.expand_dims(safe_last, -1), 2), -1)     # (B, W)
    stay_emit = ew.where(ew.greater(lengths, 0), emit + last_lp, FLOOR)
    stay_blank = total + mv.squeeze(mv.slice_axis(lp, blank, blank + 1, 2), -1)
    classes_row = np.arange(classes, dtype=np.int32)[None, None, :]
    repeat = ew.equal(classes_row, mv.expand_dims(last, -1))                  # (B, W, K)
    ext = ew.where(repeat, mv.expand_dims(ends_blank, -1), mv.expand_dims(total, -1)) + lp
    ext = ew.where(ew.equal(classes_row, blank), FLOOR, ext)
    # an extension equal to a (first) beam merges into it
    target = ew.logical_and(grows, mv.expand_dims(first, 1))                  # (B, W, W)
    ext_at_target = _take(ext, mv.expand_dims(safe_last, 1), 2)  # [b, i, j]: ext[i, last_j]
    mass = rd.sum(_as_float(target, dtype) * ew.exp(ext_at_target - mv.expand_dims(top, -1)),
                  1)
    stay_emit = ew.maximum(ew.log(ew.exp(stay_emit - top) + mass) + top, FLOOR)
    taken = ew.logical_and(mv.expand_dims(target, -1), ew.equal(
        classes_row[:, :, None, :], mv.expand_dims(mv.expand_dims(last, 1), -1)))  # (B,W,W,K)
    taken = ew.greater(rd.max(ew.cast(taken, "int32"), 2), 0)                 # (B, W, K)
    ext = ew.where(taken, FLOOR, ext)
    return _select(paths, lengths, last, stay_emit, stay_blank, ext, width, steps)


def _select(paths, lengths, last, stay_emit, stay_blank, ext, width, steps):
    """The `width` best of the stays and extensions, as the next state."""
    from kgraph.ops.sort import _topk_indices

    classes = ext.shape[-1]
    ext_flat = mv.reshape(ext, (-1, width * classes))
    totals = mv.concatenate([_log_add(stay_emit, stay_blank), ext_flat], 1)
    pick = ew.cast(_topk_indices(totals, width, True), "int32")               # (B, W)
    is_ext = ew.greater_equal(pick, width)
    source = ew.where(is_ext, (pick - width) // classes, pick)
    label = ew.where(is_ext, (pick - width) % classes, PAD)
    from_beam = _as_float(ew.equal(mv.expand_dims(source, -1),
                                   np.arange(width, dtype=np.int32)[None, None, :]), "float32")

    def by_source(values):  # (B, W[, ...]) int rows of each new beam's source
        return ew.cast(ew.round(_contract(from_beam, ew.cast(values, "float32"))), "int32")

    new_paths, new_lengths = by_source(paths), by_source(lengths)
    write = ew.logical_and(mv.expand_dims(is_ext, -1), ew.equal(
        np.arange(steps, dtype=np.int32)[None, None, :], mv.expand_dims(new_lengths, -1)))
    new_paths = ew.where(write, mv.expand_dims(label, -1), new_paths)
    new_last = ew.where(is_ext, label, by_source(last))
    new_lengths = new_lengths + ew.cast(is_ext, "int32")
    emit_all = mv.concatenate([stay_emit, ext_flat], 1)
    blank_all = mv.concatenate([stay_blank, ew.cast(ext_flat * 0.0, ext.dtype) + FLOOR], 1)
    return (new_paths, new_lengths, new_last, _take(emit_all, pick, 1), _take(blank_all, pick, 1))


def _contract(weights, values):
    """`weights (B, W, S) @ values (B, S[, T])`."""
    from kgraph.ops.linalg import matmul

    if len(values.shape) == 2:
        return mv.squeeze(matmul(weights, mv.expand_dims(values, -1)), -1)
    return matmul(weights, values)


def _initial_state(first_step, beam_width, blank, steps):
    """The `min(classes, beam_width)` best classes of the first step, as Keras starts."""
    from kgraph.ops.sort import _topk_indices

    classes = first_step.shape[-1]
    count = min(classes, beam_width)
    picked = ew.cast(_topk_indices(first_step, count, True), "int32")          # (B, n)
    scores = _take(first_step, picked, 1)
    is_blank = ew.equal(picked, blank)
    label = ew.where(is_blank, PAD, picked)
    paths = ew.where(ew.equal(np.arange(steps, dtype=np.int32)[None, None, :], 0),
                     mv.expand_dims(label, -1), PAD)
    state = (paths, ew.where(is_blank, 0, 1), label, ew.where(is_blank, FLOOR, scores),
             ew.where(is_blank, scores, FLOOR))
    extra = beam_width - count
    if extra:
        fills = (PAD, 0, PAD, FLOOR, FLOOR)
        state = tuple(mv.pad(x, ((0, 0), (0, extra)) + ((0, 0),) * (len(x.shape) - 2), value)
                      for x, value in zip(state, fills))
    return state


def beam_search_decode_traced(inputs, sequence_lengths, beam_width, top_paths, mask_index):
    """`ctc_decode(strategy="beam_search")` on traced `(batch, steps, classes)` logits:
    `(paths (top_paths, batch, steps) int32, scores (batch, top_paths))`."""
    from kgraph.ops.nn import log_softmax
    from kgraph.ops.sort import _topk_indices

    if not 1 <= top_paths <= beam_width:
        raise ValueError(f"ctc_decode(strategy='beam_search') on a traced tensor returns at "
                         f"most beam_width paths. Received: beam_width={beam_width}, "
                         f"top_paths={top_paths}")
    steps = inputs.shape[1]
    logprobs = log_softmax(inputs, axis=-1)
    lengths = ew.cast(sequence_lengths, "int32")
    state = _initial_state(mv.squeeze(mv.slice_axis(logprobs, 0, 1, 1), 1), beam_width,
                           mask_index, steps)
    for t in range(1, steps):
        new = _step(state, mv.squeeze(mv.slice_axis(logprobs, t, t + 1, 1), 1), mask_index,
                    steps)
        done = ew.less_equal(lengths, t)                                        # (B,)
        state = tuple(ew.where(mv.reshape(done, (-1,) + (1,) * (len(x.shape) - 1)), x, y)
                      for x, y in zip(state, new))
    paths, lengths_, _, emit, ends_blank = state
    same, first, _ = _beam_relations(paths, lengths_, steps)
    top = rd.max(_log_add(emit, ends_blank), 1, keepdims=True)
    emit, ends_blank = _merge_copies(same, first, emit, ends_blank, top)
    total = _log_add(emit, ends_blank)
    best = ew.cast(_topk_indices(total, top_paths, True), "int32")            # (B, P)
    rows = _as_float(ew.equal(mv.expand_dims(best, -1),
                              np.arange(beam_width, dtype=np.int32)[None, None, :]), "float32")
    chosen = ew.cast(ew.round(_contract(rows, ew.cast(paths, "float32"))), "int32")
    scores = _take(total, best, 1)
    scores = ew.where(ew.less(scores, FLOOR / 2), -np.inf, scores)
    return mv.transpose(chosen, (1, 0, 2)), scores
