"""`kgraph.keras.metrics` against independent float64 numpy references: each metric accumulated
over several `update_state` calls (with sample weights), confusion metrics and AUC (ROC/PR,
every summation method), `get` / `resolve_accuracy` / configs, and the traced path."""
import numpy as np
import pytest

from kgraph.compiler.program import build_program
from kgraph.keras import losses, metrics

EPS = 1e-7
RNG = np.random.default_rng(4321)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _accumulate(metric, batches):
    for batch in batches:
        metric.update_state(*batch)
    return metric.result()


def _weighted_mean(per_sample_batches, weight_batches):
    values = np.concatenate(per_sample_batches)
    weights = np.concatenate(weight_batches)
    return (values * weights).sum() / weights.sum()


# -- reduction metrics -------------------------------------------------------------------------
def test_mean_and_sum_accumulate_with_weights():
    batches = [(RNG.normal(size=n), RNG.uniform(size=n)) for n in (4, 7, 3)]
    mean, total = metrics.Mean(), metrics.Sum()
    for values, weights in batches:
        mean.update_state(values, sample_weight=weights)
        total.update_state(values, sample_weight=weights)
    np.testing.assert_allclose(mean.result(), _weighted_mean(*zip(*batches)), rtol=1e-5)
    np.testing.assert_allclose(total.result(), sum((v * w).sum() for v, w in batches),
                               rtol=1e-5)
    mean.reset_state()
    total.reset_state()
    assert float(mean.result()) == 0.0 and float(total.result()) == 0.0
    mean.update_state([1, 3, 5, 7])
    np.testing.assert_allclose(mean.result(), 4.0)


def test_mean_reduces_extra_dims_per_sample_as_keras():
    values = RNG.normal(size=(5, 3))
    per_step = RNG.uniform(size=(5, 3))
    m = metrics.Mean()
    m.update_state(values)  # each sample counts once, with its mean
    np.testing.assert_allclose(m.result(), values.mean(), rtol=1e-6)
    m.reset_state()
    m.update_state(values, sample_weight=per_step)
    expected = (values * per_step).mean(1).sum() / per_step.mean(1).sum()
    np.testing.assert_allclose(m.result(), expected, rtol=1e-6)
    m.reset_state()
    m.update_state(values, sample_weight=2.0)  # a scalar weight: the batch counts once
    np.testing.assert_allclose(m.result(), values.mean(), rtol=1e-6)
    m.update_state(np.float32(10.0), sample_weight=6.0)
    np.testing.assert_allclose(m.result(), (values.mean() * 2 + 60) / 8, rtol=1e-6)
    s = metrics.Sum()
    s.update_state(values)  # Sum sums every element
    np.testing.assert_allclose(s.result(), values.sum(), rtol=1e-5)


# -- accuracy and regression metrics -----------------------------------------------------------
def _classification_batches(sparse=False, shapes=(5, 8, 3), classes=4, weighted=True):
    out = []
    for n in shapes:
        labels = RNG.integers(0, classes, size=n)
        y_true = labels if sparse else np.eye(classes, dtype=np.float32)[labels]
        y_pred = _softmax(RNG.normal(size=(n, classes))).astype(np.float32)
        out.append((y_true, y_pred, RNG.uniform(size=n) if weighted else np.ones(n)))
    return out


def _top_k_hits(labels, preds, k):
    score = preds[np.arange(len(labels)), labels]
    return ((preds > score[:, None]).sum(-1) < k).astype(float)


ACCURACY_CASES = {
    "categorical": (metrics.CategoricalAccuracy, False,
                    lambda t, p: (t.argmax(-1) == p.argmax(-1)).astype(float)),
    "sparse_categorical": (metrics.SparseCategoricalAccuracy, True,
                           lambda t, p: (t == p.argmax(-1)).astype(float)),
    "top_2": (lambda: metrics.TopKCategoricalAccuracy(k=2), False,
              lambda t, p: _top_k_hits(t.argmax(-1), p, 2)),
    "sparse_top_2": (lambda: metrics.SparseTopKCategoricalAccuracy(k=2), True,
                     lambda t, p: _top_k_hits(t, p, 2)),
}


