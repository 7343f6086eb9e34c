"""Attention layers and EinsumDense: forward passes against numpy implementations of Keras 3's
definitions (keras/src/layers/attention/*.py, core/einsum_dense.py), masks (explicit, causal,
from Embedding(mask_zero=True)), attention scores, dropout in training, weight names and
order, configs, `.keras` round trips and training through `fit`."""
from __future__ import annotations

import numpy as np
import pytest

from harness import run_layer_test
from kgraph import keras

L = keras.layers
NEG = -1e9


def _data(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_masked_softmax(scores, mask):
    """Keras' Softmax layer with a mask: masked logits become -1e9, outputs are multiplied by
    the mask (a fully masked row is all zeros)."""
    if mask is None:
        return np_softmax(scores)
    return np_softmax(np.where(mask, scores, NEG)) * mask


def np_mha(layer, query, value, key=None, mask=None):
    """Keras MultiHeadAttention on rank-3 inputs with numpy: returns (output, scores)."""
    key = value if key is None else key
    wq, bq, wk, bk, wv, bv, wo, bo = [w.astype(np.float64) for w in layer.get_weights()]
    q = np.einsum("btd,dnh->btnh", query, wq) + bq
    k = np.einsum("bsd,dnh->bsnh", key, wk) + bk
    v = np.einsum("bsd,dnh->bsnh", value, wv) + bv
    scores = np.einsum("bsnh,btnh->bnts", k, q / np.sqrt(wq.shape[-1]))
    probs = np_masked_softmax(scores, None if mask is None else mask[:, None])
    heads = np.einsum("bnts,bsnh->btnh", probs, v)
    return np.einsum("btnh,nhd->btd", heads, wo) + bo, probs


# -- EinsumDense --------------------------------------------------------------------------------
@pytest.mark.parametrize("equation, output_shape, bias_axes, in_shape, kernel, bias, out", [
    ("ab,bc->ac", 4, "c", (3, 5), (5, 4), (4,), (3, 4)),
    ("abc,cd->abd", (None, 4), "d", (3, 2, 5), (5, 4), (4,), (3, 2, 4)),
    ("abc,cde->abde", (None, 2, 4), "de", (3, 2, 5), (5, 2, 4), (2, 4), (3, 2, 2, 4)),
    ("...b,bc->...c", 4, None, (3, 2, 5), (5, 4), None, (3, 2, 4)),
    ("abcd,cde->abe", (None, 6), "e", (3, 2, 2, 4), (2, 4, 6), (6,), (3, 2, 6)),
    ("ab...,bc->ac...", (4, 2), "c", (3, 5, 2), (5, 4), (4, 1), (3, 4, 2)),
])
def test_einsum_dense_shapes_and_numerics(equation, output_shape, bias_axes, in_shape, kernel,
                                          bias, out):
    layer = run_layer_test(L.EinsumDense, {"equation": equation, "output_shape": output_shape,
                                           "bias_axes": bias_axes},
                           in_shape, expected_output_shape=out,
                           expected_num_trainable_weights=1 + (bias is not None))
    assert tuple(layer.kernel.shape) == kernel
    assert [v.name for v in layer.weights] == ["kernel"] + (["bias"] if bias else [])
    if bias is not None:
        assert tuple(layer.bias.shape) == bias
    x = _data(*in_shape)
    weights = layer.get_weights()
    expected = np.einsum(equation, x, weights[0]) + (weights[1] if bias else 0)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_einsum_dense_config_and_errors():
    layer = L.EinsumDense("ab,bc->ac", output_shape=3, activation="relu", bias_axes="c")
    config = layer.get_config()
    assert config["equation"] == "ab,bc->ac" and config["output_shape"] == [3]
    assert config["activation"] == "relu" and config["bias_axes"] == "c"
    with pytest.raises(ValueError, match="Invalid einsum equation"):
        L.EinsumDense("ab->b", output_shape=3).build((None, 4))
    with pytest.raises(ValueError, match="bias axis 'x'"):
        L.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="x").build((None, 4))


