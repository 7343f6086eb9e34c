"""tf.keras 2's word2vec helpers `keras.preprocessing.sequence.skipgrams` and
`make_sampling_table` (Keras 3 keeps them only under `keras._legacy`), for code written
against them (the keras.io node2vec example)."""
from __future__ import annotations

import random

import numpy as np


def make_sampling_table(size, sampling_factor=1e-5):
    """Probabilities of keeping the word of each frequency rank, word2vec's
    `min(1, sqrt(f / sampling_factor) / (f / sampling_factor))` with Zipf-law frequencies
    `f(rank) ~ 1 / (rank (log rank + gamma) + 1/2 - 1/(12 rank))` (rank 0 counts as 1)."""
    if int(size) < 1:
        raise ValueError(f"make_sampling_table: size must be a positive int. Received: "
                         f"size={size!r}")
    rank = np.arange(int(size))
    rank[0] = 1
    scaled = sampling_factor * (rank * (np.log(rank) + 0.577) + 0.5 - 1.0 / (12.0 * rank))
    return np.minimum(1.0, scaled / np.sqrt(scaled))


def skipgrams(sequence, vocabulary_size, window_size=4, negative_samples=1.0, shuffle=True,
              categorical=False, sampling_table=None, seed=None):
    """Skip-gram pairs of a sequence of word indices, as tf.keras 2 makes them.

    Every non-zero word `w` (kept with probability `sampling_table[w]` when a table is given)
    pairs with each non-zero word within `window_size` positions of it, label 1 (`[0, 1]`
    when `categorical`). Then `int(positives * negative_samples)` negative pairs, label 0
    (`[1, 0]`): the pairs' first words in an order shuffled by Python's `random`, cycled, each
    with a word drawn uniformly from `[1, vocabulary_size)`. With `shuffle`, pairs and labels
    are permuted alike from `seed` (drawn from `random` when None). Index 0 is not a word.

    Returns:
        `(couples, labels)`: lists of `[word, context]` pairs and their labels.
    """
    if int(window_size) < 0:
        raise ValueError(f"skipgrams: window_size must be >= 0. Received: "
                         f"window_size={window_size!r}")
    if negative_samples < 0:
        raise ValueError(f"skipgrams: negative_samples must be >= 0. Received: "
                         f"negative_samples={negative_samples!r}")
    positive, negative = ([0, 1], [1, 0]) if categorical else (1, 0)
    couples, labels = [], []
    for i, word in enumerate(sequence):
        if not word or (sampling_table is not None and
                        sampling_table[word] < random.random()):
            continue
        for j in range(max(0, i - window_size), min(len(sequence), i + window_size + 1)):
            if j != i and sequence[j]:
                couples.append([word, sequence[j]])
                labels.append(positive)

    count = int(len(labels) * negative_samples)
    if count > 0:
        if vocabulary_size < 2:
            raise ValueError(f"skipgrams: negative samples need vocabulary_size >= 2 (index 0 "
                             f"is not a word). Received: vocabulary_size={vocabulary_size!r}")
        firsts = [pair[0] for pair in couples]
        random.shuffle(firsts)
        couples += [[firsts[k % len(firsts)], random.randint(1, vocabulary_size - 1)]
                    for k in range(count)]
        labels += [negative] * count

    if shuffle:
        if seed is None:
            seed = random.randint(0, 10**7)
        order = list(range(len(couples)))
        random.Random(seed).shuffle(order)  # the permutation `random.seed(seed)` would give
        couples, labels = [couples[k] for k in order], [labels[k] for k in order]
    return couples, labels
