"""The metrics Keras 3 added: the IoU family, FBetaScore/F1Score, Pearson and concordance
correlation, R2Score and the rate-at-rate metrics (SensitivityAtSpecificity & co). Float64
numpy references; state variables, results (eager, over two batches), configs and the values
`evaluate` reports after `compile(metrics=...)` equal real Keras 3 on JAX where installed."""
from __future__ import annotations

import numpy as np
import pytest
from test_metrics import _run_traced

from kgraph import keras

M = keras.metrics
RNG = np.random.default_rng(11)


def _batches(make, n=2):
    return [make() for _ in range(n)]


def _accumulate(metric, batches):
    for batch in batches:
        metric.update_state(*batch)
    return np.asarray(metric.result())


def _labels(classes, shape):
    return RNG.integers(0, classes, size=shape)


# -- numpy references --------------------------------------------------------------------------
def ref_confusion(t, p, classes, w=None):
    cm = np.zeros((classes, classes))
    np.add.at(cm, (t.ravel(), p.ravel()), 1.0 if w is None else w.ravel())
    return cm


def ref_iou(cm, ids):
    tp = np.diag(cm)
    denominator = cm.sum(0) + cm.sum(1) - tp
    ious = [tp[i] / denominator[i] for i in ids if denominator[i] > 0]
    return np.mean(ious)


def ref_fbeta(t, p, beta, threshold, average):
    pred = p > threshold if threshold else (p == p.max(-1, keepdims=True)) & (np.abs(p) > 1e-9)
    axis = None if average == "micro" else 0
    tp, fp = (pred * t).sum(axis), (pred * (1 - t)).sum(axis)
    fn = ((1 - pred) * t).sum(axis)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 is 0, as Keras' epsilon gives
        precision, recall = np.nan_to_num(tp / (tp + fp)), np.nan_to_num(tp / (tp + fn))
        score = np.nan_to_num((1 + beta ** 2) * precision * recall
                              / (beta ** 2 * precision + recall))
    if average == "weighted":
        return (score * t.sum(0)).sum() / t.sum()
    return score.mean() if average else score


def ref_r2(t, p):
    return np.mean(1 - ((t - p) ** 2).sum(0) / ((t - t.mean(0)) ** 2).sum(0))


def ref_rates(t, p, num_thresholds):
    thresholds = np.linspace(0, 1, num_thresholds)
    pos = p[None, :] > thresholds[:, None]
    label = t[None, :].astype(bool)
    tp, fp = (pos & label).sum(1), (pos & ~label).sum(1)
    tn, fn = (~pos & ~label).sum(1), (~pos & label).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"sensitivity": np.nan_to_num(tp / (tp + fn)),
                "specificity": np.nan_to_num(tn / (tn + fp)),
                "precision": np.nan_to_num(tp / (tp + fp))}


def test_iou_family_equals_numpy_references():
    t, p = _labels(4, (3, 5)), _labels(4, (3, 5))
    w = RNG.integers(0, 3, size=(3, 5))
    cm = ref_confusion(t, p, 4, w)
    m = M.IoU(4, target_class_ids=[0, 2])
    m.update_state(t, p, w)
    np.testing.assert_array_equal(np.asarray(m.total_cm.value), cm)
    assert m.total_cm.dtype == "int32"
    np.testing.assert_allclose(m.result(), ref_iou(cm, [0, 2]), rtol=1e-5)
    mean = M.MeanIoU(4, ignore_class=1, dtype="float32")
    mean.update_state(t, p)
    cm = ref_confusion(t[t != 1], p[t != 1], 4)
    np.testing.assert_allclose(mean.result(), ref_iou(cm, range(4)), rtol=1e-5)
    scores = RNG.uniform(size=(6, 3))
    one_hot = np.eye(3)[_labels(3, 6)]
    m = M.OneHotMeanIoU(3)
    m.update_state(one_hot, scores)
    cm = ref_confusion(one_hot.argmax(-1), scores.argmax(-1), 3)
    np.testing.assert_allclose(m.result(), ref_iou(cm, range(3)), rtol=1e-5)
    t, p = _labels(2, 10), RNG.uniform(size=10)
    m = M.BinaryIoU(threshold=0.3)
    m.update_state(t, p)
    np.testing.assert_allclose(m.result(), ref_iou(ref_confusion(t, (p >= 0.3) * 1, 2),
                                                   [0, 1]), rtol=1e-5)
    m.reset_state()
    assert not np.asarray(m.total_cm.value).any()


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
def test_fbeta_equals_numpy_reference(average):
    t = (RNG.uniform(size=(12, 3)) > 0.5).astype(np.float32)
    p = RNG.uniform(size=(12, 3)).astype(np.float32)
    for beta, threshold in ((1.0, None), (2.0, 0.4)):
        m = M.FBetaScore(average, beta, threshold)
        _accumulate(m, [(t[:5], p[:5]), (t[5:], p[5:])])
        np.testing.assert_allclose(m.result(), ref_fbeta(t, p, beta, threshold, average),
                                   rtol=1e-5)


