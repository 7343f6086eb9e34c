"""`kgraph.keras.losses` against independent float64 numpy references: every loss function,
every reduction with sample weights, from_logits consistency, label smoothing, clipping,
`get`/config round trips, and the traced (onnxruntime) path."""
import numpy as np
import pytest

from kgraph.compiler.autodiff import gradients
from kgraph.compiler.program import build_program
from kgraph.ir.graph import current_graph
from kgraph.keras import losses

EPS = 1e-7
RNG = np.random.default_rng(1234)


# -- float64 references, written from the formulas (not from the kgraph code) ---------------
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ref_bce(t, p, from_logits=False, smoothing=0.0):
    t = t * (1 - smoothing) + 0.5 * smoothing
    if from_logits:
        # -t log(sigmoid(x)) - (1 - t) log(1 - sigmoid(x)), via logaddexp for stability
        elementwise = t * np.logaddexp(0, -p) + (1 - t) * np.logaddexp(0, p)
    else:
        p = np.clip(p, EPS, 1 - EPS)
        elementwise = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    return elementwise.mean(-1)


def ref_cce(t, p, from_logits=False, smoothing=0.0):
    t = t * (1 - smoothing) + smoothing / t.shape[-1]
    if from_logits:
        logp = p - p.max(-1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    else:
        logp = np.log(np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS))
    return -(t * logp).sum(-1)


def _hinge_labels(t):
    return 2 * t - 1 if np.isin(t, (0, 1)).all() else t


REFERENCES = {
    "mean_squared_error": lambda t, p: ((t - p) ** 2).mean(-1),
    "mean_absolute_error": lambda t, p: np.abs(t - p).mean(-1),
    "mean_absolute_percentage_error":
        lambda t, p: 100 * (np.abs(t - p) / np.maximum(np.abs(t), EPS)).mean(-1),
    "mean_squared_logarithmic_error": lambda t, p: (
        (np.log1p(np.maximum(p, EPS)) - np.log1p(np.maximum(t, EPS))) ** 2).mean(-1),
    "huber": lambda t, p: np.where(np.abs(p - t) <= 1, 0.5 * (p - t) ** 2,
                                   np.abs(p - t) - 0.5).mean(-1),
    "log_cosh": lambda t, p: np.log(np.cosh(p - t)).mean(-1),
    "kl_divergence": lambda t, p: (np.clip(t, EPS, 1) * np.log(
        np.clip(t, EPS, 1) / np.clip(p, EPS, 1))).sum(-1),
    "poisson": lambda t, p: (p - t * np.log(p + EPS)).mean(-1),
    "hinge": lambda t, p: np.maximum(1 - _hinge_labels(t) * p, 0).mean(-1),
    "squared_hinge": lambda t, p: (np.maximum(1 - _hinge_labels(t) * p, 0) ** 2).mean(-1),
    "categorical_hinge": lambda t, p: np.maximum(
        ((1 - t) * p).max(-1) - (t * p).sum(-1) + 1, 0),
    "cosine_similarity": lambda t, p: -(t * p).sum(-1) / (
        np.linalg.norm(t, axis=-1) * np.linalg.norm(p, axis=-1)),
    "binary_crossentropy": ref_bce,
    "categorical_crossentropy": ref_cce,
}


def _data(name, shape=(6, 4)):
    """(y_true, y_pred) as float32 arrays with values suited to the loss."""
    labels = RNG.integers(0, shape[-1], size=shape[:-1])
    one_hot = np.eye(shape[-1], dtype=np.float32)[labels]
    probs = _softmax(RNG.normal(size=shape) * 2).astype(np.float32)
    if name == "categorical_crossentropy":
        return one_hot, probs
    if name == "categorical_hinge":  # margins on both sides of the hinge
        return one_hot, (RNG.normal(size=shape) * 2 + 1.5 * one_hot).astype(np.float32)
    if name == "kl_divergence":
        return _softmax(RNG.normal(size=shape)).astype(np.float32), probs
    if name in ("binary_crossentropy", "hinge", "squared_hinge"):
        return RNG.integers(0, 2, size=shape).astype(np.float32), \
            RNG.uniform(0.01, 0.99, size=shape).astype(np.float32)
    if name in ("poisson", "mean_squared_logarithmic_error"):
        return RNG.uniform(0, 3, size=shape).astype(np.float32), \
            RNG.uniform(0.1, 3, size=shape).astype(np.float32)
    return RNG.normal(size=shape).astype(np.float32), RNG.normal(size=shape).astype(np.float32)


