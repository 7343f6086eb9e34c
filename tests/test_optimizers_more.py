"""Lion, Adafactor, Ftrl, Muon, ScheduleFreeAdamW and MultiOptimizer against real Keras 3.

The numbers come from tests/data/optimizers_more_golden.json, which
tests/data/make_optimizers_more_golden.py recorded with Keras 3.15.1 on JAX (running Keras'
update eagerly here takes seconds per case): four `apply_gradients` steps on four variables
(weights and every optimizer variable after them, in Keras' order and names) and two epochs
of `fit` of a small Dense model compiled with the optimizer's name, and the configs.
"""
import json
import os
import warnings

import numpy as np
import pytest

from kgraph import keras as kkeras
from kgraph.keras import optimizers
from kgraph.variables import Variable

with open(os.path.join(os.path.dirname(__file__), "data", "optimizers_more_golden.json")) as f:
    GOLDEN = json.load(f)
SHAPES = {k: tuple(s) for k, s in GOLDEN["shapes"].items()}
WEIGHTS = {k: np.asarray(w, "float32") for k, w in GOLDEN["weights"].items()}
GRADS = [{k: np.asarray(g[k], "float32") for k in SHAPES} for g in GOLDEN["grads"]]
RTOL, ATOL = 1e-5, 1e-6


def _run_kgraph(name, kwargs):
    opt = getattr(optimizers, name)(**kwargs)
    variables = {k: Variable(w.copy(), name=k, path=k) for k, w in WEIGHTS.items()}
    for grads in GRADS:
        opt.apply_gradients([(grads[k], variables[k]) for k in SHAPES])
    return opt, {k: v.numpy() for k, v in variables.items()}


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: c["name"])
def test_apply_gradients_equals_keras(case):
    opt, ours = _run_kgraph(case["name"], case["kwargs"])
    for k in SHAPES:
        theirs = np.asarray(case["after"][k])
        assert not np.allclose(theirs, WEIGHTS[k]), k  # the update moved every variable
        np.testing.assert_allclose(ours[k], theirs, rtol=RTOL, atol=ATOL, err_msg=k)
    # the same optimizer variables, in the same order, with the same names and values (Keras
    # numbers a second unnamed optimizer "lion_1/..."; the names are compared without it)
    assert [v.path.split("/")[-1] for v in opt.variables] == [n for n, _ in case["variables"]]
    for var, (_, value) in zip(opt.variables[1:], case["variables"][1:]):
        np.testing.assert_allclose(np.asarray(var.numpy(), "float64"), value, rtol=RTOL,
                                   atol=ATOL, err_msg=var.path)


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: c["name"])
def test_config_equals_keras_and_round_trips(case):
    name, kwargs = case["name"], case["kwargs"]
    config = getattr(optimizers, name)(**kwargs).get_config()
    theirs = case["config"]
    assert config == {**theirs, "name": config["name"]}  # Keras numbers unnamed ones
    assert theirs["name"].startswith(config["name"])
    again = optimizers.deserialize(optimizers.serialize(getattr(optimizers, name)(**kwargs)))
    assert type(again).__name__ == name and again.get_config() == config


def _fit(optimizer, name):
    data = GOLDEN["fit_data"]
    model = kkeras.Sequential([kkeras.Input((4,)), kkeras.layers.Dense(6, activation="tanh"),
                               kkeras.layers.Dense(2, name="head")])
    model.set_weights([np.asarray(w, "float32") for w in data["weights"]])
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(np.asarray(data["x"], "float32"), np.asarray(data["y"], "float32"), batch_size=8,
              epochs=2, shuffle=False, verbose=0)
    for ours, theirs in zip(model.get_weights(), GOLDEN["fit"][name]["weights"]):
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)
    assert len(model.optimizer.variables) == GOLDEN["fit"][name]["optimizer_variables"]
    return model


