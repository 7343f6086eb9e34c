"""Preprocessing layers: Normalization.adapt on arrays and Datasets, Resizing/CenterCrop
against numpy implementations of Keras' definitions (jax.image.resize half-pixel sampling,
Keras' crop/pad boxes), random augmentation (identity outside training, each transform
checked against its definition given the drawn parameters, the affine sampler against a
numpy version of Keras' map_coordinates rules), categorical and lookup layers, configs and
`.keras` round trips."""
from __future__ import annotations

import numpy as np
import pytest

import kgraph as tf
from harness import run_layer_test
from kgraph import keras
from kgraph.keras.layers.preprocessing.affine import affine_transform

L = keras.layers


def _images(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=shape).astype("float32")


def _round_trip(layer, x, **kwargs):
    clone = type(layer).from_config(layer.get_config())
    np.testing.assert_allclose(clone(x, **kwargs), layer(x, **kwargs), rtol=1e-6, atol=1e-5)
    return clone


# -- Normalization ------------------------------------------------------------------------------
@pytest.mark.parametrize("axis, shape", [(-1, (40, 3)), (None, (40, 3)), ((1, 2), (40, 2, 3))])
def test_normalization_adapt_array_and_dataset(axis, shape):
    data = np.random.default_rng(1).normal(3.0, 2.0, size=shape).astype("float32")
    from_array, from_dataset = L.Normalization(axis=axis), L.Normalization(axis=axis)
    from_array.adapt(data)
    from_dataset.adapt(tf.data.Dataset.from_tensor_slices(data).batch(7))
    reduce = tuple(i for i in range(len(shape)) if axis is not None and
                   i not in [a % len(shape) for a in np.atleast_1d(axis)]) if axis is not None \
        else None
    mean = data.astype(np.float64).mean(axis=reduce)
    var = data.astype(np.float64).var(axis=reduce)
    for layer in (from_array, from_dataset):
        np.testing.assert_allclose(layer.mean.numpy().reshape(np.shape(mean)), mean, rtol=1e-5)
        np.testing.assert_allclose(layer.variance.numpy().reshape(np.shape(var)), var,
                                   rtol=1e-5)
        keep = tuple(np.shape(mean)) if axis is not None else ()
        bshape = [1] * len(shape)
        for a, d in zip([a % len(shape) for a in np.atleast_1d(axis)] if axis is not None
                        else [], keep):
            bshape[a] = d
        want = (data - mean.reshape(bshape)) / np.sqrt(var.reshape(bshape))
        np.testing.assert_allclose(layer(data), want, rtol=1e-4, atol=1e-4)
    assert int(from_dataset.count.numpy()) == int(from_array.count.numpy())


def test_normalization_invert_and_list_batches():
    layer = L.Normalization(axis=None, invert=True)
    layer.adapt(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_allclose(layer(np.array([[0.0, 1.0]], "float32")),
                               [[3.0, 3.0 + np.sqrt(2.0)]], rtol=1e-5)
    generator_layer = L.Normalization(axis=None)
    generator_layer.adapt(iter([np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0])]))
    np.testing.assert_allclose(generator_layer.mean.numpy(), 3.0)
    np.testing.assert_allclose(generator_layer.variance.numpy(), 2.0)
    with pytest.raises(ValueError, match="no data"):
        L.Normalization().adapt(iter([]))


# -- Resizing / CenterCrop ----------------------------------------------------------------------
def np_resize(x, height, width, method="bilinear"):
    """Half-pixel resize of (batch, h, w, c) images, sample by sample (jax.image.resize)."""
    def axis_weights(n_in, n_out):
        w = np.zeros((n_out, n_in))
        for i in range(n_out):
            centre = (i + 0.5) * n_in / n_out - 0.5
            if method == "nearest":
                w[i, min(int(np.floor((i + 0.5) * n_in / n_out)), n_in - 1)] = 1
                continue
            for j in range(n_in):  # triangle kernel, renormalized over the valid samples
                w[i, j] = max(0.0, 1 - abs(centre - j))
            w[i] /= w[i].sum()
        return w
    wh, ww = axis_weights(x.shape[1], height), axis_weights(x.shape[2], width)
    return np.einsum("ih,bhwc,jw->bijc", wh, x.astype(np.float64), ww)


@pytest.mark.parametrize("size, method", [((3, 7), "bilinear"), ((8, 2), "bilinear"),
                                          ((3, 7), "nearest")])