def test_correlations_and_r2_equal_numpy_references():
    t, p = RNG.standard_normal((4, 6)), RNG.standard_normal((4, 6))
    want = [np.corrcoef(a, b)[0, 1] for a, b in zip(t, p)]
    np.testing.assert_allclose(M.pearson_correlation(t.astype(np.float32),
                                                     p.astype(np.float32)), want, rtol=1e-5)
    mean_t, mean_p = t.mean(-1, keepdims=True), p.mean(-1, keepdims=True)
    norm = t.var(-1, keepdims=True) + p.var(-1, keepdims=True) + (mean_t - mean_p) ** 2
    want = (2 * (t - mean_p) * (p - mean_p) / (norm + 1e-7)).mean(-1)  # Keras' formula
    np.testing.assert_allclose(M.concordance_correlation(t, p), want, rtol=1e-5)
    m = M.R2Score()
    _accumulate(m, [(t[:3], p[:3]), (t[3:], p[3:])])
    np.testing.assert_allclose(m.result(), ref_r2(t, p), rtol=1e-5)
    adjusted = M.R2Score(num_regressors=2)
    adjusted.update_state(t, p)
    n = t.size
    np.testing.assert_allclose(adjusted.result(), 1 - (1 - ref_r2(t, p)) * (n - 1) / (n - 3),
                               rtol=1e-5)


def test_rates_at_rates_equal_numpy_references():
    t, p = _labels(2, 40), RNG.uniform(size=40).astype(np.float32)
    rates = ref_rates(t, p, 50)
    cases = [(M.SensitivityAtSpecificity(0.6, 50), "specificity", "sensitivity"),
             (M.SpecificityAtSensitivity(0.7, 50), "sensitivity", "specificity"),
             (M.PrecisionAtRecall(0.5, 50), "sensitivity", "precision"),
             (M.RecallAtPrecision(0.6, 50), "precision", "sensitivity")]
    for metric, constrained, dependent in cases:
        metric.update_state(t, p)
        feasible = rates[constrained] >= metric.value
        np.testing.assert_allclose(metric.result(),
                                   rates[dependent][feasible].max(initial=0.0), rtol=1e-5)


