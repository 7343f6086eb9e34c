"""compile / fit / evaluate / predict.

Each of train, test and predict is ONE compiled graph per input signature: the train graph
holds forward, loss (with regularization), backward, optimizer update and metric updates, and
runs as a single onnxruntime call per step. Parameters, optimizer slots and metric state stay
resident in the executor between steps. `trainable` is captured when `compile()` is called.
"""
from __future__ import annotations

import contextlib
import itertools

import numpy as np

from kgraph import ops
from kgraph.ir.graph import current_graph
from kgraph.keras import callbacks as kcallbacks
from kgraph.keras import concurrency, input_checks
from kgraph.keras import data_adapter
from kgraph.keras import execution
from kgraph.keras import metrics as kmetrics
from kgraph.keras import optimizers as koptimizers
from kgraph.keras.compile_utils import (CompiledLoss, CompiledMetrics, CompileMetrics,
                                        call_compute_loss, flatten_logs,
                                        total_loss)
from kgraph.keras.step_programs import StepPrograms
from kgraph.keras.tree import flatten, pack_like
from kgraph.keras.utils import global_state


class NotCompiledError(RuntimeError):
    pass


class _EagerStep:
    """Stands in for a compiled program in `_run`'s result when a step ran eagerly."""

    stateful = ()

    def __init__(self, result_names):
        self.result_names = result_names

    @staticmethod
    def to_numpy(value):
        return np.asarray(value)


