"""Optimizers and schedules against float64 numpy references of the Keras 3 formulas.

Every reference below is written from the formulas (keras-formats.md §5 and
`k3:optimizers/*.py`), independently of kgraph's code: each optimizer runs several eager
`apply_gradients` steps on a float32 variable and its whole trajectory and slots are compared.
Hyper-parameters are chosen so that every term of a formula (epsilon placement, bias
corrections, the amsgrad max, the centered term) moves the result far beyond the tolerance.
"""
import math
import warnings

import numpy as np
import pytest

from kgraph.keras import constraints, optimizers
from kgraph.keras.optimizers import schedules
from kgraph.variables import Variable

W0 = np.array([[0.5, -1.25, 2.0], [1.5, -0.75, 0.25]], dtype=np.float32)
# Large gradients first, then small ones (so amsgrad's max and Adamax's norm matter).
GRADS = (np.random.default_rng(0).normal(size=(5, 2, 3))
         * np.array([3.0, 2.0, 1.0, 0.5, 0.1])[:, None, None]).astype(np.float32)
RTOL, ATOL = 1e-6, 1e-6


def f32(x):
    """`x` rounded to float32: Keras computes the bias corrections as
    `power(cast(beta, float32), t)`, and `1 - 0.999^t` amplifies that rounding ~1e4 times."""
    return float(np.float32(x))


def _variable(value=W0, path="dense/kernel"):
    return Variable(np.array(value, dtype=np.float32), name=path.split("/")[-1], path=path)


def _run(opt, grads=GRADS, w0=W0):
    var, out = _variable(w0), []
    for g in grads:
        opt.apply_gradients([(g, var)])
        out.append(var.numpy().copy())
    return var, np.array(out)


# -- float64 references: step(w, g, state, t, lr) -> new w; state keys are Keras slot names --
def ref_sgd(momentum=0.0, nesterov=False):
    def step(w, g, s, t, lr):
        if not momentum:
            return w - lr * g
        s["momentum"] = momentum * s.get("momentum", 0 * w) - lr * g
        return w + momentum * s["momentum"] - lr * g if nesterov else w + s["momentum"]
    return step


def ref_adam(b1=0.9, b2=0.999, eps=1e-7, amsgrad=False):
    def step(w, g, s, t, lr):
        s["momentum"] = s.get("momentum", 0 * w) + (g - s.get("momentum", 0 * w)) * (1 - b1)
        s["velocity"] = s.get("velocity", 0 * w) + (g * g - s.get("velocity", 0 * w)) * (1 - b2)
        v = s["velocity"]
        if amsgrad:
            v = s["velocity_hat"] = np.maximum(s.get("velocity_hat", 0 * w), v)
        alpha = lr * math.sqrt(1 - f32(b2) ** t) / (1 - f32(b1) ** t)
        return w - s["momentum"] * alpha / (np.sqrt(v) + eps)
    return step


def ref_rmsprop(rho=0.9, momentum=0.0, eps=1e-7, centered=False):
    def step(w, g, s, t, lr):
        s["velocity"] = rho * s.get("velocity", 0 * w) + (1 - rho) * g * g
        den = s["velocity"] + eps
        if centered:
            s["average_gradient"] = rho * s.get("average_gradient", 0 * w) + (1 - rho) * g
            den = s["velocity"] - s["average_gradient"] ** 2 + eps
        inc = lr * g / np.sqrt(den)
        if momentum:
            inc = s["momentum"] = momentum * s.get("momentum", 0 * w) + inc
        return w - inc
    return step


def ref_adagrad(initial=0.1, eps=1e-7):
    def step(w, g, s, t, lr):
        s["accumulator"] = s.get("accumulator", np.full_like(w, initial)) + g * g
        return w - lr * g / np.sqrt(s["accumulator"] + eps)
    return step


def ref_adadelta(rho=0.95, eps=1e-7):
    def step(w, g, s, t, lr):
        s["accumulated_grad"] = rho * s.get("accumulated_grad", 0 * w) + (1 - rho) * g * g
        d = s.get("accumulated_delta_var", 0 * w)
        delta = -np.sqrt(d + eps) * g / np.sqrt(s["accumulated_grad"] + eps)
        s["accumulated_delta_var"] = rho * d + (1 - rho) * delta * delta
        return w + lr * delta
    return step


