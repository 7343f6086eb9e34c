"""Writes tests/data/optimizers_more_golden.json: what Keras 3 (3.15.1 on JAX made the file)
computes for Lion, Adafactor, Ftrl, Muon, ScheduleFreeAdamW and MultiOptimizer, for
tests/test_optimizers_more.py: four `apply_gradients` steps on four variables (weights and
every optimizer variable after them) and two epochs of `fit` of a small Dense model (its
weights after), the configs, and two .keras files Keras saved with Adafactor and
MultiOptimizer state (tests/data/optimizer_*_keras.keras). `python tests/data/make_optimizers_more_golden.py`; not run by the tests."""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

rng = np.random.default_rng(0)
# a wide and a tall matrix (Muon transposes tall ones), a vector, a 3-D kernel (Adafactor
# factors the last two axes); gradients shrink so that later steps differ from the first
SHAPES = {"wide": (3, 5), "tall": (6, 2), "bias": (4,), "conv": (2, 3, 4)}
weights = {k: rng.normal(size=s).astype("float32") for k, s in SHAPES.items()}
grads = [{k: (rng.normal(size=s) * scale).astype("float32") for k, s in SHAPES.items()}
         for scale in (2.0, 1.0, 0.5, 0.25)]
CASES = [
    ("Lion", {}),
    ("Lion", {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.8, "weight_decay": 0.1}),
    ("Adafactor", {}),
    ("Adafactor", {"learning_rate": 0.5, "beta_2_decay": -0.5, "clip_threshold": 0.5,
                   "epsilon_2": 0.1}),
    ("Ftrl", {}),
    ("Ftrl", {"learning_rate": 0.1, "learning_rate_power": -0.7, "beta": 0.3,
              "l1_regularization_strength": 0.05, "l2_regularization_strength": 0.1,
              "l2_shrinkage_regularization_strength": 0.2, "initial_accumulator_value": 0.5}),
    ("Muon", {}),
    ("Muon", {"learning_rate": 0.05, "nesterov": False, "rms_rate": None, "momentum": 0.8,
              "exclude_layers": ["tall"], "adam_lr_ratio": 0.5, "weight_decay": 0.1,
              "adam_weight_decay": None}),
    ("ScheduleFreeAdamW", {}),
    ("ScheduleFreeAdamW", {"learning_rate": 0.05, "warmup_steps": 3, "beta_1": 0.8,
                           "weight_decay": 0.05, "clipnorm": 1.0}),
    # the base arguments around the new update steps: accumulation, moving averages, clipping
    ("Adafactor", {"gradient_accumulation_steps": 2, "use_ema": True,
                   "ema_overwrite_frequency": 2}),
    ("ScheduleFreeAdamW", {"gradient_accumulation_steps": 2, "warmup_steps": 2}),
    ("Lion", {"use_ema": True, "global_clipnorm": 0.5}),
    ("Muon", {"gradient_accumulation_steps": 2, "ns_steps": 3}),
]


def listed(a):
    return np.asarray(a, dtype="float64").tolist()


out = {"shapes": SHAPES, "weights": {k: listed(w) for k, w in weights.items()},
       "grads": [{k: listed(g[k]) for k in SHAPES} for g in grads], "cases": [], "fit": {}}
for name, kwargs in CASES:
    opt = getattr(keras.optimizers, name)(**kwargs)
    variables = {k: keras.Variable(w.copy(), name=k) for k, w in weights.items()}
    for g in grads:
        opt.apply_gradients([(g[k], variables[k]) for k in SHAPES])
    out["cases"].append({
        "name": name, "kwargs": kwargs,
        "after": {k: listed(v.numpy()) for k, v in variables.items()},
        "variables": [[v.path.split("/")[-1], listed(v.numpy())] for v in opt.variables],
        "config": getattr(keras.optimizers, name)(**kwargs).get_config()})

fit_rng = np.random.default_rng(3)
model_weights = [fit_rng.normal(size=s).astype("float32") for s in ((4, 6), (6,), (6, 2), (2,))]
x = fit_rng.normal(size=(16, 4)).astype("float32")
y = fit_rng.normal(size=(16, 2)).astype("float32")
out["fit_data"] = {"weights": [listed(w) for w in model_weights], "x": listed(x), "y": listed(y)}


def multi():
    mapping = keras.optimizers.OptimizerMap(keras.optimizers.SGD(0.1, name="sgd"),
                                            {".*head.*": keras.optimizers.Adam(0.05, name="adam")})
    return keras.optimizers.MultiOptimizer(mapping, name="multi")


for name in ("lion", "adafactor", "ftrl", "muon", "ScheduleFreeAdamW", "multi"):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="tanh"),
                              keras.layers.Dense(2, name="head")])
    model.set_weights(model_weights)
    model.compile(optimizer=multi() if name == "multi" else name, loss="mse")
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    out["fit"][name] = {"weights": [listed(w) for w in model.get_weights()],
                        "optimizer_variables": len(model.optimizer.variables)}
out["multi_config"] = multi().get_config()

# .keras files saved by Keras with an optimizer's state, and that state, for loading tests
data_dir = os.path.dirname(os.path.abspath(__file__))
out["saved"] = {}
for name in ("adafactor", "multi"):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="body"),
                              keras.layers.Dense(2, name="head")])
    model.compile(optimizer=multi() if name == "multi" else name, loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    model.save(os.path.join(data_dir, f"optimizer_{name}_keras.keras"))
    out["saved"][name] = [[v.path.split("/")[-1], listed(v.numpy())]
                          for v in model.optimizer.variables]

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "optimizers_more_golden.json"), "w") as f:
    json.dump(out, f)
