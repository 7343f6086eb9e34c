"""`keras.ops.jvp`: forward-mode Jacobian-vector products from kgraph's reverse mode, by the
double-vjp trick. With `u` a stand-in cotangent of `fun`'s outputs, `g(u) = J^T u` is the
vector-Jacobian product (one reverse pass, linear in `u`); differentiating `<g(u), t>` with
respect to `u` (a second reverse pass, through the first one's graph) gives `J t` whatever `u`
is. kgraph's gradient rules are themselves graphs of differentiable ops, so this is exact;
where a gradient rule is not differentiable in its incoming gradient, the product would be
missing, and `jvp` raises instead of returning zeros.

Eagerly, `fun` is traced on placeholders shaped like the primals and the graph run once;
while tracing (a layer call, `kgraph.function`, a `GradientTape`), the products are added to
the graph being traced. `primals`/`tangents` are flat tuples or lists of tensors; `fun` may
return a tensor or a nested list/tuple/dict of tensors."""
from __future__ import annotations

import numpy as np

from kgraph.ops.api_util import dtype_of, is_symbolic, shape_of


def _checked(primals, tangents):
    from kgraph.ir.types import is_float

    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(f"jvp: `primals` and `tangents` must be tuples or lists. Received: "
                        f"primals={type(primals).__name__}, tangents={type(tangents).__name__}")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: `primals` and `tangents` must have the same length. Received: "
                         f"{len(primals)} primals and {len(tangents)} tangents")
    for i, (p, t) in enumerate(zip(primals, tangents)):
        if tuple(shape_of(p)) != tuple(shape_of(t)):
            raise ValueError(f"jvp: tangent {i} must have the shape of its primal. Received: "
                             f"primal shape {tuple(shape_of(p))}, tangent shape "
                             f"{tuple(shape_of(t))}")
        if not is_float(dtype_of(p)):
            raise TypeError(f"jvp: primals must be float tensors. Received: primal {i} of "
                            f"dtype {dtype_of(p)}")


def _products(graph, fun, primals, tangents, has_aux, seed_of):
    """`(result, its flat outputs, their tangents, aux)` of `fun` at `primals` (Values of
    `graph`), with `seed_of(out)` making the stand-in cotangent of each output."""
    from kgraph.compiler.autodiff import vjp
    from kgraph.ir.graph import tracing
    from kgraph.keras import tree
    from kgraph.ops import elementwise as ew

    with tracing(graph):
        result = fun(*primals)
        aux = None
        if has_aux:
            result, aux = result
        outs = tree.flatten(result)
        seeds = [seed_of(out) for out in outs]
        pullback = vjp(graph, outs, seeds, list(primals))
        pairs = [(g, ew.cast(t, dtype_of(g))) for g, t in zip(pullback, tangents)
                 if g is not None]
        pushed = vjp(graph, [g for g, _ in pairs], [t for _, t in pairs], seeds) if pairs \
            else [None] * len(seeds)
        from kgraph.ops.numpy_api import zeros_like

        tangent_outs = []
        for out, product in zip(outs, pushed):
            if product is None:
                if pairs and _depends(graph, out, primals):
                    raise NotImplementedError(
                        "jvp: a gradient rule on the path from the primals to an output is "
                        "not differentiable in its incoming gradient, so kgraph cannot form "
                        "this Jacobian-vector product")
                product = zeros_like(out)
            tangent_outs.append(product)
    return result, outs, tangent_outs, aux


def _depends(graph, out, primals):
    from kgraph.compiler.autodiff import _on_some_path

    return bool(_on_some_path(graph, [out], list(primals)))


def jvp(fun, primals, tangents, has_aux=False):
    """Forward-mode Jacobian-vector product of `fun` (`keras.ops.jvp`).

    Args:
        fun: function of `len(primals)` tensors returning a tensor or a tuple/list of
            tensors (with `has_aux`: a pair `(output, aux)`).
        primals: tuple or list of float tensors, the point.
        tangents: tuple or list of tensors of the primals' shapes, the direction.
        has_aux: whether `fun` returns `(output, aux)`.

    Returns:
        `(primals_out, tangents_out)`, or `(primals_out, tangents_out, aux)` with `has_aux`;
        `tangents_out` has the structure and shapes of `primals_out`.

    Example:
    >>> out, tangent = jvp(kgraph.ops.sin, (np.float32(0.1),), (np.float32(0.2),))
    >>> round(float(tangent), 6)  # 0.2 * cos(0.1)
    0.199001
    """
    from kgraph.ir.graph import current_graph

    _checked(primals, tangents)
    if current_graph() is not None or any(is_symbolic(v) for v in (*primals, *tangents)):
        return _traced(fun, primals, tangents, has_aux)
    return _eager(fun, primals, tangents, has_aux)


def _traced(fun, primals, tangents, has_aux):
    from kgraph.ir.graph import current_graph
    from kgraph.ops.numpy_api import zeros_like

    graph = current_graph() or next(v for v in (*primals, *tangents) if is_symbolic(v)).graph
    primals = [p if is_symbolic(p) else graph.constant(np.asarray(p)) for p in primals]
    tangents = [t if is_symbolic(t) else graph.constant(np.asarray(t)) for t in tangents]
    from kgraph.keras import tree

    result, _, tangent_outs, aux = _products(graph, fun, primals, tangents, has_aux,
                                             zeros_like)
    pair = (result, tree.pack_like(result, tangent_outs))
    return pair + (aux,) if has_aux else pair


def _eager(fun, primals, tangents, has_aux):
    from kgraph.compiler.build import compile_graph
    from kgraph.ir.graph import Graph, Value
    from kgraph.keras import tree

    primals = [np.asarray(p) for p in primals]
    tangents = [np.asarray(t).astype(p.dtype) for p, t in zip(primals, tangents)]
    graph = Graph("jvp")
    inputs = [graph.placeholder(f"primal{i}", p.shape, dtype_of(p)) for i, p in
              enumerate(primals)]
    directions = [graph.placeholder(f"tangent{i}", t.shape, dtype_of(t)) for i, t in
                  enumerate(tangents)]
    seeds = []

    def seed_of(out):
        seeds.append(graph.placeholder(f"seed{len(seeds)}", tuple(out.shape), out.dtype))
        return seeds[-1]

    result, outs, tangent_outs, aux = _products(graph, fun, inputs, directions, has_aux,
                                                seed_of)
    aux_flat = tree.flatten(aux) if has_aux else []
    aux_values = [a for a in aux_flat if isinstance(a, Value)]
    graph.set_outputs({f"out{i}": v for i, v in enumerate(outs + tangent_outs + aux_values)})
    compiled = compile_graph(graph, "numpy")  # the reference interpreter, as eager ops run
    feeds = {f"primal{i}": p for i, p in enumerate(primals)}
    feeds.update({f"tangent{i}": t for i, t in enumerate(tangents)})
    feeds.update({f"seed{i}": np.zeros(tuple(s.shape), s.dtype) for i, s in enumerate(seeds)})
    values = iter(compiled.to_numpy(v) for v in compiled.run(feeds))
    pair = (tree.pack_like(result, [next(values) for _ in outs]),
            tree.pack_like(result, [next(values) for _ in outs]))
    if not has_aux:
        return pair
    return pair + (tree.pack_like(aux, [next(values) if isinstance(a, Value) else a
                                        for a in aux_flat]),)


__all__ = ["jvp"]
