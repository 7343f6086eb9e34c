"""AutoGraph for `if` statements: a Python `if` on a tensor inside `kgraph.function`.

TensorFlow rewrites the Python control flow of a `tf.function` into graph ops (AutoGraph), so
`if tf.random.uniform(()) > 0.5: return x * 2` branches per value. kgraph rewrites the `if`
statements of a function it compiles (`convert`), on its syntax tree, into calls of
`if_stmt` below; at run time it follows Python when the condition is a Python
or eager value, and when it is a tensor of the graph being traced they trace BOTH branches and
select their results elementwise with `where` (as `keras.ops.cond` does). Converted forms:

- `if c: ... return a` / `else: ... return b` (or the rest of the function after an `if`
  without `else` that returns): the returned values are selected;
- an `if` without `return`, `break`, `continue` or `yield` in it: every name either branch
  assigns is selected (a name assigned in one branch only must exist before the `if`).

A branch that assigns a variable (`var.assign`) under a tensor condition is refused (both
branches run while tracing); other `if`s, loops and the functions the compiled one calls are
left as written. Functions whose source is not available (lambdas, the REPL) run as written.
"""
from __future__ import annotations

import ast
import functools
import inspect
import itertools
import sys
import textwrap
import types
import weakref

import numpy as np

UNDEFINED = type("Undefined", (), {"__repr__": lambda self: "<undefined>"})()
_CONVERTED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_NOT_CONVERTED = object()


class AutoGraphError(ValueError):
    """An `if` on a tensor that the conversion cannot turn into a selection."""


def convert(fn):
    """`fn` with its `if` statements converted (see the module docstring), or `fn` itself
    when it has none or its source cannot be read. A `functools.partial` is converted inside."""
    if isinstance(fn, functools.partial):
        inner = convert(fn.func)
        return fn if inner is fn.func else functools.partial(inner, *fn.args, **fn.keywords)
    if isinstance(fn, types.MethodType):
        inner = convert(fn.__func__)
        return fn if inner is fn.__func__ else types.MethodType(inner, fn.__self__)
    if not isinstance(fn, types.FunctionType):
        return fn
    cached = _CONVERTED.get(fn.__code__)
    if cached is None:
        cached = _convert(fn) or _NOT_CONVERTED
        _CONVERTED[fn.__code__] = cached
    if cached is _NOT_CONVERTED:
        return fn
    return _instantiate(fn, cached)


def _convert(fn):
    """The code object of `fn` converted, or None when there is nothing to convert. It is
    compiled inside a function taking `__ag` (this module) and fn's free variables, so that
    its free variables are those names; `_instantiate` gives it fn's own cells."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        filename = inspect.getsourcefile(fn) or "<autograph>"
        first_line = fn.__code__.co_firstlineno
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    if not tree.body or not isinstance(tree.body[0], ast.FunctionDef):
        return None
    func = tree.body[0]
    if func.name != fn.__code__.co_name or not any(
            isinstance(n, ast.If) for n in _walk_own(func)):
        return None
    func.decorator_list = []
    rewriter = _Rewriter(fn.__code__.co_freevars)
    func.body = rewriter.block(func.body)
    if not rewriter.converted:
        return None
    if "__class__" in fn.__code__.co_freevars and func.args.args:
        _ZeroArgSuper(func.args.args[0].arg).visit(func)
    freevars = list(fn.__code__.co_freevars)
    factory = _function_def("__ag_factory", [ast.arg("__ag")] + [ast.arg(v) for v in freevars],
                            [func, ast.Return(ast.Name(func.name, ast.Load()))])
    module = ast.Module(body=[factory], type_ignores=[])
    ast.fix_missing_locations(module)
    ast.increment_lineno(module, first_line - 1)
    factory_code = _inner_code(compile(module, filename, "exec"), "__ag_factory")
    return _inner_code(factory_code, func.name)


def _inner_code(code, name):
    return next(c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == name)


def _instantiate(fn, code):
    """The converted `code` as a function over fn's own closure cells (so a free variable
    rebound after the decoration is seen, as by fn), its globals and defaults."""
    own = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
    closure = tuple(types.CellType(sys.modules[__name__]) if name == "__ag" else own[name]
                    for name in code.co_freevars)
    new = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, closure)
    new.__kwdefaults__ = fn.__kwdefaults__
    functools.update_wrapper(new, fn)
    new.__wrapped__ = fn
    return new


def _walk_own(node):
    """The nodes of a function body, not descending into nested functions or classes."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                  ast.ClassDef)):
            yield from _walk_own(child)


