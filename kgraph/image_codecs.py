"""`tf.image.decode_jpeg/decode_png/decode_bmp/decode_image` (also under `tf.io`): encoded
image bytes (`tf.io.read_file`) to a `(height, width, channels)` array, decoded by Pillow on the
host, for the `Dataset.map` functions of TensorFlow code."""
from __future__ import annotations

import io

import numpy as np

__all__ = ["decode_bmp", "decode_image", "decode_jpeg", "decode_png"]

_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _decode(contents, channels, what, dtype="uint8"):
    from kgraph.keras.utils.image_utils import _pil

    if isinstance(contents, np.ndarray) and contents.ndim == 0:
        contents = contents.item()
    if not isinstance(contents, (bytes, bytearray)):
        raise TypeError(f"tf.image.{what}: contents must be the encoded image's bytes "
                        f"(tf.io.read_file). Received: {type(contents).__name__}")
    channels = int(channels)
    if channels not in (0, 1, 3, 4):
        raise ValueError(f"tf.image.{what}: channels must be 0 (as in the file), 1, 3 or 4. "
                         f"Received: channels={channels}")
    Image = _pil()
    with Image.open(io.BytesIO(contents)) as image:
        if channels:
            image = image.convert(_MODES[channels])
        elif image.mode not in ("L", "RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if np.dtype(dtype) != np.uint8:
        from kgraph.image import convert_image_dtype

        return convert_image_dtype(array, dtype)
    return array


def decode_jpeg(contents, channels=0, ratio=1, fancy_upscaling=True,
                try_recover_truncated=False, acceptable_fraction=1, dct_method="", name=None):
    """`tf.image.decode_jpeg`: uint8 `(h, w, channels)`; `channels=0` keeps the file's."""
    if ratio != 1:
        raise NotImplementedError(f"tf.image.decode_jpeg: ratio={ratio} (downscaled "
                                  f"decoding) is not supported; resize after decoding")
    return _decode(contents, channels, "decode_jpeg")


def decode_png(contents, channels=0, dtype="uint8", name=None):
    """`tf.image.decode_png`: `(h, w, channels)` in `dtype` (uint8; 16-bit files as uint8
    too)."""
    return _decode(contents, channels, "decode_png", dtype)


def decode_bmp(contents, channels=0, name=None):
    """`tf.image.decode_bmp`: uint8 `(h, w, channels)`."""
    return _decode(contents, channels, "decode_bmp")


def decode_image(contents, channels=None, dtype="uint8", name=None,
                 expand_animations=True):
    """`tf.image.decode_image`: a JPEG, PNG, BMP or GIF's first frame as `(h, w, c)`."""
    return _decode(contents, channels or 0, "decode_image", dtype)
