"""`keras.layers.HashedCrossing` against Keras 3. Keras' layer wraps TensorFlow's
`tf.sparse.cross_hashed` and refuses to run without TensorFlow, which the test environment
does not install; the bins below were computed by Keras 3.15.1 on the TensorFlow backend
(TensorFlow 2.21) for the same inputs, and the test against the live layer runs where
TensorFlow is importable."""
import numpy as np
import pytest

from kgraph import keras
from kgraph.keras import layers

WORDS = ["", "a", "fixed", "x" * 17, "y" * 40, "long " * 20, "héllo wörld", "101"]
INTS = [0, 1, -1, 101, -(2 ** 40) + 3, 2 ** 62 + 5, 7, -8]
SMALL = [3, 3, 0, 1, 2, 2, 1, 0]
# keras.layers.HashedCrossing(num_bins=1000003)(features) in Keras 3.15.1 + TensorFlow 2.21
KERAS_BINS = {
    "strings": ((WORDS, WORDS[::-1]), [801119, 810739, 414000, 728556, 366302, 434063, 702389,
                                       141352]),
    "string_int": ((WORDS, INTS), [644345, 245631, 454370, 853506, 827927, 330456, 778459,
                                   910099]),
    "int_int": ((INTS, SMALL), [642281, 458601, 299697, 833120, 70190, 129952, 458513, 516401]),
    "three": ((SMALL, WORDS, INTS), [625486, 197554, 35095, 612482, 884023, 476434, 442437,
                                     989325]),
}


@pytest.mark.parametrize("case", sorted(KERAS_BINS))
def test_bins_equal_keras(case):
    features, want = KERAS_BINS[case]
    got = layers.HashedCrossing(num_bins=1000003)(tuple(np.array(f) for f in features))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


def test_keras_docstring_examples_and_int32():
    letters, numbers = np.array(["A", "B", "A", "B", "A"]), np.array([101, 101, 101, 102, 102])
    np.testing.assert_array_equal(layers.HashedCrossing(num_bins=5)((letters, numbers)),
                                  [1, 4, 1, 1, 3])
    hot = layers.HashedCrossing(num_bins=5, output_mode="one_hot")((letters, numbers))
    np.testing.assert_array_equal(hot, np.eye(5, dtype=np.float32)[[1, 4, 1, 1, 3]])
    assert hot.dtype == np.float32
    # int32 features hash as their int64 values; bytes as their text (Keras 3 + TF 2.21)
    got = layers.HashedCrossing(num_bins=11)((np.array(SMALL, np.int32), np.array(WORDS)))
    np.testing.assert_array_equal(got, layers.HashedCrossing(num_bins=11)(
        (np.array(SMALL, np.int64), np.array([w.encode() for w in WORDS], dtype=object))))


@pytest.mark.parametrize("shape", [(), (3,), (3, 1)])
def test_shapes_and_modes_as_keras(shape):
    a, b = np.full(shape, "a"), np.full(shape, 3)
    # Keras 3 + TF: bin 2 for ("a", 3) in 4 bins; a scalar one-hot is (1, 4)
    as_int = layers.HashedCrossing(num_bins=4)((a, b))
    assert as_int.shape == shape and np.all(as_int == 2)
    hot = layers.HashedCrossing(num_bins=4, output_mode="one_hot")((a, b))
    assert hot.shape == ((1, 4) if shape == () else (3, 4))
    assert np.all(hot.argmax(-1) == 2) and hot.sum() == max(1, int(np.prod(shape)))


def test_config_and_errors_as_keras():
    layer = layers.HashedCrossing(num_bins=4, output_mode="one_hot", name="cross")
    assert layer.get_config() == {"num_bins": 4, "output_mode": "one_hot", "sparse": False,
                                  "name": "cross", "dtype": "float32"}
    assert layers.HashedCrossing(num_bins=3).get_config()["dtype"] == "int64"
    clone = layers.HashedCrossing.from_config(layer.get_config())
    assert (clone.num_bins, clone.output_mode) == (4, "one_hot")
    with pytest.raises(ValueError, match="Allowed values are: \\('int', 'one_hot'\\). "
                                         "Received: output_mode=multi_hot"):
        layers.HashedCrossing(num_bins=3, output_mode="multi_hot")
    with pytest.raises(ValueError, match="num_bins=0"):
        layers.HashedCrossing(num_bins=0)
    with pytest.raises(ValueError, match="sparse=True"):
        layers.HashedCrossing(num_bins=3, sparse=True)
    cross = layers.HashedCrossing(num_bins=3)
    for bad, message in [((np.array([1.0]), np.array([1])), "integer or string dtype"),
                         ((np.array([[1, 2]]), np.array([[1, 2]])), "should have shape"),
                         ((np.array([1]),), "at least two inputs"),
                         (np.array([1]), "list or tuple"),
                         ((np.array([1]), np.array([1, 2])), "equal shape")]:
        with pytest.raises(ValueError, match=message):
            cross(bad)


def test_in_a_model_on_inputs_and_saved(tmp_path):
    words = keras.Input((1,), dtype="string", name="word")
    numbers = keras.Input((1,), dtype="int64", name="number")
    crossed = layers.HashedCrossing(num_bins=8, output_mode="one_hot")([words, numbers])
    assert crossed.shape == (None, 8) and crossed.dtype == "float32"
    model = keras.Model([words, numbers], layers.Dense(1)(crossed))
    x = [np.array([["x"], ["y"], ["x"]]), np.array([[1], [2], [1]])]
    hot = layers.HashedCrossing(num_bins=8, output_mode="one_hot")(x)
    dense = model.layers[-1]
    want = hot @ dense.get_weights()[0] + dense.get_weights()[1]
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5)
    model.save(tmp_path / "cross.keras")
    restored = keras.models.load_model(tmp_path / "cross.keras")
    np.testing.assert_allclose(restored.predict(x, verbose=0), want, rtol=1e-5)
    with pytest.raises(TypeError, match="runs on the host"):
        layers.HashedCrossing(num_bins=3)([layers.Dense(1)(keras.Input((1,))), numbers])


def test_against_live_keras_where_tensorflow_is_installed():
    pytest.importorskip("tensorflow")
    real = pytest.importorskip("keras")
    for features, _ in KERAS_BINS.values():
        arrays = tuple(np.array(f) for f in features)
        for mode in ("int", "one_hot"):
            want = np.asarray(real.layers.HashedCrossing(num_bins=13, output_mode=mode)(arrays))
            got = layers.HashedCrossing(num_bins=13, output_mode=mode)(arrays)
            np.testing.assert_array_equal(got, want)