def _f64(*xs):
    return [np.asarray(x, np.float64) for x in xs]


# -- loss functions ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_loss_function_matches_numpy(name):
    y_true, y_pred = _data(name)
    got = getattr(losses, name)(y_true, y_pred)
    assert got.shape == (6,)
    np.testing.assert_allclose(got, REFERENCES[name](*_f64(y_true, y_pred)),
                               rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name", ["mean_squared_error", "huber", "log_cosh",
                                  "binary_crossentropy", "categorical_crossentropy"])
def test_loss_function_on_rank_3(name):
    y_true, y_pred = _data(name, shape=(3, 5, 4))
    got = getattr(losses, name)(y_true, y_pred)
    assert got.shape == (3, 5)
    np.testing.assert_allclose(got, REFERENCES[name](*_f64(y_true, y_pred)),
                               rtol=2e-5, atol=2e-6)


def test_huber_delta_and_large_errors():
    y_true = np.zeros((2, 3), np.float32)
    y_pred = np.array([[0.5, -2.0, 4.0], [1.0, -1.0, 0.1]], np.float32)
    expected = np.where(np.abs(y_pred) <= 2.0, 0.5 * y_pred ** 2,
                        2.0 * np.abs(y_pred) - 2.0).mean(-1)
    np.testing.assert_allclose(losses.huber(y_true, y_pred, delta=2.0), expected, rtol=1e-6)


def test_log_cosh_is_stable_for_large_errors():
    got = losses.log_cosh(np.zeros((1, 2), np.float32), np.array([[200.0, -300.0]], np.float32))
    np.testing.assert_allclose(got, [(200 + 300 - 2 * np.log(2)) / 2], rtol=1e-6)


def test_hinge_keeps_minus_one_plus_one_labels():
    y_true = np.array([[-1, 1, 1], [1, -1, -1]], np.float32)
    y_pred = RNG.normal(size=(2, 3)).astype(np.float32)
    np.testing.assert_allclose(losses.hinge(y_true, y_pred),
                               np.maximum(1 - y_true * y_pred, 0).mean(-1), rtol=1e-6)


def test_cosine_similarity_zero_vector_and_axis():
    got = losses.cosine_similarity([[0., 1.], [1., 1.], [0., 0.]], [[1., 0.], [2., 2.], [1., 1.]])
    np.testing.assert_allclose(got, [0.0, -1.0, 0.0], atol=1e-6)
    y_true, y_pred = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(2, 3, 4))
    expected = -(y_true * y_pred).sum(1) / (np.linalg.norm(y_true, axis=1)
                                            * np.linalg.norm(y_pred, axis=1))
    np.testing.assert_allclose(losses.cosine_similarity(y_true, y_pred, axis=1), expected,
                               rtol=1e-10)


def test_sparse_categorical_crossentropy_matches_one_hot():
    labels = RNG.integers(0, 5, size=(7,))
    probs = _softmax(RNG.normal(size=(7, 5))).astype(np.float32)
    expected = ref_cce(np.eye(5)[labels], probs.astype(np.float64))
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(labels, probs), expected,
                               rtol=2e-5)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(labels[:, None], probs),
                               expected, rtol=2e-5)


def test_sparse_categorical_crossentropy_class_axis():
    labels = RNG.integers(0, 4, size=(3, 5))
    logits = RNG.normal(size=(3, 4, 5)).astype(np.float32)
    expected = ref_cce(np.eye(4)[labels], np.moveaxis(logits, 1, -1).astype(np.float64),
                       from_logits=True)
    got = losses.sparse_categorical_crossentropy(labels, logits, from_logits=True, axis=1)
    np.testing.assert_allclose(got, expected, rtol=2e-5)