@pytest.mark.parametrize("case", sorted(ACCURACY_CASES))
def test_accuracy_metrics_accumulate(case):
    make, sparse, reference = ACCURACY_CASES[case]
    batches = _classification_batches(sparse=sparse)
    got = _accumulate(make(), batches)
    expected = _weighted_mean([reference(t, p) for t, p, _ in batches],
                              [w for _, _, w in batches])
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_sparse_accuracy_with_column_labels_and_top_k_ties():
    labels = np.array([[2], [1], [0]])
    preds = np.array([[0.1, 0.6, 0.3], [0.05, 0.95, 0.0], [0.3, 0.3, 0.4]])
    m = metrics.SparseCategoricalAccuracy()
    m.update_state(labels, preds, sample_weight=[0.7, 0.3, 1.0])
    np.testing.assert_allclose(m.result(), 0.3 / 2.0, rtol=1e-6)
    # ties at the top-k boundary count as in (tf.math.in_top_k)
    m = metrics.SparseTopKCategoricalAccuracy(k=1)
    m.update_state([0, 1], [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    np.testing.assert_allclose(m.result(), 1.0)


def test_binary_accuracy_and_accuracy():
    batches = [(RNG.integers(0, 2, size=(n, 1)).astype(np.float32),
                RNG.uniform(size=(n, 1)).astype(np.float32), RNG.uniform(size=n))
               for n in (60, 40, 90)]
    batches[0][1][:5] = 0.3  # exactly at the threshold: not above it
    got = _accumulate(metrics.BinaryAccuracy(threshold=0.3), batches)
    expected = _weighted_mean([((p > np.float32(0.3)) == t).mean(-1) for t, p, _ in batches],
                              [w for _, _, w in batches])
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="threshold=1.5"):
        metrics.BinaryAccuracy(threshold=1.5)
    m = metrics.Accuracy()
    m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]], sample_weight=[1, 1, 0, 0])
    np.testing.assert_allclose(m.result(), 0.5)
    # rank-1 data: `accuracy` averages over the last (here the batch) axis, so this whole
    # batch is one sample of the mean, as in Keras
    m.update_state([1, 2], [1, 2])
    np.testing.assert_allclose(m.result(), 2 / 3, rtol=1e-6)


def _regression_batches(shapes=(5, 3, 8), dims=3):
    return [(RNG.uniform(0.5, 2, size=(n, dims)).astype(np.float32),
             RNG.uniform(0.5, 2, size=(n, dims)).astype(np.float32), RNG.uniform(size=n))
            for n in shapes]


REGRESSION_CASES = {
    "MeanSquaredError": lambda t, p: ((t - p) ** 2).mean(-1),
    "MeanAbsoluteError": lambda t, p: np.abs(t - p).mean(-1),
    "MeanAbsolutePercentageError": lambda t, p: 100 * (np.abs(t - p) / np.abs(t)).mean(-1),
    "MeanSquaredLogarithmicError": lambda t, p: ((np.log1p(p) - np.log1p(t)) ** 2).mean(-1),
    "LogCoshError": lambda t, p: np.log(np.cosh(p - t)).mean(-1),
    "CosineSimilarity": lambda t, p: (t * p).sum(-1) / (np.linalg.norm(t, axis=-1)
                                                        * np.linalg.norm(p, axis=-1)),
    "KLDivergence": lambda t, p: (np.minimum(t, 1) * np.log(np.minimum(t, 1)
                                                            / np.minimum(p, 1))).sum(-1),
    "Poisson": lambda t, p: (p - t * np.log(p + EPS)).mean(-1),
    "Hinge": lambda t, p: np.maximum(1 - t * p, 0).mean(-1),
    "SquaredHinge": lambda t, p: (np.maximum(1 - t * p, 0) ** 2).mean(-1),
}