def ref_adamax(b1=0.9, b2=0.999, eps=1e-7):
    def step(w, g, s, t, lr):
        s["momentum"] = s.get("momentum", 0 * w) + (g - s.get("momentum", 0 * w)) * (1 - b1)
        s["norm"] = np.maximum(b2 * s.get("norm", 0 * w), np.abs(g))
        return w - lr * s["momentum"] / ((1 - f32(b1) ** t) * (s["norm"] + eps))
    return step


def ref_lamb(b1=0.9, b2=0.999, eps=1e-7):
    def step(w, g, s, t, lr):
        s["momentum"] = s.get("momentum", 0 * w) + (g - s.get("momentum", 0 * w)) * (1 - b1)
        s["velocity"] = s.get("velocity", 0 * w) + (g * g - s.get("velocity", 0 * w)) * (1 - b2)
        u = (s["momentum"] / (1 - f32(b1) ** t)) / (np.sqrt(s["velocity"] / (1 - f32(b2) ** t))
                                                     + eps)
        w_norm, u_norm = np.linalg.norm(w), np.linalg.norm(u)
        ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
        return w - ratio * lr * u
    return step


def ref_nadam(b1=0.9, b2=0.999, eps=1e-7):
    def step(w, g, s, t, lr):
        u_t, u_next = b1 * (1 - 0.5 * f32(0.96) ** t), b1 * (1 - 0.5 * f32(0.96) ** (t + 1))
        s["u_product"] = s.get("u_product", 1.0) * u_t
        s["momentum"] = s.get("momentum", 0 * w) + (g - s.get("momentum", 0 * w)) * (1 - b1)
        s["velocity"] = s.get("velocity", 0 * w) + (g * g - s.get("velocity", 0 * w)) * (1 - b2)
        m_hat = (u_next * s["momentum"] / (1 - s["u_product"] * u_next)
                 + (1 - u_t) * g / (1 - s["u_product"]))
        v_hat = s["velocity"] / (1 - f32(b2) ** t)
        return w - m_hat * lr / (np.sqrt(v_hat) + eps)
    return step


def reference(step, grads=GRADS, w0=W0, lr=0.001, weight_decay=None, clip=lambda g: g):
    """Trajectory of a float64 reference; `lr` is a float or a function of the step index."""
    w, state, out = w0.astype(np.float64), {}, []
    for i, g in enumerate(grads):
        rate = lr(i) if callable(lr) else lr
        if weight_decay is not None:
            w = w - w * weight_decay * rate
        w = step(w, clip(g.astype(np.float64)), state, i + 1, rate)
        out.append(w)
    return np.array(out), state


