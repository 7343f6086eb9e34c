"""The loss and metrics given to `compile()`, matched to the model's outputs."""
from __future__ import annotations

from kgraph.keras import losses as klosses
from kgraph.keras import metrics as kmetrics
from kgraph.keras.tree import flatten

_ACCURACY = ("accuracy", "acc")


def _per_output(spec, names, what):
    """Spread a single/list/dict compile argument over the outputs."""
    n = len(names)
    if isinstance(spec, dict):
        unknown = set(spec) - set(names)
        if unknown:
            raise ValueError(f"compile(): `{what}` has keys {sorted(unknown)} that match no "
                             f"output. Output names: {names}")
        return [spec.get(name) for name in names]
    if isinstance(spec, (list, tuple)) and what != "metrics" or (
            what == "metrics" and spec and all(isinstance(s, (list, tuple)) or s is None
                                               for s in spec) and n > 1):
        if len(spec) != n:
            raise ValueError(f"compile(): `{what}` has {len(spec)} entries but the model has "
                             f"{n} outputs. Received: {what}={spec!r}")
        return list(spec)
    return [spec] * n


def expand_1d(y_true, y_pred):
    """Targets of shape (batch,) for outputs of shape (batch, k) become (batch, 1), as
    tf.keras' `expand_1d` did, so `y` given as a flat vector broadcasts in the loss."""
    from kgraph import ops

    if len(getattr(y_true, "shape", ())) == 1 and len(y_pred.shape) == 2:
        return ops.expand_dims(y_true, -1)
    return y_true


def total_loss(compiled, extra):
    """The compiled loss (None when `compile()` had none) plus the `add_loss`/regularization
    terms in `extra`; as Keras 3, an error only when there is no loss at all."""
    from kgraph import ops

    if compiled is None and not extra:
        raise ValueError("No loss to compute. Provide a `loss` argument in `compile()`, or add "
                         "one with `add_loss()` in a layer, or override `compute_loss`.")
    dtype = compiled.dtype if compiled is not None else "float32"
    terms = ([compiled] if compiled is not None else []) + [
        ops.cast(ops.sum(e) if len(getattr(e, "shape", ())) else e, dtype) for e in extra]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def call_compute_loss(model, x, y, y_pred, sample_weight, training):
    """`model.compute_loss(...)`, passing `training` only to an override that takes it (a
    Keras 2 style `compute_loss(x, y, y_pred, sample_weight)` is called without it)."""
    import inspect

    params = inspect.signature(model.compute_loss).parameters
    if "training" in params or any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                  training=training)
    return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)


class CompiledLoss:
    def __init__(self, loss, loss_weights=None):
        self.spec, self.weights_spec = loss, loss_weights
        for leaf in flatten(loss) if not isinstance(loss, dict) else list(loss.values()):
            if leaf is not None:
                klosses.get(leaf)  # unknown names fail at compile time
        self._losses = None

    def _build(self, names):
        specs = _per_output(self.spec, names, "loss")
        weights = _per_output(self.weights_spec, names, "loss_weights") \
            if self.weights_spec is not None else [1.0] * len(names)
        self._losses = [(klosses.get(s), 1.0 if w is None else float(w))
                        for s, w in zip(specs, weights)]

    def __call__(self, y, y_pred, sample_weight, output_names):
        preds = flatten(y_pred)
        names = output_names or [f"output_{i}" for i in range(len(preds))]
        if self.spec is None:  # losses may come from add_loss (Keras 3)
            return None, {}
        if self._losses is None:
            self._build(names)
        ys = self._targets(flatten(y), len(preds))
        sws = flatten(sample_weight) if sample_weight is not None else [None] * len(preds)
        if len(sws) == 1 and len(preds) > 1:
            sws = sws * len(preds)
        ys = [None if yt is None else expand_1d(yt, yp) for yt, yp in zip(ys, preds)]
        total, parts = None, {}
        for (loss, weight), yt, yp, sw, name in zip(self._losses, ys, preds, sws, names):
            if loss is None:
                continue
            value = loss(yt, yp, sample_weight=sw)
            if len(preds) > 1:
                parts[f"{name}_loss"] = value
            value = value * weight if weight != 1.0 else value
            total = value if total is None else total + value
        return total, parts


    def _targets(self, ys, outputs):
        """One target per output. As Keras 3, targets may be given for only the outputs that
        have a loss (`loss=[loss_fn, None]` with one `y`: the keras.io miniature GPT)."""
        if len(ys) == outputs:
            return ys
        with_loss = [i for i, (loss, _) in enumerate(self._losses) if loss is not None]
        if len(ys) != len(with_loss):
            raise ValueError(f"The model has {outputs} outputs ({len(with_loss)} with a loss) "
                             f"but {len(ys)} target arrays were given.")
        full = [None] * outputs
        for i, target in zip(with_loss, ys):
            full[i] = target
        return full