@pytest.mark.parametrize("class_name", sorted(REGRESSION_CASES))
def test_regression_metrics_accumulate(class_name):
    batches = _regression_batches()
    got = _accumulate(getattr(metrics, class_name)(), batches)
    expected = _weighted_mean([REGRESSION_CASES[class_name](*map(np.float64, (t, p)))
                               for t, p, _ in batches], [w for _, _, w in batches])
    np.testing.assert_allclose(got, expected, rtol=2e-5)


def test_root_mean_squared_error_and_crossentropy_metrics():
    batches = _regression_batches()
    got = _accumulate(metrics.RootMeanSquaredError(), batches)
    expected = np.sqrt(_weighted_mean([((t - p) ** 2).mean(-1) for t, p, _ in batches],
                                      [w for _, _, w in batches]))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    batches = _classification_batches()
    got = _accumulate(metrics.CategoricalCrossentropy(), batches)
    expected = _weighted_mean([-(t * np.log(p.astype(np.float64))).sum(-1)
                               for t, p, _ in batches], [w for _, _, w in batches])
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_keras_documented_values():
    m = metrics.CategoricalCrossentropy()
    m.update_state([[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]],
                   sample_weight=np.array([0.3, 0.7]))
    np.testing.assert_allclose(m.result(), 1.6271976, rtol=1e-6)
    m = metrics.MeanAbsolutePercentageError()
    m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
    np.testing.assert_allclose(m.result(), 250000000.0, rtol=1e-6)
    m = metrics.RootMeanSquaredError()
    m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]], sample_weight=[1, 0])
    np.testing.assert_allclose(m.result(), 0.70710677, rtol=1e-6)
    m = metrics.LogCoshError()
    m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]], sample_weight=[1, 0])
    np.testing.assert_allclose(m.result(), 0.21689045, rtol=1e-6)


# -- confusion metrics -------------------------------------------------------------------------
def _safe_div(a, b):
    return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


def confusion_counts(y_true, y_pred, weights, thresholds):
    """float64 reference: weighted tp, fp, tn, fn per threshold, `y_pred > threshold`."""
    y_pred = np.asarray(y_pred, np.float64)
    weights = np.ones(y_pred.shape) if weights is None else np.asarray(weights, np.float64)
    weights = weights.reshape(weights.shape + (1,) * (y_pred.ndim - weights.ndim))  # per sample
    weights = np.broadcast_to(weights, y_pred.shape).ravel()[None, :]
    y_true, y_pred = np.ravel(y_true) != 0, y_pred.ravel()
    positive = y_pred[None, :] > np.asarray(thresholds)[:, None]
    return ((positive & y_true) * weights).sum(1), ((positive & ~y_true) * weights).sum(1), \
        ((~positive & ~y_true) * weights).sum(1), ((~positive & y_true) * weights).sum(1)


def _binary_batches(shapes=(20, 35, 12)):
    return [(RNG.integers(0, 2, size=n).astype(np.float32),
             RNG.uniform(size=n).astype(np.float32), RNG.uniform(size=n)) for n in shapes]


def _total_counts(batches, thresholds):
    parts = [confusion_counts(t, p, w, thresholds) for t, p, w in batches]
    return [sum(p[i] for p in parts) for i in range(4)]


@pytest.mark.parametrize("thresholds", [None, 0.3, [0.2, 0.5, 0.8], [0.0, 0.5, 1.0]])
def test_precision_recall_and_counts(thresholds):
    batches = _binary_batches()
    ref_thresholds = [0.5] if thresholds is None else np.atleast_1d(thresholds)
    tp, fp, tn, fn = _total_counts(batches, ref_thresholds)
    single = np.ndim(thresholds) == 0
    pick = (lambda x: x[0]) if single else (lambda x: x)
    np.testing.assert_allclose(_accumulate(metrics.Precision(thresholds), batches),
                               pick(_safe_div(tp, tp + fp)), rtol=1e-5)  # 0 when tp + fp == 0
    np.testing.assert_allclose(_accumulate(metrics.Recall(thresholds), batches),
                               pick(_safe_div(tp, tp + fn)), rtol=1e-5)
    for cls, expected in ((metrics.TruePositives, tp), (metrics.FalsePositives, fp),
                          (metrics.TrueNegatives, tn), (metrics.FalseNegatives, fn)):
        np.testing.assert_allclose(_accumulate(cls(thresholds), batches), pick(expected),
                                   rtol=1e-5)