def test_crossentropies_clip_probabilities_like_keras():
    # exact 0 and 1 probabilities give -log(eps)-sized losses, never inf
    bce = losses.binary_crossentropy(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    np.testing.assert_allclose(bce, [-np.log(EPS)], rtol=1e-6)
    cce = losses.categorical_crossentropy(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))
    np.testing.assert_allclose(cce, [-np.log(EPS)], rtol=1e-6)
    # categorical renormalises before clipping: [2, 6] is [0.25, 0.75]
    cce = losses.categorical_crossentropy(np.array([[0.0, 1.0]]), np.array([[2.0, 6.0]]))
    np.testing.assert_allclose(cce, [-np.log(0.75)], rtol=1e-7)


def test_keras_documented_values():
    np.testing.assert_allclose(
        losses.binary_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]),
        [0.916, 0.714], atol=1e-3)
    np.testing.assert_allclose(
        losses.BinaryCrossentropy(from_logits=True)(
            np.array([[0, 1], [0, 0]]), np.array([[-18.6, 0.51], [2.94, -12.8]]),
            sample_weight=[0.8, 0.2]), 0.243, atol=1e-3)
    np.testing.assert_allclose(
        losses.CategoricalCrossentropy(reduction="sum")(
            np.array([[0, 1, 0], [0, 0, 1]]), np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]])),
        2.354, atol=1e-3)
    np.testing.assert_allclose(
        losses.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=3, from_logits=True)(
            np.array([[0, 1], [0, 0]]), np.array([[-18.6, 0.51], [2.94, -12.8]]),
            sample_weight=[0.8, 0.2]), 0.097, atol=1e-3)
    np.testing.assert_allclose(
        losses.CategoricalFocalCrossentropy(reduction=None)(
            [[0., 1., 0.], [0., 0., 1.]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]),
        [3.2058331e-05, 4.6627346e-01], rtol=1e-4)


# -- from_logits, label smoothing, focal -------------------------------------------------------
def test_from_logits_agrees_with_probabilities():
    logits = RNG.normal(size=(8, 5)).astype(np.float32) * 3
    one_hot = np.eye(5, dtype=np.float32)[RNG.integers(0, 5, size=8)]
    binary = RNG.integers(0, 2, size=(8, 5)).astype(np.float32)
    probs = _softmax(logits.astype(np.float64)).astype(np.float32)
    np.testing.assert_allclose(losses.categorical_crossentropy(one_hot, logits, from_logits=True),
                               losses.categorical_crossentropy(one_hot, probs), rtol=1e-4)
    np.testing.assert_allclose(
        losses.sparse_categorical_crossentropy(one_hot.argmax(-1), logits, from_logits=True),
        losses.sparse_categorical_crossentropy(one_hot.argmax(-1), probs), rtol=1e-4)
    sig = _sigmoid(logits.astype(np.float64)).astype(np.float32)
    np.testing.assert_allclose(losses.binary_crossentropy(binary, logits, from_logits=True),
                               losses.binary_crossentropy(binary, sig), rtol=1e-4)


def test_binary_crossentropy_from_logits_is_stable():
    got = losses.binary_crossentropy(np.array([[1.0, 0.0]], np.float32),
                                     np.array([[-100.0, 100.0]], np.float32), from_logits=True)
    np.testing.assert_allclose(got, [100.0], rtol=1e-6)


@pytest.mark.parametrize("from_logits", [False, True])
def test_label_smoothing(from_logits):
    logits = RNG.normal(size=(6, 4))
    p = logits if from_logits else _softmax(logits)
    one_hot = np.eye(4)[RNG.integers(0, 4, size=6)]
    np.testing.assert_allclose(
        losses.categorical_crossentropy(one_hot, p, from_logits=from_logits,
                                        label_smoothing=0.2),
        ref_cce(one_hot, p, from_logits, smoothing=0.2), rtol=1e-10)
    p = logits if from_logits else _sigmoid(logits)
    np.testing.assert_allclose(
        losses.binary_crossentropy(one_hot, p, from_logits=from_logits, label_smoothing=0.3),
        ref_bce(one_hot, p, from_logits, smoothing=0.3), rtol=1e-10)


