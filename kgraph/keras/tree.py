"""`keras.tree`: flatten, map and rebuild nested structures of tensors, as Keras 3 (optree).

Nodes are lists, tuples, namedtuples, dicts (leaves in sorted key order, rebuilt in the
original key order; an `OrderedDict` keeps its own order), `collections.deque`s and
subclasses of list and tuple; `None` and everything else is a leaf.
"""
from __future__ import annotations

import collections
import warnings


class MAP_TO_NONE:  # Keras spells it so
    """Special value for use with `traverse()`: the sub-tree becomes `None`."""


# -- the node protocol: children in flattening order, their paths, rebuilding ----------------
def _keys(x):
    """The child keys of node `x` in flattening order, or None when `x` is a leaf."""
    kind = type(x)
    if kind is list or kind is tuple:
        return range(len(x))
    if isinstance(x, dict):
        if isinstance(x, collections.OrderedDict):
            return list(x)
        try:
            return sorted(x)
        except TypeError:  # keys of mixed types: optree keeps insertion order too
            return list(x)
    if isinstance(x, (list, tuple, collections.deque)):
        return range(len(x))
    return None


def _children(x, keys):
    if isinstance(x, dict):
        return [x[k] for k in keys]
    return list(x)


def _rebuild(x, keys, children):
    """A node like `x` holding `children` (in `_keys(x)` order)."""
    kind = type(x)
    if kind is list:
        return children
    if kind is tuple:
        return tuple(children)
    if isinstance(x, dict):
        by_key = dict(zip(keys, children))
        items = [(k, by_key[k]) for k in x]  # the original key order, as optree
        if isinstance(x, collections.defaultdict):
            return kind(x.default_factory, items)
        try:
            return kind(items)
        except TypeError:
            return dict(items)
    if isinstance(x, tuple) and hasattr(kind, "_fields"):  # a namedtuple
        return kind(*children)
    if isinstance(x, collections.deque):
        return collections.deque(children, maxlen=x.maxlen)
    return kind(children)


def is_nested(structure):
    """True for a list, tuple, namedtuple, dict or deque (even an empty one); False for
    `None` and every other leaf."""
    return _keys(structure) is not None


# -- flatten / pack ---------------------------------------------------------------------------
def flatten(structure) -> list:
    """The leaves of `structure`, depth first; dict values in sorted key order.

    Example:
        >>> keras.tree.flatten({"b": [1, (2, None)], "a": 3})
        [3, 1, 2, None]
    """
    out = []
    _flatten_into(structure, out)
    return out


def _flatten_into(x, out):
    # module-level and not a closure (a self-referencing closure is a reference cycle, which
    # kept every batch flattened here alive until a full garbage collection)
    kind = type(x)
    if kind is list or kind is tuple:  # the hot path: every layer call flattens its args
        for child in x:
            _flatten_into(child, out)
        return
    keys = _keys(x)
    if keys is None:
        out.append(x)
        return
    for child in _children(x, keys):
        _flatten_into(child, out)


def flatten_with_path(structure) -> list:
    """`[(path, leaf)]`: each leaf with the tuple of indices and keys that reach it."""
    out = []
    _paths_into(structure, (), out)
    return out


def _paths_into(x, path, out):
    keys = _keys(x)
    if keys is None:
        out.append((path, x))
        return
    for key, child in zip(keys, _children(x, keys)):
        _paths_into(child, path + (key,), out)


def pack_sequence_as(structure, flat_sequence):
    """`flat_sequence` put back into the shape of `structure` (the inverse of `flatten`).

    Raises:
        ValueError: `flat_sequence` has more or fewer items than `structure` has leaves.
    """
    leaves = list(flat_sequence)
    expected = len(flatten(structure))
    if len(leaves) != expected:
        raise ValueError(f"pack_sequence_as: `structure` has {expected} leaves but "
                         f"`flat_sequence` has {len(leaves)} items. Received: "
                         f"structure={structure!r}")
    return _build(structure, iter(leaves))


def pack_like(structure, leaves):
    """`pack_sequence_as` without the count check (kgraph's internal callers)."""
    return _build(structure, iter(leaves))


def _build(s, it):
    kind = type(s)
    if kind is list:
        return [_build(child, it) for child in s]
    if kind is tuple:
        return tuple([_build(child, it) for child in s])
    keys = _keys(s)
    if keys is None:
        return next(it)
    return _rebuild(s, keys, [_build(child, it) for child in _children(s, keys)])


# -- map ----------------------------------------------------------------------------------
def map_structure(func, *structures, none_is_leaf=True):
    """`func` applied to the leaves of `structures` (same structure each), rebuilt like the
    first. With `none_is_leaf=False`, `None` is an empty node: it stays `None`.

    Raises:
        ValueError: no structure, or structures of different nesting (a list and a tuple
            differ; use `assert_same_paths` for the looser test).
    """
    if not structures:
        raise ValueError("Must provide at least one structure")
    return _map(func, structures, none_is_leaf)


