"""Inputs that used to train silently wrong or fail deep inside onnxruntime get typed errors
naming the argument, the bad value and the valid range (issue 9, case 2)."""
import numpy as np
import pytest

from kgraph import keras
from kgraph.keras.data_adapter import DataError
from kgraph.keras.input_checks import InvalidInputError

X = np.random.default_rng(0).random((8, 4)).astype("f4")


def _classifier(loss="sparse_categorical_crossentropy"):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", loss)
    return model


def _embedder(functional=False):
    keras.utils.set_random_seed(0)
    if functional:
        tokens = keras.Input((3,), dtype="int32")
        out = keras.layers.Dense(1)(keras.layers.Flatten()(keras.layers.Embedding(5, 2)(tokens)))
        model = keras.Model(tokens, out)
    else:
        model = keras.Sequential([keras.Input((3,), dtype="int32"), keras.layers.Embedding(5, 2),
                                  keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


@pytest.mark.parametrize("label", [3, 7, -1])
@pytest.mark.parametrize("call", ["fit", "evaluate", "train_on_batch"])
def test_sparse_label_out_of_range_is_refused(label, call):
    y = np.zeros(8, "int64")
    y[5] = label
    model = _classifier()
    kwargs = {"verbose": 0} if call != "train_on_batch" else {}
    with pytest.raises(InvalidInputError, match=rf"`y`.*\[0, 2\].*holds {label}\b"):
        getattr(model, call)(X, y, **kwargs)


def test_sparse_loss_class_and_ignore_class():
    y = np.array([0, 1, 2, -1, 0, 1, 2, -1])
    model = _classifier(keras.losses.SparseCategoricalCrossentropy(ignore_class=-1))
    assert np.isfinite(model.fit(X, y, verbose=0).history["loss"][0])
    with pytest.raises(InvalidInputError, match="holds 4"):
        model.fit(X, np.where(y < 0, 4, y), verbose=0)


def test_valid_labels_train_as_before():
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    loss = _classifier().fit(X, y, epochs=2, verbose=0).history["loss"]
    assert loss[0] > 0.5 and loss[1] < loss[0]


def test_one_hot_targets_for_sparse_loss_are_refused():
    with pytest.raises(InvalidInputError, match="one-hot"):
        _classifier().fit(X, np.eye(3, dtype="f4")[np.arange(8) % 3], verbose=0)


@pytest.mark.parametrize("functional", [False, True])
@pytest.mark.parametrize("index", [-1, 5])
def test_embedding_index_out_of_range_is_refused(index, functional):
    tokens = np.ones((2, 3), "int32")
    tokens[1, 2] = index
    model = _embedder(functional)
    with pytest.raises(InvalidInputError, match=rf"Embedding layer .*\[0, 4\].*holds {index}"):
        model.predict(tokens, verbose=0)
    with pytest.raises(InvalidInputError, match="Embedding"):
        model.fit(tokens, np.zeros((2, 1), "f4"), verbose=0)
    with pytest.raises(InvalidInputError, match="Embedding"):
        model.layers[-3 if not functional else 1](tokens)


def test_embedding_valid_indices_run():
    model = _embedder()
    assert model.predict(np.array([[0, 4, 2]]), verbose=0).shape == (1, 1)


@pytest.mark.parametrize("call", ["fit", "evaluate"])
def test_empty_arrays_are_refused(call):
    with pytest.raises(DataError, match="0 samples"):
        getattr(_classifier(), call)(np.zeros((0, 4), "f4"), np.zeros(0), verbose=0)


def test_python_lists_as_x_and_y():
    model = _classifier()
    history = model.fit(X.tolist(), [0, 1, 2, 0, 1, 2, 0, 1], verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(X[:2].tolist(), verbose=0).shape == (2, 3)


@pytest.mark.parametrize("value", ["3", 2.5, -1, True])
def test_epochs_must_be_an_integer(value):
    with pytest.raises(DataError, match=r"`epochs`.*" + repr(value).replace(".", r"\.")):
        _classifier().fit(X, np.zeros(8, "int64"), epochs=value, verbose=0)


def test_checks_cost_under_two_percent_of_a_step():
    """The per-batch checks of the benchmark's training step (128 int64 labels) against
    the step itself (784-256-256-10 MLP)."""
    import time

    from kgraph.keras import input_checks

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((128, 784), dtype="f4")
    y = np.random.default_rng(1).integers(0, 10, 128)
    model.train_on_batch(x, y)
    (program,) = [p for key, p in model._programs.items() if key[0] == "train"]
    assert program.input_checks

    def best(fn, n):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            times.append((time.perf_counter() - start) / n)
        return min(times)

    check = best(lambda: input_checks.run(program.input_checks, x, y), 2000)
    step = best(lambda: model.train_on_batch(x, y), 30)
    assert check < 0.02 * step, f"checks {check * 1e6:.1f} us vs step {step * 1e6:.0f} us"


def test_embedding_check_finds_its_input_in_a_dict_batch_with_extra_keys():
    # The batch's leaves are sorted by key; an unused key ("a_unused") sorts before the
    # Embedding's input, so the check must look the input up by name, not by model position.
    keras.utils.set_random_seed(0)
    tokens, value = keras.Input((), name="tokens", dtype="int32"), keras.Input((), name="value")
    embedded = keras.layers.Flatten()(keras.layers.Embedding(5, 2)(tokens))
    out = keras.layers.Dense(1)(keras.layers.concatenate([embedded, value[:, None]]))
    model = keras.Model({"tokens": tokens, "value": value}, out)
    model.compile("sgd", "mse")
    batch = {"a_unused": np.float32([99.0, 98.0]), "tokens": np.int32([0, 4]),
             "value": np.float32([50.0, 60.0])}
    with pytest.warns(UserWarning, match="not model inputs"):
        model.fit(batch, np.zeros((2, 1), "f4"), verbose=0)
    batch["tokens"] = np.int32([0, 5])
    with pytest.raises(InvalidInputError, match=r"Embedding layer .*\[0, 4\].*holds 5"):
        model.fit(batch, np.zeros((2, 1), "f4"), verbose=0)