@pytest.mark.parametrize("name", ["lion", "adafactor", "ftrl", "muon", "ScheduleFreeAdamW"])
def test_fit_by_name_equals_keras(name):
    _fit(name, name)


def _multi(lib):
    # explicit names: Keras numbers unnamed optimizers ("sgd_3")
    mapping = lib.optimizers.OptimizerMap(lib.optimizers.SGD(0.1, name="sgd"),
                                          {".*head.*": lib.optimizers.Adam(0.05, name="adam")})
    return lib.optimizers.MultiOptimizer(mapping, name="multi")


def test_multi_optimizer_fit_equals_keras():
    # Keras paths carry the model's name ("sequential/head/kernel"); kgraph's do not, so the
    # pattern matches the head in both
    opt = _fit(_multi(kkeras), "multi").optimizer
    assert [type(o).__name__ for o in opt.optimizers] == ["Adam", "SGD"]
    assert [int(o.iterations.numpy()) for o in opt.optimizers] == [4, 4]
    assert int(opt.iterations.numpy()) == 4
    with pytest.raises(AttributeError, match="sub-optimizers"):
        opt.learning_rate  # noqa: B018


def test_multi_optimizer_config_and_callable_map():
    config = _multi(kkeras).get_config()
    assert config == GOLDEN["multi_config"]
    again = optimizers.MultiOptimizer.from_config(config)
    assert [type(o).__name__ for o in again.optimizers] == ["Adam", "SGD"]
    assert again.get_config() == config
    # a function choosing by path; the Adam one sees only the vector
    adam, sgd = optimizers.Adam(0.1), optimizers.SGD(0.1)
    multi = optimizers.MultiOptimizer(lambda v: adam if v.path == "bias" else sgd)
    variables = {k: Variable(w.copy(), name=k, path=k) for k, w in WEIGHTS.items()}
    multi.apply_gradients([(GRADS[0][k], variables[k]) for k in SHAPES])
    np.testing.assert_allclose(variables["wide"].numpy(),
                               WEIGHTS["wide"] - 0.1 * GRADS[0]["wide"], rtol=1e-6)
    assert adam.built and [v.path for v in adam.variables][2:] == ["adam/bias_momentum",
                                                                   "adam/bias_velocity"]


def test_optimizer_map_lookup_and_errors():
    sgd, adam, rms = optimizers.SGD(), optimizers.Adam(), optimizers.RMSprop()
    mapping = optimizers.OptimizerMap(rms)
    mapping["encoder/layer_0/dense"] = adam
    mapping["encoder/.*"] = sgd
    mapping["decoder"] = adam
    assert mapping["decoder"] is adam and mapping["encoder/layer_0/dense"] is adam
    assert mapping["encoder/layer_0/attention/query"] is sgd
    assert mapping["decoder/layer_0/dense"] is rms
    with pytest.raises(ValueError, match="already exists"):
        mapping["decoder"] = sgd
    with pytest.raises(ValueError, match="LossScaleOptimizer"):
        mapping["x"] = optimizers.LossScaleOptimizer(optimizers.SGD())
    with pytest.raises(TypeError, match="default_optimizer"):
        optimizers.OptimizerMap("sgd")
    again = optimizers.deserialize(optimizers.serialize(mapping))  # as Keras 3 allows
    assert type(again) is optimizers.OptimizerMap and again.get_config() == mapping.get_config()
    with pytest.raises(ValueError, match="default_optimizer"):
        optimizers.get("optimizermap")


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="beta_1=1.5"):
        optimizers.Lion(beta_1=1.5)
    with pytest.raises(ValueError, match="learning_rate_power=0.5"):
        optimizers.Ftrl(learning_rate_power=0.5)
    with pytest.raises(ValueError, match="initial_accumulator_value=-1"):
        optimizers.Ftrl(initial_accumulator_value=-1)
    with pytest.raises(ValueError, match="warmup_steps=-2"):
        optimizers.ScheduleFreeAdamW(warmup_steps=-2)