def _top_k_filter(preds, k):
    order = np.argsort(-preds, axis=-1, kind="stable")[:, :k]
    mask = np.zeros_like(preds, dtype=bool)
    np.put_along_axis(mask, order, True, axis=-1)
    return np.where(mask, preds, -1e10)


@pytest.mark.parametrize("top_k,class_id,thresholds", [
    (2, None, None), (1, None, 0.3), (None, 2, None), (2, 1, None), (3, 0, [0.1, 0.4])])
def test_precision_recall_top_k_and_class_id(top_k, class_id, thresholds):
    batches = []
    for n in (6, 9):
        y_true = RNG.integers(0, 2, size=(n, 5)).astype(np.float32)
        y_pred = RNG.uniform(size=(n, 5)).astype(np.float32)
        y_pred[0, :2] = 0.5  # a tie
        batches.append((y_true, y_pred, RNG.uniform(size=n)))
    default = 0.5 if top_k is None else -1e10
    ref_thresholds = [default] if thresholds is None else np.atleast_1d(thresholds)
    ref_batches = []
    for t, p, w in batches:
        p = p.astype(np.float64)
        w = np.broadcast_to(w[:, None], p.shape)
        if top_k:
            p = _top_k_filter(p, top_k)
        if class_id is not None:
            t, p, w = t[:, class_id], p[:, class_id], w[:, class_id]
        ref_batches.append((t, p, w))
    tp, fp, _, fn = _total_counts(ref_batches, ref_thresholds)
    pick = (lambda x: x[0]) if np.ndim(thresholds) == 0 else (lambda x: x)
    precision = metrics.Precision(thresholds, top_k=top_k, class_id=class_id)
    recall = metrics.Recall(thresholds, top_k=top_k, class_id=class_id)
    np.testing.assert_allclose(_accumulate(precision, batches), pick(_safe_div(tp, tp + fp)),
                               rtol=1e-5)
    np.testing.assert_allclose(_accumulate(recall, batches), pick(_safe_div(tp, tp + fn)),
                               rtol=1e-5)


def test_precision_keras_documented_values():
    m = metrics.Precision(top_k=2)
    m.update_state([0, 0, 1, 1], [1, 1, 1, 1])
    np.testing.assert_allclose(m.result(), 0.0)
    m = metrics.Precision(top_k=4)
    m.update_state([0, 0, 1, 1], [1, 1, 1, 1])
    np.testing.assert_allclose(m.result(), 0.5)
    m = metrics.Recall()
    m.update_state([0, 1, 1, 1], [1, 0, 1, 1], sample_weight=[0, 0, 1, 0])
    np.testing.assert_allclose(m.result(), 1.0)
    m.reset_state()
    assert float(m.result()) == 0.0


# -- AUC ---------------------------------------------------------------------------------------
def _auc_thresholds(num_thresholds):
    inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    return np.array([-EPS] + inner + [1 + EPS])


def ref_riemann_auc(tp, fp, tn, fn, curve, method):
    recall = _safe_div(tp, tp + fn)
    x, y = (_safe_div(fp, fp + tn), recall) if curve == "ROC" else (recall,
                                                                      _safe_div(tp, tp + fp))
    height = {"interpolation": (y[:-1] + y[1:]) / 2, "minoring": np.minimum(y[:-1], y[1:]),
              "majoring": np.maximum(y[:-1], y[1:])}[method]
    return ((x[:-1] - x[1:]) * height).sum()


