"""`kgraph.data`: the tf.data subset the Keras FAQ uses, checked against numpy results."""
import itertools

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras

Dataset = tf.data.Dataset


def _values(ds):
    return [np.asarray(e).tolist() for e in ds]


# -- sources -------------------------------------------------------------------------------
def test_from_tensor_slices_array_tuple_dict_and_lists():
    x = np.arange(12, dtype="f4").reshape(6, 2)
    assert [e.tolist() for e in Dataset.from_tensor_slices(x)] == x.tolist()
    pairs = list(Dataset.from_tensor_slices((x, np.arange(6))))
    assert all(isinstance(p, tuple) and len(p) == 2 for p in pairs)
    np.testing.assert_array_equal(pairs[3][0], x[3])
    assert int(pairs[3][1]) == 3
    triples = list(Dataset.from_tensor_slices((x, np.arange(6), np.ones(6))))
    assert len(triples[0]) == 3
    dicts = list(Dataset.from_tensor_slices({"a": x, "b": np.arange(6)}))
    assert set(dicts[2]) == {"a", "b"} and dicts[2]["b"] == 2
    # A list is one array (as in TF), Python floats become float32.
    as_list = list(Dataset.from_tensor_slices([[1.0, 2.0], [3.0, 4.0]]))
    assert [e.tolist() for e in as_list] == [[1.0, 2.0], [3.0, 4.0]]
    assert as_list[0].dtype == np.float32


def test_from_tensor_slices_of_a_string_column():
    """Unicode numpy columns (a dataframe's string column as `dict(dataframe)` gives it)."""
    ds = tf.data.Dataset.from_tensor_slices(({"thal": np.array(["fixed", "normal", "fixed"]),
                                              "sex": np.array([1, 0, 1])}, np.array([0, 1, 1])))
    assert ds.element_spec[0]["thal"].dtype == np.dtype("<U6")
    features, labels = next(iter(ds.batch(2)))
    assert features["thal"].tolist() == ["fixed", "normal"] and labels.tolist() == [0, 1]


def test_from_tensor_slices_errors_and_element_spec():
    with pytest.raises(ValueError, match="same"):
        Dataset.from_tensor_slices((np.zeros(3), np.zeros(4)))
    with pytest.raises(ValueError, match="rank"):
        Dataset.from_tensor_slices(np.float32(1.0))
    ds = Dataset.from_tensor_slices((np.zeros((5, 3), "f4"), np.zeros(5, "i4")))
    assert ds.element_spec == (tf.data.TensorSpec((3,), "float32"),
                               tf.data.TensorSpec((), "int32"))
    assert ds.batch(2).element_spec[0].shape == (None, 3)
    assert ds.batch(2, drop_remainder=True).element_spec[0].shape == (2, 3)
    assert ds.batch(2).unbatch().element_spec[0].shape == (3,)


def test_range_from_tensors_and_from_generator():
    assert _values(Dataset.range(5)) == [0, 1, 2, 3, 4]
    assert _values(Dataset.range(2, 9, 3)) == [2, 5, 8] and len(Dataset.range(2, 9, 3)) == 3
    assert [e.tolist() for e in Dataset.from_tensors(np.ones((2, 2)))] == [[[1, 1], [1, 1]]]
    calls = []

    def gen():
        calls.append(1)
        for i in range(4):
            yield i, [float(i)] * 2

    sig = (tf.data.TensorSpec((), "int32"), tf.data.TensorSpec((2,), "float32"))
    ds = Dataset.from_generator(gen, output_signature=sig)
    assert ds.cardinality() == tf.data.UNKNOWN_CARDINALITY
    elements = list(ds)
    assert elements[0][0].dtype == np.int32 and elements[3][1].dtype == np.float32
    assert elements[3][1].tolist() == [3.0, 3.0]
    list(ds)
    assert len(calls) == 2  # the generator is called anew on every iteration
    assert ds.element_spec == sig
    assert _values(Dataset.from_generator(lambda: iter(range(3)))) == [0, 1, 2]
    bad = Dataset.from_generator(gen, output_signature=(tf.data.TensorSpec((), "int32"),
                                                        tf.data.TensorSpec((3,), "float32")))
    with pytest.raises(ValueError, match="shape"):
        list(bad)
    with pytest.raises(TypeError, match="callable"):
        Dataset.from_generator(gen())


