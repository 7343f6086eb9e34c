"""`Tuner`: runs trials of a hypermodel with Optuna as the search engine.

Each trial builds a model from `HyperParameters` bound to an Optuna trial, fits it with a
`PruningCallback` (which reports the objective after every epoch and stops the trial when the
study's pruner says so), records the best epoch's objective, the hyperparameter values and the
final weights. The study lives in `directory/project_name/study.journal` (Optuna's journal
file: a project started by an earlier kgraph in `study.db`, SQLite, stays there), so a search
that is stopped resumes where it was: finished trials are kept and only the remaining ones run.
"""
from __future__ import annotations

import os
import shutil

from kgraph.tuner.callback import PruningCallback, objective_value
from kgraph.tuner.hyperparameters import HyperParameters

_MAXIMIZED = ("acc", "accuracy", "auc", "precision", "recall")


class Objective:
    """The metric to optimise and its direction.

    Args:
        name: a key of the `fit` logs, e.g. "val_loss" or "val_accuracy".
        direction: "min" or "max".
    """

    def __init__(self, name, direction):
        if direction not in ("min", "max"):
            raise ValueError(f"Objective {name!r}: `direction` must be 'min' or 'max'. "
                             f"Received: direction={direction!r}")
        self.name, self.direction = name, direction

    @classmethod
    def get(cls, objective):
        """An `Objective` from a metric name (accuracy-like names are maximised) or itself."""
        if isinstance(objective, Objective):
            return objective
        if not isinstance(objective, str) or not objective:
            raise ValueError(f"`objective` must be a metric name or an Objective. Received: "
                             f"objective={objective!r}")
        bare = objective[4:] if objective.startswith("val_") else objective
        return cls(objective, "max" if bare in _MAXIMIZED else "min")

    def __repr__(self):
        return f"Objective(name={self.name!r}, direction={self.direction!r})"


class HyperModel:
    """A buildable model family: subclass and define `build(hp)` (and optionally `fit`).

    Args:
        name: optional name.
        tunable: whether the hypermodel declares hyperparameters.
    """

    def __init__(self, name=None, tunable=True):
        self.name, self.tunable = name, tunable

    def build(self, hp):
        raise NotImplementedError(f"{type(self).__name__} must define build(hp) and return a "
                                  f"compiled model")

    def fit(self, hp, model, *args, **kwargs):
        """Train `model`; override to tune arguments of `fit` (batch size, epochs ...)."""
        return model.fit(*args, **kwargs)


class Trial:
    """One trial as `Tuner.run_trial` receives it (KerasTuner's `Trial`): its
    `hyperparameters` (sampled by the Optuna trial `optuna_trial`) and a `trial_id` string."""

    def __init__(self, optuna_trial, space=None, tune_new_entries=True):
        self.optuna_trial = optuna_trial
        self.hyperparameters = HyperParameters(optuna_trial, space=space,
                                               tune_new_entries=tune_new_entries)
        self.trial_id = f"{optuna_trial.number:02d}"


class _OracleView:
    """`tuner.oracle` of a tuner made without one: `update_trial(trial_id, metrics)` records
    the objective's value in `metrics` for the running trial (its best value is kept)."""

    tuner = None

    def update_trial(self, trial_id, metrics, step=0):
        tuner = self.tuner
        objective = tuner._fit_objective()
        if objective.name not in metrics:
            from kgraph.tuner.errors import FatalKeyError

            raise FatalKeyError(f"The objective {objective.name!r} is not among the metrics "
                                f"reported for trial {trial_id}: {sorted(metrics)}")
        value = float(metrics[objective.name])
        best = tuner._reported.get(trial_id)
        better = best is None or (value > best if objective.direction == "max" else value < best)
        if better:
            tuner._reported[trial_id] = value


class _TrialFailed(Exception):
    """A trial that failed after its retries: Optuna records it as failed, the search goes
    on."""


class _FunctionHyperModel(HyperModel):
    def __init__(self, build):
        super().__init__(name=getattr(build, "__name__", None))
        self._build = build

    def build(self, hp):
        return self._build(hp)