def ref_interpolated_pr_auc(tp, fp, fn, steps=4000):
    """Integrate precision d(recall) numerically, with TP and P = TP + FP linear in each
    interval between thresholds (Davis & Goadrich's interpolation)."""
    p = tp + fp
    total = tp[0] + fn[0]
    area = 0.0
    for i in range(len(tp) - 1):
        if p[i] - p[i + 1] <= 0:
            continue
        u = (np.arange(steps) + 0.5) / steps  # midpoints from B (i+1) to A (i)
        p_mid = p[i + 1] + u * (p[i] - p[i + 1])
        tp_mid = tp[i + 1] + u * (tp[i] - tp[i + 1])
        precision = tp_mid / p_mid
        area += (precision.mean() * (tp[i] - tp[i + 1])) / total
    return area


@pytest.mark.parametrize("curve,method", [("ROC", "interpolation"), ("ROC", "minoring"),
                                          ("ROC", "majoring"), ("PR", "minoring"),
                                          ("PR", "majoring")])
def test_auc_riemann_sums(curve, method):
    batches = _binary_batches()
    m = metrics.AUC(num_thresholds=50, curve=curve, summation_method=method)
    counts = _total_counts(batches, _auc_thresholds(50))
    np.testing.assert_allclose(_accumulate(m, batches), ref_riemann_auc(*counts, curve, method),
                               rtol=1e-5)


def test_auc_pr_interpolation():
    batches = _binary_batches()
    m = metrics.AUC(num_thresholds=30, curve="PR")
    tp, fp, _, fn = _total_counts(batches, _auc_thresholds(30))
    np.testing.assert_allclose(_accumulate(m, batches), ref_interpolated_pr_auc(tp, fp, fn),
                               rtol=1e-5)


def test_auc_default_thresholds_and_exact_roc_auc():
    scores_pos = RNG.normal(0.6, 0.15, size=300).clip(0, 1)
    scores_neg = RNG.normal(0.4, 0.15, size=300).clip(0, 1)
    y_true = np.r_[np.ones(300), np.zeros(300)].astype(np.float32)
    y_pred = np.r_[scores_pos, scores_neg].astype(np.float32)
    m = metrics.AUC()
    assert m.num_thresholds == 200 and len(m.thresholds) == 200
    m.update_state(y_true[::2], y_pred[::2])
    m.update_state(y_true[1::2], y_pred[1::2])
    counts = _total_counts([(y_true, y_pred, None)], _auc_thresholds(200))
    np.testing.assert_allclose(m.result(), ref_riemann_auc(*counts, "ROC", "interpolation"),
                               rtol=1e-5)
    exact = (scores_pos[:, None] > scores_neg[None, :]).mean()  # Mann-Whitney statistic
    np.testing.assert_allclose(m.result(), exact, atol=5e-3)


def test_auc_keras_documented_values_and_options():
    m = metrics.AUC(num_thresholds=3)
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    np.testing.assert_allclose(m.result(), 0.75)
    m.reset_state()
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], sample_weight=[1, 0, 0, 1])
    np.testing.assert_allclose(m.result(), 1.0)
    logits = RNG.normal(size=40).astype(np.float32)
    labels = RNG.integers(0, 2, size=40)
    a, b = metrics.AUC(from_logits=True), metrics.AUC()
    a.update_state(labels, logits)
    b.update_state(labels, 1 / (1 + np.exp(-logits.astype(np.float64))))
    np.testing.assert_allclose(a.result(), b.result(), rtol=1e-5)
    with pytest.raises(ValueError, match="curve"):
        metrics.AUC(curve="XY")
    with pytest.raises(ValueError, match="num_thresholds"):
        metrics.AUC(num_thresholds=1)