# -- batching --------------------------------------------------------------------------------
def test_batch_lengths_values_and_drop_remainder():
    x = np.arange(10)
    ds = Dataset.from_tensor_slices(x)
    assert len(ds.batch(3)) == 4 and len(ds.batch(3, drop_remainder=True)) == 3
    assert len(ds.batch(5)) == 2 and len(ds.batch(5, drop_remainder=True)) == 2
    assert _values(ds.batch(3)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert _values(ds.batch(3, drop_remainder=True)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert len(list(ds.batch(3))) == len(ds.batch(3))
    with pytest.raises(ValueError, match="greater than zero"):
        ds.batch(0)


def test_batch_of_tuples_and_dicts_and_unbatch():
    x, y = np.arange(14, dtype="f4").reshape(7, 2), np.arange(7)
    bx, by = next(iter(Dataset.from_tensor_slices((x, y)).batch(4)))
    np.testing.assert_array_equal(bx, x[:4])
    np.testing.assert_array_equal(by, y[:4])
    batches = list(Dataset.from_tensor_slices({"img": x, "n": y}).batch(4))
    np.testing.assert_array_equal(batches[1]["img"], x[4:])
    np.testing.assert_array_equal(batches[1]["n"], y[4:])
    nested = list(Dataset.from_tensor_slices(({"a": x}, y)).batch(7))[0]
    np.testing.assert_array_equal(nested[0]["a"], x)
    back = list(Dataset.from_tensor_slices((x, y)).batch(3).unbatch())
    np.testing.assert_array_equal(np.stack([e[0] for e in back]), x)
    np.testing.assert_array_equal([int(e[1]) for e in back], y)
    ragged = Dataset.from_generator(lambda: iter([np.zeros(2), np.zeros(3)])).batch(2)
    with pytest.raises(ValueError, match="different shapes"):
        list(ragged)


# -- shuffle ---------------------------------------------------------------------------------
def test_shuffle_is_a_permutation_and_buffer_of_one_keeps_order():
    ds = Dataset.range(50)
    out = _values(ds.shuffle(50, seed=3))
    assert sorted(out) == list(range(50)) and out != list(range(50))
    assert _values(ds.shuffle(1)) == list(range(50))
    assert len(ds.shuffle(10)) == 50


def test_shuffle_buffer_bounds_how_far_elements_move_forward():
    for k in (2, 5):
        out = _values(Dataset.range(40).shuffle(k, seed=k))
        # Output position p can only hold one of the first p + k inputs.
        assert all(v < p + k for p, v in enumerate(out))
        assert out[0] < k and sorted(out) == list(range(40))


def test_shuffle_seeds_and_reshuffling():
    ds = Dataset.range(100).shuffle(100, seed=7)
    first, second = _values(ds), _values(ds)
    assert first != second  # reshuffled on every iteration ...
    assert _values(Dataset.range(100).shuffle(100, seed=7)) == first  # ... reproducibly
    fixed = Dataset.range(100).shuffle(100, seed=7, reshuffle_each_iteration=False)
    assert _values(fixed) == _values(fixed)
    tf.random.set_seed(1)
    a = _values(Dataset.range(100).shuffle(100))
    tf.random.set_seed(1)
    assert _values(Dataset.range(100).shuffle(100)) == a
    per_epoch = Dataset.range(10).shuffle(10, seed=0).repeat(2)
    epochs = _values(per_epoch)
    assert sorted(epochs[:10]) == sorted(epochs[10:]) == list(range(10))


def test_shuffled_slices_keep_buffer_semantics_and_batch_as_their_elements():
    """from_tensor_slices + shuffle + batch permute row indices and gather whole batches (the
    fast path): the same rules as element by element."""
    rows = np.arange(40)
    x = np.stack([rows, -rows], axis=1).astype("float32")
    for k in (1, 2, 5, 40, 100):
        ds = Dataset.from_tensor_slices((x, rows)).shuffle(k, seed=k,
                                                            reshuffle_each_iteration=False)
        out = [int(r) for _, r in ds]
        assert sorted(out) == list(range(40))
        assert all(v < p + k for p, v in enumerate(out))  # the buffer bounds the reach
        assert (out == list(range(40))) == (k == 1)
        batches = list(ds.batch(6))
        assert [len(b[1]) for b in batches] == [6] * 6 + [4]
        np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), out)
        np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x[out])
        assert all(b[0].dtype == np.float32 for b in batches)
    dropped = Dataset.from_tensor_slices(x).shuffle(8, seed=0).batch(6, drop_remainder=True)
    assert [len(b) for b in dropped] == [6] * 6 and dropped.element_spec.shape == (6, 2)
    reshuffled = Dataset.from_tensor_slices(rows).shuffle(40, seed=1).batch(40)
    assert not np.array_equal(next(iter(reshuffled)), next(iter(reshuffled)))


