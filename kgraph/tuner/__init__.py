"""kgraph.tuner: hyperparameter tuning with the KerasTuner API, Optuna as the search engine.

    from kgraph import tuner
    def build(hp):
        model = keras.Sequential([keras.Input((8,)),
                                  keras.layers.Dense(hp.Int("units", 8, 64, step=8), "relu"),
                                  keras.layers.Dense(1)])
        model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")), "mse")
        return model
    search = tuner.RandomSearch(build, objective="val_loss", max_trials=5,
                                directory="runs", project_name="mlp")
    search.search(x, y, epochs=5, validation_split=0.2, verbose=0)
    best = search.get_best_models(1)[0]

Needs the `optuna` package (`pip install kgraph[tuner]`).
"""
from kgraph.tuner.callback import PruningCallback  # noqa: F401
from kgraph.tuner.hyperparameters import HyperParameters  # noqa: F401
from kgraph.tuner.tuner import HyperModel, Objective, Trial, Tuner  # noqa: F401
from kgraph.tuner import applications, errors, oracles  # noqa: F401
from kgraph.tuner.tuners import (BayesianOptimization, GridSearch, Hyperband,  # noqa: F401
                                 RandomSearch)