def test_resizing_matches_half_pixel_reference(size, method):
    x = _images(2, 5, 4, 3)
    layer = L.Resizing(*size, interpolation=method)
    np.testing.assert_allclose(layer(x), np_resize(x, *size, method), rtol=1e-5, atol=1e-3)
    _round_trip(layer, x)
    inputs = keras.Input((5, 4, 3))
    assert keras.Model(inputs, layer(inputs)).output_shape == (None, size[0], size[1], 3)


def test_resizing_crop_and_pad_to_aspect_ratio():
    x = _images(1, 6, 4, 1)
    cropped = L.Resizing(2, 4, crop_to_aspect_ratio=True)(x)
    # target aspect 2: box 2 x 4 from row int((6 - 2) / 2) = 2
    np.testing.assert_allclose(cropped, np_resize(x[:, 2:4], 2, 4), rtol=1e-5, atol=1e-3)
    padded = L.Resizing(6, 6, pad_to_aspect_ratio=True, fill_value=7.0)(x)
    box = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)), constant_values=7.0)
    np.testing.assert_allclose(padded, box, rtol=1e-6)


def test_center_crop():
    x = _images(2, 6, 5, 3)
    np.testing.assert_array_equal(L.CenterCrop(4, 2)(x), x[:, 1:5, 1:3])
    small = L.CenterCrop(8, 10)(x)  # larger than the image: crop to aspect, then resize
    # aspect 10/8: box of int(5 / 1.25) = 4 rows from row int((6 - 4) / 2) = 1, all 5 columns
    np.testing.assert_allclose(small, np_resize(x[:, 1:5], 8, 10), rtol=1e-5, atol=1e-3)
    first = L.CenterCrop(4, 2, data_format="channels_first")(x.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(first, x[:, 1:5, 1:3].transpose(0, 3, 1, 2))


# -- random augmentation ------------------------------------------------------------------------
AUGMENTATIONS = [(L.RandomFlip, {}), (L.RandomContrast, {"factor": 0.5}),
                 (L.RandomBrightness, {"factor": 0.2}), (L.RandomRotation, {"factor": 0.2}),
                 (L.RandomZoom, {"height_factor": 0.3}),
                 (L.RandomTranslation, {"height_factor": 0.2, "width_factor": 0.3})]


@pytest.mark.parametrize("cls, kwargs", AUGMENTATIONS + [(L.RandomCrop, {"height": 6,
                                                                        "width": 5})])
def test_augmentation_only_in_training(cls, kwargs):
    x = _images(4, 6, 5, 3)
    layer = cls(seed=3, **kwargs)
    np.testing.assert_array_equal(layer(x, training=False), x)
    assert not np.allclose(layer(x), x) or cls is L.RandomCrop  # a direct call augments
    inputs = keras.Input((6, 5, 3))
    model = keras.Model(inputs, L.Dense(1)(L.Flatten()(cls(seed=1, **kwargs)(inputs))))
    model.compile("sgd", "mse")
    dense = model.layers[-1]
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               x.reshape(4, -1) @ dense.kernel.numpy() + dense.bias.numpy(),
                               rtol=1e-4, atol=1e-2)
    model.fit(x, np.zeros((4, 1), "float32"), epochs=1, verbose=0)
    assert set(layer.get_config()) >= set(kwargs) | {"seed", "name"}
    _round_trip(layer, x, training=False)


def test_random_flip_flips_whole_images():
    x = _images(16, 4, 3, 2)
    for mode, options in (("horizontal", lambda a: [a, a[:, ::-1]]),
                          ("vertical", lambda a: [a, a[::-1]]),
                          ("horizontal_and_vertical",
                           lambda a: [a, a[::-1], a[:, ::-1], a[::-1, ::-1]])):
        y = L.RandomFlip(mode, seed=2)(x)
        seen = set()
        for xi, yi in zip(x, y):
            matches = [i for i, o in enumerate(options(xi)) if np.array_equal(o, yi)]
            assert matches, mode
            seen.add(matches[0])
        assert len(seen) > 1, f"{mode}: every image got the same flip"
    with pytest.raises(ValueError, match="invalid mode"):
        L.RandomFlip("diagonal")