class Trainer(StepPrograms):
    def __init__(self):
        self.optimizer = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._programs: dict = {}
        self._closed_keys: set = set()  # open-axis steps that could not be traced
        self._in_fit = False
        self.run_eagerly = False
        self._loss_tracker = None
        self.loss = None  # what compile() was given, as Keras 3 (`self.loss(y, y_pred)`)

    # -- compile --------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True, backend=None):
        """Configure training. Unknown names raise here, before anything runs.

        `backend` (or `jit_compile` given an executor name) picks the executor that runs this
        model's step graphs: "onnxruntime", "tvm" (TVM on the CPU), "tvm:cuda" or "numpy"
        (the reference interpreter); None uses `kgraph.config.backend()`."""
        from kgraph.compiler.build import resolve_target

        if backend is None and isinstance(jit_compile, str) and jit_compile != "auto":
            backend = jit_compile
        from kgraph.distribute import strategy as kstrategy  # the scope decides (issue 12)

        backend = kstrategy.on_compile(self, backend)
        self._backend = resolve_target(backend) if backend is not None else None
        self.optimizer = koptimizers.loss_scale_optimizer.for_policy(
            koptimizers.get(optimizer), self.dtype_policy, auto_scale_loss)
        self._compiled_loss = CompiledLoss(loss, loss_weights)
        if loss is not None:
            self.loss = loss
        self._compiled_metrics = CompiledMetrics(metrics, weighted_metrics)
        self._compile_metrics = CompileMetrics(self)
        self.compiled_loss = LegacyCompiledLoss(self)
        self.compiled_metrics = LegacyCompiledMetrics(self)
        if not isinstance(steps_per_execution, int) or steps_per_execution < 1:
            raise ValueError(f"`steps_per_execution` must be a positive integer. Received: "
                             f"steps_per_execution={steps_per_execution!r}")
        self.steps_per_execution = steps_per_execution
        self.run_eagerly = bool(run_eagerly)
        self._loss_tracker = kmetrics.Mean(name="loss")
        self._trainable_snapshot = {id(layer): layer._trainable
                                    for layer in [self] + self._flat_layers()}
        self._compile_config = dict(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                                    metrics=metrics, weighted_metrics=weighted_metrics,
                                    run_eagerly=self.run_eagerly,
                                    steps_per_execution=steps_per_execution)
        self._programs, self._closed_keys = {}, set()
        self.compiled = True

    @property
    def metrics(self):
        out = [self._loss_tracker] if self._loss_tracker is not None else []
        compiled = self._compiled_metrics if self.compiled else None
        if compiled is not None and (compiled.spec or compiled.weighted_spec):
            out.append(self._compile_metrics)  # one entry, as Keras 3: "compile_metrics"
        # then the metrics held as attributes, in assignment order, as Keras tracks them
        # (`self.metric_generator = keras.metrics.Mean(...)` set in an overridden compile)
        own = [m for name, m in vars(self).items()
               if isinstance(m, kmetrics.Metric) and not name.startswith("_")]
        return out + [m for m in own if not any(m is known for known in out)]

    @property
    def metrics_names(self):
        return [m.name for m in self.metrics]

    def reset_metrics(self):
        for m in self.metrics:
            m.reset_state()

    @contextlib.contextmanager
    def _compiled_trainability(self):
        """Apply the `trainable` flags captured at compile() time while tracing."""
        layers = [self] + self._flat_layers()
        saved = {id(layer): layer._trainable for layer in layers}
        snapshot = getattr(self, "_trainable_snapshot", {})
        for layer in layers:
            object.__setattr__(layer, "_trainable", snapshot.get(id(layer), layer._trainable))
        try:
            yield
        finally:
            for layer in layers:
                object.__setattr__(layer, "_trainable", saved[id(layer)])

    def _require_compiled(self, what):
        if not self.compiled:
            raise NotCompiledError(f"You must call `compile()` before `{what}()` on model "
                                   f"{self.name!r}.")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss of one batch plus the regularization and `add_loss` terms, in
        training and evaluation alike (Keras 3's `training` changes nothing here either)."""
        loss, self._loss_parts = self._compiled_loss(y, y_pred, sample_weight,
                                                     self._output_names())
        own = self.losses  # regularizers and this model's layers' add_loss terms
        extra = own + [added for added in getattr(current_graph(), "losses", [])
                       if not any(added is o for o in own)]
        return total_loss(loss, extra)

    def compute_metrics(self, x, y, y_pred, sample_weight=None, loss=None):
        """Update the loss tracker and compiled metrics; return their results by name."""
        if loss is not None:
            batch = ops.cast(ops.count(flatten(x)[0], (0,)), "float32")
            self._loss_tracker.update_state(loss, sample_weight=batch)
        if y is not None:
            self._compiled_metrics.update_state(y, y_pred, sample_weight, self._output_names(),
                                                self._compiled_loss)
        logs = flatten_logs({m.name: m.result() for m in self.metrics})
        logs.update(getattr(self, "_loss_parts", {}))
        return logs

    def train_step(self, data):
        """One training step on a batch `(x, y[, sample_weight])`, traced into the step graph.
        Override it to customise `fit()`, as in Keras."""
        from kgraph.tape import GradientTape

        x, y, sw = unpack_x_y_sample_weight(data)
        with GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = call_compute_loss(self, x, y, y_pred, sw, training=True)
        trainable = self.trainable_weights
        if trainable:
            scaled = self.optimizer.scale_loss(loss)  # LossScaleOptimizer: x dynamic scale
            self.optimizer.apply(tape.gradient(scaled, trainable), trainable)
        return self.compute_metrics(x, y, y_pred, sw, loss=loss)

    def test_step(self, data):
        x, y, sw = unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        loss = call_compute_loss(self, x, y, y_pred, sw, training=False)
        return self.compute_metrics(x, y, y_pred, sw, loss=loss)

    def _train_graph(self, x, y, sw):
        self._loss_parts = {}
        return flatten_logs(dict(self.train_step(pack_x_y_sample_weight(x, y, sw))))

    def _test_graph(self, x, y, sw):
        self._loss_parts = {}
        return flatten_logs(dict(self.test_step(pack_x_y_sample_weight(x, y, sw))))

    def _predict_graph(self, x, y=None, sw=None):
        out = self(x, training=False)
        leaves = flatten(out)
        # the call's output structure (a subclassed model's tuple of tensors and dicts), so
        # `predict` returns it as Keras does; indices stand for the tensors
        self.__dict__["_predict_structure"] = pack_like(out, list(range(len(leaves))))
        return {f"output_{i}": v for i, v in enumerate(leaves)}

    def _output_names(self):
        outputs = getattr(self, "outputs", None) or []
        return [t._keras_history[0].name for t in outputs] if outputs else None

    # -- running steps --------------------------------------------------------------------
    def _run(self, kind, batch, steps=1, host_done=False):
        x, y, sw = batch
        if not host_done:  # string inputs: the host layers run here, in numpy (host_prefix.py)
            x = self._host_batch(x)
            batch = (x, y, sw)
        if self._is_static() and kind != "predict":  # predict pads (see predict())
            seen = self.__dict__.setdefault("_static_batches", {})
            first = execution.leaves(x)[0]
            seen[kind] = execution.check_static_batch(
                seen.get(kind), first if steps == 1 else first[0],
                {"train": "fit", "test": "evaluate"}[kind])
        if self.run_eagerly:
            return self._run_eagerly(kind, batch)
        arrays = execution.leaves(batch)
        program = self._program(kind, batch, steps, arrays)
        if program.input_checks:
            input_checks.run(program.input_checks, x, y)
        if program.stateful:
            _check_stateful_batch(program.stateful, len(arrays[0]) if steps == 1 else
                                  arrays[0].shape[1])
        outs = program(*arrays)
        return program, outs

    def _run_eagerly(self, kind, batch):
        """`compile(run_eagerly=True)`: the step's Python (`train_step`, `test_step`, the
        forward pass) runs on this batch's arrays op by op, so prints and debuggers see values,
        as Keras' eager mode; no step program is compiled. Returns what `_run` does."""
        x, y, sw = batch
        self._ensure_built(x)
        with self._compiled_trainability():
            results = getattr(self, f"_{kind}_graph")(x, y, sw)
        names = list(results)
        return _EagerStep(names), [results[name] for name in names]

    def _run_group(self, kind, group):
        """Run a list of batches: one executor call when they stack (steps_per_execution),
        else one call each. Returns the last call's program and outputs."""
        group = [(self._host_batch(x), y, sw) for x, y, sw in group]
        stacked = execution.stack(group) if len(group) > 1 and not self.run_eagerly else None
        if stacked is not None:
            return self._run(kind, stacked, steps=len(group), host_done=True)
        for batch in group:
            program, outs = self._run(kind, batch, host_done=True)
        return program, outs

    def _resident(self, adapter):
        """execution.Resident of `adapter`'s arrays where `fit`'s steps can gather their own
        shuffled batches, else None (the adapter gathers them on the host): in-memory
        C-contiguous numeric arrays, shuffled, run by onnxruntime on the host (whose buffers
        are then the arrays themselves), no host-side layers, no replica strategy, not
        eager."""
        from kgraph.distribute.strategy import replicates

        if type(adapter) is not data_adapter.ArrayAdapter or not adapter.shuffle or \
                self.run_eagerly or getattr(self, "_host_prefix", None) is not None or \
                not _on_host(getattr(self, "_backend", None)) or replicates(self):
            return None
        batch = (adapter.x, adapter.y, adapter.sample_weight)
        arrays = execution.leaves(batch)
        if not all(isinstance(a, np.ndarray) and a.ndim and a.flags.c_contiguous and
                   a.dtype.kind in "biuf" for a in arrays):
            return None
        return execution.Resident(batch, arrays)

    def _run_indexed(self, kind, resident, group):
        """`_run_group` for batches given by their sample indices into `resident`'s arrays:
        each program gathers its batch itself. Returns the last call's program and
        outputs."""
        if len(group) == 1:
            runs = ((group[0], 1),)
        elif len({len(index) for index in group}) == 1:
            runs = ((np.stack(group), len(group)),)
        else:
            runs = [(index, 1) for index in group]
        for index, steps in runs:
            program = self._program(kind, resident.batch, steps, resident.leaves,
                                    indexed=True)
            if program not in resident.programs:  # checked once, on the whole arrays
                if program.input_checks:
                    input_checks.run(program.input_checks, *resident.batch[:2],
                                     holder="the data")
                resident.programs.add(program)
            if program.stateful:
                _check_stateful_batch(program.stateful, index.shape[-1])
            outs = program(*resident.feeds(program.compiled.upload, index))
        return program, outs

    def _logs(self, program, outs):
        """The step's results by name: floats, and arrays for a metric whose result is a
        vector (`F1Score(average=None)`: one score per class), as Keras logs them."""
        return {name: _log_value(program.to_numpy(o))
                for name, o in zip(program.result_names, outs)}

    @concurrency.serialized
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        self._require_compiled("train_on_batch")
        x = data_adapter.lists_to_arrays(x)
        adapter = data_adapter.ArrayAdapter(x, y, sample_weight, batch_size=len(flatten(x)[0]),
                                            class_weight=class_weight)
        batch = next(adapter.batches())
        program, outs = self._run("train", batch)
        return self._format(self._logs(program, outs), return_dict)

    @concurrency.serialized
    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._require_compiled("test_on_batch")
        x = data_adapter.lists_to_arrays(x)
        batch = next(data_adapter.ArrayAdapter(x, y, sample_weight,
                                               batch_size=len(flatten(x)[0])).batches())
        program, outs = self._run("test", batch)
        return self._format(self._logs(program, outs), return_dict)

    def predict_on_batch(self, x):
        x = data_adapter.lists_to_arrays(x)
        arrays = flatten(x)
        if any(not isinstance(a, np.ndarray) or a.dtype == np.float64 for a in arrays):
            x = pack_like(x, [data_adapter._as_array(a, "x") for a in arrays])
        program, outs = self._run("predict", (x, None, None))
        return self._pack_outputs([program.to_numpy(o) for o in outs])

    def _pack_outputs(self, arrays):
        outputs = getattr(self, "_outputs_struct", None)
        if outputs is not None and getattr(self, "_graph", None) is not None:
            return pack_like(outputs, arrays)
        structure = self.__dict__.get("_predict_structure")
        if isinstance(structure, (tuple, dict)) and len(flatten(structure)) == len(arrays):
            return pack_like(structure, arrays)
        return arrays[0] if len(arrays) == 1 else arrays

    def _format(self, logs, return_dict):
        if return_dict:
            return dict(sorted(logs.items()))
        names = ["loss"] + [k for k in logs if k != "loss"]
        values = [logs[k] for k in names]
        return values[0] if len(values) == 1 else values

    # -- fit / evaluate / predict ---------------------------------------------------------
    @concurrency.serialized
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for `epochs` epochs; returns a `History`. See the Keras docs for arguments."""
        self._require_compiled("fit")
        epochs = global_state.capped_epochs(epochs)  # keras.config.set_max_epochs
        steps_per_epoch = global_state.capped_steps(steps_per_epoch)
        data_adapter.check_epochs(epochs, initial_epoch)
        if validation_split and validation_data is None:
            (x, y, sample_weight), validation_data = data_adapter.split_validation(
                x, y, sample_weight, validation_split)
        x = self._host_inputs(x)
        adapter = data_adapter.make_adapter(x, y, sample_weight, batch_size, shuffle,
                                            class_weight, steps_per_epoch)
        if self._is_static():
            execution.check_static_adapter(adapter, "fit")
        val = _unpack_validation(validation_data)
        verbose = 1 if verbose == "auto" else verbose
        cbs = kcallbacks.CallbackList(callbacks, model=self, add_history=True,
                                      add_progbar=verbose != 0, verbose=verbose, epochs=epochs,
                                      steps=adapter.num_batches)
        self.stop_training = False
        self._in_fit = True
        logs = {}
        try:
            cbs.on_train_begin()
            initial_epoch, skip, resumed = kcallbacks.resume_point(self, initial_epoch)
            for epoch in range(initial_epoch, epochs):
                self.reset_metrics()
                cbs.on_epoch_begin(epoch)
                logs = self._fit_epoch(adapter, cbs, skip, resumed)
                skip, resumed = 0, None
                if val is not None and (epoch + 1) % validation_freq == 0:
                    val_logs = self.evaluate(**val, batch_size=validation_batch_size or batch_size,
                                             steps=validation_steps, verbose=0,
                                             callbacks=_Dispatch(cbs.callbacks),
                                             return_dict=True)
                    if val_logs is None:
                        raise ValueError("fit(): the validation data yielded no batches (an "
                                         "empty array or dataset: a timeseries dataset whose "
                                         "windows are longer than its rows yields none).")
                    logs.update({f"val_{k}": v for k, v in val_logs.items()})
                logs = kcallbacks.pythonify_logs(logs)
                cbs.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
            if getattr(self.optimizer, "use_ema", False):
                self.optimizer.finalize_variable_values(self.trainable_weights)
            cbs.on_train_end(logs)
        finally:
            self._in_fit = False
            adapter.close()  # a dataset's workers end with fit, whatever ended it
        return cbs.history

    def _fit_epoch(self, adapter, cbs, skip=0, logs=None):
        """One epoch; a resumed one (BackupAndRestore) skips the `skip` batches already run
        and starts from their `logs`."""
        logs, step, last = dict(logs or {}), skip, None
        resident = self._resident(adapter)
        batches = itertools.islice(adapter.index_batches() if resident else adapter.batches(),
                                   skip, None)
        # the step's results are read back only for a callback that takes them per batch
        # (a progress bar, TerminateOnNaN, ...); else once, from the epoch's last step
        begin = cbs.on_train_batch_begin if cbs.listeners("on_train_batch_begin") else None
        end = cbs.on_train_batch_end
        per_batch = bool(cbs.listeners("on_train_batch_end"))
        try:
            for group in execution.groups(batches, self.steps_per_execution):
                if begin is not None:
                    begin(step)
                last = self._run_indexed("train", resident, group) if resident else \
                    self._run_group("train", group)
                step += len(group)
                if per_batch:
                    logs = self._logs(*last)
                    end(step - 1, kcallbacks.pythonify_logs(logs))
                if self.stop_training:
                    break
        finally:
            for program in resident.programs if resident else ():
                program.release()  # the dataset is not held once fit returns
        return self._logs(*last) if last is not None and not per_batch else logs

    @concurrency.serialized
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        self._require_compiled("evaluate")
        steps = global_state.capped_steps(steps)  # keras.config.set_max_steps_per_epoch
        x = self._host_inputs(x)
        adapter = data_adapter.make_adapter(x, y, sample_weight, batch_size, False, None, steps)
        if self._is_static():
            execution.check_static_adapter(adapter, "evaluate")
        verbose = 1 if verbose == "auto" else verbose
        cbs = callbacks if isinstance(callbacks, _Dispatch) else kcallbacks.CallbackList(
            callbacks, model=self, add_progbar=verbose != 0, verbose=verbose, epochs=1,
            steps=adapter.num_batches)
        self.reset_metrics()
        cbs.on_test_begin()
        logs, last = {}, None
        per_batch = bool(cbs.listeners("on_test_batch_end"))
        with contextlib.closing(adapter):  # a dataset's workers end with evaluate
            for step, batch in enumerate(adapter.batches()):
                cbs.on_test_batch_begin(step)
                last = self._run("test", batch)
                if per_batch:  # (as in _fit_epoch)
                    logs = self._logs(*last)
                    cbs.on_test_batch_end(step, kcallbacks.pythonify_logs(logs))
            if last is not None and not per_batch:
                logs = self._logs(*last)
        logs = kcallbacks.pythonify_logs(logs)
        cbs.on_test_end(logs)
        return self._format(logs, return_dict) if logs else None

    def _host_inputs(self, x):
        """`x` after the model's host-side preprocessing layers, if it has any (a
        Sequential starting with a TextVectorization: see Sequential._host_inputs)."""
        return x

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        steps = global_state.capped_steps(steps)  # keras.config.set_max_steps_per_epoch
        x = self._host_inputs(x)
        adapter = data_adapter.make_adapter(x, None, None, batch_size, False, None, steps)
        verbose = 1 if verbose == "auto" else verbose
        cbs = kcallbacks.CallbackList(callbacks, model=self, add_progbar=verbose != 0,
                                      verbose=verbose, epochs=1, steps=adapter.num_batches)
        cbs.on_predict_begin()
        chunks = []
        with contextlib.closing(adapter):  # a dataset's workers end with predict
            for step, (bx, _, _) in enumerate(adapter.batches()):
                cbs.on_predict_batch_begin(step)
                size = len(flatten(bx)[0])
                if self._is_static() and hasattr(adapter, "batch_size"):
                    bx = execution.pad_batch(bx, adapter.batch_size)
                program, outs = self._run("predict", (bx, None, None))
                chunks.append([program.to_numpy(o)[:size] for o in outs])
                cbs.on_predict_batch_end(step, {"outputs": chunks[-1]})
        cbs.on_predict_end()
        if not chunks:
            raise ValueError("predict() received no data: the input is empty.")
        return self._pack_outputs([np.concatenate(parts) for parts in zip(*chunks)])


def _on_host(backend):
    """Whether a model compiled for executor `backend` keeps its buffers in host memory as
    numpy's own (onnxruntime without a CUDA provider)."""
    from kgraph.compiler.build import resolve_target

    if resolve_target(backend) != "onnxruntime":
        return False
    from kgraph.runtime.onnx_exec import providers

    return "CUDAExecutionProvider" not in providers()