def _has(nodes, kinds) -> bool:
    return any(isinstance(n, kinds) for stmt in nodes for n in itertools.chain([stmt],
                                                                                _walk_own(stmt)))


def _returns_at_end(block) -> bool:
    """A block whose only `return` is its last statement."""
    return bool(block) and isinstance(block[-1], ast.Return) and not _has(block[:-1],
                                                                          ast.Return)


class _Rewriter:
    def __init__(self, freevars):
        self.freevars = set(freevars)
        self.counter = itertools.count()
        self.converted = 0

    def block(self, stmts):
        out = []
        for i, stmt in enumerate(stmts):
            if isinstance(stmt, ast.If):
                rest = stmts[i + 1:]
                converted = self._if(stmt, rest)
                if converted is not None:
                    statements, consumed_rest = converted
                    out.extend(statements)
                    if consumed_rest:
                        return out
                    continue
            self._inner_blocks(stmt)
            out.append(stmt)
        return out

    def _inner_blocks(self, stmt):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(stmt, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt) and \
                    not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef,
                                          ast.ClassDef)):
                setattr(stmt, field, self.block(block))
        for handler in getattr(stmt, "handlers", ()):
            handler.body = self.block(handler.body)

    def _if(self, node, rest):
        """The statements replacing `node` and whether they replace `rest` too, or None."""
        loop_exits = (ast.Break, ast.Continue, ast.Yield, ast.YieldFrom, ast.Await,
                      ast.Global, ast.Nonlocal)
        if _has(node.body + node.orelse, loop_exits):
            return None
        returns = _returns_at_end(node.body)
        if returns:  # the else branch is the rest of the function when there is none
            orelse = node.orelse or rest
            if not _returns_at_end(orelse) or _has(orelse, loop_exits):
                return None
        elif _has(node.body + node.orelse, ast.Return):
            return None
        else:
            orelse = node.orelse
        self.converted += 1
        n = next(self.counter)
        # names the branches assign are parameters (each branch starts from their values
        # before the `if`): assigned in a nested function they would be its own locals
        names = sorted((_assigned(node.body) | _assigned(orelse)) - self.freevars)
        params = [ast.arg(name) for name in names]
        result = [] if returns else [
            ast.Return(ast.Tuple([ast.Name(v, ast.Load()) for v in names], ast.Load()))]
        true_fn = self._branch(f"__ag_true_{n}", params, self.block(node.body) + result)
        false_fn = self._branch(f"__ag_false_{n}", params, self.block(orelse) + result)
        call = _call("if_stmt", [node.test, ast.Name(true_fn.name, ast.Load()),
                                 ast.Name(false_fn.name, ast.Load()), _current(names)])
        if returns:  # what follows is the else branch, or unreachable after it
            return [true_fn, false_fn, ast.copy_location(ast.Return(call), node)], True
        if names:
            target = ast.Tuple([ast.Name(v, ast.Store()) for v in names], ast.Store())
            assign = ast.Assign(targets=[target], value=call)
        else:
            assign = ast.Expr(call)
        out = [true_fn, false_fn, ast.copy_location(assign, node)]
        for v in names:  # a name left undefined by the taken branch is unbound, as in Python
            out.append(ast.If(test=ast.Compare(ast.Name(v, ast.Load()), [ast.Is()],
                                               [_attr("UNDEFINED")]),
                              body=[ast.Delete([ast.Name(v, ast.Del())])], orelse=[]))
        return out, False

    @staticmethod
    def _branch(name, params, body):
        return _function_def(name, params, body or [ast.Pass()])


def _assigned(block) -> set:
    names = set()
    for stmt in block:
        for node in itertools.chain([stmt], _walk_own(stmt)):
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


class _ZeroArgSuper(ast.NodeTransformer):
    """`super()` -> `super(__class__, self)`: the converted function is not defined in a
    class body, so Python would not give it the implicit `__class__` cell."""

    def __init__(self, first):
        self.first = first

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "super" and not node.args:
            node.args = [ast.Name("__class__", ast.Load()), ast.Name(self.first, ast.Load())]
        return node


def _function_def(name, params, body):
    fields = dict(name=name, args=ast.arguments(posonlyargs=[], args=params, kwonlyargs=[],
                                                kw_defaults=[], defaults=[]),
                  body=body, decorator_list=[], returns=None)
    if "type_params" in ast.FunctionDef._fields:  # Python 3.12+
        fields["type_params"] = []
    return ast.FunctionDef(**fields)


def _current(names):
    """`(ld(lambda: a), ld(lambda: b), ...)`: the names' values before the `if`."""
    return ast.Tuple([_call("ld", [ast.Lambda(_no_args(), ast.Name(v, ast.Load()))])
                      for v in names], ast.Load())