def test_focal_crossentropies():
    t = RNG.integers(0, 2, size=(5, 3)).astype(np.float64)
    p = RNG.uniform(0.05, 0.95, size=(5, 3))
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    p_t = t * p + (1 - t) * (1 - p)
    weight = t * 0.3 + (1 - t) * 0.7
    np.testing.assert_allclose(
        losses.binary_focal_crossentropy(t, p, apply_class_balancing=True, alpha=0.3, gamma=1.5),
        (weight * (1 - p_t) ** 1.5 * bce).mean(-1), rtol=1e-10)
    one_hot, probs = np.eye(3)[RNG.integers(0, 3, size=5)], _softmax(RNG.normal(size=(5, 3)))
    np.testing.assert_allclose(
        losses.categorical_focal_crossentropy(one_hot, probs, alpha=0.5, gamma=2.0),
        (0.5 * (1 - probs) ** 2 * -one_hot * np.log(probs)).sum(-1), rtol=1e-10)
    np.testing.assert_allclose(  # gamma=0, alpha=1 is plain crossentropy
        losses.categorical_focal_crossentropy(one_hot, probs, alpha=1.0, gamma=0.0),
        ref_cce(one_hot, probs), rtol=1e-10)


# -- Loss classes and reductions ---------------------------------------------------------------
def _reduce(values, weights, reduction):
    weighted = values * weights
    return {"sum": weighted.sum(), "sum_over_batch_size": weighted.sum() / values.size,
            "mean": weighted.sum() / values.size,
            "mean_with_sample_weight": weighted.sum() / weights.sum(), "none": weighted,
            None: weighted}[reduction]


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean",
                                       "mean_with_sample_weight", "none", None])
@pytest.mark.parametrize("cls,name", [
    (losses.MeanSquaredError, "mean_squared_error"),
    (losses.BinaryCrossentropy, "binary_crossentropy"),
    (losses.CategoricalCrossentropy, "categorical_crossentropy"),
    (losses.Huber, "huber"), (losses.KLDivergence, "kl_divergence")])
def test_reductions_with_sample_weight(cls, name, reduction):
    y_true, y_pred = _data(name)
    weights = RNG.uniform(0, 2, size=6)
    expected = _reduce(REFERENCES[name](*_f64(y_true, y_pred)), weights, reduction)
    got = cls(reduction=reduction)(y_true, y_pred, sample_weight=weights)
    np.testing.assert_allclose(got, expected, rtol=3e-5, atol=1e-6)
    unweighted = cls(reduction=reduction)(y_true, y_pred)
    np.testing.assert_allclose(unweighted, _reduce(REFERENCES[name](*_f64(y_true, y_pred)),
                                                   np.ones(6), reduction), rtol=3e-5, atol=1e-6)


def test_sample_weight_shapes():
    y_true, y_pred = _data("mean_squared_error", shape=(4, 3, 2))
    values = REFERENCES["mean_squared_error"](*_f64(y_true, y_pred))  # (4, 3)
    loss = losses.MeanSquaredError()
    per_sample = RNG.uniform(size=4)
    np.testing.assert_allclose(loss(y_true, y_pred, sample_weight=per_sample),
                               (values * per_sample[:, None]).mean(), rtol=1e-5)
    np.testing.assert_allclose(loss(y_true, y_pred, sample_weight=per_sample[:, None]),
                               (values * per_sample[:, None]).mean(), rtol=1e-5)
    per_step = RNG.uniform(size=(4, 3))
    np.testing.assert_allclose(loss(y_true, y_pred, sample_weight=per_step),
                               (values * per_step).mean(), rtol=1e-5)
    np.testing.assert_allclose(loss(y_true, y_pred, sample_weight=2.0), 2 * values.mean(),
                               rtol=1e-5)
    # Keras divides by the sum of the weights as given (here one scalar), not broadcast
    np.testing.assert_allclose(
        losses.MeanSquaredError(reduction="mean_with_sample_weight")(
            y_true, y_pred, sample_weight=2.0), values.sum(), rtol=1e-5)


