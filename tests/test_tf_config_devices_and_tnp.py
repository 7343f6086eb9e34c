"""`tf.config.list_physical_devices`/`list_logical_devices` (kgraph/config.py) and
`tf.experimental.numpy` (kgraph/experimental/numpy.py)."""
import numpy as np
import pytest

import kgraph as tf
import kgraph.experimental.numpy as tnp
from kgraph.distribute import mirrored


def test_devices_list_the_cpu_and_the_gpus_the_strategy_finds(monkeypatch):
    assert tf.config.list_physical_devices() == [("/physical_device:CPU:0", "CPU")]
    assert tf.config.list_logical_devices("GPU") == []
    monkeypatch.setattr(mirrored, "local_devices", lambda: ["/gpu:0", "/gpu:1"])
    gpus = tf.config.list_logical_devices("GPU")
    assert [(d.name, d.device_type) for d in gpus] == [("/device:GPU:0", "GPU"),
                                                       ("/device:GPU:1", "GPU")]
    assert [d.name for d in tf.config.experimental.list_physical_devices()] == [
        "/physical_device:CPU:0", "/physical_device:GPU:0", "/physical_device:GPU:1"]
    # the keras.io TNP example's `tf.distribute.MirroredStrategy(gpus)`
    assert tf.distribute.MirroredStrategy(gpus).devices == ("/device:gpu:0", "/device:gpu:1")
    with pytest.raises(ValueError, match="device_type='TPU'"):
        tf.config.list_logical_devices("TPU")


def test_tnp_functions_are_keras_ops_numpy_eager_and_traced():
    x = np.arange(6, dtype="float32").reshape(2, 3) - 2
    np.testing.assert_allclose(tnp.maximum(tnp.matmul(x, x.T), 0.0), np.maximum(x @ x.T, 0))
    np.testing.assert_allclose(tnp.mean(tnp.square(x), axis=0), (x * x).mean(0))
    assert tnp.sum.__wrapped__ is tf.keras.ops.numpy.sum and isinstance(tnp.abs(x), tnp.ndarray)
    assert tnp.abs(x).numpy().dtype == np.float32
    inputs = tf.keras.Input((3,))  # on functional tensors too, as keras.ops
    model = tf.keras.Model(inputs, tnp.maximum(inputs, 0.0))
    np.testing.assert_allclose(model.predict(x, verbose=0), np.maximum(x, 0))

    @tf.function(input_signature=[tf.TensorSpec((None, 3), "float32")])
    def relu_rows(v):
        return tnp.maximum(tnp.matmul(v, np.eye(3, dtype="float32")), 0)

    np.testing.assert_allclose(relu_rows(x), np.maximum(x, 0))


def test_tf_losses_optimizers_and_metrics_are_the_keras_modules():
    # multivariate_timeseries_forecasting_using_lstm.py: tf.losses.MeanSquaredError(), ...
    assert tf.losses is tf.keras.losses and tf.optimizers is tf.keras.optimizers
    assert tf.metrics is tf.keras.metrics
    assert float(tf.losses.MeanSquaredError()(np.float32([1, 2]), np.float32([1, 4]))) == 2.0