# -- MultiHeadAttention -------------------------------------------------------------------------
def test_mha_weights_named_and_ordered_as_keras():
    layer = L.MultiHeadAttention(num_heads=2, key_dim=4, value_dim=3, output_shape=5)
    layer(_data(2, 3, 8), _data(2, 6, 6))
    assert [v.path for v in layer.weights] == [
        f"{n}/{w}" for n in ("query", "key", "value", "attention_output")
        for w in ("kernel", "bias")]
    assert [tuple(v.shape) for v in layer.weights] == [
        (8, 2, 4), (2, 4), (6, 2, 4), (2, 4), (6, 2, 3), (2, 3), (2, 3, 5), (5,)]
    assert layer.query_dense.equation == "abc,cde->abde"
    assert layer.output_dense.equation == "abcd,cde->abe"
    no_bias = L.MultiHeadAttention(num_heads=2, key_dim=4, use_bias=False)
    no_bias(_data(2, 3, 8), _data(2, 3, 8))
    assert len(no_bias.weights) == 4


@pytest.mark.parametrize("with_key", [False, True])
def test_mha_matches_numpy_reference(with_key):
    layer = L.MultiHeadAttention(num_heads=3, key_dim=4, value_dim=2)
    q, v, k = _data(2, 4, 6, seed=1), _data(2, 5, 7, seed=2), _data(2, 5, 3, seed=3)
    args = (q, v, k) if with_key else (q, v)
    out, scores = layer(*args, return_attention_scores=True)
    want, want_scores = np_mha(layer, *args)
    assert scores.shape == (2, 3, 4, 5)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-6)


def test_mha_attention_mask_and_causal_mask():
    layer = L.MultiHeadAttention(num_heads=2, key_dim=3)
    x = _data(2, 4, 6)
    mask = np.random.default_rng(4).uniform(size=(2, 4, 4)) > 0.3
    mask[:, :, 0] = True
    out = layer(x, x, attention_mask=mask)
    np.testing.assert_allclose(out, np_mha(layer, x, x, mask=mask)[0], rtol=1e-5, atol=1e-5)
    causal = np.tril(np.ones((4, 4), bool))[None].repeat(2, 0)
    out, scores = layer(x, x, use_causal_mask=True, return_attention_scores=True)
    want, want_scores = np_mha(layer, x, x, mask=causal)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-6)
    assert np.all(scores[:, :, 0, 1:] == 0)
    both = layer(x, x, attention_mask=mask, use_causal_mask=True)
    np.testing.assert_allclose(both, np_mha(layer, x, x, mask=mask & causal)[0], rtol=1e-5,
                               atol=1e-5)


def _masked_model(causal):
    ids = keras.Input(shape=(None,), dtype="int32")
    emb = L.Embedding(10, 8, mask_zero=True)(ids)
    mha = L.MultiHeadAttention(num_heads=2, key_dim=4)
    out = mha(emb, emb, use_causal_mask=causal)
    return keras.Model(ids, L.GlobalAveragePooling1D()(out)), mha, keras.Model(ids, [emb, out])


@pytest.mark.parametrize("causal", [False, True])
def test_mha_uses_embedding_masks_with_unknown_sequence_length(causal):
    model, mha, inner = _masked_model(causal)
    ids = np.array([[3, 4, 5, 0, 0], [1, 2, 0, 0, 0]], dtype="int32")
    emb, out = inner.predict(ids, verbose=0)
    keep = ids != 0
    mask = keep[:, :, None] & keep[:, None, :]
    if causal:
        mask = mask & np.tril(np.ones((5, 5), bool))[None]
    np.testing.assert_allclose(out, np_mha(mha, emb, emb, mask=mask)[0], rtol=1e-5, atol=1e-5)
    # padding changes nothing at the kept positions
    longer = np.pad(ids, ((0, 0), (0, 3)))
    np.testing.assert_allclose(inner.predict(longer, verbose=0)[1][:, :5][keep], out[keep],
                               rtol=1e-5, atol=1e-5)
    # the output mask is the query's: pooling averages the kept steps only
    pooled = model.predict(ids, verbose=0)
    want = np.stack([out[i][keep[i]].mean(0) for i in range(2)])
    np.testing.assert_allclose(pooled, want, rtol=1e-5, atol=1e-5)