def test_random_contrast_and_brightness_follow_their_formulas():
    x = _images(8, 5, 4, 3, seed=1) * 0.2 + 100  # stays inside (0, 255) after the change
    y = L.RandomContrast(0.4, seed=5)(x)
    mean = x.mean(axis=(1, 2), keepdims=True)
    factors = ((y - mean) / (x - mean)).reshape(8, -1)
    np.testing.assert_allclose(factors, factors[:, :1].repeat(factors.shape[1], 1), rtol=1e-3)
    assert np.all((factors >= 0.6 - 1e-4) & (factors <= 1.4 + 1e-4))
    y = L.RandomBrightness((-0.1, 0.2), seed=5)(x)
    deltas = (y - x).reshape(8, -1)
    np.testing.assert_allclose(deltas, deltas[:, :1].repeat(deltas.shape[1], 1), atol=1e-3)
    assert np.all((deltas >= -25.5 - 1e-3) & (deltas <= 51 + 1e-3))
    clipped = L.RandomBrightness((1.0, 1.0), value_range=(0, 1))(np.full((1, 2, 2, 1), 0.5))
    np.testing.assert_allclose(clipped, 1.0)


def test_random_crop_box():
    x = _images(3, 7, 6, 2)
    y = L.RandomCrop(4, 3, seed=9)(x)
    offsets = [(i, j) for i in range(4) for j in range(4) if np.array_equal(x[:, i:i + 4, j:j + 3], y)]
    assert len(offsets) == 1  # one box for the whole batch
    np.testing.assert_array_equal(L.RandomCrop(4, 3)(x, training=False), x[:, 1:5, 1:4])


def np_map_coordinates(image, src_y, src_x, fill_mode, fill_value, order=1):
    """Keras' map_coordinates (order 0 or 1) for one (H, W, C) image, pixel by pixel."""
    h, w, _ = image.shape

    def fix(i, n):
        if fill_mode == "reflect":
            i = i % (2 * n)
            return i if i < n else 2 * n - 1 - i
        if fill_mode == "wrap":
            return i % n
        return min(max(i, 0), n - 1)

    def value(i, j):
        if fill_mode == "constant" and not (0 <= i <= h - 1 and 0 <= j <= w - 1):
            return np.full(image.shape[-1], fill_value)
        return image[fix(i, h), fix(j, w)]

    if order == 0:
        return value(int(np.round(src_y)), int(np.round(src_x)))
    y0, x0 = int(np.floor(src_y)), int(np.floor(src_x))
    fy, fx = src_y - y0, src_x - x0
    return ((1 - fy) * (1 - fx) * value(y0, x0) + (1 - fy) * fx * value(y0, x0 + 1)
            + fy * (1 - fx) * value(y0 + 1, x0) + fy * fx * value(y0 + 1, x0 + 1))


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_affine_transform_matches_map_coordinates(fill_mode, interpolation):
    x = _images(2, 5, 4, 2, seed=2)
    transforms = np.array([[0.83, -0.57, 1.31, 0.61, 0.79, -0.93],
                           [1.33, 0.0, -2.21, 0.13, 0.71, 1.64]], "float32")

    got = L.Lambda(lambda a: affine_transform(a, transforms, interpolation, fill_mode, 3.0))(x)
    want = np.zeros_like(x, dtype=np.float64)
    for b in range(2):
        a0, a1, a2, b0, b1, b2 = transforms[b].astype(np.float64)
        for i in range(5):
            for j in range(4):
                want[b, i, j] = np_map_coordinates(x[b].astype(np.float64), b0 * j + b1 * i + b2,
                                                   a0 * j + a1 * i + a2, fill_mode, 3.0,
                                                   order=int(interpolation == "bilinear"))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-2)


def test_affine_layers_exact_cases():
    x = _images(2, 6, 4, 3)
    np.testing.assert_allclose(L.RandomRotation((0.5, 0.5))(x), x[:, ::-1, ::-1], atol=1e-2)
    np.testing.assert_allclose(L.RandomZoom((0.0, 0.0))(x), x, atol=1e-3)
    shifted = L.RandomTranslation((0.5, 0.5), (0.0, 0.0), fill_mode="constant")(x)
    np.testing.assert_allclose(shifted[:, 3:], x[:, :3], atol=1e-3)
    np.testing.assert_allclose(shifted[:, :3], 0.0, atol=1e-3)
    zoomed_in = L.RandomZoom((-0.5, -0.5), interpolation="nearest")(x)  # zoom 0.5: centre x2
    assert zoomed_in.shape == x.shape
    with pytest.raises(NotImplementedError, match="fill_mode"):
        L.RandomRotation(0.1, fill_mode="mirror")