class Tuner:
    """Base class of the tuners: `search`, `get_best_models`, `get_best_hyperparameters`,
    `results_summary`. Subclasses choose the Optuna sampler and pruner.

    Args:
        hypermodel: a `HyperModel` or a function `build(hp) -> compiled model`.
        objective: metric name or `Objective` (default "val_loss").
        max_trials: number of trials of the whole search (resumed searches count the trials
            already finished).
        executions_per_trial: fits per trial, whose objectives are averaged.
        directory, project_name: where the study and the trials' weights are kept.
        overwrite: start over, deleting `directory/project_name`.
        seed: seed of the sampler.
        sampler, pruner: Optuna objects replacing the tuner's own.
    """

    def __init__(self, hypermodel=None, objective=None, max_trials=10, executions_per_trial=1,
                 directory=None, project_name="untitled_project", overwrite=False, seed=None,
                 sampler=None, pruner=None, hyperparameters=None, tune_new_entries=True,
                 optimizer=None, loss=None, metrics=None, max_retries_per_trial=0,
                 max_consecutive_failed_trials=3, oracle=None):
        import optuna

        if oracle is not None:  # KerasTuner's `oracle=`: the search's settings and sampler
            objective, max_trials, seed = oracle.objective, oracle.max_trials, oracle.seed
            sampler = sampler or oracle.sampler()

        if not isinstance(max_trials, int) or isinstance(max_trials, bool) or max_trials < 1:
            raise ValueError(f"`max_trials` must be a positive integer. Received: "
                             f"max_trials={max_trials!r}")
        self.hypermodel = hypermodel if hypermodel is None or isinstance(
            hypermodel, HyperModel) else _FunctionHyperModel(hypermodel)
        # without an objective the trials' own scores are minimised (KerasTuner's
        # "default_objective": a `run_trial` or `HyperModel.fit` returning a number)
        self.objective = Objective.get(objective) if objective is not None else \
            Objective("default_objective", "min")
        self.max_trials, self.executions_per_trial = max_trials, executions_per_trial
        # KerasTuner's tailoring: `hyperparameters` replace the model's declarations of the
        # same names (`tune_new_entries=False`: the others keep their defaults), and
        # `optimizer`/`loss`/`metrics` replace the built model's compile arguments
        self.hyperparameters, self.tune_new_entries = hyperparameters, tune_new_entries
        # a trial raising is run again up to `max_retries_per_trial` times (not after a
        # FailedTrialError), then ends failed; that many failed trials in a row end the search
        self.max_retries_per_trial = max_retries_per_trial
        self.max_consecutive_failed_trials = max_consecutive_failed_trials
        self._failed_in_a_row = 0
        self._reported = {}  # trial_id -> best objective value reported by on_epoch_end
        self._current = None  # the Trial being run
        self.oracle = oracle if oracle is not None else _OracleView()
        self.oracle.tuner = self
        self._compile_overrides = {key: value for key, value in
                                   (("optimizer", optimizer), ("loss", loss),
                                    ("metrics", metrics)) if value is not None}
        self.project_dir = os.path.join(directory or os.getcwd(), project_name)
        if overwrite and os.path.isdir(self.project_dir):
            shutil.rmtree(self.project_dir)
        os.makedirs(self.project_dir, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(
            study_name=project_name, load_if_exists=True,
            storage=_storage(self.project_dir),
            direction="maximize" if self.objective.direction == "max" else "minimize",
            sampler=sampler or self._sampler(seed), pruner=pruner or self._pruner())

    def _sampler(self, seed):
        import optuna

        return optuna.samplers.RandomSampler(seed=seed)

    def _pruner(self):
        import optuna

        return optuna.pruners.NopPruner()

    # -- searching ----------------------------------------------------------------------
    def _finished(self):
        import optuna

        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                optuna.trial.TrialState.FAIL)
        return [t for t in self.study.trials if t.state in done]

    def search(self, *fit_args, **fit_kwargs):
        """Run the remaining trials; arguments are those of `model.fit` (x, y, epochs,
        validation_data or validation_split, callbacks ...)."""
        remaining = self.max_trials - len(self._finished())
        if remaining > 0:
            self.study.optimize(
                lambda trial: self._run(trial, fit_args, fit_kwargs),
                n_trials=remaining, gc_after_trial=False, catch=(_TrialFailed,))

    def _run(self, optuna_trial, fit_args, fit_kwargs):
        import optuna

        from kgraph.tuner.errors import FailedTrialError, FatalError

        for attempt in range(self.max_retries_per_trial + 1):
            trial = self._current = Trial(optuna_trial, self.hyperparameters,
                                          self.tune_new_entries)
            try:
                result = self.run_trial(trial, *fit_args, **fit_kwargs)
                break
            except (FatalError, optuna.TrialPruned):
                raise
            except Exception as error:  # noqa: BLE001 - KerasTuner retries any failure
                if isinstance(error, FailedTrialError) or attempt == self.max_retries_per_trial:
                    self._failed_in_a_row += 1
                    if self._failed_in_a_row >= self.max_consecutive_failed_trials:
                        raise RuntimeError(
                            f"{self._failed_in_a_row} consecutive trials failed (the tuner's "
                            f"max_consecutive_failed_trials); the last one with: "
                            f"{type(error).__name__}: {error}") from error
                    raise _TrialFailed(f"{type(error).__name__}: {error}") from error
        self._failed_in_a_row = 0
        optuna_trial.set_user_attr("values", dict(trial.hyperparameters.values))
        if result is None:  # the trial reported through on_epoch_end / oracle.update_trial
            if trial.trial_id not in self._reported:
                from kgraph.tuner.errors import FatalValueError

                raise FatalValueError(
                    f"run_trial returned nothing and reported no {self.objective.name!r}: "
                    f"return the objective's value, or call self.on_epoch_end(trial, model, "
                    f"epoch, logs) / self.oracle.update_trial(trial.trial_id, metrics)")
            return self._reported[trial.trial_id]
        return self._score(result)

    # -- KerasTuner's hooks for custom training loops in `run_trial` ----------------------
    def on_epoch_begin(self, trial, model, epoch, logs=None):
        """Called by a custom `run_trial` before each epoch (a no-op to override)."""

    def on_batch_begin(self, trial, model, batch, logs=None):
        """Called by a custom `run_trial` before each batch (a no-op to override)."""

    def on_batch_end(self, trial, model, batch, logs=None):
        """Called by a custom `run_trial` after each batch (a no-op to override)."""

    def on_epoch_end(self, trial, model, epoch, logs=None):
        """Report the epoch's objective (a key of `logs`) and save the model's weights, as
        KerasTuner's hook does; the trial's score is its best reported value."""
        self.oracle.update_trial(trial.trial_id, dict(logs or {}), step=epoch)
        self.save_model(trial.trial_id, model)

    def save_model(self, trial_id, model, step=0):
        """Save `model`'s weights as the trial's (what `get_best_models` loads)."""
        model.save_weights(self._weights_path(int(trial_id)))
        shape = _input_shape(model)
        if shape is not None and self._current is not None:
            self._current.optuna_trial.set_user_attr("input_shape", shape)

    def _score(self, result):
        """The objective's value in what a trial returned, as KerasTuner reads it: a number,
        a dict of metrics, a `History` (its best epoch), or a list of these (averaged)."""
        if isinstance(result, (list, tuple)):
            return sum(self._score(r) for r in result) / len(result)
        if hasattr(result, "history"):
            return objective_value(result.history, self._fit_objective())
        if isinstance(result, dict):
            if self.objective.name not in result:
                from kgraph.tuner.errors import FatalKeyError

                raise FatalKeyError(f"The objective {self.objective.name!r} is not among the "
                               f"metrics the trial returned: {sorted(result)}")
            return float(result[self.objective.name])
        return float(result)

    def _build(self, hp):
        """The hypermodel's model for `hp`, recompiled with the tuner's compile overrides."""
        model = self.hypermodel.build(hp)
        if self._compile_overrides:
            args = {"optimizer": model.optimizer, "loss": model.loss,
                    "metrics": getattr(model, "_compile_config", {}).get("metrics")}
            model.compile(**dict(args, **self._compile_overrides))
        return model

    def _fit_objective(self):
        """The objective read from `fit` logs: "val_loss" when none was given."""
        default = self.objective.name == "default_objective"
        return Objective("val_loss", "min") if default else self.objective

    def run_trial(self, trial, *fit_args, **fit_kwargs):
        """Build, fit and score one `Trial`; override it to tune anything (return the
        objective's value, a dict of metrics or a `History`)."""
        import optuna

        if self.hypermodel is None:
            from kgraph.tuner.errors import FatalValueError

            raise FatalValueError("This tuner has no hypermodel: pass one, or override "
                             "run_trial(trial, ...) to score a trial yourself.")
        hp, number = trial.hyperparameters, trial.optuna_trial.number
        scores, model = [], None
        for _ in range(self.executions_per_trial):
            model = self._build(hp)
            pruning = PruningCallback(trial.optuna_trial, self._fit_objective().name)
            kwargs = dict(fit_kwargs, callbacks=list(fit_kwargs.get("callbacks") or []) +
                          [pruning])
            result = self.hypermodel.fit(hp, model, *fit_args, **kwargs)
            if pruning.pruned:
                raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_at}")
            scores.append(self._score(result))
        model.save_weights(self._weights_path(number))
        shape = _input_shape(model)
        if shape is not None:  # a model built by its first data (no Input) is rebuilt with it
            trial.optuna_trial.set_user_attr("input_shape", shape)
        return sum(scores) / len(scores)

    def _weights_path(self, number):
        folder = os.path.join(self.project_dir, f"trial_{number:04d}")
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, "checkpoint.h5")  # model weights only, no optimizer

    # -- results ------------------------------------------------------------------------
    def _best_trials(self, count):
        import optuna

        complete = [t for t in self.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        complete.sort(key=lambda t: t.value, reverse=self.objective.direction == "max")
        return complete[:count]

    def get_best_hyperparameters(self, num_trials=1):
        """The `HyperParameters` of the best `num_trials` completed trials, best first."""
        return [HyperParameters(values=t.user_attrs.get("values", t.params)) for t in
                self._best_trials(num_trials)]

    def get_best_models(self, num_models=1):
        """The best `num_models` models, rebuilt from their hyperparameters with the weights
        they had at the end of their trial, best first."""
        models = []
        for trial in self._best_trials(num_models):
            hp = HyperParameters(values=trial.user_attrs.get("values", trial.params))
            model = self._build(hp)
            shape = trial.user_attrs.get("input_shape")
            if not model.built and shape is not None:
                model.build(tuple(shape))
            model.load_weights(self._weights_path(trial.number))
            models.append(model)
        return models

    def results_summary(self, num_trials=10, print_fn=print):
        """Print the best `num_trials` trials: hyperparameter values and score."""
        print_fn(f"Results summary\nResults in {self.project_dir}\n"
                 f"Showing {num_trials} best trials\n{self.objective}")
        for trial in self._best_trials(num_trials):
            print_fn(f"\nTrial {trial.number:04d} summary\nHyperparameters:")
            for name, value in trial.user_attrs.get("values", trial.params).items():
                print_fn(f"{name}: {value}")
            print_fn(f"Score: {trial.value}")

    def search_space_summary(self, print_fn=print):
        """Print the hyperparameters the trials declared so far."""
        names = {}
        for trial in self.study.trials:
            names.update(trial.distributions)
        print_fn(f"Search space summary\nDefault search space size: {len(names)}")
        for name, distribution in names.items():
            print_fn(f"{name}: {distribution!r}")


def _input_shape(model):
    """The batch shape of a model's single input, as a JSON-able list (None if not one)."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        return None
    if not isinstance(shape, tuple) or not all(d is None or isinstance(d, int) for d in shape):
        return None
    return list(shape)


def _storage(project_dir):
    """The study's storage: a journal file (an SQLite database costs seconds to create and a
    commit per write), or the SQLite database of a project an earlier kgraph started."""
    import optuna

    legacy = os.path.join(project_dir, "study.db")
    if os.path.exists(legacy):
        return f"sqlite:///{legacy}"
    backend = optuna.storages.journal.JournalFileBackend(
        os.path.join(project_dir, "study.journal"))
    return optuna.storages.JournalStorage(backend)