# -- real Keras --------------------------------------------------------------------------------
def _keras_cases():
    sparse = [(_labels(4, (3, 5)), _labels(4, (3, 5)), RNG.integers(0, 3, (3, 5)))
              for _ in range(2)]
    scores = [(np.eye(3)[_labels(3, 6)], RNG.uniform(size=(6, 3)).astype(np.float32),
               RNG.uniform(size=6).astype(np.float32)) for _ in range(2)]
    binary = [(_labels(2, 12), RNG.uniform(size=12).astype(np.float32),
               RNG.uniform(size=12).astype(np.float32)) for _ in range(2)]
    multi = [((RNG.uniform(size=(8, 3)) > 0.5).astype(np.float32),
              RNG.uniform(size=(8, 3)).astype(np.float32),
              RNG.uniform(size=8).astype(np.float32)) for _ in range(2)]
    regression = [(RNG.standard_normal((5, 3)).astype(np.float32),
                   RNG.standard_normal((5, 3)).astype(np.float32),
                   RNG.uniform(size=5).astype(np.float32)) for _ in range(2)]
    columns = [(t, p, RNG.uniform(size=3).astype(np.float32)) for t, p, _ in regression]
    return [
        ("IoU", {"num_classes": 4, "target_class_ids": [0, 2]}, sparse),
        ("MeanIoU", {"num_classes": 4, "ignore_class": 1, "dtype": "float32"}, sparse),
        ("BinaryIoU", {"target_class_ids": [1], "threshold": 0.4}, binary),
        ("OneHotIoU", {"num_classes": 3, "target_class_ids": [1, 2]}, scores),
        ("OneHotMeanIoU", {"num_classes": 3}, scores),
        ("FBetaScore", {"beta": 2.0, "threshold": 0.4}, multi),
        ("F1Score", {"average": "weighted"}, multi),
        ("F1Score", {"average": "micro", "threshold": 0.5}, multi),
        ("PearsonCorrelation", {}, regression),
        ("ConcordanceCorrelation", {"axis": 0}, columns),
        ("R2Score", {"class_aggregation": "variance_weighted_average"}, regression),
        ("R2Score", {"num_regressors": 3}, regression),
        ("SensitivityAtSpecificity", {"specificity": 0.6, "num_thresholds": 40}, binary),
        ("SpecificityAtSensitivity", {"sensitivity": 0.4, "num_thresholds": 1}, binary),
        ("PrecisionAtRecall", {"recall": 0.5, "class_id": 1}, multi),
        ("RecallAtPrecision", {"precision": 0.3}, binary),
    ]


CASE_IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(_keras_cases())]


@pytest.mark.parametrize("case", range(len(CASE_IDS)), ids=CASE_IDS)
def test_equals_real_keras(case):
    real = pytest.importorskip("keras")
    name, kwargs, batches = _keras_cases()[case]
    # weighted batches (the unweighted paths are checked against numpy above): each Keras op
    # compiles once per shape on JAX, the bulk of this test's time
    ours, theirs = getattr(M, name)(**kwargs), getattr(real.metrics, name)(**kwargs)
    for t, p, w in batches:
        ours.update_state(t, p, w)
        theirs.update_state(t, p, w)
    np.testing.assert_allclose(np.asarray(ours.result()), np.asarray(theirs.result()),
                               rtol=1e-5, atol=1e-6)
    # Keras numbers the names of a second instance (io_u_1): the last part is compared
    assert ([(v.path.split("/")[-1], v.shape, str(v.dtype)) for v in ours.variables]
            == [(v.path.split("/")[-1], v.shape, str(v.dtype)) for v in theirs.variables])
    assert {**ours.get_config(), "name": 0} == {**theirs.get_config(), "name": 0}
    again = M.deserialize(M.serialize(ours))
    assert type(again) is type(ours) and again.get_config() == ours.get_config()
    ours.reset_state()
    assert all(not np.asarray(v.value).any() for v in ours.variables)


def test_every_keras_metric_name_exists_and_bad_arguments_are_named():
    real = pytest.importorskip("keras")
    assert {n for n in dir(real.metrics) if not n.startswith("_")} <= set(dir(M))
    for make, text in ((lambda: M.FBetaScore(beta=1), r"beta=1 "),
                       (lambda: M.FBetaScore(average="mean"), r"average='mean'"),
                       (lambda: M.F1Score(threshold=1.5), r"threshold=1\.5"),
                       (lambda: M.R2Score(num_regressors=-1), r"num_regressors=-1"),
                       (lambda: M.PrecisionAtRecall(1.2), r"recall=1\.2"),
                       (lambda: M.IoU(3, [0, 3]), r"target_class_ids=\[0, 3\]")):
        with pytest.raises(ValueError, match=text):
            make()
    with pytest.raises(ValueError, match="2D inputs"):
        M.F1Score().update_state(np.ones(3), np.ones(3))