def test_augmentation_model_round_trips_keras_file(tmp_path):
    inputs = keras.Input((6, 5, 3))
    x = L.Rescaling(1 / 255.0)(inputs)
    x = L.RandomFlip("horizontal", seed=1)(x)
    x = L.RandomRotation(0.1, seed=2)(x)
    x = L.Resizing(4, 4)(x)
    model = keras.Model(inputs, L.Dense(2)(L.Flatten()(x)))
    path = str(tmp_path / "aug.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    data = _images(3, 6, 5, 3)
    np.testing.assert_allclose(loaded.predict(data, verbose=0), model.predict(data, verbose=0),
                               rtol=1e-5, atol=1e-5)
    assert [type(la).__name__ for la in loaded.layers][2:5] == ["RandomFlip", "RandomRotation",
                                                               "Resizing"]


# -- CategoryEncoding / Discretization ----------------------------------------------------------
def test_category_encoding_modes_match_keras_examples():
    one_hot = L.CategoryEncoding(num_tokens=4, output_mode="one_hot")
    np.testing.assert_array_equal(one_hot(np.array([3, 2, 0, 1])), np.eye(4)[[3, 2, 0, 1]])
    np.testing.assert_array_equal(one_hot(np.array([[3], [2]])), np.eye(4)[[3, 2]])
    multi = L.CategoryEncoding(num_tokens=4, output_mode="multi_hot")
    np.testing.assert_array_equal(multi(np.array([[0, 1], [0, 0], [1, 2], [3, 1]])),
                                  [[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]])
    count = L.CategoryEncoding(num_tokens=4, output_mode="count")
    weights = np.array([[0.1, 0.2], [0.1, 0.1], [0.2, 0.3], [0.4, 0.2]], "float32")
    np.testing.assert_allclose(count(np.array([[0, 1], [0, 0], [1, 2], [3, 1]]),
                                     count_weights=weights),
                               [[0.1, 0.2, 0, 0], [0.2, 0, 0, 0], [0, 0.2, 0.3, 0],
                                [0, 0.2, 0, 0.4]], rtol=1e-6)
    inputs = keras.Input((2,), dtype="int32")
    assert keras.Model(inputs, multi(inputs)).output_shape == (None, 4)
    assert _round_trip(multi, np.array([[0, 1]])).get_config()["num_tokens"] == 4
    with pytest.raises(ValueError, match="num_tokens"):
        L.CategoryEncoding()


def test_discretization_bins_adapt_and_config():
    layer = L.Discretization(bin_boundaries=[0.0, 1.0, 2.0])
    x = np.array([[-1.5, 1.0, 3.4, 0.5], [0.0, 3.0, 1.3, 0.0]], "float32")
    np.testing.assert_array_equal(layer(x), [[0, 2, 3, 1], [1, 3, 2, 1]])
    np.testing.assert_array_equal(layer(x), np.digitize(x, [0.0, 1.0, 2.0]))
    hot = L.Discretization(bin_boundaries=[0.0, 1.0], output_mode="one_hot")
    np.testing.assert_array_equal(hot(np.array([-1.0, 0.5, 7.0])), np.eye(3))
    adapted = L.Discretization(num_bins=4)
    data = np.random.default_rng(0).normal(size=(1000,))
    adapted.adapt(data)
    # Keras' estimate (quantile summaries, `epsilon`), recorded from Keras 3.15.1 on
    # TensorFlow (its Discretization.adapt needs TensorFlow); also in tests/test_feature_space.py
    np.testing.assert_allclose(adapted.bin_boundaries,
                               [-0.6909445524215698, -0.07557335495948792, 0.6131889224052429],
                               rtol=1e-7)
    assert np.bincount(adapted(data)).tolist() == [249, 250, 250, 251]  # approximate
    _round_trip(layer, x)
    with pytest.raises(ValueError, match="Both `num_bins` and `bin_boundaries`"):
        L.Discretization(bin_boundaries=[0.0], num_bins=3)


# -- Hashing ------------------------------------------------------------------------------------
# FarmHash Fingerprint64 values from the reference C++ implementation (pyfarmhash 0.5.1)
FINGERPRINTS = {"hello": 13009744463427800296, "a" * 20: 15065261471293997870,
                "The quick brown fox jumps over the lazy dog": 12375473906752639284,
                "x" * 70: 5457250325824655745, "y" * 300: 18365502380739032300}


def test_hashing_is_farmhash_fingerprint64_as_keras():
    from kgraph.keras.layers.preprocessing.hashing import fingerprint64

    for text, value in FINGERPRINTS.items():
        assert fingerprint64(text.encode()) == value, text
    # the examples of Keras' Hashing docstring
    letters = np.array([["A"], ["B"], ["C"], ["D"], ["E"]])
    np.testing.assert_array_equal(L.Hashing(num_bins=3)(letters).ravel(), [1, 0, 1, 1, 2])
    masked = np.array([["A"], ["B"], [""], ["C"], ["D"]])
    np.testing.assert_array_equal(L.Hashing(num_bins=3, mask_value="")(masked).ravel(),
                                  [1, 1, 0, 2, 2])
    ints = L.Hashing(num_bins=5)(np.array([[12], [7]]))  # integers hash as decimal strings
    np.testing.assert_array_equal(ints.ravel(), [FINGERPRINTS_OF(b"12") % 5,
                                                 FINGERPRINTS_OF(b"7") % 5])
    hot = L.Hashing(num_bins=3, output_mode="one_hot")(np.array(["A", "B"]))
    np.testing.assert_array_equal(hot, np.eye(3)[[1, 0]])
    with pytest.raises(ValueError, match="salt"):
        L.Hashing(num_bins=3, salt="pepper")
    # on a model Input: a host node of the model (tests/test_string_inputs.py)
    assert L.Hashing(num_bins=3)(keras.Input((1,), dtype="int64")).dtype == "int64"
    with pytest.raises(TypeError, match="runs on the host"):
        L.Hashing(num_bins=3)(L.Dense(1)(keras.Input((1,))))


def FINGERPRINTS_OF(data):
    from kgraph.keras.layers.preprocessing.hashing import fingerprint64

    return fingerprint64(data)


# -- StringLookup / IntegerLookup / TextVectorization -------------------------------------------
def test_string_lookup_matches_keras_examples():
    vocab = ["a", "b", "c", "d"]
    data = np.array([["a", "c", "d"], ["d", "z", "b"]])
    np.testing.assert_array_equal(L.StringLookup(vocabulary=vocab)(data), [[1, 3, 4], [4, 0, 2]])
    adapted = L.StringLookup()
    adapted.adapt(data)
    assert adapted.get_vocabulary() == ["[UNK]", "d", "z", "c", "b", "a"]
    two_oov = L.StringLookup(vocabulary=vocab, num_oov_indices=2)
    got = two_oov(data)
    assert got[0].tolist() == [2, 4, 5] and got[1, 1] in (0, 1)
    masked = L.StringLookup(vocabulary=vocab, mask_token="")
    np.testing.assert_array_equal(masked(np.array([["a", "", "z"]])), [[2, 0, 1]])
    hot_data = np.array([["a", "c", "d", "d"], ["d", "z", "b", "z"]])
    np.testing.assert_array_equal(L.StringLookup(vocabulary=vocab, output_mode="multi_hot")(
        hot_data), [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]])
    np.testing.assert_array_equal(L.StringLookup(vocabulary=vocab, output_mode="count")(
        hot_data), [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]])
    tf_idf = L.StringLookup(output_mode="tf_idf", vocabulary=vocab,
                            idf_weights=[0.25, 0.75, 0.6, 0.4])
    np.testing.assert_allclose(tf_idf(hot_data), [[0, 0.25, 0, 0.6, 0.8],
                                                  [1.0, 0, 0.75, 0, 0.4]], rtol=1e-6)
    inverse = L.StringLookup(vocabulary=vocab, invert=True)
    assert inverse(np.array([[1, 3, 4], [4, 0, 2]])).tolist() == \
        [["a", "c", "d"], ["d", "[UNK]", "b"]]
    clone = L.StringLookup.from_config(adapted.get_config())
    np.testing.assert_array_equal(clone(data), adapted(data))
    with pytest.raises(ValueError, match="repeated"):
        L.StringLookup(vocabulary=["a", "a"])


