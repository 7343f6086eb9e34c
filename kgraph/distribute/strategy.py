"""`Strategy`: where a model's training steps run, chosen by `with strategy.scope():`.

A model compiled inside a strategy's scope keeps that strategy: it decides how the model's
train step is built and run (`kgraph.keras.trainer` asks `build_train_step`). `fit` itself
needs no scope, as in Keras.
"""
from __future__ import annotations

import contextlib
import threading
import weakref

_scopes = threading.local()


class DistributionScopeError(ValueError):
    """A model or variable used with a strategy other than the one whose scope made it."""


def get_strategy():
    """The strategy whose `scope()` is active in this thread (the default strategy, one
    replica on this process's device, when none is)."""
    stack = getattr(_scopes, "stack", None)
    return stack[-1] if stack else _DEFAULT


def has_strategy():
    """Whether a (non-default) strategy's scope is active in this thread."""
    return bool(getattr(_scopes, "stack", None))


def note_variable(variable):
    """Called for every new Variable: the strategy whose scope is active remembers it."""
    stack = getattr(_scopes, "stack", None)
    if stack:
        stack[-1].variables_made_in_scope().add(variable)


def in_cross_replica_context():
    return True  # kgraph steps are traced whole; user code never runs per replica


class Strategy:
    """Base class: one replica, running where the model's backend says.

    Attributes:
        num_replicas_in_sync: replicas that take part in every step (all workers').
    """

    num_replicas_in_sync = 1

    @contextlib.contextmanager
    def scope(self):
        """Models built and compiled inside use this strategy."""
        stack = _scopes.__dict__.setdefault("stack", [])
        stack.append(self)
        try:
            yield self
        finally:
            stack.pop()

    def variables_made_in_scope(self):
        """The (weakly held) variables created while this strategy's scope was active."""
        made = self.__dict__.get("_made_in_scope")
        if made is None:
            made = self._made_in_scope = weakref.WeakSet()
        return made

    def default_backend(self):
        """The executor a model compiled in this scope uses when `compile()` names none."""
        return None

    def build_train_step(self, model, x, y, sw, steps):
        """A program-like train step for `model`, or None for the model's own fused step."""
        return None

    # Keras/TF API surface used by scripts
    @property
    def extended(self):
        return self

    @property
    def should_checkpoint(self):
        """Whether this process writes checkpoints and logs (the chief)."""
        return True

    should_save_summary = should_checkpoint

    def __repr__(self):
        return f"<{type(self).__name__} num_replicas_in_sync={self.num_replicas_in_sync}>"


_DEFAULT = Strategy()


def on_compile(model, backend):
    """Called by `compile()`: remember the strategy in scope and return the backend to use
    (`backend`, or the strategy's default when it is None)."""
    strategy = get_strategy()
    check_variables_in_scope(model, strategy)
    object.__setattr__(model, "_distribute_strategy", strategy)
    if backend is None:
        return strategy.default_backend()
    return backend


def check_variables_in_scope(model, strategy):
    """Raise DistributionScopeError when `model` already has variables made outside the
    scope of the strategy it is compiled under (the FAQ: create all state inside it)."""
    if strategy is _DEFAULT:
        return
    made = strategy.variables_made_in_scope()
    outside = [w for w in getattr(model, "weights", []) or [] if w not in made]
    if outside:
        raise DistributionScopeError(
            f"Model {model.name!r} is compiled under {type(strategy).__name__}.scope(), but "
            f"its variable {outside[0].path!r} (and {len(outside) - 1} more) was created "
            f"outside that scope. Create (build) the model inside `with strategy.scope():` "
            f"as well, then compile it there.")


def is_chief(model) -> bool:
    """Whether this process writes files for `model` (checkpoints, backups, logs): True but
    on the non-chief workers of the multi-worker strategy `model` was compiled under (Keras
    writes on worker 0 only)."""
    strategy = getattr(model, "__dict__", {}).get("_distribute_strategy")
    return strategy is None or bool(strategy.should_checkpoint)


def replicates(model) -> bool:
    """Whether `model` was compiled under a strategy of its own (its train step is the
    strategy's: `train_step_for`)."""
    strategy = model.__dict__.get("_distribute_strategy")
    return strategy is not None and strategy is not _DEFAULT


def train_step_for(model, x, y, sw, steps):
    """The trainer's hook: the strategy's train step for `model`, or None."""
    if not replicates(model):
        return None
    return model.__dict__["_distribute_strategy"].build_train_step(model, x, y, sw, steps)