O = optimizers
CASES = {  # id: (optimizer factory, reference step, learning rate, weight decay)
    "sgd_default": (lambda: O.SGD(), ref_sgd(), 0.01, None),
    "sgd_momentum": (lambda: O.SGD(0.1, momentum=0.9), ref_sgd(0.9), 0.1, None),
    "sgd_nesterov": (lambda: O.SGD(0.1, momentum=0.8, nesterov=True), ref_sgd(0.8, True), 0.1,
                     None),
    "adam_default": (lambda: O.Adam(), ref_adam(), 0.001, None),
    "adam_custom": (lambda: O.Adam(0.1, beta_1=0.8, beta_2=0.9, epsilon=0.1),
                    ref_adam(0.8, 0.9, 0.1), 0.1, None),
    "adam_amsgrad": (lambda: O.Adam(0.1, beta_1=0.5, beta_2=0.6, epsilon=0.01, amsgrad=True),
                     ref_adam(0.5, 0.6, 0.01, True), 0.1, None),
    "adamw_default": (lambda: O.AdamW(), ref_adam(), 0.001, 0.004),
    "adamw_custom": (lambda: O.AdamW(0.1, weight_decay=0.3, beta_1=0.8, epsilon=0.1),
                     ref_adam(0.8, 0.999, 0.1), 0.1, 0.3),
    "rmsprop_default": (lambda: O.RMSprop(), ref_rmsprop(), 0.001, None),
    "rmsprop_custom": (lambda: O.RMSprop(0.05, rho=0.7, epsilon=0.5),
                       ref_rmsprop(0.7, 0.0, 0.5), 0.05, None),
    "rmsprop_centered_momentum": (
        lambda: O.RMSprop(0.05, rho=0.7, momentum=0.6, epsilon=0.5, centered=True),
        ref_rmsprop(0.7, 0.6, 0.5, True), 0.05, None),
    "adagrad_default": (lambda: O.Adagrad(), ref_adagrad(), 0.001, None),
    "adagrad_custom": (lambda: O.Adagrad(0.2, initial_accumulator_value=0.5, epsilon=0.3),
                       ref_adagrad(0.5, 0.3), 0.2, None),
    "adadelta_default": (lambda: O.Adadelta(), ref_adadelta(), 0.001, None),
    "adadelta_custom": (lambda: O.Adadelta(1.0, rho=0.6, epsilon=0.01),
                        ref_adadelta(0.6, 0.01), 1.0, None),
    "adamax_default": (lambda: O.Adamax(), ref_adamax(), 0.001, None),
    "adamax_custom": (lambda: O.Adamax(0.1, beta_1=0.7, beta_2=0.5, epsilon=0.2),
                      ref_adamax(0.7, 0.5, 0.2), 0.1, None),
    "lamb_default": (lambda: O.Lamb(), ref_lamb(), 0.001, None),
    "lamb_custom": (lambda: O.Lamb(0.1, beta_1=0.7, beta_2=0.8, epsilon=0.1, weight_decay=0.2),
                    ref_lamb(0.7, 0.8, 0.1), 0.1, 0.2),
    "nadam_default": (lambda: O.Nadam(), ref_nadam(), 0.001, None),
    "nadam_custom": (lambda: O.Nadam(0.1, beta_1=0.7, beta_2=0.8, epsilon=0.1),
                     ref_nadam(0.7, 0.8, 0.1), 0.1, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_keras_formula(case):
    factory, step, lr, weight_decay = CASES[case]
    opt = factory()
    var, actual = _run(opt)
    expected, state = reference(step, lr=lr, weight_decay=weight_decay)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)
    assert int(opt.iterations.numpy()) == len(GRADS)
    for name, value in state.items():
        got = opt.variables[-1].numpy() if name == "u_product" else opt.slot(var, name).numpy()
        np.testing.assert_allclose(got, value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_references_are_sensitive():
    """The tolerance catches the classic mistakes (epsilon inside the sqrt, no bias fix)."""
    good, _ = reference(ref_adam(0.8, 0.9, 0.1), lr=0.1)
    for wrong in (ref_rmsprop(0.9, 0.0, 0.1), ref_adamax(0.8, 0.9, 0.1), ref_sgd()):
        bad, _ = reference(wrong, lr=0.1)
        assert np.abs(bad - good).max() > 100 * ATOL


def test_adamw_equals_adam_with_weight_decay():
    _, a = _run(O.AdamW(0.1, weight_decay=0.3))
    _, b = _run(O.Adam(0.1, weight_decay=0.3))
    np.testing.assert_array_equal(a, b)


def test_defaults_and_names():
    expected = {"SGD": ("SGD", 0.01), "Adam": ("adam", 0.001), "AdamW": ("adamw", 0.001),
                "RMSprop": ("rmsprop", 0.001), "Adagrad": ("adagrad", 0.001),
                "Adadelta": ("adadelta", 0.001), "Adamax": ("adamax", 0.001),
                "Nadam": ("nadam", 0.001), "Lamb": ("lamb", 0.001)}
    for class_name, (name, lr) in expected.items():
        opt = O.ALL[class_name]()
        assert (opt.name, opt.get_config()["learning_rate"]) == (name, pytest.approx(lr))
    assert O.AdamW().weight_decay == 0.004
    assert (O.RMSprop().rho, O.RMSprop().epsilon, O.RMSprop().centered) == (0.9, 1e-7, False)
    assert O.Adagrad().initial_accumulator_value == 0.1 and O.Adadelta().rho == 0.95


# -- base class: clipping, weight decay, loss scale, constraints, lr, iterations -------------
def _sgd_step(opt, grads, values):
    """One SGD(lr=1) step on several variables: returns the applied update of each."""
    variables = [_variable(v, f"layer/v{i}") for i, v in enumerate(values)]
    opt.apply_gradients(zip(grads, variables))
    return [v.numpy() - np.asarray(w, np.float32) for v, w in zip(variables, values)]


G_BIG = np.array([3.0, 4.0], np.float32)  # norm 5
G_SMALL = np.array([0.3, -0.4, 0.0], np.float32)  # norm 0.5


def test_clipnorm_is_per_tensor():
    up = _sgd_step(O.SGD(1.0, clipnorm=1.0), [G_BIG, G_SMALL], [np.zeros(2), np.zeros(3)])
    np.testing.assert_allclose(up[0], -G_BIG / 5.0, rtol=1e-6)
    np.testing.assert_allclose(up[1], -G_SMALL, rtol=1e-6)


def test_global_clipnorm_scales_all_gradients_together():
    up = _sgd_step(O.SGD(1.0, global_clipnorm=2.0), [G_BIG, G_SMALL], [np.zeros(2), np.zeros(3)])
    norm = math.sqrt(25.0 + 0.25)
    np.testing.assert_allclose(up[0], -G_BIG * 2.0 / norm, rtol=1e-6)
    np.testing.assert_allclose(up[1], -G_SMALL * 2.0 / norm, rtol=1e-6)
    up = _sgd_step(O.SGD(1.0, global_clipnorm=10.0), [G_BIG, G_SMALL], [np.zeros(2), np.zeros(3)])
    np.testing.assert_allclose(up[0], -G_BIG, rtol=1e-6)


def test_clipvalue_clips_elementwise():
    up = _sgd_step(O.SGD(1.0, clipvalue=0.35), [G_BIG, G_SMALL], [np.zeros(2), np.zeros(3)])
    np.testing.assert_allclose(up[0], [-0.35, -0.35], rtol=1e-6)
    np.testing.assert_allclose(up[1], [-0.3, 0.35, 0.0], rtol=1e-6)


def test_clipping_with_adam_matches_reference():
    opt = O.Adam(0.1, clipnorm=1.5)
    _, actual = _run(opt)
    clip = lambda g: g * 1.5 / max(np.linalg.norm(g), 1.5)  # noqa: E731
    expected, _ = reference(ref_adam(), lr=0.1, clip=clip)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


def test_weight_decay_before_update_and_exclusions():
    _, actual = _run(O.SGD(0.1, momentum=0.5, weight_decay=0.2))
    expected, _ = reference(ref_sgd(0.5), lr=0.1, weight_decay=0.2)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)
    opt = O.SGD(0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    kernel, bias = _variable(np.ones(2), "d/kernel"), _variable(np.ones(2), "d/bias")
    opt.apply_gradients([(np.zeros(2), kernel), (np.zeros(2), bias)])
    np.testing.assert_allclose(kernel.numpy(), [0.95, 0.95], rtol=1e-6)
    np.testing.assert_array_equal(bias.numpy(), [1.0, 1.0])
    with pytest.raises(ValueError, match="before the optimizer is built"):
        opt.exclude_from_weight_decay(var_names=["kernel"])


def test_loss_scale_factor_divides_gradients():
    up = _sgd_step(O.SGD(1.0, loss_scale_factor=4.0), [G_BIG], [np.zeros(2)])
    np.testing.assert_allclose(up[0], -G_BIG / 4.0, rtol=1e-6)


def test_constraint_applied_after_update():
    var = _variable(np.array([0.5, 0.1, -0.2]), "d/kernel")
    var.constraint = constraints.NonNeg()
    O.SGD(1.0).apply_gradients([(np.array([0.2, 0.3, -0.4], np.float32), var)])
    np.testing.assert_allclose(var.numpy(), [0.3, 0.0, 0.2], rtol=1e-6)


def test_learning_rate_setter_takes_effect_next_step():
    opt, var = O.SGD(0.1), _variable(np.zeros(1), "d/w")
    opt.apply_gradients([(np.ones(1), var)])
    opt.learning_rate = 0.5
    assert opt.learning_rate == pytest.approx(0.5)
    opt.apply_gradients([(np.ones(1), var)])
    np.testing.assert_allclose(var.numpy(), [-0.6], rtol=1e-6)
    assert int(opt.iterations.numpy()) == 2


def test_none_gradients_are_skipped_and_all_none_raises():
    opt, a, b = O.SGD(1.0), _variable(np.zeros(1), "d/a"), _variable(np.zeros(1), "d/b")
    with pytest.warns(UserWarning, match="d/b"):
        opt.apply_gradients([(np.ones(1), a), (None, b)])
    assert (a.numpy()[0], b.numpy()[0]) == (-1.0, 0.0)
    with pytest.raises(ValueError, match="No gradients"):
        opt.apply_gradients([(None, b)])


def test_gradient_accumulation_updates_every_n_steps():
    opt = O.Adam(0.1, gradient_accumulation_steps=2)
    _, actual = _run(opt, GRADS[:4])
    means = [(GRADS[0] + GRADS[1]) / 2, (GRADS[2] + GRADS[3]) / 2]
    expected, _ = reference(ref_adam(), grads=means, lr=0.1)
    np.testing.assert_allclose(actual[0], W0)  # accumulate only
    np.testing.assert_allclose(actual[[1, 3]], expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(actual[2], actual[1])


def test_moving_average_and_finalize():
    opt = O.SGD(0.1, use_ema=True, ema_momentum=0.5)
    var, actual = _run(opt, GRADS[:3])
    average = actual[0].astype(np.float64)
    for w in actual[1:]:
        average = 0.5 * average + 0.5 * w
    np.testing.assert_allclose(opt.variables[2].numpy(), average, rtol=1e-6)
    opt.finalize_variable_values([var])
    np.testing.assert_allclose(var.numpy(), average, rtol=1e-6)


def test_variables_follow_keras_creation_order():
    def paths(opt):
        a, b = _variable(np.zeros(2), "dense/kernel"), _variable(np.zeros(2), "dense/bias")
        opt.apply_gradients([(np.ones(2), a), (np.ones(2), b)])
        return [v.path.split("/", 1)[1] for v in opt.variables]

    k, b = "dense_kernel_", "dense_bias_"
    assert paths(O.Adam(amsgrad=True)) == [
        "iteration", "learning_rate", k + "momentum", k + "velocity", b + "momentum",
        b + "velocity", k + "velocity_hat", b + "velocity_hat"]
    assert paths(O.RMSprop(momentum=0.5, centered=True))[2:] == [
        k + "velocity", b + "velocity", k + "momentum", b + "momentum",
        k + "average_gradient", b + "average_gradient"]
    assert paths(O.Nadam())[-1] == "u_product"
    assert paths(O.SGD()) == ["iteration", "learning_rate"]
    schedule = schedules.ExponentialDecay(0.1, 10, 0.5)
    assert paths(O.SGD(schedule, momentum=0.5)) == ["iteration", k + "momentum", b + "momentum"]


# -- schedules ---------------------------------------------------------------------------------
def _sgdr(step, lr0, first, t_mul, m_mul, alpha):
    start, period, m = 0.0, float(first), 1.0
    while step >= start + period:
        start, period, m = start + period, period * t_mul, m * m_mul
    return lr0 * ((1 - alpha) * 0.5 * m * (1 + math.cos(math.pi * (step - start) / period))
                  + alpha)


def _cosine(step, lr0, decay, alpha, target=None, warmup=0):
    if target is not None and step < warmup:
        return lr0 + (target - lr0) * step / warmup
    s = min(step - warmup, decay)
    return (lr0 if target is None else target) * (
        (1 - alpha) * 0.5 * (1 + math.cos(math.pi * s / decay)) + alpha)


S = schedules
SCHEDULES = {  # id: (schedule, float64 formula of the step)
    "exponential": (S.ExponentialDecay(0.1, 3, 0.5), lambda s: 0.1 * 0.5 ** (s / 3)),
    "exponential_staircase": (S.ExponentialDecay(0.1, 3, 0.5, staircase=True),
                              lambda s: 0.1 * 0.5 ** math.floor(s / 3)),
    "piecewise": (S.PiecewiseConstantDecay([2, 4], [0.3, 0.2, 0.1]),
                  lambda s: 0.3 if s <= 2 else 0.2 if s <= 4 else 0.1),
    "polynomial": (S.PolynomialDecay(0.1, 4, 0.01, power=2.0),
                   lambda s: 0.09 * (1 - min(s, 4) / 4) ** 2 + 0.01),
    "polynomial_cycle": (S.PolynomialDecay(0.1, 3, 0.01, power=0.5, cycle=True),
                         lambda s: 0.09 * (1 - s / (3 * max(1, math.ceil(s / 3)))) ** 0.5
                         + 0.01),
    "inverse_time": (S.InverseTimeDecay(0.1, 2, 0.5), lambda s: 0.1 / (1 + 0.5 * s / 2)),
    "inverse_time_staircase": (S.InverseTimeDecay(0.1, 2, 0.5, staircase=True),
                               lambda s: 0.1 / (1 + 0.5 * math.floor(s / 2))),
    "cosine": (S.CosineDecay(0.1, 5, alpha=0.1), lambda s: _cosine(s, 0.1, 5, 0.1)),
    "cosine_warmup": (S.CosineDecay(0.0, 4, warmup_target=0.2, warmup_steps=3),
                      lambda s: _cosine(s, 0.0, 4, 0.0, 0.2, 3)),
    "cosine_target_no_warmup": (S.CosineDecay(0.05, 4, warmup_target=0.2),
                                lambda s: _cosine(s, 0.05, 4, 0.0, 0.2, 0)),
    "cosine_restarts": (S.CosineDecayRestarts(0.1, 2.5, t_mul=2.0, m_mul=0.5, alpha=0.1),
                        lambda s: _sgdr(s, 0.1, 2.5, 2.0, 0.5, 0.1)),
    "cosine_restarts_t1": (S.CosineDecayRestarts(0.1, 2.5, t_mul=1.0, m_mul=0.5),
                           lambda s: _sgdr(s, 0.1, 2.5, 1.0, 0.5, 0.0)),
}


@pytest.mark.parametrize("case", sorted(SCHEDULES))
def test_schedule_drives_learning_rate_per_step(case):
    schedule, formula = SCHEDULES[case]
    opt, var, steps = O.SGD(schedule), _variable(np.zeros(1), "d/w"), 10
    rates = []
    for step in range(steps):
        rates.append(opt.learning_rate)  # evaluated at `iterations`, before the update
        opt.apply_gradients([(np.ones(1, np.float32), var)])
    expected = [formula(s) for s in range(steps)]
    np.testing.assert_allclose(rates, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(var.numpy()[0], -sum(expected), rtol=1e-5)  # in-graph rates


def test_schedule_round_trip_and_setter_rules():
    schedule = S.CosineDecay(0.0, 4, alpha=0.2, warmup_target=0.2, warmup_steps=3)
    opt = O.Adam(schedule)
    config = opt.get_config()
    assert config["learning_rate"]["class_name"] == "CosineDecay"
    clone = O.Adam.from_config(config)
    assert clone.get_config() == config
    for s in (0.0, 2.0, 5.0):
        assert float(clone._schedule(np.float32(s))) == pytest.approx(float(schedule(s)))
    with pytest.raises(TypeError, match="learning_rate=0.5"):
        opt.learning_rate = 0.5
    for name, (sched, _) in SCHEDULES.items():
        back = S.deserialize(S.serialize(sched))
        assert type(back) is type(sched) and back.get_config() == sched.get_config(), name


# -- get / serialize ---------------------------------------------------------------------------
CONFIGS = {
    "SGD": dict(learning_rate=0.05, momentum=0.5, nesterov=True, clipnorm=1.0),
    "Adam": dict(learning_rate=0.002, beta_1=0.8, amsgrad=True, global_clipnorm=2.0),
    "AdamW": dict(weight_decay=0.01, epsilon=1e-5, clipvalue=0.5),
    "RMSprop": dict(rho=0.8, momentum=0.3, centered=True, loss_scale_factor=8.0),
    "Adagrad": dict(initial_accumulator_value=0.2, epsilon=1e-6, use_ema=True),
    "Adadelta": dict(learning_rate=1.0, rho=0.9, gradient_accumulation_steps=3),
    "Adamax": dict(beta_2=0.99, name="my_adamax"),
    "Nadam": dict(beta_1=0.85, weight_decay=0.001),
    "Lamb": dict(beta_2=0.9, epsilon=1e-6, weight_decay=1e-4),
}


@pytest.mark.parametrize("class_name", sorted(CONFIGS))
def test_config_round_trip(class_name):
    opt = O.ALL[class_name](**CONFIGS[class_name])
    config = opt.get_config()
    for key, value in CONFIGS[class_name].items():
        assert config[key] == pytest.approx(value), key
    clone = type(opt).from_config(config)
    assert clone.get_config() == config
    again = O.deserialize(O.serialize(opt))
    assert type(again) is type(opt) and again.get_config() == config


def test_get_by_name_and_dict():
    for name in ("rmsprop", "RMSprop", "RMSPROP"):
        assert type(O.get(name)) is O.RMSprop
    assert type(O.get("adamw")) is O.AdamW and type(O.get("sgd")) is O.SGD
    opt = O.get({"class_name": "RMSprop", "config": {"learning_rate": 0.01, "rho": 0.5}})
    assert (type(opt), opt.rho, opt.learning_rate) == (O.RMSprop, 0.5, pytest.approx(0.01))
    assert O.get(opt) is opt
    legacy = {"class_name": "Adam", "config": {"name": "Adam", "learning_rate": 0.001,
                                                "decay": 0.0, "jit_compile": True,
                                                "is_legacy_optimizer": False}}
    with pytest.warns(UserWarning, match="decay"):  # tf-keras config keys are tolerated
        assert type(O.get(legacy)) is O.Adam
    with pytest.raises(ValueError, match="'nope'"):
        O.get("nope")
    with pytest.raises(ValueError, match="beta_1=5"):
        O.get({"class_name": "Adam", "config": {"beta_1": 5}})


@pytest.mark.parametrize("make, quoted", [
    (lambda: O.SGD(momentum=1.5), "momentum=1.5"),
    (lambda: O.SGD(learning_rate=-0.1), "learning_rate=-0.1"),
    (lambda: O.SGD(learning_rate="fast"), "learning_rate='fast'"),
    (lambda: O.SGD(learning_rate=lambda: 0.1), "learning_rate=<function"),
    (lambda: O.SGD(foo=1), "'foo': 1"),
    (lambda: O.Adam(beta_1=1.0), "beta_1=1.0"),
    (lambda: O.Adam(clipnorm=1.0, clipvalue=0.5), "clipnorm=1.0, clipvalue=0.5"),
    (lambda: O.Adam(clipnorm=-1.0), "clipnorm=-1.0"),
    (lambda: O.AdamW(weight_decay=None), "weight_decay=None"),
    (lambda: O.RMSprop(rho=-0.1), "rho=-0.1"),
    (lambda: O.Adagrad(initial_accumulator_value=-1), "initial_accumulator_value=-1"),
    (lambda: O.Adadelta(epsilon=-1e-7), "epsilon=-1e-07"),
    (lambda: O.Adamax(beta_2=2), "beta_2=2"),
    (lambda: O.Nadam(epsilon="tiny"), "epsilon='tiny'"),
    (lambda: O.SGD(gradient_accumulation_steps=1), "gradient_accumulation_steps=1"),
    (lambda: O.SGD(use_ema=True, ema_momentum=1.5), "ema_momentum=1.5"),
    (lambda: O.SGD(loss_scale_factor=0), "loss_scale_factor=0"),
    (lambda: S.ExponentialDecay(0.1, 0, 0.9), "decay_steps=0"),
    (lambda: S.CosineDecay(0.1, -5), "decay_steps=-5"),
    (lambda: S.PiecewiseConstantDecay([1, 2], [1.0, 0.5]), "of length 2"),
])
def test_bad_arguments_raise_with_value_quoted(make, quoted):
    with pytest.raises(ValueError) as info:
        make()
    assert quoted in str(info.value)


def test_decay_argument_is_ignored_with_a_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        O.SGD(decay=0.1)
    assert any("decay" in str(w.message) for w in caught)


def test_lamb_trust_ratio_is_one_on_zero_weights():
    # ||w|| = 0: LAMB's first step is Adam's (up to where epsilon sits)
    _, lamb = _run(O.Lamb(0.1), grads=GRADS[:1], w0=np.zeros_like(W0))
    _, adam = _run(O.Adam(0.1), grads=GRADS[:1], w0=np.zeros_like(W0))
    np.testing.assert_allclose(lamb, adam, rtol=1e-5)
    assert optimizers.get("lamb").name == "lamb"