# -- compiled ----------------------------------------------------------------------------------
@pytest.mark.parametrize("make,specs,kind", [
    (lambda: M.MeanIoU(4), [("t", (None, 5), "int64"), ("p", (None, 5), "int64"),
                            ("w", (None, 5), "int64")], 0),
    (lambda: M.OneHotIoU(3, [0, 2]), [("t", (None, 3), "float64"), ("p", (None, 3), "float32"),
                                      ("w", (None,), "float32")], 1),
    (lambda: M.F1Score("macro"), [("t", (None, 3), "float32"), ("p", (None, 3), "float32"),
                                  ("w", (None,), "float32")], 3),
    (lambda: M.R2Score(num_regressors=2), [("t", (None, 3), "float32"),
                                           ("p", (None, 3), "float32"),
                                           ("w", (None,), "float32")], 4),
    (lambda: M.RecallAtPrecision(0.4), [("t", (None,), "int64"), ("p", (None,), "float32"),
                                        ("w", (None,), "float32")], 2),
])
def test_traced_updates_match_eager(make, specs, kind):
    """Updated inside one compiled program with an open batch size: the same result and state
    as eager updates."""
    cases = _keras_cases()
    batches = [cases[0][2], cases[3][2], cases[12][2], cases[5][2], cases[8][2]][kind]
    traced, eager = make(), make()
    result = _run_traced(traced, batches, specs)
    np.testing.assert_allclose(result, _accumulate(eager, batches), rtol=1e-5, atol=1e-6)
    for a, b in zip(traced.variables, eager.variables):
        np.testing.assert_allclose(np.asarray(a.value), np.asarray(b.value), rtol=1e-6)


def _classifier(lib, metrics):
    model = lib.Sequential([lib.Input((4,)), lib.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", metrics=metrics)
    return model


def test_evaluate_and_fit_report_what_real_keras_reports():
    """`compile(metrics=[...])` with the new metrics: `evaluate` (two batches) gives the
    values real Keras gives for the same weights, and `fit` reports them."""
    real = pytest.importorskip("keras")
    x = RNG.standard_normal((16, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[_labels(3, 16)]

    def metrics(lib):
        m = lib.metrics
        return [m.OneHotMeanIoU(3, name="iou"), m.F1Score(average="macro"), m.R2Score(),
                m.PearsonCorrelation(), m.PrecisionAtRecall(0.5, class_id=0, name="p_at_r"),
                "concordance_correlation"]  # named: Keras numbers a second instance's name

    ours, theirs = _classifier(keras, metrics(keras)), _classifier(real, metrics(real))
    theirs.set_weights(ours.get_weights())
    got = ours.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    want = theirs.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    history = ours.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    assert set(history) == set(want) and all(np.isfinite(v[0]) for v in history.values())


def test_vector_results_in_evaluate_logs():
    """A vector result (F1Score's default average=None: one score per class) is logged as an
    array, as Keras 3 logs it, in evaluate, fit's History and the callbacks' logs."""
    x = RNG.standard_normal((8, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[_labels(3, 8)]
    model = _classifier(keras, [M.F1Score(), M.Precision(thresholds=[0.3, 0.6])])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert np.asarray(logs["f1_score"]).shape == (3,)
    assert np.asarray(logs["precision"]).shape == (2,)
    seen = []
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0, validation_data=(x, y),
                        callbacks=[keras.callbacks.LambdaCallback(
                            on_epoch_end=lambda epoch, logs: seen.append(logs))])
    assert [np.shape(v) for v in history.history["val_f1_score"]] == [(3,), (3,)]
    assert np.shape(seen[-1]["f1_score"]) == (3,) and isinstance(seen[-1]["loss"], float)
    real = pytest.importorskip("keras")
    reference = _classifier(real, [real.metrics.F1Score(),
                                   real.metrics.Precision(thresholds=[0.3, 0.6])])
    reference.set_weights(model.get_weights())
    expected = reference.evaluate(x, y, verbose=0, return_dict=True)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    for name in ("f1_score", "precision"):
        np.testing.assert_allclose(logs[name], expected[name], rtol=1e-5, atol=1e-6)
