"""`keras.ops.rearrange`: einops-style axis rearrangement, as Keras 3 reads patterns (named
axes and parenthesized groups on either side, group sizes by keyword, one size per group
inferred; no ellipsis, as in Keras). A reshape that splits input groups, a transpose, and a
reshape that merges output groups. One axis may have a size unknown while tracing (the batch):
it becomes the -1 of each reshape."""
from __future__ import annotations

import re

from kgraph.ops import movement as mv
from kgraph.ops.api_util import StaticShapeRequiredError, shape_of

_TOKEN = re.compile(r"\(([^()]*)\)|([A-Za-z_]\w*)|(\S)")


def _parse(side, pattern):
    """The side's groups, each a list of axis names (a bare name is a group of one)."""
    groups = []
    for group, name, other in _TOKEN.findall(side):
        if other or (group and not re.fullmatch(r"\s*([A-Za-z_]\w*\s*)+", group)):
            bad = other or f"({group})"
            raise ValueError(
                f"rearrange: only axis names and parenthesized groups of names are supported "
                f"(no ellipsis, numbers or nesting). Received: {bad!r} in pattern={pattern!r}")
        groups.append(group.split() if group else [name])
    names = [n for g in groups for n in g]
    if len(set(names)) != len(names):
        raise ValueError(f"rearrange: an axis name appears twice on one side. "
                         f"Received: pattern={pattern!r}")
    return groups


def _sizes(groups, shape, axes_lengths, pattern):
    """Every input axis' size (None when unknown while tracing), from the shape and the
    keyword sizes; one axis per group may be inferred."""
    sizes = {}
    for group, dim in zip(groups, shape):
        unknown = [a for a in group if a not in axes_lengths]
        if len(unknown) > 1:
            raise ValueError(f"rearrange: give the sizes of all but one axis of group "
                             f"{'(' + ' '.join(group) + ')'}. Received: pattern={pattern!r}, "
                             f"axes_lengths={axes_lengths}")
        known = 1
        for a in group:
            if a in axes_lengths:
                sizes[a] = int(axes_lengths[a])
                known *= sizes[a]
        if unknown:
            if dim is not None and dim % known:
                raise ValueError(f"rearrange: axis of size {dim} cannot be split into "
                                 f"{group} with sizes {axes_lengths}. Received: "
                                 f"pattern={pattern!r}")
            sizes[unknown[0]] = None if dim is None else dim // known
        elif dim is not None and dim != known:
            raise ValueError(f"rearrange: axis of size {dim} does not equal the product of "
                             f"{group}'s sizes ({known}). Received: pattern={pattern!r}")
    return sizes


def _target(groups, sizes, pattern):
    """The reshape target of `groups`: a group with an unknown axis becomes -1 (one only)."""
    target = []
    for group in groups:
        parts = [sizes[a] for a in group]
        target.append(-1 if None in parts else _product(parts))
    if target.count(-1) > 1:
        raise StaticShapeRequiredError(
            f"rearrange needs all but one axis size known while tracing. Received: "
            f"pattern={pattern!r}, sizes={sizes}")
    return tuple(target)


def _product(values):
    out = 1
    for v in values:
        out *= v
    return out


def rearrange(tensor, pattern, **axes_lengths):
    """Rearrange the axes of `tensor` by an einops pattern (`keras.ops.rearrange`).

    Args:
        tensor: input tensor.
        pattern: `"input axes -> output axes"`, each side axis names and parenthesized
            groups: a group on the input splits an axis, on the output merges axes.
        **axes_lengths: sizes of split axes (all but one per group).

    Returns:
        The rearranged tensor.

    Example:
    >>> rearrange(np.zeros((32, 30, 40, 3)), "b (h h1) (w w1) c -> b h w (c h1 w1)",
    ...           h1=2, w1=2).shape
    (32, 15, 20, 12)
    """
    sides = re.split(r"\s*->\s*", pattern)
    if len(sides) != 2:
        raise ValueError(f"rearrange: the pattern must have one '->'. "
                         f"Received: pattern={pattern!r}")
    inputs, outputs = _parse(sides[0], pattern), _parse(sides[1], pattern)
    shape = tuple(shape_of(tensor))
    if len(inputs) != len(shape):
        raise ValueError(f"rearrange: the pattern's input side has {len(inputs)} axes; the "
                         f"tensor has rank {len(shape)}. Received: pattern={pattern!r}, "
                         f"shape={shape}")
    in_names = [a for g in inputs for a in g]
    out_names = [a for g in outputs for a in g]
    if set(in_names) != set(out_names):
        raise ValueError(f"rearrange: both sides must name the same axes; differing: "
                         f"{sorted(set(in_names) ^ set(out_names))}. Received: "
                         f"pattern={pattern!r}")
    extra = sorted(set(axes_lengths) - set(in_names))
    if extra:
        raise ValueError(f"rearrange: sizes given for axes not in the pattern: {extra}. "
                         f"Received: pattern={pattern!r}")
    sizes = _sizes(inputs, shape, axes_lengths, pattern)
    x = tensor
    if any(len(g) > 1 for g in inputs):
        x = mv.reshape(x, _target([[a] for a in in_names], sizes, pattern))
    perm = [in_names.index(a) for a in out_names]
    if perm != sorted(perm):
        x = mv.transpose(x, perm)
    if any(len(g) != 1 for g in outputs):
        x = mv.reshape(x, _target(outputs, sizes, pattern))
    return x