def test_string_lookup_adapts_and_encodes_ragged_rows():
    """Rows of token lists of different lengths (what TensorFlow code wraps in
    `tf.ragged.constant`; the keras.io multi-label example's subject terms, a pandas column of
    lists): adapt counts every token, multi_hot/count/tf_idf encode each row into one vector."""
    terms = np.empty(4, dtype=object)
    terms[:] = [["cs.LG", "stat.ML"], ["cs.CV"], ["cs.LG", "cs.CV", "cs.AI"], ["cs.LG"]]
    lookup = L.StringLookup(output_mode="multi_hot")
    lookup.adapt(terms)
    vocab = lookup.get_vocabulary()  # by count, ties by token, both descending
    assert vocab == ["[UNK]", "cs.LG", "cs.CV", "stat.ML", "cs.AI"]
    expected = np.array([[vocab.index(t) in [vocab.index(u) for u in row]
                          for t in vocab] for row in terms], np.float32)
    got = lookup(terms)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got.numpy(), expected)  # an eager tensor, as Keras'
    np.testing.assert_array_equal(lookup([["cs.LG", "new"], []]), [[1, 1, 0, 0, 0],
                                                                  [0, 0, 0, 0, 0]])
    counts = L.StringLookup(vocabulary=vocab[1:], output_mode="count")
    np.testing.assert_array_equal(counts([["cs.AI", "cs.AI"], ["cs.CV"]]),
                                  [[0, 0, 0, 0, 2], [0, 0, 1, 0, 0]])
    tf_idf = L.StringLookup(output_mode="tf_idf")
    tf_idf.adapt(list(terms))  # idf counts each row as a document
    df = np.array([3, 2, 1, 1], np.float64)
    np.testing.assert_allclose(tf_idf.idf_weights[1:], np.log(1 + 4 / (1 + df)), rtol=1e-6)
    with pytest.raises(ValueError, match="ragged"):
        L.StringLookup(vocabulary=vocab[1:])(terms)  # int indices would be ragged


