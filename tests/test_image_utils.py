"""keras.utils.array_to_img / img_to_array / save_img / load_img (Pillow)."""
import io

import numpy as np
import pytest

from kgraph import keras

PIL = pytest.importorskip("PIL")
utils = keras.utils


def test_array_to_img_rescales_to_0_255_and_picks_the_mode_by_channels():
    x = np.linspace(-1.0, 3.0, 2 * 3 * 3).reshape(2, 3, 3)
    img = utils.array_to_img(x)
    assert img.mode == "RGB" and img.size == (3, 2)
    f = x.astype("float32")  # Keras computes in floatx, then truncates to uint8
    want = ((f - f.min()) / (f - f.min()).max() * np.float32(255)).astype("uint8")
    np.testing.assert_array_equal(np.asarray(img), want)
    assert utils.array_to_img(np.zeros((2, 2, 4))).mode == "RGBA"
    assert utils.array_to_img(np.zeros((2, 2, 1))).mode == "L"
    assert utils.array_to_img(np.full((2, 2, 1), 300.0), scale=False).mode == "I"
    first = utils.array_to_img(np.moveaxis(x, -1, 0), data_format="channels_first")
    np.testing.assert_array_equal(np.asarray(first), want)


@pytest.mark.parametrize("bad, match", [(np.zeros((2, 2)), "rank-3"),
                                        (np.zeros((2, 2, 2)), "2 channels")])
def test_array_to_img_refuses_what_is_not_an_image(bad, match):
    with pytest.raises(ValueError, match=match):
        utils.array_to_img(bad)


def test_img_to_array_round_trip_and_grayscale_channel_axis():
    x = np.arange(2 * 3 * 3).reshape(2, 3, 3).astype("float32")
    back = utils.img_to_array(utils.array_to_img(x, scale=False))
    assert back.dtype == np.float32 and back.shape == (2, 3, 3)
    np.testing.assert_array_equal(back, x)
    gray = utils.img_to_array(utils.array_to_img(x[:, :, :1], scale=False))
    assert gray.shape == (2, 3, 1)
    assert utils.img_to_array(utils.array_to_img(x, scale=False),
                              data_format="channels_first").shape == (3, 2, 3)


def test_save_img_then_load_img(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (8, 6, 3)).astype("float32")
    path = tmp_path / "pic.png"
    utils.save_img(path, x, scale=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pic.png"]  # no temp file left
    img = utils.load_img(path)
    assert img.mode == "RGB" and img.size == (6, 8)
    np.testing.assert_array_equal(utils.img_to_array(img), x)
    assert utils.load_img(path, color_mode="grayscale").mode == "L"
    assert utils.load_img(str(path), target_size=(4, 3)).size == (3, 4)
    cropped = utils.load_img(path, target_size=(2, 2), keep_aspect_ratio=True)
    assert cropped.size == (2, 2)
    buffer = io.BytesIO(path.read_bytes())
    assert utils.load_img(buffer).size == (6, 8)
    with pytest.raises(ValueError, match="extension"):
        utils.save_img(tmp_path / "pic.unknown", x)
    with pytest.raises(ValueError, match="color_mode"):
        utils.load_img(path, color_mode="cmyk")
    with pytest.raises(ValueError, match="interpolation"):
        utils.load_img(path, target_size=(3, 3), interpolation="sideways")


def test_save_img_jpg_drops_alpha_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="RGBA"):
        utils.save_img(tmp_path / "a.jpg", np.ones((4, 4, 4)) * 100)
    assert utils.load_img(tmp_path / "a.jpg").size == (4, 4)
