"""`HyperParameters`: the search space, declared while the model is built (define-by-run).

Inside a trial every declaration asks the Optuna trial for a value (`suggest_int`,
`suggest_float`, `suggest_categorical`), so the sampler sees the real space, conditional
branches included. Outside a trial (a fresh `HyperParameters()`), or for the best values of a
finished search, declarations return the default or the recorded value.
"""
from __future__ import annotations

import contextlib
import math
import numbers

_SAMPLINGS = ("linear", "log")


def _check_sampling(name, sampling, low):
    if sampling not in _SAMPLINGS:
        raise ValueError(f"Hyperparameter {name!r}: `sampling` must be one of {_SAMPLINGS}. "
                         f"Received: sampling={sampling!r}")
    if sampling == "log" and low <= 0:
        raise ValueError(f"Hyperparameter {name!r}: log sampling needs min_value > 0. "
                         f"Received: min_value={low!r}")


def _check_range(name, low, high, kind):
    if isinstance(low, bool) or isinstance(high, bool) or not isinstance(low, kind) or \
            not isinstance(high, kind):
        raise ValueError(f"Hyperparameter {name!r}: min_value and max_value must be "
                         f"{'integers' if kind is numbers.Integral else 'numbers'}. "
                         f"Received: min_value={low!r}, max_value={high!r}")
    if low > high:
        raise ValueError(f"Hyperparameter {name!r}: min_value must not exceed max_value. "
                         f"Received: min_value={low!r}, max_value={high!r}")


class HyperParameters:
    """The hyperparameters of one trial (KerasTuner's `HyperParameters`).

    Args:
        trial: the Optuna trial that chooses the values (None: defaults / fixed `values`).
        values: values to return instead of sampling (the best trial's, for instance).

    Example:
    >>> hp = HyperParameters()
    >>> hp.Int("units", 8, 64, step=8), hp.Choice("activation", ["relu", "tanh"])
    (8, 'relu')
    """

    def __init__(self, trial=None, values=None, space=None, tune_new_entries=True):
        self.trial = trial
        self.values = dict(values or {})
        self._given = dict(values or {})
        self._scopes = []  # (parent name, allowed parent values)
        self._declared = {}  # name -> (default, suggest): the declarations made on this object
        # a tuner's `hyperparameters=`: its declarations replace the model's own of the same
        # name; with `tune_new_entries=False` the others keep their defaults
        self._space, self._tune_new_entries = space, tune_new_entries
        self.grid = {}  # name -> every value a grid search visits (None: not enumerable)

    # -- declarations -------------------------------------------------------------------
    def Int(self, name, min_value, max_value, step=1, sampling="linear", default=None,
            parent_name=None, parent_values=None):
        """An integer in [min_value, max_value] (every `step`, or log-uniform)."""
        _check_range(name, min_value, max_value, numbers.Integral)
        _check_sampling(name, sampling, min_value)
        default = min_value if default is None else default
        self.grid[name] = list(range(min_value, max_value + 1, step or 1)) \
            if sampling == "linear" else None
        return self._declare(name, default, parent_name, parent_values,
                             lambda t: t.suggest_int(name, min_value, max_value,
                                                     step=1 if sampling == "log" else step or 1,
                                                     log=sampling == "log"))

    def Float(self, name, min_value, max_value, step=None, sampling="linear", default=None,
              parent_name=None, parent_values=None):
        """A float in [min_value, max_value] (uniform, every `step`, or log-uniform)."""
        _check_range(name, min_value, max_value, numbers.Real)
        _check_sampling(name, sampling, min_value)
        default = float(min_value if default is None else default)
        self.grid[name] = [float(min_value + i * step) for i in
                           range(int(round((max_value - min_value) / step)) + 1)] \
            if step and sampling == "linear" else None
        return self._declare(name, default, parent_name, parent_values,
                             lambda t: t.suggest_float(name, float(min_value), float(max_value),
                                                       step=None if sampling == "log" else step,
                                                       log=sampling == "log"))

    def Choice(self, name, values, ordered=None, default=None, parent_name=None,
               parent_values=None):
        """One of `values` (numbers, strings or booleans)."""
        values = list(values)
        if not values or not all(isinstance(v, (str, bool, numbers.Real)) for v in values):
            raise ValueError(f"Hyperparameter {name!r}: `values` must be a non-empty list of "
                             f"numbers, strings or booleans. Received: values={values!r}")
        default = values[0] if default is None else default
        if default not in values:
            raise ValueError(f"Hyperparameter {name!r}: the default must be one of the values. "
                             f"Received: default={default!r}, values={values!r}")
        self.grid[name] = values
        return self._declare(name, default, parent_name, parent_values,
                             lambda t: t.suggest_categorical(name, values))

    def Boolean(self, name, default=False, parent_name=None, parent_values=None):
        """True or False."""
        return self.Choice(name, [False, True], default=bool(default), parent_name=parent_name,
                           parent_values=parent_values)

    def Fixed(self, name, value, parent_name=None, parent_values=None):
        """A constant, recorded with the trial's values."""
        return self._declare(name, value, parent_name, parent_values, lambda t: value)

    @contextlib.contextmanager
    def conditional_scope(self, parent_name, parent_values):
        """Hyperparameters declared inside are active only while the hyperparameter
        `parent_name` has one of `parent_values`; otherwise they return their default and
        are neither sampled nor recorded."""
        if parent_name not in self.values and parent_name not in self._given:
            raise ValueError(f"conditional_scope: declare {parent_name!r} before using it as a "
                             f"parent. Declared so far: {sorted(self.values)}")
        allowed = parent_values if isinstance(parent_values, (list, tuple)) else [parent_values]
        self._scopes.append((parent_name, list(allowed)))
        try:
            yield
        finally:
            self._scopes.pop()

    # -- lookups ------------------------------------------------------------------------
    def get(self, name):
        """The value of the declared hyperparameter `name`."""
        if name not in self.values:
            raise KeyError(f"Hyperparameter {name!r} was not declared (or is inactive). "
                           f"Declared: {sorted(self.values)}")
        return self.values[name]

    def __getitem__(self, name):
        return self.get(name)

    def __contains__(self, name):
        return name in self.values

    def __repr__(self):
        return f"HyperParameters({self.values!r})"

    # -- internals ----------------------------------------------------------------------
    def _active(self, parent_name, parent_values):
        scopes = list(self._scopes)
        if parent_name is not None:
            scopes.append((parent_name, list(parent_values or [])))
        return all(self.values.get(p, self._given.get(p)) in allowed for p, allowed in scopes)

    def _declare(self, name, default, parent_name, parent_values, suggest):
        self._declared[name] = (default, suggest)
        if self._space is not None:
            if name in self._space._declared:
                default, suggest = self._space._declared[name]
            elif not self._tune_new_entries:
                suggest = lambda trial: default  # noqa: E731 - not tuned: its default
        if not self._active(parent_name, parent_values):
            return default
        if name in self._given:
            value = self._given[name]
        elif self.trial is not None:
            value = suggest(self.trial)
        elif name in self.values:  # set by hand before the declaration (`hp.values[n] = v`)
            value = self.values[name]
        else:
            value = default
        if isinstance(value, float) and math.isfinite(value) and value == int(value) and \
                isinstance(default, int) and not isinstance(default, bool):
            value = int(value)
        self.values[name] = value
        return value
