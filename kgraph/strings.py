"""`tf.strings`: TensorFlow's string functions for the host-side code that handles text in
kgraph (a `TextVectorization` standardize callable, which gets one document as a Python
string; `Dataset.map` functions, which get numpy string arrays). Each takes a `str`, `bytes`,
a list of them or a numpy string array and gives the same kind back; nothing here enters a
compiled graph (kgraph's graphs hold no strings).

`regex_replace` uses Python's `re`, which agrees with TensorFlow's RE2 on the patterns text
pipelines write (character classes, literals, `\\s`, alternations); RE2-only syntax is refused by
`re` with its own error.
"""
from __future__ import annotations

import re

import numpy as np

__all__ = ["length", "lower", "regex_replace", "strip", "upper"]


def _each(fn, what, value):
    """`fn` over `value`: a str or bytes, or every item of a list / numpy string array."""
    if isinstance(value, (str, bytes)):
        return fn(value)
    if isinstance(value, np.generic) and value.dtype.kind in "USO":
        return fn(value.item())
    if isinstance(value, (list, tuple, np.ndarray)):
        array = np.asarray(value, dtype=object)
        out = np.empty(array.shape, dtype=object)
        for index, item in np.ndenumerate(array):
            out[index] = _each(fn, what, item)
        kinds = {type(v) for v in out.ravel()}
        if kinds == {str}:
            return out.astype(str)
        return out if kinds != {int} else out.astype(np.int32)
    raise TypeError(f"tf.strings.{what} takes text (str, bytes, a list or a numpy string "
                    f"array). Received: {type(value).__name__} {value!r:.80}")


def _text_op(text_fn, bytes_fn):
    def fn(value):
        return bytes_fn(value) if isinstance(value, bytes) else text_fn(value)
    return fn


def lower(input, encoding="", name=None):  # noqa: A002 - TensorFlow's argument name
    """`tf.strings.lower`: lowercase (Unicode-aware when `encoding="utf-8"`, ASCII otherwise,
    as TensorFlow)."""
    if encoding.lower().replace("-", "") == "utf8":
        return _each(_text_op(str.lower, lambda b: b.decode().lower().encode()),
                     "lower", input)
    return _each(_text_op(_ascii(str.lower), bytes.lower), "lower", input)


def upper(input, encoding="", name=None):  # noqa: A002
    """`tf.strings.upper`: uppercase (Unicode-aware when `encoding="utf-8"`, ASCII
    otherwise)."""
    if encoding.lower().replace("-", "") == "utf8":
        return _each(_text_op(str.upper, lambda b: b.decode().upper().encode()),
                     "upper", input)
    return _each(_text_op(_ascii(str.upper), bytes.upper), "upper", input)


def _ascii(case):
    """`case` on ASCII letters only (TensorFlow's default: other characters unchanged)."""
    def run(text):
        return "".join(case(c) if c.isascii() else c for c in text)
    return run


def regex_replace(input, pattern, rewrite, replace_global=True, name=None):  # noqa: A002
    """`tf.strings.regex_replace`: `pattern` matches replaced by `rewrite` (all of them, or
    the first when `replace_global=False`); `\\1` in `rewrite` names a group, as RE2."""
    count = 0 if replace_global else 1
    compiled = {}

    def sub(text):
        kind = type(text)
        key = kind
        if key not in compiled:
            p = pattern.encode() if kind is bytes and isinstance(pattern, str) else pattern
            compiled[key] = (re.compile(p), rewrite.encode()
                             if kind is bytes and isinstance(rewrite, str) else rewrite)
        regex, repl = compiled[key]
        return regex.sub(repl, text, count=count)
    return _each(sub, "regex_replace", input)


def strip(input, name=None):  # noqa: A002
    """`tf.strings.strip`: leading and trailing whitespace removed."""
    return _each(lambda t: t.strip(), "strip", input)


def length(input, unit="BYTE", name=None):  # noqa: A002
    """`tf.strings.length`: int32 lengths in bytes (`unit="BYTE"`, UTF-8) or characters
    (`unit="UTF8_CHAR"`)."""
    if unit not in ("BYTE", "UTF8_CHAR"):
        raise ValueError(f"tf.strings.length: unit must be 'BYTE' or 'UTF8_CHAR'. "
                         f"Received: unit={unit!r}")

    def size(text):
        if unit == "BYTE":
            return len(text if isinstance(text, bytes) else text.encode())
        return len(text.decode() if isinstance(text, bytes) else text)
    out = _each(size, "length", input)
    return np.int32(out) if isinstance(out, int) else out