@pytest.mark.parametrize("make", [lambda: optimizers.Adafactor(),
                                  lambda: _multi(kkeras)], ids=["Adafactor", "MultiOptimizer"])
def test_saved_model_keeps_optimizer_state(make, tmp_path):
    """Adafactor's int32 placeholders and a MultiOptimizer's sub-optimizer slots go through a
    `.keras` file and training resumes from them."""
    data = GOLDEN["fit_data"]
    x, y = np.asarray(data["x"], "float32"), np.asarray(data["y"], "float32")
    model = kkeras.Sequential([kkeras.Input((4,)), kkeras.layers.Dense(6),
                               kkeras.layers.Dense(2, name="head")])
    model.compile(optimizer=make(), loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = kkeras.models.load_model(tmp_path / "model.keras")
    assert type(loaded.optimizer) is type(model.optimizer)
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for ours, theirs in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    for m in (model, loaded):
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("name", ["adafactor", "multi"])
def test_loads_keras_saved_optimizer_state(name):
    """A `.keras` file Keras 3.15.1 saved after training with Adafactor (factored slots, int32
    placeholders) or a MultiOptimizer (an OptimizerMap config, two sub-optimizers' slots)
    loads with every optimizer variable in place, and trains on."""
    path = os.path.join(os.path.dirname(__file__), "data", f"optimizer_{name}_keras.keras")
    model = kkeras.models.load_model(path)
    expected = GOLDEN["saved"][name]
    assert len(model.optimizer.variables) == len(expected)
    for var, (short_name, value) in zip(model.optimizer.variables, expected):
        # Keras' slot names start with the model's name ("sequential_7_head_kernel_...")
        assert short_name.endswith(var.path.split("/")[-1]), (short_name, var.path)
        np.testing.assert_allclose(np.asarray(var.numpy(), "float64").reshape(-1),
                                   np.asarray(value).reshape(-1), rtol=1e-6, err_msg=var.path)
    data = GOLDEN["fit_data"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every group of the file is read (no "not loaded")
        kkeras.models.load_model(path)
    model.fit(np.asarray(data["x"], "float32"), np.asarray(data["y"], "float32"), epochs=1,
              verbose=0)


def test_multi_optimizer_in_an_eager_tape_loop_equals_separate_optimizers():
    """`apply_gradients` of a MultiOptimizer after a GradientTape (the fused eager update)
    equals applying its two sub-optimizers to their variables by hand."""
    import kgraph

    def train(multi):
        kkeras.utils.set_random_seed(1)
        model = kkeras.Sequential([kkeras.Input((4,)), kkeras.layers.Dense(3, name="body"),
                                   kkeras.layers.Dense(2, name="head")])
        sgd, lion = optimizers.SGD(0.1), optimizers.Lion(0.01)
        opt = optimizers.MultiOptimizer(optimizers.OptimizerMap(sgd, {"head/.*": lion}))
        x = np.asarray(GOLDEN["fit_data"]["x"], "float32")[:8]
        for _ in range(3):
            with kgraph.GradientTape() as tape:
                loss = kkeras.ops.mean(kkeras.ops.square(model(x) - 1.0))
            variables = model.trainable_variables
            grads = tape.gradient(loss, variables)
            if multi:
                opt.apply_gradients(zip(grads, variables))
            else:
                sgd.apply_gradients(zip(grads[:2], variables[:2]))
                lion.apply_gradients(zip(grads[2:], variables[2:]))
        return model.get_weights()

    for ours, by_hand in zip(train(True), train(False)):
        np.testing.assert_allclose(ours, by_hand, rtol=1e-6)


def test_legacy_optimizers_raise_as_in_keras_3():
    for name in ("Adam", "SGD", "RMSprop", "Adagrad", "Ftrl", "Optimizer"):
        with pytest.raises(ImportError, match="keras.optimizers.legacy"):
            getattr(optimizers.legacy, name)(learning_rate=0.1)
