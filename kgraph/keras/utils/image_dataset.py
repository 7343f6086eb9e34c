"""`keras.utils.image_dataset_from_directory` (Pillow decodes; `pip install pillow`)."""
from __future__ import annotations

import numpy as np

from kgraph.keras.utils.dataset_utils import FileDecodeError, _per_subset

FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_MODES = {"rgb": ("RGB", 3), "rgba": ("RGBA", 4), "grayscale": ("L", 1)}


def load_image(path, image_size, color_mode="rgb", interpolation="bilinear",
               crop_to_aspect_ratio=False):
    """A float32 `(height, width, channels)` array of the image at `path`, resized."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("Reading images needs Pillow: `pip install pillow`.") from None
    mode, _ = _MODES[color_mode]
    try:
        with Image.open(path) as image:
            image = image.convert(mode)
            height, width = image_size
            if crop_to_aspect_ratio:
                image = _center_crop(image, width / height)
            resample = getattr(Image.Resampling, interpolation.upper(), None)
            if resample is None:
                raise ValueError(f"unknown interpolation {interpolation!r}")
            image = image.resize((width, height), resample)
            array = np.asarray(image, dtype="float32")
    except (OSError, SyntaxError) as error:
        raise FileDecodeError(f"Could not decode the image {path!r}: {error}") from error
    return array[..., None] if array.ndim == 2 else array


def _center_crop(image, aspect):
    width, height = image.size
    crop_w, crop_h = min(width, int(round(height * aspect))), min(height,
                                                                   int(round(width / aspect)))
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return image.crop((left, top, left + crop_w, top + crop_h))


def image_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                 class_names=None, color_mode="rgb", batch_size=32,
                                 image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None, interpolation="bilinear",
                                 follow_links=False, crop_to_aspect_ratio=False,
                                 pad_to_aspect_ratio=False, data_format=None, verbose=True):
    """A dataset of `(images, labels)` batches from image files in class folders.

    Images are decoded by Pillow when their batch is read (float32, `(batch, height, width,
    channels)`), so only the batches in flight are in memory. Labels are the index of the
    sorted class folder (`label_mode="int"`), one-hot (`"categorical"`), float 0/1
    (`"binary"`), or absent (`None`). With `validation_split`, `subset` ("training",
    "validation" or "both") and a `seed`, the two subsets are disjoint. A file that fails to
    decode raises `FileDecodeError` naming it.

    Example:
        >>> train, val = image_dataset_from_directory("photos", validation_split=0.2,
        ...     subset="both", seed=1, image_size=(64, 64), batch_size=16)
    """
    if color_mode not in _MODES:
        raise ValueError(f"`color_mode` must be 'rgb', 'rgba' or 'grayscale'. Received: "
                         f"color_mode={color_mode!r}")
    size = tuple(int(s) for s in image_size)
    return _per_subset(directory, labels, label_mode, class_names, FORMATS, batch_size, shuffle,
                       seed, validation_split, subset, follow_links,
                       lambda p: load_image(p, size, color_mode, interpolation,
                                            crop_to_aspect_ratio))