# -- element-wise transformations ----------------------------------------------------------
def test_map_unpacks_tuples_and_filter():
    ds = Dataset.from_tensor_slices((np.arange(5.0), np.arange(5) * 10))
    assert _values(ds.map(lambda x, y: x + y)) == [0, 11, 22, 33, 44]
    swapped = list(ds.map(lambda x, y: (y, x), num_parallel_calls=tf.data.AUTOTUNE))
    assert int(swapped[2][0]) == 20 and float(swapped[2][1]) == 2.0
    as_tuple = list(ds.map(lambda x, y: [x, y]))  # list outputs become tuples, as in TF
    assert isinstance(as_tuple[0], tuple)
    d = Dataset.from_tensor_slices({"a": np.arange(3), "b": np.ones(3)})
    assert _values(d.map(lambda e: e["a"] * 2 + e["b"])) == [1, 3, 5]
    assert _values(Dataset.range(10).filter(lambda x: x % 3 == 0)) == [0, 3, 6, 9]
    assert ds.filter(lambda x, y: y > 15).cardinality() == tf.data.UNKNOWN_CARDINALITY
    assert _values(ds.filter(lambda x, y: y > 15).map(lambda x, y: x)) == [2.0, 3.0, 4.0]
    assert ds.map(lambda x, y: x).element_spec.shape == ()


def test_repeat_take_skip_and_cardinalities():
    ds = Dataset.range(5)
    assert _values(ds.repeat(2)) == [0, 1, 2, 3, 4] * 2 and len(ds.repeat(2)) == 10
    assert ds.repeat().cardinality() == tf.data.INFINITE_CARDINALITY == -1
    assert _values(ds.repeat().take(12)) == [0, 1, 2, 3, 4] * 2 + [0, 1]
    assert len(ds.repeat().take(12)) == 12
    assert _values(ds.take(3)) == [0, 1, 2] and len(ds.take(3)) == 3 and len(ds.take(9)) == 5
    assert _values(ds.take(-1)) == list(range(5))
    assert _values(ds.skip(3)) == [3, 4] and len(ds.skip(3)) == 2 and len(ds.skip(9)) == 0
    assert ds.repeat().skip(3).cardinality() == -1 and len(ds.skip(-1)) == 0
    assert Dataset.range(0).repeat().cardinality() == 0 and _values(Dataset.range(0).repeat()) == []
    unknown = ds.filter(lambda x: True)
    assert unknown.cardinality() == tf.data.UNKNOWN_CARDINALITY == -2
    assert unknown.take(2).cardinality() == -2 and unknown.repeat().cardinality() == -1
    assert tf.data.experimental.cardinality(ds.repeat(3)) == 15
    for unsized in (ds.repeat(), unknown):  # no __len__, so len() is a TypeError
        assert not hasattr(unsized, "__len__")
        with pytest.raises(TypeError):
            len(unsized)


def test_enumerate_zip_concatenate_prefetch_cache():
    ds = Dataset.range(3)
    assert [(int(i), int(e)) for i, e in ds.enumerate(start=5)] == [(5, 0), (6, 1), (7, 2)]
    zipped = Dataset.zip((ds, Dataset.range(10, 20)))
    assert [(int(a), int(b)) for a, b in zipped] == [(0, 10), (1, 11), (2, 12)]
    assert len(zipped) == 3 and len(Dataset.zip(ds, ds.repeat())) == 3
    assert [(int(a), int(b)) for a, b in Dataset.zip(ds, ds.skip(1))] == [(0, 1), (1, 2)]
    as_dict = list(Dataset.zip({"x": ds, "y": ds.map(lambda v: v * 2)}))
    assert int(as_dict[2]["y"]) == 4
    cat = ds.concatenate(Dataset.range(7, 9))
    assert _values(cat) == [0, 1, 2, 7, 8] and len(cat) == 5
    assert ds.concatenate(ds.repeat()).cardinality() == -1
    assert _values(ds.prefetch(tf.data.AUTOTUNE)) == [0, 1, 2]
    assert tf.data.AUTOTUNE == tf.data.experimental.AUTOTUNE == -1
    calls = []
    cached = Dataset.from_generator(lambda: (calls.append(1) or i for i in range(3))).cache()
    assert _values(cached) == _values(cached) == [0, 1, 2] and len(calls) == 3
    frozen = Dataset.range(20).shuffle(20, seed=1).cache()
    assert _values(frozen) == _values(frozen)