def test_lookup_accepts_keras_deprecated_output_mode_names():
    """Keras maps `"binary"` to `"multi_hot"` and `"tf-idf"` to `"tf_idf"` (the keras.io
    structured-data example passes `output_mode="binary"`)."""
    binary = L.StringLookup(vocabulary=["fixed", "normal"], mask_token=None, num_oov_indices=0,
                            output_mode="binary")
    assert binary.get_config()["output_mode"] == "multi_hot"
    np.testing.assert_array_equal(binary(np.array(["normal"])), [0, 1])
    tf_idf = L.IntegerLookup(vocabulary=[1, 2], output_mode="tf-idf", idf_weights=[0.5, 2.0])
    assert tf_idf.get_config()["output_mode"] == "tf_idf"


def test_integer_lookup_host_and_in_graph():
    vocab = [12, 36, 1138, 42]
    data = np.array([[12, 1138, 42], [42, 1000, 36]])
    layer = L.IntegerLookup(vocabulary=vocab)
    np.testing.assert_array_equal(layer(data), [[1, 3, 4], [4, 0, 2]])
    inputs = keras.Input((3,), dtype="int64")
    model = keras.Model(inputs, layer(inputs))
    np.testing.assert_array_equal(model.predict(data, verbose=0), [[1, 3, 4], [4, 0, 2]])
    masked = L.IntegerLookup(vocabulary=vocab, mask_token=0)
    hot = L.IntegerLookup(vocabulary=vocab, output_mode="multi_hot")
    model = keras.Model(inputs, [masked(inputs), hot(inputs)])
    data0 = np.array([[12, 0, 7], [36, 36, 42]])
    got_masked, got_hot = model.predict(data0, verbose=0)
    np.testing.assert_array_equal(got_masked, masked(data0))
    np.testing.assert_array_equal(got_masked, [[2, 0, 1], [3, 3, 5]])
    np.testing.assert_array_equal(got_hot, hot(data0))
    adapted = L.IntegerLookup(max_tokens=3)
    adapted.adapt(np.array([5, 5, 5, 7, 7, 9, 1]))
    assert adapted.get_vocabulary() == [-1, 5, 7]
    np.testing.assert_array_equal(L.IntegerLookup(vocabulary=vocab, invert=True)(
        np.array([[1, 0]])), [[12, -1]])


def test_text_vectorization_of_one_string_has_no_batch_axis():
    # the keras.io active-learning example maps a TextVectorization over unbatched reviews
    import kgraph as tf

    layer = L.TextVectorization(output_sequence_length=4, vocabulary=["the", "cat"])
    assert layer(np.array(b"the cat")).tolist() == [2, 3, 0, 0]
    assert layer(np.array(["the cat"])).tolist() == [[2, 3, 0, 0]]
    rows = tf.data.Dataset.from_tensor_slices((np.array([b"cat", b"the dog"]), np.arange(2)))
    assert [x.tolist() for x, _ in rows.map(lambda x, y: (layer(x), y))] == [
        [3, 0, 0, 0], [2, 1, 0, 0]]
    multi_hot = L.TextVectorization(output_mode="multi_hot", vocabulary=["the", "cat"])
    assert multi_hot(np.array("cat")).tolist() == [0, 0, 0, 1]  # mask, [UNK], the, cat


