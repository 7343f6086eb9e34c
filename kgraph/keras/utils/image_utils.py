"""`keras.utils.array_to_img`, `img_to_array`, `save_img` and `load_img` (Pillow images;
`pip install pillow`).

As Keras: `array_to_img` rescales to [0, 255] by default and picks the PIL mode from the
channel count (4: RGBA, 3: RGB, 1: L, or I when values pass 255); `img_to_array` gives float32
(floatx) `(height, width, channels)`. `save_img` writes the encoded image atomically (a file
path is never left half-written).
"""
from __future__ import annotations

import io
import os
import warnings

import numpy as np

_COLOR_MODES = {"grayscale": ("L", "I;16", "I"), "rgb": ("RGB",), "rgba": ("RGBA",)}
_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")


def _pil():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("Images need Pillow: `pip install pillow`.") from None
    return Image


def _data_format(data_format):
    from kgraph import config

    value = str(data_format or config.image_data_format()).lower()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(f"`data_format` must be 'channels_last' or 'channels_first'. "
                         f"Received: data_format={data_format!r}")
    return value


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """A PIL Image of the rank-3 array `x` (`(height, width, channels)`, or channels first)."""
    from kgraph import config

    image = _pil()
    x = np.array(x, dtype=dtype or config.floatx())
    if x.ndim != 3:
        raise ValueError(f"array_to_img expects a rank-3 array (one image). Received: an "
                         f"array of shape {x.shape}")
    if _data_format(data_format) == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        top = np.max(x)
        if top != 0:
            x = x / top
        x = x * 255
    channels = x.shape[2]
    if channels == 4:
        return image.fromarray(x.astype("uint8"), "RGBA")
    if channels == 3:
        return image.fromarray(x.astype("uint8"), "RGB")
    if channels == 1:
        if np.max(x) > 255:  # 32-bit grayscale
            return image.fromarray(x[:, :, 0].astype("int32"), "I")
        return image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"array_to_img: images have 1, 3 or 4 channels. Received: an array of "
                     f"shape {x.shape} ({channels} channels)")


def img_to_array(img, data_format=None, dtype=None):
    """The PIL Image `img` as a rank-3 array (a channel axis added to grayscale)."""
    from kgraph import config

    x = np.asarray(img, dtype=dtype or config.floatx())
    first = _data_format(data_format) == "channels_first"
    if x.ndim == 2:
        return x[None] if first else x[:, :, None]
    if x.ndim != 3:
        raise ValueError(f"img_to_array: unsupported image shape {x.shape}")
    return x.transpose(2, 0, 1) if first else x


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Encode the array `x` as an image file at `path` (a path or a binary file object);
    the format comes from `file_format` or the file name's extension."""
    from kgraph.runtime.atomic_file import atomic_write_bytes

    if file_format is not None and file_format.lower() == "jpg":
        file_format = "jpeg"
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and (file_format or _extension(path)) in ("jpeg", "jpg"):
        warnings.warn("The JPEG format does not support RGBA images, converting to RGB.")
        img = img.convert("RGB")
    if hasattr(path, "write"):
        img.save(path, format=file_format, **kwargs)
        return
    path = os.fspath(path)
    if file_format is None:
        file_format = _pil().registered_extensions().get("." + _extension(path))
        if file_format is None:
            raise ValueError(f"save_img: cannot tell the image format of {path!r} from its "
                             f"extension; pass file_format=")
    buffer = io.BytesIO()
    img.save(buffer, format=file_format, **kwargs)
    atomic_write_bytes(path, buffer.getvalue())


def _extension(path) -> str:
    return os.path.splitext(str(getattr(path, "name", path)))[1].lower().lstrip(".")


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest",
             keep_aspect_ratio=False):
    """The image file at `path` (a path or a BytesIO) as a PIL Image in `color_mode`,
    resized to `target_size` `(height, width)` when given (center-cropped to its aspect
    ratio first with `keep_aspect_ratio`)."""
    image = _pil()
    if color_mode not in _COLOR_MODES:
        raise ValueError(f"color_mode must be one of {sorted(_COLOR_MODES)}. Received: "
                         f"color_mode={color_mode!r}")
    if isinstance(path, io.BytesIO):
        img = image.open(path)
    elif isinstance(path, (str, bytes, os.PathLike)):
        with open(path, "rb") as f:
            img = image.open(io.BytesIO(f.read()))
    else:
        raise TypeError(f"load_img: path must be a path or io.BytesIO. Received: {path!r}")
    if img.mode not in _COLOR_MODES[color_mode]:
        img = img.convert(_COLOR_MODES[color_mode][0])
    if target_size is None:
        return img
    size = (int(target_size[1]), int(target_size[0]))  # PIL: (width, height)
    if img.size == size:
        return img
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {list(_INTERPOLATIONS)}. Received: "
                         f"interpolation={interpolation!r}")
    resample = getattr(image.Resampling, interpolation.upper())
    box = None
    if keep_aspect_ratio:
        width, height = img.size
        crop_h = min(height, (width * size[1]) // size[0])
        crop_w = min(width, (height * size[0]) // size[1])
        left, top = (width - crop_w) // 2, (height - crop_h) // 2
        box = (left, top, left + crop_w, top + crop_h)
    return img.resize(size, resample, box=box)
