"""CTC prefix beam search on numpy arrays, with the results (and tie-breaking) of Keras 3's
numpy backend: beams are fixed-length rows of labels padded with -1; each step extends every
beam by every class, merges equal rows (`np.unique`, so rows come in sorted order) by summing
their probabilities separately for paths that end in a label ("emit") and in a blank, and keeps
the `beam_width` best. Classes are visited in reverse order (Keras flips them to match
TensorFlow's ordering of equal scores), and flipped back at the end."""
from __future__ import annotations

import numpy as np

PAD = -1


def _log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _merge(groups, scores):
    """Log of the summed probabilities of each group of rows (`-inf` for an empty group)."""
    top = np.max(scores)
    total = np.zeros_like(scores)
    np.add.at(total, groups, np.exp(scores - top))
    with np.errstate(divide="ignore"):
        return np.log(total) + top


def _unique_rows(paths, rows):
    """Distinct rows (sorted), padded with empty rows to `rows`, and each input row's group."""
    distinct, groups = np.unique(paths, return_inverse=True, axis=0)
    groups = groups.reshape(-1)
    if len(distinct) < rows:
        distinct = np.concatenate(
            [distinct, np.full((rows - len(distinct), paths.shape[1]), PAD, paths.dtype)])
    return distinct[:rows], groups


def _extend(paths, scores, ends_in_blank, step, blank):
    """Every beam followed by every class: a blank or a repeat of the beam's last label (when
    the beam ends in that label) leaves the row as it is."""
    classes = step.shape[0]
    paths = np.repeat(paths, classes, axis=0)
    scores = np.repeat(scores, classes) + np.tile(step, len(paths) // classes)
    was_blank = np.repeat(ends_in_blank, classes)
    rows = np.arange(len(paths))
    free = np.argmax(paths == PAD, axis=1)                 # the first unused position
    last = np.where(free == 0, PAD, paths[rows, free - 1])
    label = np.tile(np.where(np.arange(classes) == blank, PAD, np.arange(classes)),
                    len(paths) // classes)
    now_blank = label == PAD
    label = np.where(~was_blank & (last == label), PAD, label)
    paths[rows, free] = label
    return paths, scores, now_blank


def _prune(paths, scores, ends_in_blank, beam_width, rows):
    paths, groups = _unique_rows(paths, rows)
    emit = _merge(groups, np.where(ends_in_blank, -np.inf, scores))
    blank = _merge(groups, np.where(ends_in_blank, scores, -np.inf))
    keep = np.argsort(np.logaddexp(emit, blank), kind="stable")[-beam_width:]
    flags = np.concatenate([np.zeros(beam_width, bool), np.ones(beam_width, bool)])
    return np.tile(paths[keep], (2, 1)), np.concatenate([emit[keep], blank[keep]]), flags


def _decode_one(logprobs, past_end, beam_width, top_paths, blank):
    steps, classes = logprobs.shape
    rows = 2 * beam_width * classes
    first = np.argsort(logprobs[0])[-min(classes, beam_width):]
    paths = np.full((2 * beam_width, steps), PAD, np.int32)
    paths[:len(first), 0] = np.where(first == blank, PAD, first)
    scores = np.full(2 * beam_width, -np.inf, logprobs.dtype)
    scores[:len(first)] = logprobs[0][first]
    ends_in_blank = paths[:, 0] == PAD
    for t in range(1, steps):
        if past_end[t]:
            continue
        paths, scores, ends_in_blank = _extend(paths, scores, ends_in_blank, logprobs[t], blank)
        paths, scores, ends_in_blank = _prune(paths, scores, ends_in_blank, beam_width, rows)
    paths, groups = _unique_rows(paths, rows)
    scores = _merge(groups, scores)
    best = np.argsort(scores)[-top_paths:][::-1]
    return paths[best], scores[best]


def beam_search_decode(inputs, sequence_lengths, beam_width, top_paths, mask_index):
    """`ctc_decode(strategy="beam_search")` on arrays: `(paths (top_paths, batch, steps) int32,
    scores (batch, top_paths))`."""
    if beam_width < 1 or top_paths < 1:
        raise ValueError(f"ctc_decode: beam_width and top_paths must be positive. Received: "
                         f"beam_width={beam_width}, top_paths={top_paths}")
    batch, steps, classes = inputs.shape
    logprobs = _log_softmax(inputs)[:, :, ::-1]            # classes reversed, as Keras
    blank = classes - 1 - mask_index
    past_end = np.arange(steps)[None, :] >= np.asarray(sequence_lengths)[:, None]
    results = [_decode_one(logprobs[b], past_end[b], beam_width, top_paths, blank)
               for b in range(batch)]
    paths = np.stack([p for p, _ in results])
    paths = np.where(paths == PAD, PAD, classes - 1 - paths).astype(np.int32)
    return np.transpose(paths, (1, 0, 2)), np.stack([s for _, s in results])