def test_text_vectorization_int_and_bag_of_words():
    layer = L.TextVectorization(output_sequence_length=4)
    layer.adapt(np.array(["The cat sat.", "the dog!", "The cat"]))
    assert layer.get_vocabulary() == ["", "[UNK]", "the", "cat", "sat", "dog"]
    np.testing.assert_array_equal(layer(np.array(["the cat", "a DOG, sat on it"])),
                                  [[2, 3, 0, 0], [1, 5, 4, 1]])
    ragged = L.TextVectorization(vocabulary=["the", "cat"])
    assert ragged(["the cat the", "cat"]).tolist() == [[2, 3, 2], [3, 0, 0]]
    bigrams = L.TextVectorization(ngrams=2, output_mode="multi_hot",
                                  vocabulary=["the", "cat", "the cat"])
    np.testing.assert_array_equal(bigrams(["the cat", "cat dog"]),
                                  [[0, 0, 1, 1, 1], [0, 1, 0, 1, 0]])
    tf_idf = L.TextVectorization(output_mode="tf_idf")
    docs = ["a b", "a c", "a a"]
    tf_idf.adapt(docs)
    vocab = tf_idf.get_vocabulary()
    idf = {t: np.log(1 + 3 / (1 + df)) for t, df in (("a", 3), ("b", 1), ("c", 1))}
    row = tf_idf(["a a b"])[0]
    assert row[vocab.index("a")] == pytest.approx(2 * idf["a"], rel=1e-5)
    assert row[vocab.index("b")] == pytest.approx(idf["b"], rel=1e-5)
    clone = L.TextVectorization.from_config(layer.get_config())
    np.testing.assert_array_equal(clone(["the cat"]), layer(["the cat"]))
    with pytest.raises(TypeError, match="takes strings.*int64"):
        layer(keras.Input((1,), dtype="int64"))