def _map(func, structures, none_is_leaf):
    first = structures[0]
    if first is None and not none_is_leaf:
        for other in structures[1:]:
            if other is not None:
                raise ValueError("Structures don't have the same nested structure.")
        return None
    keys = _keys(first)
    if keys is None:
        if any(is_nested(s) for s in structures[1:]):
            raise ValueError("Structures don't have the same nested structure.")
        return func(*structures)
    for other in structures[1:]:
        _check_same_node(first, keys, other)
    columns = zip(*[_children(s, keys) for s in structures])
    return _rebuild(first, keys, [_map(func, column, none_is_leaf) for column in columns])


def _check_same_node(node, keys, other):
    if type(other) is not type(node):
        raise ValueError(f"Expected an instance of {type(node).__name__}, got {other!r}.")
    if isinstance(node, dict):
        if set(node) != set(other):
            raise ValueError(f"dictionary key mismatch; expected key(s): {sorted(node)!r}, "
                             f"got key(s): {sorted(other)!r}.")
    elif len(other) != len(node):
        raise ValueError(f"{type(node).__name__} arity mismatch; expected: {len(node)}, got: "
                         f"{len(other)}; list: {other!r}.")


def map_structure_up_to(shallow_structure, func, *structures):
    """`func` applied to the sub-trees of `structures` found at the leaves of
    `shallow_structure` (whose nodes `structures` share).

    Example:
        >>> keras.tree.map_structure_up_to([1, 2], lambda a: a, [[1, 2], 3])
        [[1, 2], 3]
    """
    if not structures:
        raise ValueError("Must provide at least one structure")
    return _map_up_to(shallow_structure, func, structures)


def _map_up_to(shallow, func, structures):
    keys = _keys(shallow)
    if keys is None:
        return func(*structures)
    for other in structures:
        _check_same_node(shallow, keys, other)
    columns = zip(*[_children(s, keys) for s in structures])
    return _rebuild(shallow, keys, [_map_up_to(child, func, column) for child, column
                                    in zip(_children(shallow, keys), columns)])


def map_shape_structure(func, structure):
    """`map_structure` where a list or tuple of ints and `None`s (a shape) is a leaf."""
    if _is_shape(structure):
        return func(structure)
    keys = _keys(structure)
    if keys is None:
        return func(structure)
    return _rebuild(structure, keys, [map_shape_structure(func, c)
                                      for c in _children(structure, keys)])


def _is_shape(x):
    return isinstance(x, (list, tuple)) and all(isinstance(e, (int, type(None))) for e in x)


def traverse(func, structure, top_down=True):
    """Walk `structure` depth first, applying `func` to every sub-tree.

    Top down: where `func(subtree)` is not None the walk replaces the sub-tree with it and
    does not descend. Bottom up: children first, then a non-None `func(subtree)` replaces it.
    `MAP_TO_NONE` as a result replaces the sub-tree with `None`.

    Raises:
        TypeError: `func` is not callable.
    """
    if not callable(func):
        raise TypeError(f"traverse: `func` must be callable. Received: func={func!r}")
    if top_down:
        result = func(structure)
        if result is None:
            return _traverse_children(func, structure, top_down)
    else:
        structure = _traverse_children(func, structure, top_down)
        result = func(structure)
        if result is None:
            return structure
    return None if result is MAP_TO_NONE else result


def _traverse_children(func, structure, top_down):
    keys = _keys(structure)
    if keys is None:
        return structure
    return _rebuild(structure, keys, [traverse(func, c, top_down)
                                      for c in _children(structure, keys)])


def lists_to_tuples(structure):
    """`structure` with every list turned into a tuple."""
    return traverse(lambda x: tuple(x) if isinstance(x, list) else None, structure,
                    top_down=False)


# -- checks ---------------------------------------------------------------------------------
def assert_same_structure(a, b, check_types=None):
    """Raise ValueError unless `a` and `b` nest the same node types the same way.

    Args:
        a, b: the structures.
        check_types: deprecated and ignored, as in Keras 3 (a warning says so).
    """
    if check_types is not None:
        warnings.warn("The `check_types` argument is deprecated and no longer has any effect"
                      + (", please remove." if check_types else ". For a looser check, use "
                         "`keras.tree.assert_same_paths()`, which considers `list`, `tuple`, "
                         "`namedtuple` and `deque` as matching"),
                      DeprecationWarning, stacklevel=2)
    map_structure(lambda *_: None, a, b)


def assert_same_paths(a, b):
    """Raise ValueError unless `a` and `b` have the same set of leaf paths (a list and a
    tuple of the same length match)."""
    a_paths = {path for path, _ in flatten_with_path(a)}
    b_paths = {path for path, _ in flatten_with_path(b)}
    if a_paths != b_paths:
        msg = "`a` and `b` don't have the same paths."
        if a_paths - b_paths:
            msg += f"\nPaths in `a` missing in `b`:\n{a_paths - b_paths}"
        if b_paths - a_paths:
            msg += f"\nPaths in `b` missing in `a`:\n{b_paths - a_paths}"
        raise ValueError(msg)
