"""`keras.optimizers.MultiOptimizer` and `keras.optimizers.OptimizerMap`: different optimizers
for different variables, all traced into the one training step."""
from __future__ import annotations

import re
from collections.abc import MutableMapping

import numpy as np

from kgraph.keras.optimizers.base import Optimizer
from kgraph.keras.optimizers.loss_scale_optimizer import LossScaleOptimizer


class OptimizerMap(MutableMapping):
    """Variable paths (exact, else `re.fullmatch` patterns) to optimizers, with a default.

    Args:
        default_optimizer: the `Optimizer` of variables no key matches.
        optimizer_map: dict of path or pattern -> `Optimizer`. Defaults to `None` (empty).

    Example:

    >>> opt_map = keras.optimizers.OptimizerMap(keras.optimizers.SGD(), {"dense/.*": Adam()})
    >>> opt_map["dense/kernel"].name
    'adam'
    """

    def __init__(self, default_optimizer, optimizer_map=None):
        if not isinstance(default_optimizer, Optimizer):
            raise TypeError("OptimizerMap: `default_optimizer` must be a Keras Optimizer "
                            f"instance. Received: default_optimizer={default_optimizer!r}")
        if optimizer_map is not None and not isinstance(optimizer_map, dict):
            raise TypeError("OptimizerMap: `optimizer_map` must be a dict. Received: "
                            f"optimizer_map={optimizer_map!r}")
        self._default_optimizer = default_optimizer
        self._optimizer_map = optimizer_map or {}

    @property
    def default_optimizer(self):
        return self._default_optimizer

    def __getitem__(self, key):
        """The optimizer of path `key`: an exact key, else the one pattern that fullmatches it,
        else the default. Raises ValueError when several patterns match."""
        if key in self._optimizer_map:
            return self._optimizer_map[key]
        matching = [p for p in self._optimizer_map if re.fullmatch(p, key)]
        if len(matching) > 1:
            raise ValueError(f"Multiple optimizers assigned to variable {key}: patterns "
                             f"{matching}.")
        return self._optimizer_map[matching[0]] if matching else self._default_optimizer

    def __setitem__(self, key, optimizer):
        if key in self._optimizer_map:
            raise ValueError(f"'{key}' already exists in the OptimizerMap with value "
                             f"{self._optimizer_map[key]}. Please make sure to not use "
                             "duplicated keys.")
        if not isinstance(key, str):
            raise ValueError(  # noqa: TRY004 - Keras 3 raises ValueError
                f"OptimizerMap: key must be a string. Received: {key!r}")
        _check_inner(optimizer)
        self._optimizer_map[key] = optimizer

    def __delitem__(self, key):
        del self._optimizer_map[key]

    def __len__(self):
        return len(self._optimizer_map)

    def __iter__(self):
        return iter(self._optimizer_map)

    def __call__(self, variable):
        return self[variable.path]

    def get_config(self):
        from kgraph.keras.saving.serialization_lib import serialize_keras_object

        return {"default_optimizer": serialize_keras_object(self._default_optimizer),
                "optimizer_map": {k: serialize_keras_object(v)
                                  for k, v in self._optimizer_map.items()}}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if "default_optimizer" not in config:
            raise ValueError("OptimizerMap: the config must hold `default_optimizer`. "
                             f"Received: config={config!r}")
        return cls(_deserialize(config["default_optimizer"], custom_objects),
                   {k: _deserialize(v, custom_objects)
                    for k, v in (config.get("optimizer_map") or {}).items()})