def test_auc_explicit_thresholds_and_multi_label():
    batches = [(RNG.integers(0, 2, size=(n, 3)).astype(np.float32),
                RNG.uniform(size=(n, 3)).astype(np.float32), RNG.uniform(size=n))
               for n in (10, 14)]
    inner = [0.1, 0.35, 0.6, 0.9]  # not evenly spaced: compared as y_pred > threshold
    thresholds = np.array([-EPS] + inner + [1 + EPS])
    flat = metrics.AUC(thresholds=inner)
    ref_batches = [(t, p, np.broadcast_to(w[:, None], t.shape)) for t, p, w in batches]
    counts = _total_counts(ref_batches, thresholds)
    np.testing.assert_allclose(_accumulate(flat, batches),
                               ref_riemann_auc(*counts, "ROC", "interpolation"), rtol=1e-5)
    weights = [1.0, 2.0, 0.5]
    multi = metrics.AUC(num_thresholds=20, multi_label=True, label_weights=weights)
    per_label = []
    for j in range(3):
        counts = _total_counts([(t[:, j], p[:, j], w) for t, p, w in batches],
                               _auc_thresholds(20))
        per_label.append(ref_riemann_auc(*counts, "ROC", "interpolation"))
    np.testing.assert_allclose(_accumulate(multi, batches),
                               np.dot(per_label, weights) / sum(weights), rtol=1e-5)
    unweighted = metrics.AUC(num_thresholds=20, multi_label=True)  # built on the first batch
    np.testing.assert_allclose(_accumulate(unweighted, batches), np.mean(per_label), rtol=1e-5)


# -- get / resolve_accuracy / config -----------------------------------------------------------
@pytest.mark.parametrize("identifier,cls", [
    ("mse", metrics.MeanSquaredError), ("MSE", metrics.MeanSquaredError),
    ("mae", metrics.MeanAbsoluteError), ("mape", metrics.MeanAbsolutePercentageError),
    ("msle", metrics.MeanSquaredLogarithmicError), ("acc", metrics.Accuracy),
    ("accuracy", metrics.Accuracy), ("binary_accuracy", metrics.BinaryAccuracy),
    ("categorical_accuracy", metrics.CategoricalAccuracy), ("auc", metrics.AUC),
    ("AUC", metrics.AUC), ("precision", metrics.Precision), ("recall", metrics.Recall),
    ("root_mean_squared_error", metrics.RootMeanSquaredError),
    ("bce", metrics.BinaryCrossentropy), ("top_k_categorical_accuracy",
                                          metrics.TopKCategoricalAccuracy)])
def test_get_strings(identifier, cls):
    metric = metrics.get(identifier)
    assert type(metric) is cls and metric.name == identifier


def test_get_functions_dicts_and_errors():
    wrapped = metrics.get(losses.huber)
    assert isinstance(wrapped, metrics.MeanMetricWrapper) and wrapped.name == "huber"
    wrapped.update_state(np.zeros((2, 2)), np.ones((2, 2)))
    np.testing.assert_allclose(wrapped.result(), 0.5)
    m = metrics.Recall()
    assert metrics.get(m) is m and metrics.get(None) is None
    tf_keras = {"class_name": "MeanMetricWrapper",
                "config": {"name": "accuracy", "dtype": "float32", "fn": "categorical_accuracy"}}
    m = metrics.get(tf_keras)
    assert m.name == "accuracy" and m._fn is metrics.categorical_accuracy
    assert m.get_config() == tf_keras["config"]
    with pytest.raises(ValueError, match="'not_a_metric'"):
        metrics.get("not_a_metric")


@pytest.mark.parametrize("identifier,loss,true_shape,pred_shape,cls", [
    ("accuracy", "binary_crossentropy", (None, 3), (None, 3), metrics.BinaryAccuracy),
    ("acc", losses.BinaryCrossentropy(from_logits=True), (None, 2), (None, 2),
     metrics.BinaryAccuracy),
    ("accuracy", "mse", (None, 1), (None, 1), metrics.BinaryAccuracy),
    ("accuracy", "sparse_categorical_crossentropy", (None,), (None, 10),
     metrics.SparseCategoricalAccuracy),
    ("accuracy", None, (None, 1), (None, 10), metrics.SparseCategoricalAccuracy),
    ("acc", "categorical_crossentropy", (None, 10), (None, 10), metrics.CategoricalAccuracy),
    ("Accuracy", None, (None, 4, 10), (None, 4, 10), metrics.CategoricalAccuracy),
])
def test_resolve_accuracy(identifier, loss, true_shape, pred_shape, cls):
    metric = metrics.resolve_accuracy(identifier, loss, true_shape, pred_shape)
    assert type(metric) is cls and metric.name == identifier


