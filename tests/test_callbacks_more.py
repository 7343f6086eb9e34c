"""RemoteMonitor (against a local HTTP server), SwapEMAWeights, ProgbarLogger, set_model /
set_params, stop_training, learning-rate reads and writes from callbacks, and a learning-rate
schedule set after the train step was compiled."""
import http.server
import json
import threading
import urllib.parse

import numpy as np
import pytest

import kgraph
from kgraph import keras

RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 4)).astype("float32")
Y = (X @ np.array([[1.0], [-2.0], [0.5], [0.2]], np.float32)).astype("float32")


def _model(optimizer=None, seed=3):
    kgraph.random.set_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"),
                              keras.layers.Dense(1)])
    model.compile(optimizer or keras.optimizers.SGD(0.05), "mse")
    return model


class _Recorder(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.received = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Recorder.received
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("as_json", [True, False])
def test_remote_monitor_posts_every_epoch(server, as_json):
    root, received = server
    history = _model().fit(X, Y, epochs=2, verbose=0, callbacks=[
        keras.callbacks.RemoteMonitor(root=root, path="/publish/", send_as_json=as_json)])
    assert len(received) == 2
    for epoch, (path, kind, body) in enumerate(received):
        assert path == "/publish/"
        if as_json:
            assert kind == "application/json"
            payload = json.loads(body)
        else:
            payload = json.loads(urllib.parse.parse_qs(body.decode())["data"][0])
        assert payload == {"epoch": epoch, "loss": pytest.approx(history.history["loss"][epoch])}


def test_remote_monitor_warns_when_unreachable():
    with pytest.warns(UserWarning, match="Could not reach RemoteMonitor"):
        _model().fit(X, Y, epochs=1, verbose=0, callbacks=[
            keras.callbacks.RemoteMonitor(root="http://127.0.0.1:9")])


def test_swap_ema_weights_evaluates_with_the_averages():
    model = _model(keras.optimizers.SGD(0.05, use_ema=True, ema_momentum=0.9))
    seen = {}

    def before(epoch, logs):
        opt = model.optimizer
        seen["raw"] = [w.numpy().copy() for w in model.trainable_weights]
        seen["avg"] = [opt._base_slots[id(w)]["average"].numpy().copy()
                       for w in model.trainable_weights]

    def after(epoch, logs):
        seen["held"] = [w.numpy().copy() for w in model.trainable_weights]

    model.fit(X, Y, epochs=3, verbose=0, validation_data=(X, Y), callbacks=[
        keras.callbacks.LambdaCallback(on_epoch_end=before),
        keras.callbacks.SwapEMAWeights(swap_on_epoch=True),
        keras.callbacks.LambdaCallback(on_epoch_end=after,
                                       on_epoch_begin=lambda e, logs: seen.setdefault(
                                           "begin", []).append(model.get_weights()))])
    for held, avg, raw in zip(seen["held"], seen["avg"], seen["raw"]):
        np.testing.assert_array_equal(held, avg)
        assert not np.array_equal(held, raw)
    # the epoch after a swap starts from the raw weights again
    assert not np.array_equal(seen["begin"][1][0], seen["begin"][2][0])
    # fit ends with the averages (use_ema), as without the callback
    np.testing.assert_array_equal(model.get_weights()[0], seen["avg"][0])


def test_swap_ema_weights_needs_use_ema():
    with pytest.raises(ValueError, match="use_ema"):
        _model().fit(X, Y, epochs=1, verbose=0, callbacks=[keras.callbacks.SwapEMAWeights()])


def test_set_model_set_params_and_stop_training():
    model = _model()

    class Probe(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    probe = Probe()
    history = model.fit(X, Y, batch_size=8, epochs=5, verbose=0, callbacks=[probe])
    assert probe.model is model
    assert probe.params == {"verbose": 0, "epochs": 5, "steps": 6}
    assert len(history.history["loss"]) == 1 and model.optimizer.iterations.numpy() == 2


def test_learning_rate_written_by_a_callback_reaches_the_step():
    model = _model()

    def freeze(epoch, logs):
        model.optimizer.learning_rate = 0.0 if epoch == 1 else 0.05

    weights = []
    model.fit(X, Y, epochs=3, verbose=0, callbacks=[keras.callbacks.LambdaCallback(
        on_epoch_begin=freeze, on_epoch_end=lambda e, logs: weights.append(model.get_weights()))])
    np.testing.assert_array_equal(weights[0][0], weights[1][0])
    assert not np.array_equal(weights[1][0], weights[2][0])


def test_schedule_set_after_compile_reaches_the_compiled_step():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    reference = _model(keras.optimizers.SGD(schedule))
    reference.fit(X, Y, batch_size=16, epochs=2, verbose=0, shuffle=False)

    swapped = _model(keras.optimizers.SGD(0.1))
    swapped.fit(X[:0 + 16], Y[:16], epochs=1, verbose=0)  # compiles the step with a float
    swapped.set_weights(_model().get_weights())
    swapped.optimizer.iterations.assign(np.int64(0))
    swapped.optimizer.learning_rate = schedule
    seen = []
    swapped.fit(X, Y, batch_size=16, epochs=2, verbose=0, shuffle=False, callbacks=[
        keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(
            swapped.optimizer.learning_rate))])
    for a, b in zip(reference.get_weights(), swapped.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert seen == pytest.approx([0.1 * 0.5 ** 1.5, 0.1 * 0.5 ** 3])


def test_progbar_logger_prints_epochs_and_metrics(capsys):
    _model().fit(X, Y, batch_size=16, epochs=2, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "loss:" in out and "3/3" in out