class CompiledMetrics:
    def __init__(self, metrics=None, weighted_metrics=None):
        self.spec, self.weighted_spec = metrics, weighted_metrics
        for leaf in flatten(metrics) + flatten(weighted_metrics):
            if leaf is not None and leaf not in _ACCURACY:
                kmetrics.get(leaf)  # unknown names fail at compile time
        self._built = None  # list of (output index, metric, weighted)

    @property
    def metrics(self):
        return [m for _, m, _ in self._built or []]

    def _build(self, ys, preds, names, compiled_loss):
        built = []
        for weighted, spec in ((False, self.spec), (True, self.weighted_spec)):
            if not spec:
                continue
            per_output = _per_output(spec if isinstance(spec, (dict, list, tuple)) else [spec],
                                     names, "metrics")
            for i, entry in enumerate(per_output):
                if ys[i] is None:  # an output given no target (its loss is None)
                    continue
                entries = entry if isinstance(entry, (list, tuple)) else [entry]
                loss = compiled_loss._losses[i][0] if compiled_loss._losses else None
                for ident in entries:
                    if ident is None:
                        continue
                    metric = self._make(ident, loss, ys[i], preds[i])
                    if len(preds) > 1:
                        metric.name = f"{names[i]}_{metric.name}"
                    built.append((i, metric, weighted))
        taken = set()
        for _, metric, weighted in built:
            if metric.name in taken and weighted:
                metric.name = f"weighted_{metric.name}"
            taken.add(metric.name)
        self._built = built

    @staticmethod
    def _make(ident, loss, y_true, y_pred):
        if isinstance(ident, str) and ident in _ACCURACY and hasattr(kmetrics, "resolve_accuracy"):
            return kmetrics.resolve_accuracy(ident, loss, tuple(y_true.shape),
                                             tuple(y_pred.shape))
        return kmetrics.get(ident)

    def update_state(self, y, y_pred, sample_weight, output_names, compiled_loss):
        ys, preds = flatten(y), flatten(y_pred)
        if compiled_loss is not None and compiled_loss._losses is not None:
            ys = compiled_loss._targets(ys, len(preds))  # targets for the outputs with a loss
        ys = [None if yt is None else expand_1d(yt, yp) for yt, yp in zip(ys, preds)]
        names = output_names or [f"output_{i}" for i in range(len(preds))]
        if self._built is None:
            self._build(ys, preds, names, compiled_loss)
        sws = flatten(sample_weight) if sample_weight is not None else [None] * len(preds)
        if len(sws) == 1 and len(preds) > 1:
            sws = sws * len(preds)
        for i, metric, weighted in self._built:
            metric.update_state(ys[i], preds[i], sample_weight=sws[i] if weighted else None)

    def results(self):
        return {m.name: m.result() for m in self.metrics}


class CompileMetrics(kmetrics.Metric):
    """The metrics given to `compile()`, as ONE entry of `model.metrics` named
    "compile_metrics" (Keras 3): listed from `compile()` on, built by its first
    `update_state(y_true, y_pred, sample_weight)` once the outputs are known; its result is
    a dict {metric name: value}, which `flatten_logs` spreads into the logs. A custom
    `train_step` that loops `for m in self.metrics` thus updates and reports them."""

    def __init__(self, model):
        super().__init__(name="compile_metrics")
        self._model = model

    @property
    def metrics(self):
        return self._model._compiled_metrics.metrics

    @property
    def variables(self):
        return [v for m in self.metrics for v in m.variables]

    def update_state(self, y_true, y_pred, sample_weight=None):
        model = self._model
        model._compiled_metrics.update_state(y_true, y_pred, sample_weight,
                                             model._output_names(), model._compiled_loss)

    def result(self):
        return {m.name: m.result() for m in self.metrics}

    def reset_state(self):
        for m in self.metrics:
            m.reset_state()


def flatten_logs(logs: dict) -> dict:
    """Logs with each dict value (a `compile_metrics` result) spread into its entries."""
    out = {}
    for name, value in logs.items():
        if isinstance(value, dict):
            out.update(flatten_logs(value))
        else:
            out[name] = value
    return out