def test_resolve_accuracy_passes_other_identifiers_to_get():
    metric = metrics.resolve_accuracy("mae", "mse", (None, 1), (None, 1))
    assert type(metric) is metrics.MeanAbsoluteError and metric.name == "mae"


METRIC_ARGS = {
    "Mean": {}, "Sum": {}, "Accuracy": {}, "BinaryAccuracy": {"threshold": 0.7},
    "CategoricalAccuracy": {}, "SparseCategoricalAccuracy": {},
    "TopKCategoricalAccuracy": {"k": 3}, "SparseTopKCategoricalAccuracy": {"k": 2},
    "MeanSquaredError": {}, "MeanAbsoluteError": {}, "RootMeanSquaredError": {},
    "Precision": {"thresholds": [0.2, 0.6], "top_k": 2, "class_id": 1},
    "Recall": {"thresholds": 0.4, "top_k": None, "class_id": None},
    "AUC": {"num_thresholds": 7, "curve": "PR", "summation_method": "minoring",
            "multi_label": False, "num_labels": None, "label_weights": None,
            "from_logits": True},
    "TruePositives": {"thresholds": [0.1, 0.9]}, "CosineSimilarity": {"axis": 1},
    "CategoricalCrossentropy": {"from_logits": True, "label_smoothing": 0.1, "axis": -1},
}


@pytest.mark.parametrize("class_name", sorted(METRIC_ARGS))
def test_config_round_trip(class_name):
    cls = getattr(metrics, class_name)
    metric = cls(name="custom", **METRIC_ARGS[class_name])
    config = metric.get_config()
    assert config["name"] == "custom" and config["dtype"] == "float32"
    for key, value in METRIC_ARGS[class_name].items():
        assert config[key] == value
    assert cls.from_config(config).get_config() == config
    again = metrics.deserialize(metrics.serialize(metric))
    assert type(again) is cls and again.get_config() == config


def test_auc_config_with_explicit_thresholds():
    m = metrics.AUC(thresholds=[0.3, 0.1, 0.7])
    config = m.get_config()
    assert config["thresholds"] == [0.1, 0.3, 0.7] and config["num_thresholds"] == 5
    assert metrics.AUC.from_config(config).thresholds == m.thresholds


# -- traced path -------------------------------------------------------------------------------
def _run_traced(metric, batches, specs):
    """Update `metric` inside one compiled program, once per batch; return its result."""
    def step(*tensors):
        metric.update_state(*tensors)
        return {"result": metric.result()}

    program = build_program(f"metric_{metric.name}", specs, step)
    out = None
    for batch in batches:
        out = program.to_numpy(program(*[np.asarray(b) for b in batch])[0])
    return out


def test_traced_accuracy_and_mean_match_eager():
    batches = [(t.astype(np.int64), p, w.astype(np.float32))
               for t, p, w in _classification_batches(sparse=True)]
    specs = [("y_true", (None,), "int64"), ("y_pred", (None, 4), "float32"),
             ("sample_weight", (None,), "float32")]
    traced = metrics.SparseCategoricalAccuracy()
    result = _run_traced(traced, batches, specs)
    expected = _weighted_mean([(t == p.argmax(-1)).astype(float) for t, p, _ in batches],
                              [w for _, _, w in batches])
    np.testing.assert_allclose(result, expected, rtol=1e-5)
    np.testing.assert_allclose(traced.result(), expected, rtol=1e-5)  # state came back
    eager = metrics.SparseCategoricalAccuracy()
    np.testing.assert_allclose(_accumulate(eager, batches), expected, rtol=1e-5)
    traced.reset_state()
    assert float(traced.result()) == 0.0

    mean = metrics.Mean(name="loss")  # the trainer's loss tracker: scalar value, batch weight
    values = [(np.float32(v), np.float32(n)) for v, n in ((0.5, 4), (1.5, 2), (3.0, 2))]
    result = _run_traced(mean, values, [("value", (), "float32"), ("batch", (), "float32")])
    np.testing.assert_allclose(result, (0.5 * 4 + 1.5 * 2 + 3.0 * 2) / 8, rtol=1e-6)


