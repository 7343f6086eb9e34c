"""`LossScaleOptimizer`: dynamic loss scaling, inside the training graph.

The loss is multiplied by `dynamic_scale` before differentiation (`scale_loss`), so small
float16 gradients do not flush to zero; `apply` divides the gradients by the scale and runs
the wrapped optimizer. When any gradient is not finite the step is skipped: every variable
and slot the update wrote is selected back to its value before the step (`where(finite,
new, old)`, no control flow) and the scale halves. After `dynamic_growth_steps` finite steps
in a row the scale doubles. All of it is graph ops, so a step stays one onnxruntime call.
"""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.ir.graph import current_graph
from kgraph.keras.optimizers import checks
from kgraph.keras.optimizers.base import Optimizer
from kgraph.variables import Variable

# Keras 3 accepts these base arguments in a config only at their defaults.
_BASE_DEFAULTS = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None,
                  "clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
                  "ema_overwrite_frequency": None, "loss_scale_factor": None,
                  "gradient_accumulation_steps": None}


class LossScaleOptimizer(Optimizer):
    """An optimizer that dynamically scales the loss to prevent float16 underflow.

    `compile()` wraps the optimizer in one when the model's policy is `mixed_float16`.

    Args:
        inner_optimizer: the `keras.optimizers.Optimizer` instance to wrap.
        initial_scale: float, the first loss scale (high: a scale too high is lowered far
            faster than one too low is raised).
        dynamic_growth_steps: int, the scale doubles after this many finite steps in a row.
        name: string, the prefix of the optimizer's variable paths.

    Example:

    >>> opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))
    >>> w = keras.Variable(np.ones(2, "float32"))
    >>> _ = opt.apply([np.array([np.inf, 1.0], "float32")], [w])  # skipped, scale halves
    >>> w.numpy(), float(opt.dynamic_scale.numpy())
    (array([1., 1.], dtype=float32), 16384.0)
    """

    def __init__(self, inner_optimizer, initial_scale=2.0 ** 15, dynamic_growth_steps=2000,
                 name=None, **kwargs):
        if not kwargs.pop("dynamic", True):
            raise ValueError("LossScaleOptimizer no longer supports `dynamic=False`. Instead, "
                             "simply set `loss_scale_factor` directly on the `inner_optimizer`.")
        for arg, default in _BASE_DEFAULTS.items():
            if arg in kwargs and kwargs.pop(arg) != default:
                raise ValueError(f"LossScaleOptimizer does not support `{arg}`. Instead, "
                                 f"set `{arg}` on the `inner_optimizer`.")
        if kwargs:
            raise ValueError(f"LossScaleOptimizer does not support arguments: {sorted(kwargs)}")
        if not isinstance(inner_optimizer, Optimizer):
            raise TypeError("LossScaleOptimizer: `inner_optimizer` must be an Optimizer "
                            f"instance. Received: inner_optimizer={inner_optimizer!r}")
        checks.check_number("LossScaleOptimizer", "initial_scale", initial_scale, low=0,
                            low_open=True)
        if not isinstance(dynamic_growth_steps, int) or dynamic_growth_steps < 1:
            raise ValueError("LossScaleOptimizer: `dynamic_growth_steps` must be a positive "
                             f"integer. Received: dynamic_growth_steps={dynamic_growth_steps!r}")
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self.initial_scale, self.dynamic_growth_steps = float(initial_scale), dynamic_growth_steps
        inner_optimizer.loss_scale_factor = None  # else the gradients are unscaled twice
        self.step_counter = Variable(np.int64(0), dtype="int64", trainable=False,
                                     name="step_counter", path=f"{self.name}/step_counter")
        self.dynamic_scale = Variable(np.float32(initial_scale), dtype="float32",
                                      trainable=False, name="dynamic_scale",
                                      path=f"{self.name}/dynamic_scale")

    # -- the wrapped optimizer's state ----------------------------------------------------
    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @iterations.setter
    def iterations(self, value):  # the base class makes its own counter: kept, never used
        self._own_iterations = value

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if hasattr(self, "inner_optimizer"):
            self.inner_optimizer.learning_rate = value

    lr = learning_rate

    @property
    def variables(self):
        """`[iteration, learning_rate, step_counter, dynamic_scale]` then the wrapped
        optimizer's variables, as Keras 3 orders them."""
        own = [self._own_iterations, self._learning_rate, self.step_counter, self.dynamic_scale]
        return own + self.inner_optimizer.variables

    def build(self, variables):
        self.inner_optimizer.build(variables)
        self.built = True

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    @property
    def use_ema(self):
        return self.inner_optimizer.use_ema

    @use_ema.setter
    def use_ema(self, value):
        pass  # the base class sets False; the wrapped optimizer's flag is the one that counts

    # -- scaling --------------------------------------------------------------------------
    def scale_loss(self, loss):
        """`loss * dynamic_scale` (the gradients of this are unscaled in `apply`)."""
        if current_graph() is None:
            return loss * float(np.asarray(self.dynamic_scale.numpy()))
        return loss * ops.cast(self.dynamic_scale.value, loss.dtype)

    def apply(self, grads, variables):
        grads, variables = checks.filter_empty_gradients(grads, variables)
        if current_graph() is None:
            return self._apply_eager(grads, variables)
        self.build(variables)
        scale = self.dynamic_scale.value
        finite = _all_finite(grads)
        state = list(variables) + self.inner_optimizer.variables
        before = [v.value for v in state]
        self.inner_optimizer.apply([g / ops.cast(scale, g.dtype) for g in grads], variables)
        for var, old in zip(state, before):
            new = var.value
            if new is not old:  # skip the step: keep every value it would have written
                var.assign(ops.where(finite, new, old))
        self._update_scale(finite, scale)
        return self.iterations

    def _update_scale(self, finite, scale):
        """Halve on a non-finite step; double after `dynamic_growth_steps` finite ones."""
        counter = self.step_counter.value
        grow = ops.logical_and(finite, ops.equal(counter, np.int64(self.dynamic_growth_steps
                                                                   - 1)))
        kept = ops.where(grow, scale * 2.0, scale)
        self.dynamic_scale.assign(ops.where(finite, kept, scale * 0.5))
        self.step_counter.assign(ops.where(
            finite, ops.where(grow, np.int64(0), counter + np.int64(1)), np.int64(0)))

    # -- config ---------------------------------------------------------------------------
    def get_config(self):
        from kgraph.keras.optimizers import serialize

        return {"name": self.name, "inner_optimizer": serialize(self.inner_optimizer),
                "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from kgraph.keras.optimizers import deserialize

        config = dict(config)
        inner = deserialize(config.pop("inner_optimizer"), custom_objects)
        return cls(inner, **config)


def _all_finite(grads):
    """A bool scalar: every element of every gradient is finite (`|g| < inf` is false for
    inf and NaN). Written with comparisons and a min, not `g * 0`, which TVM simplifies."""
    smallest = None
    for g in grads:
        finite = ops.less(ops.abs(ops.cast(g, "float32")), np.float32(np.inf))
        low = ops.min(ops.cast(finite, "float32"))
        smallest = low if smallest is None else ops.minimum(smallest, low)
    return ops.equal(smallest, np.float32(1.0))

def for_policy(optimizer, policy, auto_scale_loss=True):
    """What `compile()` trains with: under a `mixed_float16` policy (and `auto_scale_loss`),
    `optimizer` wrapped in a `LossScaleOptimizer`, as Keras 3 does; otherwise unchanged."""
    if (auto_scale_loss and policy.name == "mixed_float16"
            and not isinstance(optimizer, LossScaleOptimizer)):
        return LossScaleOptimizer(optimizer, name="loss_scale_optimizer")
    return optimizer
