"""Flatten and rebuild nested structures (lists, tuples, dicts) of tensors."""
from __future__ import annotations


def flatten(x) -> list:
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in flatten(item)]
    if isinstance(x, dict):
        return [leaf for k in sorted(x) for leaf in flatten(x[k])]
    return [x]


def pack_like(structure, leaves):
    return _build(structure, iter(leaves))


def _build(s, it):
    # A module-level function, not a recursive closure: a closure that refers to itself is a
    # reference cycle, which kept every batch packed here alive until a full garbage collection
    # (hundreds of MB when streaming data).
    if isinstance(s, (list, tuple)):
        return type(s)(_build(i, it) for i in s)
    if isinstance(s, dict):
        return {k: _build(s[k], it) for k in sorted(s)}
    return next(it)


def map_structure(fn, x):
    return pack_like(x, [fn(leaf) for leaf in flatten(x)])
