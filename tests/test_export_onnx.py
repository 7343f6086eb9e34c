"""`model.export(path, format="onnx")`: one model per layer family, run on stock onnxruntime
against `model.predict` (1e-5), with the model's own input/output names and a dynamic batch."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from kgraph import keras
from kgraph.compiler.export import ExportError
from kgraph.keras import layers as L

RNG = np.random.default_rng(0)


def seq(shape, *stack):
    return keras.Sequential([keras.Input(shape=shape)] + list(stack))


def dense():
    return seq((6,), L.Dense(5, activation="relu"), L.Activation("tanh"), L.LeakyReLU(),
               L.PReLU(), L.Dropout(0.5), L.Dense(3), L.Softmax())


def conv():
    return seq((9, 3), L.Conv1D(4, 3, padding="same"), L.SeparableConv1D(3, 2),
               L.DepthwiseConv1D(2), L.Conv1DTranspose(2, 3, strides=2))


def conv2d():
    return seq((8, 8, 2), L.Conv2D(4, 3, activation="relu"), L.DepthwiseConv2D(3),
               L.SeparableConv2D(3, 2, padding="same"), L.Conv2DTranspose(2, 3, strides=2))


def conv3d():
    return seq((5, 5, 5, 1), L.Conv3D(2, 2), L.Conv3DTranspose(2, 2), L.MaxPooling3D(2))


def pooling():
    return seq((8, 8, 3), L.MaxPooling2D(2), L.AveragePooling2D(2, padding="same"),
               L.GlobalAveragePooling2D())


def pooling1d():
    return seq((10, 3), L.AveragePooling1D(2), L.GlobalMaxPooling1D())


def normalization():
    model = seq((6, 4), L.BatchNormalization(), L.LayerNormalization(),
                L.GroupNormalization(2), L.UnitNormalization())
    bn = model.layers[0]  # moving statistics away from (0, 1), as after training
    bn.moving_mean.assign(RNG.normal(size=4).astype("float32"))
    bn.moving_variance.assign(RNG.uniform(0.5, 2, size=4).astype("float32"))
    return model


def embedding_masking():
    return seq((7,), L.Embedding(20, 4, mask_zero=True), L.LSTM(3))


def masking_rnn():
    return seq((5, 3), L.Masking(0.0), L.GRU(4, return_sequences=True), L.SimpleRNN(2))


def bidirectional():
    return seq((6, 3), L.Bidirectional(L.LSTM(3, return_sequences=True)),
               L.Bidirectional(L.GRU(2), merge_mode="sum"))


def merge_multi_io():
    a, b = keras.Input(shape=(4,), name="left"), keras.Input(shape=(4,), name="right")
    h = L.Add()([L.Dense(4)(a), b])
    h = L.Concatenate()([h, L.Multiply()([a, b]), L.Average()([a, b]), L.Subtract()([a, b])])
    d = L.Dot(axes=1)([a, b])
    return keras.Model({"left": a, "right": b},
                       [L.Dense(2, name="head")(h), L.Dense(1, name="score")(d)])


def reshaping_spatial():
    return seq((4, 4, 2), L.ZeroPadding2D(1), L.Cropping2D(1), L.UpSampling2D(2), L.Permute(
        (2, 1, 3)), L.Reshape((8, 16)), L.UpSampling1D(2), L.Flatten(), L.RepeatVector(2),
        L.TimeDistributed(L.Dense(3)))


MODELS = [dense, conv, conv2d, conv3d, pooling, pooling1d, normalization, embedding_masking,
          masking_rnn, bidirectional, merge_multi_io, reshaping_spatial]


def stock_session(path):
    """A plain onnxruntime session, as a user would open the exported file in the same
    process that ran kgraph."""
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _sample(model, batch):
    out = {}
    for t in model.inputs:
        shape = (batch,) + tuple(t.shape[1:])
        if "int" in str(t.dtype) or t.shape[1:] == (7,):  # token ids, some zero (masked)
            out[t.name] = RNG.integers(0, 20, size=shape).astype("float32")
        else:
            out[t.name] = RNG.normal(size=shape).astype("float32")
    if isinstance(model.layers[0], L.Masking):
        out[model.inputs[0].name][:, -2:] = 0.0  # masked trailing steps
    return out


@pytest.mark.parametrize("build", MODELS, ids=lambda f: f.__name__)
def test_export_matches_predict_on_onnxruntime(build, tmp_path):
    model = build()
    path = tmp_path / "model.onnx"
    model.export(str(path), format="onnx")
    proto = onnx.load(str(path))
    assert proto.ir_version <= 10 and all(not i.name.startswith(("x_", "rng"))
                                          for i in proto.graph.input)
    assert len(proto.graph.initializer) >= len(model.weights) > 0 or not model.weights
    session = stock_session(path)
    assert [i.name for i in session.get_inputs()] == [t.name for t in model.inputs]
    assert all(i.shape[0] == "batch" for i in session.get_inputs())
    for batch in (3, 1):  # one file serves every batch size
        feeds = _sample(model, batch)
        ours = session.run(None, feeds)
        x = feeds if len(feeds) > 1 else next(iter(feeds.values()))
        expected = model.predict(x, verbose=0)
        expected = expected if isinstance(expected, list) else [expected]
        assert len(ours) == len(expected)
        for got, want in zip(ours, expected):
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_output_names_are_the_output_layers(tmp_path):
    model = merge_multi_io()
    model.export(str(tmp_path / "m.onnx"))
    session = stock_session(tmp_path / "m.onnx")
    assert [o.name for o in session.get_outputs()] == ["head", "score"]
    assert [i.name for i in session.get_inputs()] == ["left", "right"]


def test_other_formats_raise_a_typed_error_naming_the_format(tmp_path):
    with pytest.raises(ExportError, match="tf_saved_model"):
        dense().export(str(tmp_path / "saved"), format="tf_saved_model")
    assert not (tmp_path / "saved").exists()


def test_unbuilt_model_raises(tmp_path):
    with pytest.raises(ExportError, match="build it first"):
        keras.Sequential([L.Dense(2)]).export(str(tmp_path / "m.onnx"))
