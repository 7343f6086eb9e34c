"""The KerasTuner search strategies, each an Optuna sampler/pruner pair: `RandomSearch`
(random sampling), `GridSearch` (every combination of the enumerable hyperparameters),
`BayesianOptimization` (Optuna's TPE, a sequential model-based Bayesian method, after
`num_initial_points` random trials) and `Hyperband` (random sampling with Optuna's Hyperband
pruner over epochs)."""
from __future__ import annotations

import math

from kgraph.tuner.tuner import Tuner


class RandomSearch(Tuner):
    """Sample every trial's hyperparameters at random (see `Tuner` for the arguments)."""


class GridSearch(Tuner):
    """Try every combination of the hyperparameters' values (Int and stepped Float ranges,
    Choice and Boolean values), as found by building the hypermodel once with their
    defaults; `max_trials` (default: all combinations) may stop it earlier. Hyperparameters
    declared only under another's non-default value are not in the grid."""

    def __init__(self, hypermodel=None, objective=None, max_trials=None, **kwargs):
        self._grid_max_trials = max_trials
        super().__init__(hypermodel, objective=objective, max_trials=max_trials or 1, **kwargs)

    def search(self, *fit_args, **fit_kwargs):
        import optuna

        space = self._grid()
        self.study.sampler = optuna.samplers.GridSampler(space)
        combinations = math.prod(len(values) for values in space.values())
        self.max_trials = min(self._grid_max_trials or combinations, combinations)
        return super().search(*fit_args, **fit_kwargs)

    def _grid(self):
        from kgraph.tuner.hyperparameters import HyperParameters

        if self.hypermodel is None:
            raise ValueError("GridSearch finds its grid by building the hypermodel: pass one")
        hp = HyperParameters(space=self.hyperparameters, tune_new_entries=self.tune_new_entries)
        try:
            self.hypermodel.build(hp)
        except Exception:  # noqa: BLE001 - only the declarations made before it matter here
            pass
        grid = dict(hp.grid)
        if self.hyperparameters is not None:
            grid.update(self.hyperparameters.grid)
            if not self.tune_new_entries:
                grid = {n: v for n, v in grid.items() if n in self.hyperparameters.grid}
        missing = sorted(name for name, values in grid.items() if values is None)
        if missing:
            raise ValueError(f"GridSearch enumerates Int, Choice, Boolean and stepped Float "
                             f"hyperparameters; give these a step or use another tuner: "
                             f"{missing}")
        return grid


class BayesianOptimization(Tuner):
    """Choose each trial from the results of the previous ones (Optuna's TPE sampler).

    Args:
        num_initial_points: random trials before the model of the objective is used
            (default 3 times the number of hyperparameters, at least 2, as KerasTuner).
        Other arguments: see `Tuner`.
    """

    def __init__(self, hypermodel, objective="val_loss", max_trials=10, num_initial_points=None,
                 **kwargs):
        self.num_initial_points = num_initial_points
        super().__init__(hypermodel, objective=objective, max_trials=max_trials, **kwargs)

    def _sampler(self, seed):
        import optuna

        startup = self.num_initial_points if self.num_initial_points is not None else 2
        return optuna.samplers.TPESampler(n_startup_trials=startup, seed=seed)


def hyperband_trials(max_epochs, factor, iterations):
    """The number of models Hyperband trains: for each bracket s = s_max..0,
    ceil((s_max + 1) / (s + 1) * factor**s) models, times `iterations`."""
    s_max = int(math.floor(math.log(max_epochs, factor) + 1e-9))
    return iterations * sum(int(math.ceil((s_max + 1) / (s + 1) * factor ** s))
                            for s in range(s_max + 1))


class Hyperband(Tuner):
    """Train many configurations for few epochs and continue only the promising ones
    (Optuna's `HyperbandPruner` stops the others at the end of an epoch).

    Args:
        max_epochs: epochs of a trial that is never pruned (pass `epochs` to `search` no
            larger than this; it defaults to `max_epochs`).
        factor: reduction factor between rungs.
        hyperband_iterations: how many times the brackets are run.
        max_trials: defaults to the number of models the brackets hold.
        Other arguments: see `Tuner`.
    """

    def __init__(self, hypermodel, objective="val_loss", max_epochs=100, factor=3,
                 hyperband_iterations=1, max_trials=None, **kwargs):
        if not isinstance(max_epochs, int) or max_epochs < 1 or factor < 2:
            raise ValueError(f"Hyperband needs max_epochs >= 1 and factor >= 2. Received: "
                             f"max_epochs={max_epochs!r}, factor={factor!r}")
        self.max_epochs, self.factor = max_epochs, factor
        trials = max_trials or hyperband_trials(max_epochs, factor, hyperband_iterations)
        super().__init__(hypermodel, objective=objective, max_trials=trials, **kwargs)

    def _pruner(self):
        import optuna

        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=self.max_epochs,
                                              reduction_factor=self.factor)

    def search(self, *fit_args, **fit_kwargs):
        fit_kwargs.setdefault("epochs", self.max_epochs)
        return super().search(*fit_args, **fit_kwargs)
