"""`keras.ops.einsum` lowered to transposes, reshapes and matmuls (no ONNX Einsum).

Operands contract left to right. Per pair, each index is a batch index (in both operands and
still needed), a contracted index (in both, not needed later) or free (in one operand only);
indices that appear in one operand and nowhere else are summed first. The pair then becomes
`matmul(A[batch..., free_a, k], B[batch..., k, free_b])`. Repeated indices within one operand
(diagonals) are refused with a ValueError.
"""
from __future__ import annotations

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import movement as mv
from kgraph.ops.api_util import rank, shape_of


def _parse(subscripts, operands):
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        inputs, output = spec.split("->")
    else:
        inputs, output = spec, None
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: {len(terms)} input terms for {len(operands)} operands. "
                         f"Received: subscripts={subscripts!r}")
    if any("." in t for t in terms):
        raise ValueError(f"einsum: ellipsis is not supported. Received: {subscripts!r}")
    for term, x in zip(terms, operands):
        if len(term) != rank(x):
            raise ValueError(f"einsum: term {term!r} has {len(term)} indices for an operand of "
                             f"rank {rank(x)}. Received: subscripts={subscripts!r}")
        if len(set(term)) != len(term):
            raise ValueError(f"einsum: repeated index within one operand ({term!r}) is not "
                             f"supported. Received: subscripts={subscripts!r}")
    if output is None:
        counts = {c: inputs.count(c) for c in set(inputs) - {","}}
        output = "".join(sorted(c for c, n in counts.items() if n == 1))
    return terms, output


def _sum_out(x, term, keep):
    from kgraph.ops.reduce import sum as reduce_sum

    drop = [i for i, c in enumerate(term) if c not in keep]
    if not drop:
        return x, term
    return reduce_sum(x, tuple(drop)), "".join(c for c in term if c in keep)


def _merged(dims):
    if None in dims:
        return None
    out = 1
    for d in dims:
        out *= d
    return out


def _dim_pieces(x, axes):
    """The product of dims `axes` of `x` as a one-element int64 tensor (a constant when
    static, else slices of Shape(x) multiplied at run time)."""
    from kgraph.ir.graph import current_graph
    from kgraph.ops.registry import apply

    static = _merged([x.shape[i] for i in axes])
    if static is not None:
        return current_graph().constant(np.asarray([static], np.int64))
    runtime, out = apply("Shape", x), None
    for i in axes:
        piece = apply("Slice", runtime, starts=(i,), ends=(i + 1,), axes=(0,))
        out = piece if out is None else apply("Mul", out, piece)
    return out


def _reshape_groups(x, groups, shape):
    """Reshape `x` to `shape`, dim j being the product of the dims `groups[j] = (source,
    axes)`. With several unknown dims the run-time target is built from Shape slices of the
    sources (see `_dim_pieces`)."""
    from kgraph.ops.registry import apply

    shape = tuple(shape)
    if shape.count(None) <= 1:
        return mv.reshape_to(x, shape)
    if shape == tuple(x.shape) and all(len(axes) == 1 for _, axes in groups):
        return x
    target = apply("Concat", *[_dim_pieces(src, axes) for src, axes in groups], axis=0)
    return apply("Reshape", x, target, shape=shape)


def _contract(a, ta, b, tb, needed):
    """matmul of two operands; returns (result, its term)."""
    from kgraph.ops.linalg import matmul

    batch = [c for c in ta if c in tb and c in needed]
    summed = [c for c in ta if c in tb and c not in needed]
    free_a = [c for c in ta if c not in tb]
    free_b = [c for c in tb if c not in ta]
    sa = dict(zip(ta, shape_of(a)))
    sb = dict(zip(tb, shape_of(b)))
    a = mv.transpose(a, [ta.index(c) for c in batch + free_a + summed])
    b = mv.transpose(b, [tb.index(c) for c in batch + summed + free_b])
    nb, nfa, nk = len(batch), len(free_a), len(summed)
    span = lambda start, n: tuple(range(start, start + n))  # noqa: E731
    merged = [_merged([sa[c] for c in free_a]), _merged([sa[c] for c in summed]),
              _merged([sb[c] for c in free_b])]
    bshape = [sa[c] if sa[c] is not None else sb[c] for c in batch]
    batch_groups = [(a if sa[c] is not None or sb[c] is None else b, (i,))
                    for i, c in enumerate(batch)]
    a2 = _reshape_groups(a, [(a, (i,)) for i in range(nb)] + [(a, span(nb, nfa)),
                                                           (a, span(nb + nfa, nk))],
                         bshape + merged[:2])
    b2 = _reshape_groups(b, [(b, (i,)) for i in range(nb)] + [(b, span(nb, nk)),
                                                           (b, span(nb + nk, len(free_b)))],
                         bshape + merged[1:])
    out = matmul(a2, b2)
    shape = bshape + [sa[c] for c in free_a] + [sb[c] for c in free_b]
    groups = batch_groups + [(a, (nb + i,)) for i in range(nfa)] + \
        [(b, (nb + nk + i,)) for i in range(len(free_b))]
    return _reshape_groups(out, groups, shape), "".join(batch + free_a + free_b)


def einsum(subscripts, *operands):
    """Evaluate an Einstein summation (`keras.ops.einsum`).

    Args:
        subscripts: e.g. `"bij,bjk->bik"`; explicit or implicit output, no ellipsis, no
            repeated index within one operand.
        *operands: the tensors.

    Returns:
        The contracted tensor, laid out as the output term says.

    Example:
        >>> einsum("ij,jk->ik", a, b)  # matmul
    """
    terms, output = _parse(subscripts, operands)
    operands = list(operands)
    for i in range(1, len(operands)):
        operands[0], operands[i] = ew._pair(operands[0], operands[i])
    rest = "".join(terms[1:]) + output
    x, term = _sum_out(operands[0], terms[0], set(rest))
    for i in range(1, len(operands)):
        later = set("".join(terms[i + 1:]) + output)
        y, ty = _sum_out(operands[i], terms[i], set(term) | later)
        x, term = _contract(x, term, y, ty, later)
    x, term = _sum_out(x, term, set(output))
    if term != output:
        x = mv.transpose(x, [term.index(c) for c in output])
    return x
