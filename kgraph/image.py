"""`tf.image`: the image functions of `import tensorflow as tf` code (the keras.io involution
example's `tf.image.extract_patches`), each the `keras.ops.image` function of the same
meaning under TensorFlow's argument names and conventions."""
from __future__ import annotations

import numpy as np

from kgraph.image_codecs import decode_bmp, decode_image, decode_jpeg, decode_png  # noqa: F401
from kgraph.keras import ops
from kgraph.ops.api_util import shape_of

__all__ = ["central_crop", "convert_image_dtype", "crop_to_bounding_box", "decode_bmp",
           "decode_image", "decode_jpeg", "decode_png", "extract_patches",
           "flip_left_right", "image_gradients", "pad_to_bounding_box", "psnr", "random_crop",
           "random_flip_left_right", "resize", "rgb_to_grayscale", "rgb_to_yuv", "rot90",
           "sample_distorted_bounding_box", "ssim"]


def _spatial(values, what):
    """TensorFlow's 4-element `[1, h, w, 1]` window arguments as `(h, w)`."""
    values = [int(v) for v in values]
    if len(values) != 4 or values[0] != 1 or values[3] != 1:
        raise ValueError(f"tf.image.extract_patches: {what} must be [1, rows, cols, 1]. "
                         f"Received: {what}={values}")
    return values[1], values[2]


def extract_patches(images, sizes, strides, rates, padding, name=None):
    """`tf.image.extract_patches`: each `sizes` window of `(batch, h, w, c)` images flattened
    into the channels (`rows * cols * c` values, row-major, channels fastest).

    Args:
        images: `(batch, h, w, c)` tensor.
        sizes, strides, rates: `[1, rows, cols, 1]` window size, step and dilation.
        padding: `"VALID"` or `"SAME"`.

    Returns:
        `(batch, out_rows, out_cols, rows * cols * c)`.

    Example:
    >>> extract_patches(np.zeros((1, 4, 4, 1)), [1, 2, 2, 1], [1, 2, 2, 1], [1, 1, 1, 1],
    ...                 "VALID").shape
    (1, 2, 2, 4)
    """
    return ops.image.extract_patches(
        images, _spatial(sizes, "sizes"), strides=_spatial(strides, "strides"),
        dilation_rate=_spatial(rates, "rates"), padding=str(padding).lower(),
        data_format="channels_last")


class ResizeMethod:
    """`tf.image.ResizeMethod`: the `method` names `resize` takes (TensorFlow's values)."""

    BILINEAR = "bilinear"
    NEAREST_NEIGHBOR = "nearest"
    BICUBIC = "bicubic"
    AREA = "area"
    LANCZOS3 = "lanczos3"
    LANCZOS5 = "lanczos5"


def resize(images, size, method="bilinear", preserve_aspect_ratio=False, antialias=False,
           name=None):
    """`tf.image.resize`: `(h, w, c)` or `(batch, h, w, c)` images to `size`, as float32
    whatever the input dtype (TensorFlow's rule; the keras.io MobileViT example's uint8
    images). `method` is "bilinear", "nearest" or "area" (the mean of the input pixels each
    output pixel covers, by overlap)."""
    if preserve_aspect_ratio:
        raise ValueError("tf.image.resize: preserve_aspect_ratio=True is not supported by "
                         "kgraph; resize to the size you want. Received: "
                         "preserve_aspect_ratio=True")
    return ops.image.resize(ops.cast(images, "float32"), tuple(size), interpolation=method,
                            antialias=antialias, data_format="channels_last")


# TensorFlow's RGB -> YUV matrix (BT.601: Y = 0.299 R + 0.587 G + 0.114 B, U and V the
# scaled B - Y and R - Y), applied as `rgb @ matrix` over the channel axis
_RGB_TO_YUV = np.asarray([[0.299, -0.14714119, 0.61497538],
                          [0.587, -0.28886916, -0.51496512],
                          [0.114, 0.43601035, -0.10001026]], np.float32)