def test_label_shape_is_matched_to_predictions():
    y_true = RNG.integers(0, 2, size=(5,)).astype(np.float32)
    y_pred = RNG.uniform(0.05, 0.95, size=(5, 1)).astype(np.float32)
    np.testing.assert_allclose(losses.BinaryCrossentropy()(y_true, y_pred),
                               ref_bce(y_true[:, None], y_pred.astype(np.float64)).mean(),
                               rtol=1e-5)


def test_sparse_categorical_crossentropy_ignore_class():
    labels = np.array([1, -1, 2, 0, -1])
    probs = _softmax(RNG.normal(size=(5, 3))).astype(np.float32)
    valid = labels != -1
    per_sample = np.where(valid, ref_cce(np.eye(3)[np.where(valid, labels, 0)],
                                         probs.astype(np.float64)), 0.0)
    loss = losses.SparseCategoricalCrossentropy(ignore_class=-1, reduction=None)
    np.testing.assert_allclose(loss(labels, probs), per_sample, rtol=2e-5)
    loss = losses.SparseCategoricalCrossentropy(ignore_class=-1)
    np.testing.assert_allclose(loss(labels, probs), per_sample.sum() / valid.sum(), rtol=2e-5)


def test_loss_casts_inputs_to_its_dtype():
    value = losses.MeanSquaredError()(np.array([[1, 2]]), np.array([[1.5, 2.5]], np.float64))
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, 0.25)


def test_invalid_reduction():
    with pytest.raises(ValueError, match="reduction='avg'"):
        losses.MeanSquaredError(reduction="avg")


# -- get / config ------------------------------------------------------------------------------
ALIASES = {"mse": "mean_squared_error", "MSE": "mean_squared_error", "mae": "mean_absolute_error",
           "MAE": "mean_absolute_error", "mape": "mean_absolute_percentage_error",
           "msle": "mean_squared_logarithmic_error", "kld": "kl_divergence",
           "KLD": "kl_divergence", "bce": "binary_crossentropy", "BCE": "binary_crossentropy",
           "logcosh": "log_cosh", "kullback_leibler_divergence": "kl_divergence"}


@pytest.mark.parametrize("alias,name", sorted(ALIASES.items()))
def test_get_aliases(alias, name):
    loss = losses.get(alias)
    assert isinstance(loss, losses.Loss) and loss.fn is getattr(losses, name)


@pytest.mark.parametrize("name", sorted(losses.FUNCTIONS))
def test_get_every_function_name(name):
    assert losses.get(name).fn is losses.FUNCTIONS[name]


CLASS_ARGS = {
    "MeanSquaredError": {}, "MeanAbsoluteError": {}, "MeanAbsolutePercentageError": {},
    "MeanSquaredLogarithmicError": {}, "CosineSimilarity": {"axis": 1}, "Huber": {"delta": 2.5},
    "LogCosh": {}, "KLDivergence": {}, "Poisson": {}, "Hinge": {}, "SquaredHinge": {},
    "CategoricalHinge": {},
    "BinaryCrossentropy": {"from_logits": True, "label_smoothing": 0.1, "axis": -1},
    "CategoricalCrossentropy": {"from_logits": True, "label_smoothing": 0.2},
    "SparseCategoricalCrossentropy": {"from_logits": True, "ignore_class": 3},
    "BinaryFocalCrossentropy": {"apply_class_balancing": True, "alpha": 0.4, "gamma": 3.0},
    "CategoricalFocalCrossentropy": {"alpha": 0.4, "gamma": 1.0},
}


