"""tf.strings (host-side text functions), tf.io.read_file/write_file and the tf.image decoders
(Pillow), as TensorFlow code uses them in standardize callables and Dataset.map functions."""
import io
import re
import string

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras


def test_lower_upper_strip_length_keep_the_kind_given():
    assert tf.strings.lower("<Start> A, B!") == "<start> a, b!"
    assert tf.strings.upper(b"abc") == b"ABC"
    # TensorFlow's default lowercases ASCII only; encoding="utf-8" lowercases any letter
    assert tf.strings.lower("ÀB") == "Àb" and tf.strings.lower("ÀB", encoding="utf-8") == "àb"
    out = tf.strings.lower(np.array([["Ab", "CD"], ["e", "F"]]))
    assert out.dtype.kind == "U" and out.tolist() == [["ab", "cd"], ["e", "f"]]
    assert tf.strings.strip(["  a ", "b\n"]).tolist() == ["a", "b"]
    np.testing.assert_array_equal(tf.strings.length(["ab", "é"]), [2, 2])
    np.testing.assert_array_equal(tf.strings.length(["ab", "é"], unit="UTF8_CHAR"), [2, 1])
    assert tf.strings.length("abc") == 3


def test_regex_replace_as_re2_on_text_pipeline_patterns():
    strip_chars = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".replace("<", "").replace(">", "")
    text = "<start> A dog, running! <end>"
    got = tf.strings.regex_replace(tf.strings.lower(text), "[%s]" % re.escape(strip_chars), "")
    assert got == "<start> a dog running <end>"
    assert tf.strings.regex_replace(b"a<br />b", "<br />", " ") == b"a b"
    assert tf.strings.regex_replace("aaa", "a", "b", replace_global=False) == "baa"
    assert tf.strings.regex_replace("ab", "(a)(b)", r"\2\1") == "ba"


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="tf.strings.lower takes text"):
        tf.strings.lower(3.5)
    with pytest.raises(ValueError, match="unit must be"):
        tf.strings.length("a", unit="CHAR")
    with pytest.raises(TypeError, match="one path"):
        tf.io.read_file(["a", "b"])


def test_text_vectorization_with_a_tf_strings_standardize_callable():
    punctuation = f"[{re.escape(string.punctuation)}]"

    def standardize(text):
        return tf.strings.regex_replace(tf.strings.lower(text), punctuation, "")

    layer = keras.layers.TextVectorization(output_mode="int", output_sequence_length=4,
                                           standardize=standardize)
    layer.adapt(["The Cat, sat.", "the DOG!"])
    assert set(layer.get_vocabulary()) == {"", "[UNK]", "the", "cat", "sat", "dog"}
    vocab = layer.get_vocabulary()
    np.testing.assert_array_equal(layer(["Dog cat?"]),
                                  [[vocab.index("dog"), vocab.index("cat"), 0, 0]])


def _encoded(array, fmt):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


def test_read_file_and_decoders(tmp_path):
    pytest.importorskip("PIL")
    rgb = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    gray = rgb[:, :, 0].copy()
    (tmp_path / "a.png").write_bytes(_encoded(rgb, "PNG"))
    (tmp_path / "g.bmp").write_bytes(_encoded(gray, "BMP"))
    tf.io.write_file(str(tmp_path / "a.jpg"), _encoded(rgb, "JPEG"))

    contents = tf.io.read_file(np.array(str(tmp_path / "a.png")))  # a 0-d string tensor
    assert isinstance(contents, bytes)
    image = tf.image.decode_png(contents, channels=3)
    assert image.dtype == np.uint8 and hasattr(image, "numpy")
    np.testing.assert_array_equal(image, rgb)
    np.testing.assert_array_equal(tf.io.decode_png(contents, channels=4)[:, :, 3], 255)
    labels = tf.image.decode_bmp(tf.io.read_file(str(tmp_path / "g.bmp")), channels=0)
    np.testing.assert_array_equal(labels, gray[:, :, None])
    jpeg = tf.image.decode_jpeg(tf.io.read_file(str(tmp_path / "a.jpg")), channels=3)
    from PIL import Image

    with Image.open(tmp_path / "a.jpg") as decoded:  # lossy: Pillow's own decoding
        np.testing.assert_array_equal(jpeg, np.asarray(decoded.convert("RGB")))
    as_float = tf.image.decode_image(contents, channels=3, dtype="float32")
    np.testing.assert_allclose(as_float, rgb / 255.0, atol=1e-6)
    with pytest.raises(ValueError, match="channels must be"):
        tf.image.decode_png(contents, channels=2)
    with pytest.raises(TypeError, match="encoded image's bytes"):
        tf.image.decode_png(rgb)


def test_decoding_in_a_dataset_map(tmp_path):
    pytest.importorskip("PIL")
    rng = np.random.default_rng(1)
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        path.write_bytes(_encoded(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), "PNG"))
        paths.append(str(path))

    def load(path):
        image = tf.image.decode_png(tf.io.read_file(path), channels=3)
        return tf.image.resize(image, (4, 4))

    batch = next(iter(tf.data.Dataset.from_tensor_slices(paths).map(
        load, num_parallel_calls=tf.data.AUTOTUNE).batch(3)))
    assert batch.shape == (3, 4, 4, 3)