def _no_args():
    return ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[])


def _attr(name):
    return ast.Attribute(ast.Name("__ag", ast.Load()), name, ast.Load())


def _call(name, args):
    return ast.Call(_attr(name), args, [])


def call_layer(layer, args, kwargs):
    """`layer.call(*args, **kwargs)`; when a user-written `call` stops on an `if` whose
    condition is a tensor, `call` again with its `if` statements converted, as TensorFlow's
    AutoGraph converts the code a compiled step calls. The losses the stopped attempt added
    (`add_loss`) are dropped. kgraph's own layers are never converted."""
    from kgraph.ir.graph import SymbolicTruthError, current_graph

    graph = current_graph()
    added = len(getattr(graph, "losses", ())), len(layer._losses)
    try:
        return layer.call(*args, **kwargs)
    except SymbolicTruthError:
        call = type(layer).call
        converted = convert(call) if not call.__module__.startswith("kgraph.") else call
        if converted is call:
            raise
        if hasattr(graph, "losses"):
            dropped = {id(loss) for loss in graph.losses[added[0]:]}
            del graph.losses[added[0]:]
            for losses in graph.layer_losses.values():  # this layer's and its sublayers'
                losses[:] = [loss for loss in losses if id(loss) not in dropped]
        del layer._losses[added[1]:]
        return converted(layer, *args, **kwargs)


# -- run time -------------------------------------------------------------------------------
def ld(read):
    """The value `read()` gives, or UNDEFINED for a name not assigned yet."""
    try:
        return read()
    except NameError:  # (UnboundLocalError too)
        return UNDEFINED


def if_stmt(test, true_fn, false_fn, values):
    """The branch `test` takes, or both selected per value: each branch takes the values the
    names it assigns had before the `if`, and returns either its `return` value or those
    names after its body."""
    if not _symbolic(test):
        return true_fn(*values) if _truth(test) else false_fn(*values)
    return _traced_both(test, true_fn, false_fn, values)


def _symbolic(test) -> bool:
    from kgraph.ir.graph import Value

    return isinstance(test, Value)


def _truth(test) -> bool:
    if isinstance(test, np.ndarray) and test.size != 1:
        raise ValueError(f"The truth value of a tensor of shape {test.shape} is ambiguous: "
                         f"an `if` condition must be a scalar")
    return bool(np.asarray(test).reshape(()) if isinstance(test, np.ndarray) else test)


def _traced_both(test, true_fn, false_fn, values):
    from kgraph import ops
    from kgraph.ir.graph import current_graph
    from kgraph.keras import tree

    if test.shape not in ((), (1,)):
        raise AutoGraphError(f"An `if` on a tensor needs a scalar condition. Received: a "
                             f"condition of shape {test.shape}")
    graph = current_graph()
    assigned = len(graph.updates) if graph is not None else 0
    a, b = true_fn(*values), false_fn(*values)
    if graph is not None and len(graph.updates) != assigned:
        raise AutoGraphError("An `if` on a tensor assigns a variable in a branch: kgraph traces "
                             "both branches of such an `if`, so the assignment cannot depend "
                             "on the condition; use `ops.where` on the value assigned")
    condition = ops.reshape(ops.cast(test, "bool"), ())
    flat_a, flat_b = tree.flatten(a), tree.flatten(b)
    if len(flat_a) != len(flat_b):
        raise AutoGraphError(f"The two branches of an `if` on a tensor give different "
                             f"structures: {a!r} and {b!r}")
    return tree.pack_like(a, [_select(condition, x, y) for x, y in zip(flat_a, flat_b)])


def _select(condition, x, y):
    from kgraph import ops
    from kgraph.ir.graph import Value

    if x is UNDEFINED and y is UNDEFINED:
        return UNDEFINED
    if x is UNDEFINED or y is UNDEFINED:
        raise AutoGraphError("A name is assigned in only one branch of an `if` on a tensor "
                             "and has no value before it: define it before the `if`")
    tensors = (Value, np.ndarray, np.generic, int, float, bool)
    if isinstance(x, tensors) and isinstance(y, tensors) and not (
            type(x) in (int, float, bool) and type(y) in (int, float, bool) and x == y):
        return ops.where(condition, x, y)
    if x is y or (type(x) is type(y) and _equal(x, y)):
        return x
    raise AutoGraphError(f"The two branches of an `if` on a tensor give different Python "
                         f"values: {x!r} and {y!r}")


def _equal(x, y) -> bool:
    try:
        return bool(x == y)
    except Exception:  # noqa: BLE001 - objects without a plain equality
        return False