@pytest.mark.parametrize("class_name", sorted(CLASS_ARGS))
def test_config_round_trip(class_name):
    cls = getattr(losses, class_name)
    loss = cls(**CLASS_ARGS[class_name], reduction="sum", name="custom")
    config = loss.get_config()
    assert config["name"] == "custom" and config["reduction"] == "sum"
    for key, value in CLASS_ARGS[class_name].items():
        assert config[key] == value and getattr(loss, key) == value
    again = cls.from_config(config)
    assert type(again) is cls and again.get_config() == config
    by_dict = losses.get({"class_name": class_name, "config": config})
    assert type(by_dict) is cls and by_dict.get_config() == config
    assert losses.deserialize(losses.serialize(loss)).get_config() == config
    assert type(losses.get(class_name)) is cls


def test_default_names_follow_keras():
    assert losses.Huber().name == "huber_loss"
    assert losses.LogCosh().name == "log_cosh"
    assert losses.KLDivergence().name == "kl_divergence"
    assert losses.SparseCategoricalCrossentropy().name == "sparse_categorical_crossentropy"
    assert losses.Huber().get_config() == {"name": "huber_loss",
                                           "reduction": "sum_over_batch_size", "delta": 1.0}


def test_get_functions_instances_and_errors():
    loss = losses.Huber()
    assert losses.get(loss) is loss
    assert losses.get(None) is None
    assert isinstance(losses.get(losses.Huber), losses.Huber)

    def my_loss(y_true, y_pred):
        return y_pred - y_true

    wrapped = losses.get(my_loss)
    assert isinstance(wrapped, losses.LossFunctionWrapper) and wrapped.name == "my_loss"
    np.testing.assert_allclose(wrapped(np.array([1.0, 2.0]), np.array([2.0, 4.0])), 1.5)
    keras3_function = {"module": "keras.losses", "class_name": "function",
                       "config": "mean_squared_error", "registered_name": "mean_squared_error"}
    assert losses.get(keras3_function).fn is losses.mean_squared_error
    with pytest.raises(ValueError, match="'not_a_loss'"):
        losses.get("not_a_loss")
    with pytest.raises(ValueError, match="NoSuchLoss"):
        losses.get({"class_name": "NoSuchLoss", "config": {}})


def test_function_wrapper_config_round_trip():
    loss = losses.LossFunctionWrapper(losses.huber, name="h", delta=0.5)
    config = loss.get_config()
    assert config["fn"] == "huber" and config["delta"] == 0.5
    again = losses.LossFunctionWrapper.from_config(config)
    assert again.fn is losses.huber and again.fn_kwargs == {"delta": 0.5}
    assert losses.serialize(losses.get("mse")) == "mean_squared_error"


# -- traced path -------------------------------------------------------------------------------
def _traced(loss, y_true, y_pred, sample_weight):
    specs = [("y_true", (None,) + y_true.shape[1:], str(y_true.dtype)),
             ("y_pred", (None,) + y_pred.shape[1:], "float32"),
             ("sample_weight", (None,), "float32")]
    program = build_program("loss_test", specs,
                            lambda t, p, w: {"loss": loss(t, p, sample_weight=w)})
    return program, lambda *arrays: program.to_numpy(program(*arrays)[0])


def _sparse(reference):
    return lambda t, p: reference(np.eye(p.shape[-1])[t.astype(int)], p)


TRACED_CASES = {  # loss, data kind, float64 per-sample reference, labels as class ids
    "mse": (losses.MeanSquaredError(), "mean_squared_error", REFERENCES["mean_squared_error"],
            False),
    "cce_smoothing": (losses.CategoricalCrossentropy(label_smoothing=0.1),
                      "categorical_crossentropy",
                      lambda t, p: ref_cce(t, p, smoothing=0.1), False),
    "cce_logits": (losses.CategoricalCrossentropy(from_logits=True), "logits",
                   lambda t, p: ref_cce(t, p, from_logits=True), False),
    "bce_logits": (losses.BinaryCrossentropy(from_logits=True), "binary_logits",
                   lambda t, p: ref_bce(t, p, from_logits=True), False),
    "scce": (losses.SparseCategoricalCrossentropy(), "categorical_crossentropy",
             _sparse(ref_cce), True),
    "scce_logits_sum": (losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum"),
                        "logits", _sparse(lambda t, p: ref_cce(t, p, from_logits=True)), True),
    "hinge": (losses.Hinge(reduction="mean_with_sample_weight"), "hinge", REFERENCES["hinge"],
              False),
    "cosine": (losses.CosineSimilarity(), "cosine_similarity", REFERENCES["cosine_similarity"],
               False),
    "huber": (losses.Huber(), "huber", REFERENCES["huber"], False),
}