def test_iteration_restarts_and_pipelines_are_lazy():
    ds = Dataset.from_tensor_slices(np.arange(4)).map(lambda x: x + 1)
    assert _values(ds) == _values(ds) == _values(ds.as_numpy_iterator()) == [1, 2, 3, 4]
    huge = Dataset.range(10**12).map(lambda x: x * 2).shuffle(4, seed=0).batch(2)
    assert len(huge) == 5 * 10**11 and next(iter(huge)).shape == (2,)
    endless = Dataset.from_generator(lambda: (i for i in itertools.count()))
    assert _values(endless.skip(2).take(3)) == [2, 3, 4]
    assert bool(Dataset.range(0)) and "cardinality=0" in repr(Dataset.range(0))


# -- with Keras -------------------------------------------------------------------------------
def _regression(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("f4")
    return x, (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], "f4") + 0.5).astype("f4")


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    return model


class _Steps(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.steps, self.batches = self.params.get("steps"), 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def test_fit_evaluate_predict_with_datasets():
    x, y = _regression()
    model = _model()
    train = Dataset.from_tensor_slices((x, y)).shuffle(100).batch(32)
    steps = _Steps()
    history = model.fit(train, epochs=2, verbose=0, callbacks=[steps])
    assert steps.steps == 7 and steps.batches == 14  # ceil(200 / 32) steps per epoch
    dropped = _Steps()
    model.fit(Dataset.from_tensor_slices((x, y)).batch(32, drop_remainder=True), epochs=1,
              verbose=0, callbacks=[dropped])
    assert dropped.steps == 6 and dropped.batches == 6
    history = model.fit(train.prefetch(tf.data.AUTOTUNE), epochs=15, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 15 and losses[-1] < losses[0]
    before = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(model.evaluate(Dataset.from_tensor_slices((x, y)).batch(64),
                                              verbose=0), before, rtol=1e-4)
    weighted = Dataset.from_tensor_slices((x, y, np.ones(200, "f4"))).batch(50)
    np.testing.assert_allclose(model.evaluate(weighted, verbose=0), before, rtol=1e-4)
    pred = model.predict(Dataset.from_tensor_slices(x).batch(32), verbose=0)
    assert pred.shape == (200, 1)
    np.testing.assert_allclose(pred, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert model.predict(Dataset.from_tensor_slices((x, y)).batch(64), verbose=0).shape == (200, 1)


def test_fit_with_generator_and_infinite_datasets():
    x, y = _regression(64)
    model = _model()
    gen = Dataset.from_generator(lambda: ((x[i], y[i]) for i in range(64)),
                                 output_signature=(tf.data.TensorSpec((4,), "float32"),
                                                   tf.data.TensorSpec((1,), "float32")))
    steps = _Steps()
    model.fit(gen.batch(16), epochs=2, verbose=0, callbacks=[steps])
    assert steps.steps is None and steps.batches == 8  # unknown length: no step count
    endless = Dataset.from_tensor_slices((x, y)).shuffle(64).batch(16).repeat()
    steps = _Steps()
    history = model.fit(endless, epochs=3, steps_per_epoch=5, verbose=0, callbacks=[steps],
                        validation_data=Dataset.from_tensor_slices((x, y)).batch(32))
    assert steps.batches == 15 and len(history.history["val_loss"]) == 3


def test_iteration_yields_eager_tensors_and_as_numpy_iterator_plain_arrays():
    """As tf.data: `for images, labels in ds.take(1): images[0].numpy()`; as_numpy_iterator
    gives plain numpy arrays. Both are views of the same data (no copy)."""
    from kgraph.keras.layers.base import EagerTensor

    x, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    ds = tf.data.Dataset.from_tensor_slices({"x": x, "y": y}).batch(4)
    first = next(iter(ds.take(1)))
    assert isinstance(first["x"], EagerTensor)
    np.testing.assert_array_equal(first["x"][0].numpy(), x[0])
    plain = next(ds.as_numpy_iterator())
    assert type(plain["x"]) is np.ndarray and type(plain["y"]) is np.ndarray


def test_text_reaches_map_functions_with_tensorflows_string_dtype():
    """Text elements and batches handed to a map function: dtype equal to "string" (as a
    TensorFlow string tensor's) and otherwise numpy's own (kind, itemsize)."""
    import kgraph as tf

    seen = []

    def look(text, number):
        seen.append((text.dtype == tf.string, text.dtype.kind, text.dtype.itemsize,
                     number.dtype == "string", isinstance(text, str)))
        return text, number

    ds = tf.data.Dataset.from_tensor_slices((np.array(["abc", "de"]), np.arange(2)))
    list(ds.map(look))
    list(ds.batch(2).map(look))
    assert seen == [(True, "U", 12, False, True), (True, "U", 8, False, True),
                    (True, "U", 12, False, False)]