class MultiOptimizer(Optimizer):
    """Delegates each variable to the optimizer an `OptimizerMap` (or a function of the
    variable) gives it. Each sub-optimizer clips, decays and counts its own `iterations`; the
    updates all run inside the same compiled training step.

    Args:
        optimizer_map: an `OptimizerMap`, or a callable `variable -> Optimizer`.
        loss_scale_factor: float or `None`; it overrides the sub-optimizers' factor.
        name: string. Defaults to `"multi_optimizer"`.

    `learning_rate` is not readable nor settable (read it on `optimizers`).

    Example:

    >>> opt = keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(
    ...     keras.optimizers.SGD(), {"encoder/.*": keras.optimizers.Adam()}))
    >>> model.compile(optimizer=opt, loss="mse")
    """

    def __init__(self, optimizer_map, loss_scale_factor=None, name=None):
        if not callable(optimizer_map):
            raise TypeError("MultiOptimizer: `optimizer_map` must be an OptimizerMap or a "
                            "callable returning an Optimizer for a variable. Received: "
                            f"optimizer_map={optimizer_map!r}")
        # a plain attribute named as Keras' property: `.keras` files keep each sub-optimizer's
        # variables under optimizer/optimizers/<name>, as Keras writes them
        self.optimizers = []
        super().__init__(learning_rate=0.0, loss_scale_factor=loss_scale_factor, name=name)
        self._optimizer_map = optimizer_map
        known = list(optimizer_map.values()) if hasattr(optimizer_map, "values") else []
        default = getattr(optimizer_map, "default_optimizer", None)
        for opt in known + ([default] if default is not None else []):
            self._add_inner(opt)
        self._owner = {}  # id(model variable) -> index in `optimizers`

    def _add_inner(self, opt):
        if not any(opt is known for known in self.optimizers):
            _check_inner(opt)
            opt.loss_scale_factor = self.loss_scale_factor
            self.optimizers.append(opt)
        return next(i for i, known in enumerate(self.optimizers) if known is opt)

    @property
    def loss_scale_factor(self):
        return getattr(self, "_loss_scale_factor", None)

    @loss_scale_factor.setter
    def loss_scale_factor(self, value):
        self._loss_scale_factor = value
        for opt in getattr(self, "optimizers", ()):
            opt.loss_scale_factor = value

    @property
    def learning_rate(self):
        raise AttributeError("Learning rate cannot be accessed on a MultiOptimizer. Access "
                             "the learning rate on the individual sub-optimizers instead.")

    @learning_rate.setter
    def learning_rate(self, value):
        raise AttributeError("Learning rate cannot be set on a MultiOptimizer. Set the "
                             "learning rate on the individual sub-optimizers instead.")

    @property
    def variables(self):
        """Its own `iteration` and `learning_rate`, then each sub-optimizer's variables."""
        own = [self.iterations, self._learning_rate]
        return own + [v for opt in self.optimizers for v in opt.variables]

    def build(self, variables):
        groups = [[] for _ in self.optimizers]
        for var in variables:
            if id(var) in self._owner:
                continue
            index = self._add_inner(self._optimizer_map(var))
            groups += [[] for _ in range(len(self.optimizers) - len(groups))]
            self._owner[id(var)] = index
            groups[index].append(var)
        for opt, group in zip(self.optimizers, groups):
            if group:
                opt.build(group)
        self.built = True

    def _apply_in_graph(self, grads, variables):
        self.build(variables)
        for index, group in self._split(list(zip(grads, variables))):
            self.optimizers[index].apply([g for g, _ in group], [v for _, v in group])
        self.iterations.assign(self.iterations.value + np.int64(1))
        return self.iterations

    def _split(self, items, variable=lambda item: item[1]):
        """`(optimizer index, items)` for each sub-optimizer owning some of `items`."""
        groups = {}
        for item in items:
            groups.setdefault(self._owner[id(variable(item))], []).append(item)
        return sorted(groups.items())

    def finalize_variable_values(self, var_list):
        for index, group in self._split(list(var_list), variable=lambda v: v):
            self.optimizers[index].finalize_variable_values(group)

    def get_config(self):
        from kgraph.keras.saving.serialization_lib import serialize_keras_object

        return {"optimizer_map": serialize_keras_object(self._optimizer_map),
                "loss_scale_factor": self.loss_scale_factor, "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["optimizer_map"] = _deserialize(config["optimizer_map"], custom_objects)
        return cls(**config)


def _check_inner(optimizer):
    """ValueError (as Keras 3 raises) unless `optimizer` can serve inside a MultiOptimizer."""
    if not isinstance(optimizer, Optimizer):
        problem = "every sub-optimizer must be a Keras Optimizer instance"
    elif isinstance(optimizer, (LossScaleOptimizer, MultiOptimizer)):
        problem = f"a sub-optimizer cannot be a {type(optimizer).__name__}"
    else:
        return
    raise ValueError(f"MultiOptimizer: {problem}. Received: {optimizer!r}")


def _deserialize(config, custom_objects):
    from kgraph.keras.saving.serialization_lib import deserialize_keras_object

    return deserialize_keras_object(config, custom_objects, what="optimizer")
