"""tf.keras 2's `keras.preprocessing.sequence.skipgrams`/`make_sampling_table`, against Keras 3's
legacy copies (same Python `random` state in, same pairs out) and by their definition."""
import random

import numpy as np
import pytest

from kgraph.keras.preprocessing import sequence


def _legacy():
    pytest.importorskip("keras")
    return pytest.importorskip("keras.src.legacy.preprocessing.sequence")


@pytest.mark.parametrize("kwargs", [
    {},
    {"window_size": 2, "negative_samples": 0.5, "seed": 3},
    {"window_size": 1, "negative_samples": 0.0, "shuffle": False},
    {"categorical": True, "seed": 7},
])
def test_skipgrams_match_keras(kwargs):
    legacy = _legacy()
    walk = [3, 0, 5, 7, 2, 2, 9, 1, 4]
    random.seed(11)
    want = legacy.skipgrams(walk, 10, **kwargs)
    random.seed(11)
    got = sequence.skipgrams(walk, 10, **kwargs)
    assert got == want


def test_skipgrams_by_definition():
    couples, labels = sequence.skipgrams([0, 4, 6, 8], 9, window_size=1, negative_samples=1.0,
                                         shuffle=False)
    assert couples[:4] == [[4, 6], [6, 4], [6, 8], [8, 6]] and labels[:4] == [1] * 4
    assert labels[4:] == [0] * 4 and all(1 <= c <= 8 for _, c in couples[4:])
    assert sorted(w for w, _ in couples[4:]) == [4, 6, 6, 8]
    random.seed(0)
    table = np.zeros(9)  # no word is kept
    assert sequence.skipgrams([1, 2, 3], 9, sampling_table=table) == ([], [])
    with pytest.raises(ValueError, match="window_size"):
        sequence.skipgrams([1, 2], 5, window_size=-1)
    with pytest.raises(ValueError, match="vocabulary_size"):
        sequence.skipgrams([1, 2], 1)


def test_make_sampling_table_matches_keras():
    legacy = _legacy()
    np.testing.assert_allclose(sequence.make_sampling_table(50, 1e-3),
                               legacy.make_sampling_table(50, 1e-3))
    with pytest.raises(ValueError, match="size"):
        sequence.make_sampling_table(0)