def _check_stateful_batch(layers, batch):
    for layer in layers:
        expected = layer.states[0].shape[0]
        if batch != expected:
            raise ValueError(
                f"Layer {layer.name!r} is stateful with a fixed batch size of {expected}, but "
                f"a batch of {batch} samples was given. Give every batch {expected} samples "
                f"(e.g. a sample count divisible by batch_size={expected}, or drop the last "
                f"partial batch).")


def unpack_x_y_sample_weight(data):
    if isinstance(data, tuple):
        return (tuple(data) + (None, None))[:3] if len(data) <= 3 else (data, None, None)
    return data, None, None


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    if y is None:  # as Keras 3: fit(x) hands train_step the inputs themselves
        # a list of input arrays arrives as a tuple, as TensorFlow's data pipeline gives it
        # (the WGAN-graphs example tests `isinstance(inputs[0], tuple)`)
        return (tuple(x),) if isinstance(x, list) else (x,) if isinstance(x, tuple) else x
    return (x, y) if sample_weight is None else (x, y, sample_weight)


class LegacyCompiledLoss:
    """`model.compiled_loss(y, y_pred, sample_weight, regularization_losses)` (Keras 2 API,
    used in the FAQ's custom train_step): returns the loss and tracks it."""

    def __init__(self, model):
        self.model = model

    def __call__(self, y_true, y_pred, sample_weight=None, regularization_losses=None):
        model = self.model
        loss, model._loss_parts = model._compiled_loss(y_true, y_pred, sample_weight,
                                                       model._output_names())
        if regularization_losses:
            loss = loss + sum(ops.cast(r, loss.dtype) for r in regularization_losses)
        batch = ops.cast(ops.count(flatten(y_pred)[0], (0,)), "float32")
        model._loss_tracker.update_state(loss, sample_weight=batch)
        return loss


