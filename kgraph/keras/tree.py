"""Flatten and rebuild nested structures (lists, tuples, dicts) of tensors."""
from __future__ import annotations


def flatten(x) -> list:
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in flatten(item)]
    if isinstance(x, dict):
        return [leaf for k in sorted(x) for leaf in flatten(x[k])]
    return [x]


def pack_like(structure, leaves):
    it = iter(leaves)

    def build(s):
        if isinstance(s, (list, tuple)):
            return type(s)(build(i) for i in s)
        if isinstance(s, dict):
            return {k: build(s[k]) for k in sorted(s)}
        return next(it)

    return build(structure)


def map_structure(fn, x):
    return pack_like(x, [fn(leaf) for leaf in flatten(x)])
