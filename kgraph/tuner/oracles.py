"""`keras_tuner.oracles`: a search's settings (objective, trial budget, seed) and its Optuna
sampler, for `Tuner(oracle=..., hypermodel=...)` subclasses with a custom `run_trial` (the
keras.io "Writing your own Tuner" guide). `tuner.oracle.update_trial(trial_id, metrics)`
records a trial's result."""
from __future__ import annotations

from kgraph.tuner.tuner import Objective, _OracleView


class Oracle(_OracleView):
    """The settings every oracle takes (see `Tuner`)."""

    def __init__(self, objective=None, max_trials=10, seed=None, **kwargs):
        self.objective = Objective.get(objective) if objective is not None else None
        self.max_trials, self.seed, self.kwargs = max_trials, seed, kwargs

    def sampler(self):
        import optuna

        return optuna.samplers.RandomSampler(seed=self.seed)


class RandomSearch(Oracle):
    """Random sampling."""


class BayesianOptimization(Oracle):
    """Optuna's TPE after `num_initial_points` random trials (default 2)."""

    def __init__(self, objective=None, max_trials=10, num_initial_points=None, seed=None,
                 **kwargs):
        super().__init__(objective, max_trials, seed, **kwargs)
        self.num_initial_points = num_initial_points

    def sampler(self):
        import optuna

        startup = self.num_initial_points if self.num_initial_points is not None else 2
        return optuna.samplers.TPESampler(n_startup_trials=startup, seed=self.seed)
