"""`Optimizer` base: slots and the update step, traced into the training graph.

`apply(grads, variables)` works on IR values while a training step is traced (the update is
appended to the step's graph, so it runs inside the same onnxruntime session call as the
forward and backward pass) and eagerly on arrays (a small update graph is compiled and run).
Step order follows Keras 3 (keras-formats.md §5): unscale by `loss_scale_factor`, clip,
decoupled weight decay, `update_step` per variable, moving averages, constraints,
`iterations += 1`; `t = iterations + 1` inside. Gradient accumulation runs the same update and
keeps its result only on every `gradient_accumulation_steps`-th call (an in-graph select).
"""
from __future__ import annotations

import re
import warnings

import numpy as np

from kgraph import ops
from kgraph.ir.graph import Value, current_graph
from kgraph.keras.optimizers import averaging, checks, clipping
from kgraph.keras.optimizers.clipping import cast_to
from kgraph.keras.serialization import snake_case
from kgraph.variables import Variable

# tf-keras writes these into optimizer configs; Keras 3 has no such arguments.
_FOREIGN_CONFIG_KEYS = ("jit_compile", "is_legacy_optimizer")


class Optimizer:
    """Base class for optimizers (`keras.optimizers.Optimizer`).

    Subclasses create their slots in `build_slots(variable)` with
    `add_variable_from_reference(variable, "momentum")` and write one update in
    `update_step(gradient, variable, learning_rate, t)`: the arguments are graph values,
    `t = iterations + 1` as a float, reads use `slot.value` and writes `slot.assign(...)`.

    Args:
        learning_rate: a float, or a `keras.optimizers.schedules.LearningRateSchedule`
            (evaluated in-graph from `iterations`).
        weight_decay: float or `None`. If set, `w -= w * weight_decay * lr` before each update.
        clipnorm: float. Each gradient is clipped so that its L2 norm is at most this value.
        clipvalue: float. Each gradient is clipped element-wise to `[-clipvalue, clipvalue]`.
        global_clipnorm: float. All gradients are scaled so that their joint L2 norm is at
            most this value. At most one of the three clipping arguments may be set.
        use_ema: bool. Keep an exponential moving average of the updated variables.
        ema_momentum: float in [0, 1], the momentum of that average.
        ema_overwrite_frequency: int or `None`. Every this many steps the variables are
            overwritten with their averages; otherwise call `finalize_variable_values()`.
        loss_scale_factor: float or `None`. Gradients are divided by it before the update.
        gradient_accumulation_steps: int >= 2 or `None`. Variables are updated once every
            this many steps, with the mean of the gradients since the last update.
        name: string, the prefix of the optimizer's variable paths.

    Example:

    >>> w = kgraph.variables.Variable(np.ones(3, "float32"))
    >>> opt = keras.optimizers.SGD(learning_rate=0.1)
    >>> _ = opt.apply_gradients([(np.ones(3, "float32"), w)])  # returns `iterations`
    >>> w.numpy()
    array([0.9, 0.9, 0.9], dtype=float32)
    """

    #: The order in which Keras 3 creates slots, which is the order of `variables` (saved
    #: files key on it). Slots are created group by group; inside a group, for each model
    #: variable its slots of that group. Adam's `(("momentum", "velocity"), ("velocity_hat",))`
    #: gives m(A) v(A) m(B) v(B) vh(A) vh(B). `None`: one group holding every slot.
    slot_groups = None

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        if kwargs.pop("decay", None) is not None:
            warnings.warn("Argument `decay` is no longer supported and will be ignored.")
        owner = type(self).__name__
        if kwargs:
            raise ValueError(f"{owner}: argument(s) not recognized: {kwargs}")
        checks.check_base_arguments(owner, locals())
        self.name = name or snake_case(owner)
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.use_ema, self.ema_momentum = use_ema, ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self._schedule = learning_rate if checks.is_schedule(learning_rate) else None
        self.iterations = Variable(np.int64(0), dtype="int64", trainable=False,
                                   name="iteration", path=f"{self.name}/iteration")
        lr = 0.0 if self._schedule is not None else learning_rate
        self._learning_rate = Variable(np.float32(lr), dtype="float32", trainable=False,
                                       name="learning_rate", path=f"{self.name}/learning_rate")
        self._built_variables: list = []  # model variables, in build order
        self._slots: dict = {}  # id(model variable) -> {slot name: slot Variable}
        self._slot_names: dict = {}  # id(slot Variable) -> its short name ("momentum")
        self._base_slots: dict = {}  # id(model variable) -> {"average"/"gradient_accumulator"}
        self._extra_variables: list = []  # optimizer-wide state (add_variable)
        self._exclude_ids, self._exclude_pattern = set(), None
        self.built = False
        self._apply_programs: dict = {}

    # -- learning rate --------------------------------------------------------------------
    @property
    def learning_rate(self):
        """The current learning rate as a float (a schedule is evaluated at `iterations`)."""
        if self._schedule is not None:
            step = np.float32(np.asarray(self.iterations.numpy()).reshape(()))
            return float(np.asarray(self._schedule(step)).reshape(()))
        return float(np.asarray(self._learning_rate.numpy()).reshape(()))

    @learning_rate.setter
    def learning_rate(self, value):
        if checks.is_schedule(value):
            self._schedule = value
            self._apply_programs.clear()  # eager update graphs traced the old rate
        elif self._schedule is not None:
            raise TypeError(f"{type(self).__name__} was created with a `LearningRateSchedule` "
                            "as its `learning_rate`, so its learning rate is not settable. "
                            f"Received: learning_rate={value!r}. Create the optimizer with a "
                            "float `learning_rate` to set it later.")
        else:
            checks.check_learning_rate(type(self).__name__, value)
            self._learning_rate.assign(np.float32(value))

    lr = learning_rate

    def _learning_rate_value(self):
        """This step's learning rate as a float32 graph value (schedules see `iterations`)."""
        if self._schedule is not None:
            step = ops.cast(self.iterations.value, "float32")
            return ops.cast(self._schedule(step), "float32")
        return self._learning_rate.value

    def _step_count(self):
        """The number of updates done so far (`iterations // gradient_accumulation_steps`)."""
        iterations = self.iterations.value
        if self.gradient_accumulation_steps:
            n = self.gradient_accumulation_steps
            return ops.cast(iterations - ops.mod(iterations, n), "float32") / float(n)
        return ops.cast(iterations, "float32")

    # -- variables ------------------------------------------------------------------------
    def add_variable(self, shape, initializer="zeros", dtype=None, name=None):
        """Add an optimizer-wide variable (listed in `variables` after every slot)."""
        from kgraph.keras import initializers

        var = Variable(initializers.get(initializer), shape=tuple(shape), dtype=dtype,
                       trainable=False, name=name, path=f"{self.name}/{name}")
        self._extra_variables.append(var)
        return var

    def add_variable_from_reference(self, reference, name, initializer="zeros"):
        """A slot variable with the shape and dtype of `reference`, named as Keras 3 names it."""
        from kgraph.keras import initializers

        full_name = f"{reference.path.replace('/', '_')}_{name}"
        var = Variable(initializers.get(initializer), shape=reference.shape,
                       dtype=reference.dtype, trainable=False, name=full_name,
                       path=f"{self.name}/{full_name}")
        self._slot_names[id(var)] = name
        return var

    def build(self, variables):
        """Create the slots of `variables` not seen before (base slots, then `build_slots`)."""
        for var in variables:
            if id(var) in self._slots:
                continue
            self._built_variables.append(var)
            base = {}
            if self.use_ema:
                base["average"] = self.add_variable_from_reference(var, "average")
            if self.gradient_accumulation_steps:
                base["gradient_accumulator"] = self.add_variable_from_reference(
                    var, "gradient_accumulator")
            self._base_slots[id(var)] = base
            self._slots[id(var)] = {self._slot_names[id(s)]: s for s in self.build_slots(var)}
        self.built = True

    def build_slots(self, var) -> list:
        """The slot variables of model variable `var`, made with `add_variable_from_reference`."""
        return []

    def slots(self, var) -> list:
        return list(self._slots[id(var)].values())

    def slot(self, var, name):
        """The slot called `name` ("momentum", "velocity", ...) of model variable `var`."""
        return self._slots[id(var)][name]

    @property
    def variables(self):
        """`[iteration, learning_rate, averages, gradient accumulators, slots (Keras order),
        extra variables]`; `learning_rate` is left out when it is a schedule, as in Keras 3."""
        out = [self.iterations] + ([] if self._schedule is not None else [self._learning_rate])
        for kind in ("average", "gradient_accumulator"):  # all averages, then accumulators
            for var in self._built_variables:
                slot = self._base_slots[id(var)].get(kind)
                out += [] if slot is None else [slot]
        for group in self.slot_groups or (None,):
            for var in self._built_variables:
                out += [s for k, s in self._slots[id(var)].items() if group is None or k in group]
        return out + self._extra_variables

    def set_weights(self, weights):
        """Set `variables` from a list of arrays, in `variables` order."""
        if not self.built:
            raise ValueError(f"{type(self).__name__}.set_weights(): the optimizer is not built "
                             "yet; call `optimizer.build(trainable_variables)` first.")
        checks.check_weight_list(self.variables, weights)
        for var, w in zip(self.variables, weights):
            var.assign(np.asarray(w).reshape(var.shape))

    def save_own_variables(self, store):
        for i, var in enumerate(self.variables):
            store[str(i)] = var.numpy()

    def load_own_variables(self, store):
        if len(store.keys()) != len(self.variables):
            warnings.warn(f"Skipping variable loading for optimizer '{self.name}', because it "
                          f"has {len(self.variables)} variables whereas the saved optimizer has "
                          f"{len(store.keys())} variables.", stacklevel=2)
            return
        for i, var in enumerate(self.variables):
            var.assign(np.asarray(store[str(i)]).reshape(var.shape))

    # -- applying -------------------------------------------------------------------------
    def scale_loss(self, loss):
        """The loss to differentiate: `loss * loss_scale_factor` when one is set (`apply`
        divides the gradients by it again). Custom `train_step`s call this, as in Keras."""
        if self.loss_scale_factor is None:
            return loss
        return loss * float(self.loss_scale_factor)

    def apply_gradients(self, grads_and_vars):
        """Apply `(gradient, variable)` pairs; returns `iterations`."""
        grads, variables = zip(*list(grads_and_vars))
        return self.apply(list(grads), list(variables))

    def apply(self, grads, variables):
        grads, variables = checks.filter_empty_gradients(grads, variables)
        graph = current_graph()
        if graph is not None and graph.captures is not None:
            # inside an eager GradientTape's `with` block: the update happens now, as
            # TensorFlow's eager update does (recorded, it would wait for a read of the tape)
            grads = [g.numpy() if isinstance(g, Value) else g for g in grads]
            graph = None
        if graph is None:
            return self._apply_eager(grads, variables)
        return self._apply_in_graph(grads, variables)

    def _apply_in_graph(self, grads, variables):
        """Append the whole update to the graph being traced (`MultiOptimizer` dispatches)."""
        self.build(variables)
        if self.loss_scale_factor is not None:
            grads = [g / float(self.loss_scale_factor) for g in grads]
        # Keras' `iterations + 1`: this update's count, read once for `t` and the new value,
        # so the counter has one reader and its update can be written in place (emit)
        step = self.iterations.value + np.int64(1)
        if self.gradient_accumulation_steps:
            averaging.accumulate_then_update(self, grads, variables)
        else:
            self._update(grads, variables, step)
        if self.use_ema:
            averaging.update_moving_averages(self, variables)
        for var in variables:
            constraint = getattr(var, "constraint", None)
            if constraint is not None:
                var.assign(constraint(var.value))
        self.iterations.assign(step)
        return self.iterations

    def _update(self, grads, variables, step=None):
        """`step`: the update's count as an int64 value (`iterations + 1`); by default worked
        out from `_step_count`, which gradient accumulation divides."""
        grads = clipping.clip_gradients(grads, self.clipnorm, self.clipvalue,
                                        self.global_clipnorm)
        lr = self._learning_rate_value()
        self._apply_weight_decay(variables, lr)
        t = self._step_count() + 1.0 if step is None else ops.cast(step, "float32")
        self._update_variables(grads, variables, lr, t)

    def _update_variables(self, grads, variables, lr, t):
        """Run `update_step` for every variable (Keras' `_backend_update_step`)."""
        for g, var in zip(grads, variables):
            dtype = var.dtype
            self.update_step(cast_to(g, dtype), var, cast_to(lr, dtype), cast_to(t, dtype))

    def update_step(self, gradient, variable, learning_rate, t):
        raise NotImplementedError(f"{type(self).__name__} must implement `update_step`.")

    # -- weight decay ---------------------------------------------------------------------
    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exclude variables (or those whose name contains one of `var_names`) from decay."""
        if self.built:
            raise ValueError("`exclude_from_weight_decay()` can only be configured before "
                             "the optimizer is built.")
        self._exclude_ids = {id(v) for v in var_list or ()}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def _use_weight_decay(self, var):
        if id(var) in self._exclude_ids:
            return False
        return self._exclude_pattern is None or not self._exclude_pattern.search(var.name)

    def _apply_weight_decay(self, variables, lr):
        if self.weight_decay is None:
            return
        for var in variables:
            if self._use_weight_decay(var):
                wd = float(self.weight_decay)
                var.assign(var.value - var.value * wd * cast_to(lr, var.dtype))

    def finalize_variable_values(self, var_list):
        """With `use_ema`, overwrite `var_list` with their moving averages (end of `fit`)."""
        if self.use_ema:
            for var in var_list:
                var.assign(self._base_slots[id(var)]["average"].value)

    # -- eager ----------------------------------------------------------------------------
    def _apply_eager(self, grads, variables):
        from kgraph import tape_step
        from kgraph.compiler.program import build_program

        if tape_step.commit_or_learn(self, grads, variables):  # computed with the gradients
            return self.iterations
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
        return self.iterations

    # -- config ---------------------------------------------------------------------------
    def get_config(self):
        from kgraph.keras.optimizers.schedules import serialize as serialize_schedule

        lr = serialize_schedule(self._schedule) if self._schedule is not None else float(
            np.asarray(self._learning_rate.numpy(), dtype=np.float32).reshape(()))
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue, "use_ema": self.use_ema,
                "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = {k: v for k, v in config.items() if k not in _FOREIGN_CONFIG_KEYS}
        if isinstance(config.get("learning_rate"), dict):
            from kgraph.keras.optimizers.schedules import deserialize

            config["learning_rate"] = deserialize(config["learning_rate"], custom_objects)
        return cls(**config)


_as = clipping.cast_to