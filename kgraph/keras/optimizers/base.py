"""`Optimizer` base: slots and the update step, traced into the training graph.

`apply(grads, variables)` works on IR values while a training step is traced (the update is
appended to the step's graph, so it runs inside the same onnxruntime session call as the
forward and backward pass) and eagerly on arrays (a small update graph is compiled and run).
Step order follows Keras 3 (keras-formats.md §5): clip gradients, decoupled weight decay,
`update_step` per variable, constraints, `iterations += 1`; `t = iterations + 1` inside.
"""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.ir.graph import current_graph
from kgraph.variables import Variable


class Optimizer:
    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unrecognized keyword arguments: {sorted(kwargs)}")
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be "
                             f"set. Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                             f"global_clipnorm={global_clipnorm}")
        self.name = name or type(self).__name__.lower()
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.use_ema, self.ema_momentum = use_ema, ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        from kgraph.keras.optimizers.schedules import LearningRateSchedule

        self._schedule = learning_rate if isinstance(learning_rate, LearningRateSchedule) else None
        lr = 0.0 if self._schedule else learning_rate
        if not callable(lr) and (not np.isscalar(lr) or lr < 0):
            raise ValueError(f"{type(self).__name__}: invalid learning_rate. Received: "
                             f"learning_rate={learning_rate!r}")
        self.iterations = Variable(np.int64(0), dtype="int64", trainable=False,
                                   name="iteration", path=f"{self.name}/iteration")
        self._learning_rate = Variable(np.float32(lr), dtype="float32", trainable=False,
                                       name="learning_rate", path=f"{self.name}/learning_rate")
        self._slots: dict = {}  # id(variable) -> list of slot Variables
        self._slot_order: list = []
        self.built = False
        self._apply_programs: dict = {}

    # -- learning rate --------------------------------------------------------------------
    @property
    def learning_rate(self):
        if self._schedule is not None:
            return self._schedule
        return float(self._learning_rate.numpy())

    @learning_rate.setter
    def learning_rate(self, value):
        from kgraph.keras.optimizers.schedules import LearningRateSchedule

        if isinstance(value, LearningRateSchedule):
            self._schedule = value
        else:
            self._schedule = None
            self._learning_rate.assign(np.float32(value))

    lr = learning_rate

    def _current_lr(self):
        """The learning rate for this step as a graph value (schedules evaluate in-graph)."""
        if self._schedule is not None:
            return ops.cast(self._schedule(ops.cast(self.iterations.value, "float32")), "float32")
        return self._learning_rate.value

    # -- slots ----------------------------------------------------------------------------
    def add_variable_from_reference(self, reference, name, initializer="zeros"):
        from kgraph.keras import initializers

        init = initializers.get(initializer)
        var = Variable(init, shape=reference.shape, dtype=reference.dtype, trainable=False,
                       name=name, path=f"{self.name}/{reference.path.replace('/', '_')}_{name}")
        return var

    def build(self, variables):
        """Create slot variables for `variables` (subclasses add theirs in `build_slots`)."""
        for var in variables:
            if id(var) not in self._slots:
                self._slots[id(var)] = self.build_slots(var)
                self._slot_order.append(var)
        self.built = True

    def build_slots(self, var) -> list:
        return []

    def slots(self, var):
        return self._slots[id(var)]

    @property
    def variables(self):
        out = [self.iterations, self._learning_rate]
        for var in self._slot_order:
            out += self._slots[id(var)]
        return out

    # -- applying -------------------------------------------------------------------------
    def apply_gradients(self, grads_and_vars):
        grads, variables = zip(*list(grads_and_vars))
        return self.apply(list(grads), list(variables))

    def apply(self, grads, variables):
        if current_graph() is None:
            return self._apply_eager(grads, variables)
        self.build(variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        grads = [g for g, _ in pairs]
        if self.loss_scale_factor is not None:
            grads = [g / float(self.loss_scale_factor) for g in grads]
        grads = self._clip(grads)
        lr = self._current_lr()
        t = ops.cast(self.iterations.value, "float32") + 1.0
        for g, var in zip(grads, [v for _, v in pairs]):
            if self.weight_decay:
                var.assign(var.value - var.value * (float(self.weight_decay) * lr))
            self.update_step(g, var, lr, t)
            constraint = getattr(var, "constraint", None)
            if constraint is not None:
                var.assign(constraint(var.value))
        self.iterations.assign(self.iterations.value + np.int64(1))

    def _clip(self, grads):
        if self.clipvalue is not None:
            c = float(self.clipvalue)
            return [ops.clip(g, -c, c) for g in grads]
        if self.clipnorm is not None:
            return [_clip_by_norm(g, float(self.clipnorm)) for g in grads]
        if self.global_clipnorm is not None:
            norm = ops.sqrt(sum(ops.sum(ops.square(g)) for g in grads))
            scale = float(self.global_clipnorm) / ops.maximum(norm, float(self.global_clipnorm))
            return [g * scale for g in grads]
        return grads

    def update_step(self, gradient, variable, learning_rate, t):
        raise NotImplementedError

    def _apply_eager(self, grads, variables):
        from kgraph.compiler.program import build_program

        grads = [np.asarray(g, dtype=v.dtype) for g, v in zip(grads, variables)]
        key = tuple(id(v) for v in variables)
        program = self._apply_programs.get(key)
        if program is None:
            specs = [(f"grad_{i}", v.shape, v.dtype) for i, v in enumerate(variables)]

            def fn(*gs):
                self.apply(list(gs), variables)
                return {}
            program = self._apply_programs[key] = build_program(f"{self.name}_apply", specs, fn)
        program(*grads)

    # -- config ---------------------------------------------------------------------------
    def get_config(self):
        from kgraph.keras.optimizers.schedules import serialize as serialize_schedule

        lr = serialize_schedule(self._schedule) if self._schedule else float(
            np.float32(self._learning_rate.numpy()))
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue, "use_ema": self.use_ema,
                "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            from kgraph.keras.optimizers.schedules import deserialize

            config["learning_rate"] = deserialize(config["learning_rate"])
        return cls(**config)


def _clip_by_norm(g, clipnorm):
    norm = ops.sqrt(ops.sum(ops.square(g)))
    return ops.where(norm > clipnorm, g * (clipnorm / ops.maximum(norm, 1e-12)), g)
