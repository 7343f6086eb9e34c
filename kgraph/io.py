"""`tf.io`: reading and writing whole files, for the `Dataset.map` functions of TensorFlow
code (`tf.image.decode_png(tf.io.read_file(path), channels=3)`). kgraph runs such maps in
Python on the host, so a file's contents are `bytes`, as a TensorFlow scalar string tensor's
`.numpy()` is."""
from __future__ import annotations

import os

import numpy as np

from kgraph.image import decode_bmp, decode_image, decode_jpeg, decode_png  # noqa: F401

__all__ = ["decode_bmp", "decode_image", "decode_jpeg", "decode_png", "read_file", "write_file"]


def _path(filename, what):
    if isinstance(filename, np.ndarray) and filename.ndim == 0:
        filename = filename.item()
    if isinstance(filename, np.generic):
        filename = filename.item()
    if isinstance(filename, bytes):
        filename = filename.decode()
    if not isinstance(filename, (str, os.PathLike)):
        raise TypeError(f"tf.io.{what}: filename must be one path (a string). Received: "
                        f"{type(filename).__name__} {filename!r:.80}")
    return filename


def read_file(filename, name=None):
    """The contents of `filename` as `bytes`."""
    with open(_path(filename, "read_file"), "rb") as handle:
        return handle.read()


def write_file(filename, contents, name=None):
    """Write `contents` (bytes or text) to `filename`, replacing it."""
    if isinstance(contents, np.ndarray) and contents.ndim == 0:
        contents = contents.item()
    data = contents.encode() if isinstance(contents, str) else bytes(contents)
    with open(_path(filename, "write_file"), "wb") as handle:
        handle.write(data)