@pytest.mark.parametrize("case", sorted(TRACED_CASES))
def test_traced_matches_eager_and_numpy(case):
    loss, kind, reference, sparse = TRACED_CASES[case]
    if kind == "logits":
        y_true, _ = _data("categorical_crossentropy")
        y_pred = RNG.normal(size=y_true.shape).astype(np.float32) * 3
    elif kind == "binary_logits":
        y_true, _ = _data("binary_crossentropy")
        y_pred = RNG.normal(size=y_true.shape).astype(np.float32) * 3
    else:
        y_true, y_pred = _data(kind)
    if sparse:
        y_true = y_true.argmax(-1).astype(np.int64)
    weights = RNG.uniform(0, 2, size=6).astype(np.float32)
    expected = _reduce(reference(*_f64(y_true, y_pred)), weights.astype(np.float64),
                       loss.reduction)
    _, run = _traced(loss, y_true, y_pred, weights)
    np.testing.assert_allclose(run(y_true, y_pred, weights), expected, rtol=3e-5, atol=1e-6)
    np.testing.assert_allclose(loss(y_true, y_pred, sample_weight=weights), expected,
                               rtol=3e-5, atol=1e-6)
    # one compiled program serves another batch size (the batch dim is symbolic)
    np.testing.assert_allclose(run(y_true[:3], y_pred[:3], weights[:3]),
                               loss(y_true[:3], y_pred[:3], sample_weight=weights[:3]),
                               rtol=3e-5, atol=1e-6)


def test_traced_sparse_ignore_class_mean_over_valid_entries():
    labels = np.array([1, 3, 2, 0, 3], np.int64)
    logits = RNG.normal(size=(5, 3)).astype(np.float32)
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=3)
    valid = labels != 3
    per_sample = ref_cce(np.eye(3)[np.where(valid, labels, 0)], logits.astype(np.float64),
                         from_logits=True)
    expected = per_sample[valid].sum() / valid.sum()
    _, run = _traced(loss, labels, logits, np.ones(5, np.float32))
    np.testing.assert_allclose(run(labels, logits, np.ones(5, np.float32)), expected, rtol=2e-5)


def _traced_gradient(loss, y_true, y_pred):
    """d loss / d y_pred, from the backward graph run on onnxruntime."""
    def step(t, p):
        value = loss(t, p)
        return {"grad": gradients(current_graph(), value, [p])[0]}

    specs = [("y_true", (None,) + y_true.shape[1:], str(y_true.dtype)),
             ("y_pred", (None,) + y_pred.shape[1:], "float32")]
    program = build_program("loss_gradient", specs, step)
    return program.to_numpy(program(y_true, y_pred)[0])


def test_gradients_of_logit_crossentropies():
    logits = RNG.normal(size=(5, 4)).astype(np.float32) * 3
    labels = RNG.integers(0, 4, size=5)
    one_hot = np.eye(4, dtype=np.float32)[labels]
    softmax = _softmax(logits.astype(np.float64))
    for loss, y_true in ((losses.CategoricalCrossentropy(from_logits=True), one_hot),
                         (losses.SparseCategoricalCrossentropy(from_logits=True), labels)):
        np.testing.assert_allclose(_traced_gradient(loss, y_true, logits),
                                   (softmax - one_hot) / 5, atol=1e-6)
    binary = RNG.integers(0, 2, size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(
        _traced_gradient(losses.BinaryCrossentropy(from_logits=True), binary, logits),
        (_sigmoid(logits.astype(np.float64)) - binary) / 20, atol=1e-6)


def test_cosine_similarity_gradient_is_finite_for_zero_vectors():
    y_pred = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], np.float32)
    grad = _traced_gradient(losses.CosineSimilarity(), np.ones((2, 3), np.float32), y_pred)
    assert np.isfinite(grad).all()
    t, p = np.ones(3) / np.sqrt(3), y_pred[1].astype(np.float64)
    norm = np.linalg.norm(p)  # d/dp of -t.p/|p|, halved by the batch mean
    np.testing.assert_allclose(grad[1], -(t / norm - (t @ p) * p / norm ** 3) / 2, rtol=1e-5)