def rgb_to_yuv(images):
    """`tf.image.rgb_to_yuv`: `(..., 3)` RGB values in [0, 1] to YUV (Y in [0, 1], U and V
    centred on 0), keeping a float input's dtype (integer images are taken as float32)."""
    dtype = str(getattr(images, "dtype", "float32"))
    dtype = dtype if dtype.startswith(("float", "bfloat")) else "float32"
    images = ops.cast(images, dtype)
    return ops.matmul(images, ops.cast(_RGB_TO_YUV, dtype))


def _image_dtype(dtype, what):
    dtype = np.dtype(str(dtype))
    if dtype.kind not in "uif":
        raise ValueError(f"tf.image.{what}: images must be of an integer or floating dtype. "
                         f"Received: dtype={dtype.name}")
    return dtype


def convert_image_dtype(image, dtype, saturate=False, name=None):
    """`tf.image.convert_image_dtype`: `image` as `dtype`, its values rescaled to the range
    images of that dtype use: [0, 1] for floats, [0, MAX] for integers (a uint8 255 is a
    float 1.0 and back). Floats to integers multiply by `MAX + 0.5` and truncate (values
    are expected in [0, 1); `saturate=True` clips to the integer range first); integers to
    integers rescale by the power of two between their ranges; floats to floats only cast.

    Args:
        image: an image tensor of an integer or floating dtype.
        dtype: the dtype to convert to (`tf.float32`, `"uint8"`, ...).
        saturate: clip before a float-to-integer cast (no wrap-around).

    Returns:
        `image` as `dtype`; `image` itself when it already has that dtype.

    Example:
    >>> convert_image_dtype(np.uint8([0, 255]), "float32")
    array([0., 1.], dtype=float32)
    """
    # (not `getattr(image, "dtype", np.asarray(image).dtype)`: the default is evaluated
    # first, and np.asarray of a traced image reads it element by element)
    source = _image_dtype(_dtype_of(image), "convert_image_dtype")
    target = _image_dtype(dtype, "convert_image_dtype")
    if source == target:
        return image
    if source.kind == "f" and target.kind == "f":
        return ops.cast(image, target.name)
    if target.kind == "f":  # integer -> float: 0..MAX onto 0..1
        return ops.cast(image, target.name) * np.asarray(1.0 / np.iinfo(source).max, target)
    if source.kind == "f":  # float -> integer: 0..1 onto 0..MAX, truncated
        info = np.iinfo(target)
        scaled = image * np.asarray(info.max + 0.5, source)
        if saturate:
            scaled = ops.clip(scaled, np.asarray(info.min, source), np.asarray(info.max, source))
        return ops.cast(scaled, target.name)
    # integer -> integer: ranges differ by a power of two (2^8 between uint8 and uint16)
    source_range, target_range = np.iinfo(source).max + 1, np.iinfo(target).max + 1
    if source_range > target_range:
        return ops.cast(ops.floor_divide(image, np.asarray(source_range // target_range,
                                                           source)), target.name)
    return ops.cast(image, target.name) * np.asarray(target_range // source_range, target)


def rgb_to_grayscale(images, name=None):
    """`tf.image.rgb_to_grayscale`: `(..., 3)` RGB images to `(..., 1)` luma
    (`0.2989 R + 0.587 G + 0.114 B`), computed on float32 values in [0, 1] and converted back
    to the images' dtype (`convert_image_dtype`: a uint8 image stays uint8, 0..255)."""
    dtype = _image_dtype(_dtype_of(images), "rgb_to_grayscale")
    gray = ops.image.rgb_to_grayscale(convert_image_dtype(images, "float32"),
                                      data_format="channels_last")
    return convert_image_dtype(gray, dtype.name)


def sample_distorted_bounding_box(image_size, bounding_boxes, seed=None,
                                  min_object_covered=0.1, aspect_ratio_range=(0.75, 1.33),
                                  area_range=(0.05, 1.0), max_attempts=100,
                                  use_image_if_no_bounding_boxes=None, name=None):
    """`tf.image.sample_distorted_bounding_box`, eagerly (a `tf.data` map's function, as in
    keras.io's FixRes example): a random crop box of the image whose area is a fraction in
    `area_range` of the image's and whose aspect ratio (width / height) is in
    `aspect_ratio_range`, covering at least `min_object_covered` of one of `bounding_boxes`
    (`[ymin, xmin, ymax, xmax]` fractions, shape `(batch, n, 4)`; none given: the whole image,
    with `use_image_if_no_bounding_boxes`). After `max_attempts` failed draws the whole image.

    Returns:
        `(begin, size, bboxes)` for `tf.slice(image, begin, size)`: int32 `[y, x, 0]`,
        `[height, width, -1]`, and the box as float32 fractions of shape `(1, 1, 4)`.
    """
    from kgraph.ops.api_util import is_symbolic

    if is_symbolic(image_size) or is_symbolic(bounding_boxes):
        raise TypeError("tf.image.sample_distorted_bounding_box runs eagerly in kgraph (a "
                        "tf.data map function, or on arrays). Received a traced tensor.")
    height, width = (int(v) for v in np.asarray(image_size).reshape(-1)[:2])
    boxes = np.asarray(bounding_boxes, np.float32).reshape(-1, 4)
    if boxes.shape[0] == 0:
        if not use_image_if_no_bounding_boxes:
            raise ValueError("tf.image.sample_distorted_bounding_box: no bounding boxes; pass "
                             "use_image_if_no_bounding_boxes=True to use the whole image. "
                             f"Received: bounding_boxes of shape {np.shape(bounding_boxes)}")
        boxes = np.array([[0.0, 0.0, 1.0, 1.0]], np.float32)
    # numpy's global generator (seeded by `keras.utils.set_random_seed`) picks the stream
    rng = np.random.default_rng(np.random.randint(2**31) if seed is None else seed)
    for _ in range(int(max_attempts)):
        area = rng.uniform(*area_range) * height * width
        ratio = rng.uniform(*aspect_ratio_range)
        h, w = int(round(np.sqrt(area / ratio))), int(round(np.sqrt(area * ratio)))
        if not (0 < h <= height and 0 < w <= width):
            continue
        y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        if _covers(boxes, (y, x, h, w), (height, width), min_object_covered):
            break
    else:
        y, x, h, w = 0, 0, height, width
    box = np.array([[[y / height, x / width, (y + h) / height, (x + w) / width]]], np.float32)
    return (ops.convert_to_tensor(np.array([y, x, 0], np.int32)),
            ops.convert_to_tensor(np.array([h, w, -1], np.int32)), ops.convert_to_tensor(box))


def _covers(boxes, crop, image, fraction):
    """Whether the crop `(y, x, h, w)` covers at least `fraction` of the area of one box."""
    y, x, h, w = crop
    for ymin, xmin, ymax, xmax in boxes * np.array([image[0], image[1]] * 2, np.float32):
        inter = max(0.0, min(ymax, y + h) - max(ymin, y)) * max(0.0, min(xmax, x + w) -
                                                             max(xmin, x))
        area = max(ymax - ymin, 0.0) * max(xmax - xmin, 0.0)
        if area == 0.0 or inter / area >= fraction:
            return True
    return False


def _dtype_of(image):
    return image.dtype if hasattr(image, "dtype") else np.asarray(image).dtype


def random_crop(value, size, seed=None, name=None):
    """`tf.image.random_crop`: a `size` block of `value` at a random offset (uniform on each
    axis that `size` shortens); eagerly or traced, a fresh offset each call or step.

    Args:
        value: a tensor, e.g. one `(h, w, c)` image.
        size: one int per axis of `value`, each at most that axis' size.
        seed: int, `keras.random.SeedGenerator` or None.
    """
    from kgraph import random
    from kgraph.ops import movement

    size = [int(s) for s in size]
    dims = shape_of(value)  # static: an unknown (batch) axis is kept whole
    if len(size) != len(dims) or any(d is not None and s > d for s, d in zip(size, dims)):
        raise ValueError(f"tf.image.random_crop: size must have one entry per axis of the "
                         f"value, each at most its size. Received: size={size} for a value "
                         f"of shape {tuple(dims)}")
    # an unknown (batch) axis is kept whole: size names its full runtime length there
    for axis, (extra, keep) in enumerate((0 if d is None else d - s, s)
                                         for s, d in zip(size, dims)):
        if extra > 0:
            u = random.uniform((), seed=seed)
            start = ops.cast(ops.floor(u * np.float32(extra + 1)), "int64")
            value = movement.dynamic_slice(value, start, start + np.int64(keep), axis)
            value = movement.reshape_to(value, [*shape_of(value)[:axis], keep,
                                                *shape_of(value)[axis + 1:]])
    return value


def random_flip_left_right(image, seed=None):
    """`tf.image.random_flip_left_right`: `(h, w, c)` or `(batch, h, w, c)` images mirrored
    along the width with probability 1/2 (each image of a batch on its own draw)."""
    from kgraph import random

    coin = random.uniform(ops.shape(image)[:-3] + (1, 1, 1), seed=seed)
    return ops.where(coin < np.float32(0.5), ops.flip(image, axis=-2), image)


def flip_left_right(image):
    """`tf.image.flip_left_right`: `(h, w, c)` or `(batch, h, w, c)` images mirrored along
    the width."""
    return ops.flip(image, axis=-2)


def rot90(image, k=1, name=None):
    """`tf.image.rot90`: `(h, w, c)` or `(batch, h, w, c)` images rotated counter-clockwise
    by `k` quarter turns. `k` may be an int or a concrete integer tensor (the keras.io EDSR
    example's `tf.random.uniform(..., dtype=tf.int32)` count inside `Dataset.map`); a
    traced `k` would change the output shape with its value, so it is refused."""
    from kgraph.ir.graph import Value

    if isinstance(k, Value):
        raise TypeError("tf.image.rot90: `k` must be known when the image is rotated (an int "
                        "or an eager tensor); a traced k would give the result a shape that "
                        f"depends on its value. Received: k={k!r}")
    rank = len(ops.shape(image))
    if rank not in (3, 4):
        raise ValueError(f"tf.image.rot90: image must have rank 3 or 4. Received: "
                         f"shape={tuple(ops.shape(image))}")
    return ops.rot90(image, int(k), axes=(rank - 3, rank - 2))


def image_gradients(image):
    """`tf.image.image_gradients`: `(dy, dx)`, each pixel's forward difference to the pixel
    below / to its right in `(batch, h, w, c)` images, zero on the last row / column (the
    keras.io depth-estimation example's edge loss)."""
    x = ops.convert_to_tensor(image)
    if len(shape_of(x)) != 4:
        raise ValueError(f"tf.image.image_gradients: image must be 4-D (batch, height, width, "
                         f"channels). Received shape {tuple(shape_of(x))}")
    dy = ops.pad(x[:, 1:] - x[:, :-1], [[0, 0], [0, 1], [0, 0], [0, 0]])
    dx = ops.pad(x[:, :, 1:] - x[:, :, :-1], [[0, 0], [0, 0], [0, 1], [0, 0]])
    return dy, dx


def psnr(a, b, max_val, name=None):
    """`tf.image.psnr`: the peak signal-to-noise ratio of each image of `a` against `b`,
    `20 log10(max_val) - 10 log10(mse)` over the last three axes. TensorFlow scales
    integer images and `max_val` into [0, 1] first; the ratio does not change under that
    common scale, so all three are taken as float32."""
    a, b = ops.cast(a, "float32"), ops.cast(b, "float32")
    mse = ops.mean(ops.square(a - b), axis=(-3, -2, -1))
    peak = np.float32(20.0 * np.log10(float(max_val)))
    return peak - np.float32(10.0 / np.log(10.0)) * ops.log(mse)


def _height_width(image, what):
    dims = shape_of(image)
    if len(dims) not in (3, 4) or None in dims[-3:-1]:
        raise ValueError(f"tf.image.{what}: image must be (h, w, c) or (batch, h, w, c) with "
                         f"known h and w. Received: shape={tuple(dims)}")
    return int(dims[-3]), int(dims[-2])


def crop_to_bounding_box(image, offset_height, offset_width, target_height, target_width):
    """`tf.image.crop_to_bounding_box`: the `target_height x target_width` window of
    `(h, w, c)` or `(batch, h, w, c)` images whose top-left corner is at the offsets (the
    keras.io ShiftViT example's shift: crop, then pad back)."""
    height, width = _height_width(image, "crop_to_bounding_box")
    if (min(offset_height, offset_width) < 0 or offset_height + target_height > height
            or offset_width + target_width > width or min(target_height, target_width) < 1):
        raise ValueError(f"tf.image.crop_to_bounding_box: the box must lie inside the "
                         f"{height}x{width} image. Received: offset=({offset_height}, "
                         f"{offset_width}), target=({target_height}, {target_width})")
    return image[..., offset_height:offset_height + target_height,
                 offset_width:offset_width + target_width, :]


def central_crop(image, central_fraction):
    """`tf.image.central_crop`: the centre of `(h, w, c)` or `(batch, h, w, c)` images,
    `central_fraction` of each side (TensorFlow's box: `int((h - h * fraction) / 2)` rows
    off the top and as many off the bottom, the same for the width)."""
    fraction = float(central_fraction)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"tf.image.central_crop: central_fraction must be within (0, 1]. "
                         f"Received: central_fraction={central_fraction!r}")
    height, width = _height_width(image, "central_crop")
    top, left = int((height - height * fraction) / 2), int((width - width * fraction) / 2)
    return crop_to_bounding_box(image, top, left, height - 2 * top, width - 2 * left)