class LegacyCompiledMetrics:
    """`model.compiled_metrics.update_state(y, y_pred, sample_weight)` (Keras 2 API)."""

    def __init__(self, model):
        self.model = model

    def update_state(self, y_true, y_pred, sample_weight=None):
        model = self.model
        model._compiled_metrics.update_state(y_true, y_pred, sample_weight,
                                             model._output_names(), model._compiled_loss)

    @property
    def metrics(self):
        return self.model._compiled_metrics.metrics


class _Dispatch(kcallbacks.CallbackList):
    """Forward test hooks of an evaluate() run inside fit() to fit's callbacks (already set
    up with fit's model and params)."""

    def __init__(self, callbacks):
        self.callbacks = callbacks


def _unpack_validation(validation_data):
    if validation_data is None:
        return None
    if isinstance(validation_data, tuple):
        if len(validation_data) not in (2, 3):
            raise ValueError(f"`validation_data` must be a tuple (x, y) or (x, y, "
                             f"sample_weight). Received a tuple of length {len(validation_data)}")
        x, y = validation_data[:2]
        sw = validation_data[2] if len(validation_data) == 3 else None
        return {"x": x, "y": y, "sample_weight": sw}
    return {"x": validation_data}


def _log_value(value):
    array = np.asarray(value)
    return float(array.reshape(())) if array.size == 1 else np.array(array)