def test_eager_loss_call_returns_an_eager_tensor():
    # Keras code reads an eager loss value with `.numpy()` (the keras.io sample-size
    # example's `mae(mean_acc, exp_func(x, a, b)).numpy()`).
    value = losses.MeanAbsoluteError()(np.float32([1, 2]), np.float32([0, 4]))
    assert value.numpy() == pytest.approx(1.5)


def test_sparse_categorical_crossentropy_with_a_run_time_class_count():
    # semisupervised_simclr.py: labels `range(batch)` against a (batch, batch) similarity
    # matrix, the batch unknown while tracing
    import kgraph as tf
    from kgraph import keras

    @tf.function(input_signature=[tf.TensorSpec((None, 4), "float32")])
    def contrastive(p):
        logits = keras.ops.matmul(p, keras.ops.transpose(p))
        labels = keras.ops.arange(keras.ops.shape(p)[0])
        return losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)

    for n in (3, 5):
        p = RNG.normal(size=(n, 4)).astype("float32")
        logits = p.astype("float64") @ p.T.astype("float64")
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        np.testing.assert_allclose(np.asarray(contrastive(p)), -np.diag(log_probs), rtol=1e-4)
    with pytest.raises(ValueError, match="num_classes=None"):
        keras.ops.one_hot(np.array([1, 2]), None)


def test_loss_subclass_gets_python_bools_and_lists_of_tensors():
    # keras.io GauGAN: DiscriminatorLoss()(y, False) branches on the bool; a feature-matching
    # loss gets two lists of discriminator outputs (Keras 3 converts each leaf)
    import kgraph as tf
    from kgraph import keras

    class Hinged(keras.losses.Loss):
        def call(self, y, is_real):
            assert isinstance(is_real, bool)
            return keras.losses.Hinge()(1.0 if is_real else -1.0, y)

    class Matching(keras.losses.Loss):
        def call(self, y_true, y_pred):
            assert isinstance(y_true, list) and len(y_pred) == 2
            return sum(keras.ops.mean(keras.ops.abs(t - p)) for t, p in zip(y_true, y_pred))

    y = np.array([[0.5], [-2.0]], "float32")
    np.testing.assert_allclose(Hinged()(y, True), np.mean(np.maximum(1 - y, 0)), rtol=1e-6)
    np.testing.assert_allclose(Hinged()(y, False), np.mean(np.maximum(1 + y, 0)), rtol=1e-6)
    a, b = [np.ones((2, 3), "float32"), np.zeros(2, "float32")], [np.zeros((2, 3)), np.ones(2)]
    np.testing.assert_allclose(Matching()(a, b), 2.0, rtol=1e-6)
    traced = tf.function(lambda y, a0, b0: Hinged()(y, False) + Matching()([a0, a0], [b0, b0]))
    np.testing.assert_allclose(traced(y, a[0], np.zeros((2, 3), "float32")),
                               np.mean(np.maximum(1 + y, 0)) + 2.0, rtol=1e-6)


def test_tf_nn_leaky_relu():
    import kgraph as tf

    x = np.array([-2.0, 0.0, 3.0], "float32")
    np.testing.assert_allclose(tf.nn.leaky_relu(x), [-0.4, 0.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(tf.nn.leaky_relu(x, 0.1), [-0.2, 0.0, 3.0], rtol=1e-6)