def test_lookup_and_encoding_model_round_trips_keras_file(tmp_path):
    inputs = keras.Input((3,), dtype="int64")
    ids = L.IntegerLookup(vocabulary=[12, 36, 1138, 42], name="lookup")(inputs)
    encoded = L.CategoryEncoding(num_tokens=5, output_mode="multi_hot")(ids)
    bins = L.Discretization(bin_boundaries=[20.0, 100.0])(inputs)
    model = keras.Model(inputs, [encoded, bins])
    path = str(tmp_path / "lookup.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    data = np.array([[12, 1138, 7], [42, 36, 36]])
    for got, want in zip(loaded.predict(data, verbose=0), model.predict(data, verbose=0)):
        np.testing.assert_array_equal(got, want)
    assert loaded.get_layer("lookup").get_vocabulary() == [-1, 12, 36, 1138, 42]


@pytest.mark.tvm
@pytest.mark.parametrize("layer", [L.RandomFlip(seed=1), L.RandomContrast(0.3, seed=1),
                                   L.RandomCrop(3, 3, seed=1), L.Resizing(3, 3),
                                   L.CenterCrop(3, 2)], ids=lambda la: type(la).__name__)
def test_image_layers_on_tvm(layer):
    """The training-mode graph (unknown batch, fed rng key) on TVM equals the numpy
    interpreter. (RandomRotation/Zoom/Translation index the batch by a run-time slice of a
    constant range, whose shape TVM's importer loses: known limit.)"""
    from tvm_helper import run_tvm

    from kgraph.compiler.build import compile_graph
    from kgraph.ir.graph import Graph, tracing

    graph = Graph("image_layer")
    x = graph.placeholder("x", (None, 5, 4, 2), "float32")
    with tracing(graph):
        out = layer(x, training=True)
    graph.set_outputs({"out": out})
    feeds = {"x": _images(2, 5, 4, 2), "rng_key": np.uint32(7)}
    feeds = {name: value for name, value in feeds.items() if name in graph.input_names}
    want = compile_graph(graph, "numpy").run(feeds)[0]
    np.testing.assert_allclose(run_tvm(graph, feeds)[0], want, rtol=1e-5, atol=1e-4)


def test_sequential_led_by_host_layers_takes_raw_strings():
    """`keras.Sequential([text_vectorizer, model])` (the keras.io multi-label example's
    inference model): the host layers run on the data of predict/evaluate/fit/call, the
    compiled graph starts after them, and the model saves and reloads as such."""
    texts = np.array(["the cat sat", "a dog ran", "the dog sat", "cats and dogs"], object)
    labels = np.float32([[1, 0], [0, 1], [0, 1], [1, 1]])
    vectorizer = L.TextVectorization(max_tokens=20, output_mode="tf_idf")
    vectorizer.adapt(texts)
    head = keras.Sequential([L.Dense(4, activation="relu"), L.Dense(2, activation="sigmoid")])
    model = keras.Sequential([vectorizer, head])
    expected = head.predict(vectorizer(texts), verbose=0)
    np.testing.assert_allclose(model.predict(texts, verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(model(texts), expected, rtol=1e-6)
    batches = tf.data.Dataset.from_tensor_slices(texts).batch(3)
    np.testing.assert_allclose(model.predict(batches, verbose=0), expected, rtol=1e-6)
    model.compile(loss="binary_crossentropy", optimizer="adam")
    history = model.fit(texts, labels, validation_data=(texts, labels), epochs=1, verbose=0)
    assert set(history.history) == {"loss", "val_loss"}
    assert np.isfinite(model.evaluate(texts, labels, verbose=0))
    assert [layer.name for layer in model.layers] == [vectorizer.name, head.name]


def test_sequential_led_by_host_layers_round_trips_a_keras_file(tmp_path):
    texts = np.array(["red fox", "blue fox", "red hen"], object)
    vectorizer = L.TextVectorization(output_mode="multi_hot")
    vectorizer.adapt(texts)
    model = keras.Sequential([vectorizer, L.Dense(3)])
    expected = model.predict(texts, verbose=0)
    model.save(tmp_path / "text.keras")
    restored = keras.models.load_model(tmp_path / "text.keras")
    np.testing.assert_allclose(restored.predict(texts, verbose=0), expected, rtol=1e-6)
    # after an explicit Input a host layer is a host node of the model's host prefix
    # (tests/test_string_inputs.py); after a layer of the compiled graph it is refused
    hashed = keras.Sequential([keras.Input((1,), dtype="int64"), L.Hashing(num_bins=3)])
    ints = np.array([[12], [7]])
    np.testing.assert_array_equal(hashed.predict(ints, verbose=0), L.Hashing(num_bins=3)(ints))
    with pytest.raises(TypeError, match="runs on the host"):
        keras.Sequential([keras.Input((1,)), L.Dense(1), L.Hashing(num_bins=3)])


def _salted_golden():
    import json
    import os

    with open(os.path.join(os.path.dirname(__file__), "data", "hashing_salted_golden.json")) as f:
        return json.load(f)


def test_salted_hash_buckets_equal_tensorflows_to_hash_bucket_strong():
    """SipHash-2-4 keyed by two ints (read as uint64, negative ones too) modulo the bins,
    against TF 2.21's to_hash_bucket_strong (tests/data/make_hashing_salted_golden.py)."""
    pytest.importorskip("siphashc")
    from kgraph.keras.layers.preprocessing.hashing import hash_bucket

    golden = _salted_golden()
    assert len(golden["cases"]) == 20
    for case in golden["cases"]:
        key = [int(k) for k in case["key"]]
        got = [hash_bucket(s, case["num_bins"], key) for s in golden["strings"]]
        assert got == case["buckets"], case["key"]


def test_salted_hashing_layer_equals_keras():
    """`Hashing(salt=...)` (an int or a pair; mask_value; integer inputs hashed as decimal
    strings; one_hot) against Keras 3.15.1's layer on TensorFlow, config included."""
    pytest.importorskip("siphashc")
    for entry in _salted_golden()["layers"]:
        layer = L.Hashing(**entry["kwargs"])
        out = layer(np.array(entry["inputs"]))
        np.testing.assert_array_equal(np.asarray(out), np.array(entry["outputs"]))
        assert layer.get_config()["salt"] == entry["config"]["salt"]
        again = L.Hashing.from_config(layer.get_config())
        np.testing.assert_array_equal(np.asarray(again(np.array(entry["inputs"]))), out)
    unsalted = L.Hashing(num_bins=64)(np.array([["A"], ["B"]]))
    salted = L.Hashing(num_bins=64, salt=1337)(np.array([["A"], ["B"]]))
    assert not np.array_equal(unsalted, salted)


def test_salted_lookup_oov_buckets_equal_keras():
    """StringLookup / IntegerLookup(oov_method="farmhash") with a `salt`: the out-of-vocabulary
    bucket is the keyed hash, as Keras 3.15.1 on TensorFlow computes it."""
    pytest.importorskip("siphashc")
    for entry in _salted_golden()["lookups"]:
        layer = getattr(L, entry["class"])(**entry["kwargs"])
        np.testing.assert_array_equal(np.asarray(layer(np.array(entry["inputs"]))),
                                      entry["outputs"])
        assert layer.get_config()["salt"] == entry["salt"]
    with pytest.raises(ValueError, match="oov_method='farmhash'"):
        L.IntegerLookup(vocabulary=[1], num_oov_indices=2, salt=3)
    with pytest.raises(ValueError, match="IndexLookup"):
        L.StringLookup(vocabulary=["a"], salt=(1, 2, 3))
