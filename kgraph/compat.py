"""`tf.compat`'s text helpers, for code written against `import tensorflow as tf` that
reaches them (the keras.io image-classification example checks JPEG headers with
`tf.compat.as_bytes("JFIF")`)."""
from __future__ import annotations


def as_bytes(bytes_or_text, encoding="utf-8"):
    """`bytes` unchanged (a bytearray copied to bytes), `str` encoded."""
    if isinstance(bytes_or_text, (bytes, bytearray)):
        return bytes(bytes_or_text)
    if isinstance(bytes_or_text, str):
        return bytes_or_text.encode(encoding)
    raise TypeError(f"as_bytes expects bytes or str. Received: {bytes_or_text!r}")


def as_text(bytes_or_text, encoding="utf-8"):
    """`str` unchanged, `bytes` decoded."""
    if isinstance(bytes_or_text, str):
        return bytes_or_text
    if isinstance(bytes_or_text, (bytes, bytearray)):
        return bytes(bytes_or_text).decode(encoding)
    raise TypeError(f"as_text expects bytes or str. Received: {bytes_or_text!r}")


as_str = as_text