def test_mha_dropout_only_in_training():
    layer = L.MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.5, seed=3)
    x = _data(4, 6, 8)
    inference = layer(x, x)
    np.testing.assert_allclose(inference, np_mha(layer, x, x)[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer(x, x, training=False), inference, rtol=0, atol=0)
    trained = layer(x, x, training=True)
    assert not np.allclose(trained, inference, atol=1e-3)
    # the dropped scores are zeros or probs / (1 - rate): outputs stay finite and of the
    # same order of magnitude
    assert np.isfinite(trained).all() and np.abs(trained).max() < 10 * np.abs(inference).max()


def test_mha_attention_axes_2d():
    layer = L.MultiHeadAttention(num_heads=2, key_dim=3, attention_axes=(1, 2))
    x = _data(2, 3, 4, 5)
    out, scores = layer(x, x, return_attention_scores=True)
    assert out.shape == (2, 3, 4, 5) and scores.shape == (2, 2, 3, 4, 3, 4)
    wq, bq, wk, bk, wv, bv, wo, bo = layer.get_weights()
    q = np.einsum("abcd,def->abcef", x, wq) + bq
    k = np.einsum("abcd,def->abcef", x, wk) + bk
    v = np.einsum("abcd,def->abcef", x, wv) + bv
    s = np.einsum("aghef,abcef->aebcgh", k, q / np.sqrt(3))
    p = np.exp(s - s.max(axis=(-2, -1), keepdims=True))
    p = p / p.sum(axis=(-2, -1), keepdims=True)
    want = np.einsum("abcef,efd->abcd", np.einsum("aebcgh,aghef->abcef", p, v), wo) + bo
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_mha_config_round_trip_and_errors():
    layer = L.MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.1, output_shape=(6,),
                                 kernel_regularizer="l2", seed=1)
    config = layer.get_config()
    assert config["num_heads"] == 2 and config["value_dim"] == 4
    assert config["output_shape"] == (6,) and config["seed"] == 1
    clone = L.MultiHeadAttention.from_config(config)
    assert {k: v for k, v in clone.get_config().items() if k != "name"} == \
        {k: v for k, v in config.items() if k != "name"}
    with pytest.raises(ValueError, match="attention_axes"):
        L.MultiHeadAttention(2, 4, attention_axes="x")
    with pytest.raises(ValueError, match="value` and `key"):
        L.MultiHeadAttention(2, 4)(_data(2, 3, 4), _data(2, 5, 4), _data(2, 6, 4))


def test_mha_model_trains_and_round_trips_keras_file(tmp_path):
    inputs = keras.Input(shape=(5, 8))
    x = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(query=inputs, value=inputs)
    model = keras.Model(inputs, L.Dense(1)(L.GlobalAveragePooling1D()(x)))
    model.compile(keras.optimizers.Adam(0.01), "mse")
    x_data, y = _data(16, 5, 8), _data(16, 1, seed=5)
    before = model.evaluate(x_data, y, verbose=0)
    model.fit(x_data, y, epochs=5, batch_size=8, verbose=0)
    assert model.evaluate(x_data, y, verbose=0) < before
    path = str(tmp_path / "mha.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x_data, verbose=0),
                               model.predict(x_data, verbose=0), rtol=1e-5, atol=1e-6)
    assert [w.path for w in loaded.get_layer("mha").weights] == \
        [w.path for w in model.get_layer("mha").weights]