def pad_to_bounding_box(image, offset_height, offset_width, target_height, target_width):
    """`tf.image.pad_to_bounding_box`: `(h, w, c)` or `(batch, h, w, c)` images placed at the
    offsets in zeros of `target_height x target_width`."""
    height, width = _height_width(image, "pad_to_bounding_box")
    below, right = target_height - offset_height - height, target_width - offset_width - width
    if min(offset_height, offset_width, below, right) < 0:
        raise ValueError(f"tf.image.pad_to_bounding_box: the {height}x{width} image at offset "
                         f"({offset_height}, {offset_width}) must fit in the target. Received: "
                         f"target=({target_height}, {target_width})")
    pads = [(0, 0)] * (len(ops.shape(image)) - 3) + [(offset_height, below),
                                                     (offset_width, right), (0, 0)]
    return ops.pad(image, pads)


def ssim(img1, img2, max_val, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03,
         return_index_map=False):
    """`tf.image.ssim`: the structural similarity of `(h, w, c)` or `(batch, h, w, c)` images,
    TensorFlow's computation (a Gaussian window of `filter_size`, 'valid', the luminance times
    the contrast-structure term, averaged over the windows and channels), which is
    `keras.ops.image.ssim`'s. As TensorFlow, integer images and `max_val` are first converted
    by `convert_image_dtype` (a uint8 image with `max_val=255` is compared in [0, 1]).

    Args:
        img1, img2: images of one shape, channels last.
        max_val: the dynamic range of the values (255 for uint8, 1.0 for floats in [0, 1]).
        filter_size, filter_sigma, k1, k2: as TensorFlow.
        return_index_map: the per-window map is not given by kgraph (must be False).

    Returns:
        float32 `(batch,)` values (a scalar for one image).

    Example:
    >>> image = np.random.default_rng(0).integers(0, 256, (16, 16, 3)).astype("uint8")
    >>> float(ssim(image, image, max_val=255))
    1.0
    """
    if return_index_map:
        raise NotImplementedError("tf.image.ssim: return_index_map=True is not supported by "
                                  "kgraph; the per-image values are (return_index_map=False)")
    # (getattr's default would be evaluated first: np.asarray of a traced image fails)
    dtype = img1.dtype if hasattr(img1, "dtype") else np.asarray(img1).dtype
    scale = convert_image_dtype(np.asarray(max_val, _image_dtype(dtype, "ssim")), "float32")
    return ops.image.ssim(convert_image_dtype(img1, "float32"),
                          convert_image_dtype(img2, "float32"), max_val=float(scale),
                          filter_size=filter_size, filter_sigma=filter_sigma, k1=k1, k2=k2,
                          data_format="channels_last")



def _eager_results():
    # Eager results are TensorFlow's eager tensors, as tf_names' (`tf.image.resize(img,
    # size).numpy()` in the keras.io sample-size example); traced values pass through.
    from kgraph.tf_names import eager_tensors

    for name in __all__:
        globals()[name] = eager_tensors(globals()[name])


_eager_results()