@pytest.mark.parametrize("make", [
    lambda: metrics.AUC(), lambda: metrics.AUC(curve="PR"),
    lambda: metrics.Precision(thresholds=[0.3, 0.6]), lambda: metrics.Recall()])
def test_traced_confusion_metrics_match_reference(make):
    batches = [(t, p, w.astype(np.float32)) for t, p, w in _binary_batches()]
    specs = [("y_true", (None,), "float32"), ("y_pred", (None,), "float32"),
             ("sample_weight", (None,), "float32")]
    traced, eager = make(), make()
    result = _run_traced(traced, batches, specs)
    np.testing.assert_allclose(result, _accumulate(eager, batches), rtol=1e-5)
    tp, fp, tn, fn = _total_counts(batches, eager.thresholds)
    if isinstance(eager, metrics.Precision):
        expected = tp / (tp + fp)
    elif isinstance(eager, metrics.Recall):
        expected = (tp / (tp + fn))[0]
    elif eager.curve == "ROC":
        expected = ref_riemann_auc(tp, fp, tn, fn, "ROC", "interpolation")
    else:
        expected = ref_interpolated_pr_auc(tp, fp, fn)
    np.testing.assert_allclose(result, expected, rtol=1e-4)


def test_traced_top_k_precision_and_rmse():
    batches = [(RNG.integers(0, 2, size=(n, 5)).astype(np.float32),
                RNG.uniform(size=(n, 5)).astype(np.float32)) for n in (7, 4)]
    specs = [("y_true", (None, 5), "float32"), ("y_pred", (None, 5), "float32")]
    np.testing.assert_allclose(_run_traced(metrics.Precision(top_k=2), batches, specs),
                               _accumulate(metrics.Precision(top_k=2), batches), rtol=1e-6)
    ref = [(t, _top_k_filter(p.astype(np.float64), 2), None) for t, p in batches]
    tp, fp, _, _ = _total_counts(ref, [-1e10])
    np.testing.assert_allclose(_accumulate(metrics.Precision(top_k=2), batches),
                               tp[0] / (tp[0] + fp[0]), rtol=1e-6)
    rmse = _run_traced(metrics.RootMeanSquaredError(), batches, specs)
    errors = np.concatenate([((t - p) ** 2).mean(-1) for t, p in batches])
    np.testing.assert_allclose(rmse, np.sqrt(errors.mean()), rtol=1e-5)


def test_traced_multi_label_auc_builds_its_state_while_tracing():
    y_true = RNG.integers(0, 2, size=(12, 3)).astype(np.float32)
    y_pred = RNG.uniform(size=(12, 3)).astype(np.float32)
    traced, eager = metrics.AUC(multi_label=True), metrics.AUC(multi_label=True)
    specs = [("y_true", (None, 3), "float32"), ("y_pred", (None, 3), "float32")]
    result = _run_traced(traced, [(y_true[:5], y_pred[:5]), (y_true[5:], y_pred[5:])], specs)
    eager.update_state(y_true, y_pred)
    np.testing.assert_allclose(result, eager.result(), rtol=1e-6)
    assert traced.true_positives.shape == (200, 3)


def test_eager_results_are_eager_tensors_with_numpy():
    # the keras.io sklearn-metric callback's `self.keras_metric.result().numpy().astype(float)`
    mean = metrics.Mean("jaccard_score")
    mean.update_state(np.float64([0.25, 0.75, 0.5]))
    assert float(mean.result().numpy().astype(float)) == 0.5
    precision = metrics.Precision()
    precision.update_state([1, 0, 1], [1, 1, 1])
    assert precision.result().numpy() == pytest.approx(2 / 3)

    class Subclassed(metrics.Metric):  # a user's own metric gets the same result
        def update_state(self, x):
            pass

        def result(self):
            return np.float32(3.0)

    assert Subclassed().result().numpy() == 3.0
