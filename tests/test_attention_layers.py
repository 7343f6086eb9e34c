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


def np_masked_softmax(scores, mask, fused=False):
    """Keras' Softmax layer with a mask: masked logits become -1e9, outputs are multiplied by
    the mask (a fully masked row is all zeros). Keras' fused path (`dot_product_attention`,
    taken without scores to return or dropout to apply) does not multiply: a fully masked
    row is uniform."""
    if mask is None:
        return np_softmax(scores)
    probs = np_softmax(np.where(mask, scores, NEG))
    return probs if fused else probs * mask


def np_mha(layer, query, value, key=None, mask=None, fused=False):
    """Keras MultiHeadAttention on rank-3 inputs with numpy: returns (output, scores)."""
    key = value if key is None else key
    wq, bq, wk, bk, wv, bv, wo, bo = [w.astype(np.float64) for w in layer.get_weights()]
    q = np.einsum("btd,dnh->btnh", query, wq) + bq
    k = np.einsum("bsd,dnh->bsnh", key, wk) + bk
    v = np.einsum("bsd,dnh->bsnh", value, wv) + bv
    scores = np.einsum("bsnh,btnh->bnts", k, q / np.sqrt(wq.shape[-1]))
    probs = np_masked_softmax(scores, None if mask is None else mask[:, None], fused)
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



class _TemperedAttention(L.MultiHeadAttention):
    """An override of `_compute_attention` with Keras 3.0's five parameters (no
    `return_attention_scores`), as the keras.io LSA layer writes it: scores scaled by 1/tau."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.tau = keras.Variable(2.0, trainable=True)

    def _compute_attention(self, query, key, value, attention_mask=None, training=None):
        query = keras.ops.multiply(query, 1.0 / self.tau)
        scores = keras.ops.einsum(self._dot_product_equation, key, query)
        scores = self._masked_softmax(scores, attention_mask)
        dropped = self._dropout_layer(scores, training=training)
        return keras.ops.einsum(self._combine_equation, dropped, value), scores


def test_mha_compute_attention_override_with_keras_3_0_signature():
    layer = _TemperedAttention(num_heads=2, key_dim=4)
    x = _data(2, 4, 6)
    mask = ~np.eye(4, dtype=bool)[None]  # a batch-1 mask, broadcast over the batch
    out, scores = layer(x, x, attention_mask=mask, return_attention_scores=True)
    # tau = 2 = sqrt(key_dim): the same numbers as the built-in scaling
    reference = L.MultiHeadAttention(num_heads=2, key_dim=4)
    reference(x, x)
    reference.set_weights([w.numpy() for w in layer.weights if w is not layer.tau])
    want, want_scores = np_mha(reference, x, x, mask=np.repeat(mask, 2, 0))
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer(x, x, attention_mask=mask), want, rtol=1e-5, atol=1e-5)
    # traced in a model and trained: tau is one of its weights and gets a gradient
    inputs = keras.Input((4, 6))
    model = keras.Model(inputs, _TemperedAttention(num_heads=2, key_dim=4)(inputs, inputs))
    model.compile("sgd", "mse")
    model.fit(x, _data(2, 4, 6, seed=5), epochs=1, verbose=0)
    assert model.layers[1].tau.numpy() != 2.0 and model.count_params() == 4 * (6 * 8 + 8) - 2 + 1


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
    np.testing.assert_allclose(out, np_mha(mha, emb, emb, mask=mask, fused=True)[0], rtol=1e-5,
                               atol=1e-5)
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


def test_mha_fully_masked_query_rows():
    """With scores returned Keras takes the explicit path: a query row with nothing to attend
    gets zero weights; without, the fused path averages the values (uniform weights)."""
    layer = L.MultiHeadAttention(num_heads=2, key_dim=3)
    x = _data(1, 3, 4)
    mask = np.ones((1, 3, 3), bool)
    mask[0, 1] = False
    out, scores = layer(x, x, attention_mask=mask, return_attention_scores=True)
    assert np.all(scores[0, :, 1] == 0)
    np.testing.assert_allclose(out, np_mha(layer, x, x, mask=mask)[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer(x, x, attention_mask=mask),
                               np_mha(layer, x, x, mask=mask, fused=True)[0], rtol=1e-5,
                               atol=1e-5)


# -- GroupQueryAttention ------------------------------------------------------------------------
def np_gqa(layer, query, value, mask=None, fused=False):
    wq, bq, wk, bk, wv, bv, wo, bo = [w.astype(np.float64) for w in layer.get_weights()]
    repeats = layer.num_repeats
    q = np.einsum("bqm,muh->bquh", query, wq) + bq
    k = np.repeat(np.einsum("bkm,mvh->bkvh", value, wk) + bk, repeats, axis=2)
    v = np.repeat(np.einsum("bkm,mvh->bkvh", value, wv) + bv, repeats, axis=2)
    scores = np.einsum("bquh,bkuh->buqk", q / np.sqrt(layer.head_dim), k)
    probs = np_masked_softmax(scores, None if mask is None else mask[:, None], fused)
    return np.einsum("bquh,uhm->bqm", np.einsum("buqk,bkuh->bquh", probs, v), wo) + bo, probs


def test_group_query_attention_matches_numpy_reference():
    assert L.GroupQueryAttention is L.GroupedQueryAttention
    layer = L.GroupQueryAttention(head_dim=3, num_query_heads=4, num_key_value_heads=2)
    q, v = _data(2, 4, 6, seed=1), _data(2, 5, 6, seed=2)
    out, scores = layer(q, v, return_attention_scores=True)
    assert [w.path for w in layer.weights] == [
        f"{n}/{w}" for n in ("query", "key", "value", "attention_output")
        for w in ("kernel", "bias")]
    assert [tuple(w.shape) for w in layer.weights] == [
        (6, 4, 3), (4, 3), (6, 2, 3), (2, 3), (6, 2, 3), (2, 3), (4, 3, 6), (6,)]
    want, want_scores = np_gqa(layer, q, v)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-6)
    causal = np.tril(np.ones((4, 5), bool))[None].repeat(2, 0)
    np.testing.assert_allclose(layer(q, v, use_causal_mask=True),
                               np_gqa(layer, q, v, mask=causal, fused=True)[0], rtol=1e-5,
                               atol=1e-5)
    config = layer.get_config()
    assert (config["head_dim"], config["num_query_heads"], config["num_key_value_heads"]) == \
        (3, 4, 2)
    assert L.GroupQueryAttention.from_config(config).get_config()["seed"] is None
    with pytest.raises(ValueError, match="divisible"):
        L.GroupQueryAttention(head_dim=2, num_query_heads=3, num_key_value_heads=2)


# -- Attention / AdditiveAttention --------------------------------------------------------------
def np_attention(query, value, key=None, scores_fn=None, q_mask=None, v_mask=None,
                 causal=False):
    key = value if key is None else key
    scores = scores_fn(query, key)
    keep = np.ones(scores.shape, bool)
    if v_mask is not None:
        keep &= v_mask[:, None, :]
    if causal:
        keep &= np.tril(np.ones(scores.shape[1:], bool))[None]
    weights = np_softmax(scores - 1e9 * (~keep))
    out = weights @ value
    return (out * q_mask[..., None] if q_mask is not None else out), weights


@pytest.mark.parametrize("kwargs", [{}, {"use_scale": True}, {"score_mode": "concat"},
                                    {"score_mode": "concat", "use_scale": True}])
def test_attention_matches_numpy_reference(kwargs):
    layer = L.Attention(**kwargs)
    q, v, k = _data(2, 3, 4, seed=1), _data(2, 5, 4, seed=2), _data(2, 5, 4, seed=3)
    out, weights = layer([q, v, k], return_attention_scores=True)
    names = [w.name for w in layer.weights]
    assert names == (["scale"] if kwargs.get("use_scale") else []) + \
        (["concat_score_weight"] if kwargs.get("score_mode") == "concat" else [])
    layer.set_weights([np.float32(1.5)] * len(names))
    out, weights = layer([q, v, k], return_attention_scores=True)
    s = 1.5 if names else 1.0

    def scores(a, b):
        if kwargs.get("score_mode") == "concat":
            inner = a[:, :, None] + b[:, None]
            inner = inner * (1.5 if kwargs.get("use_scale") else 1.0)
            return 1.5 * np.tanh(inner).sum(-1)
        return (a @ b.transpose(0, 2, 1)) * s

    want, want_w = np_attention(q, v, k, scores)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(weights, want_w, rtol=1e-5, atol=1e-6)


def test_attention_masks_and_causal():
    layer = L.Attention()
    q, v = _data(2, 4, 3, seed=1), _data(2, 4, 3, seed=2)
    q_mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    v_mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    dot = lambda a, b: a @ b.transpose(0, 2, 1)  # noqa: E731
    out = layer([q, v], mask=[q_mask, v_mask], use_causal_mask=True)
    want, _ = np_attention(q, v, None, dot, q_mask, v_mask, causal=True)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    # masks from Embedding(mask_zero=True) through a functional model
    ids_q, ids_v = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
    emb = L.Embedding(7, 3, mask_zero=True)
    eq, ev = emb(ids_q), emb(ids_v)
    model = keras.Model([ids_q, ids_v], [eq, ev, L.Attention()([eq, ev])])
    a = np.array([[1, 2, 3, 0], [4, 5, 0, 0]], "int32")
    b = np.array([[6, 1, 0, 0], [2, 3, 4, 5]], "int32")
    eq_v, ev_v, got = model.predict([a, b], verbose=0)
    want, _ = np_attention(eq_v, ev_v, None, dot, a != 0, b != 0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="list of inputs"):
        L.Attention()(q)


def test_additive_attention_matches_numpy_reference():
    layer = L.AdditiveAttention()
    q, v = _data(2, 3, 4, seed=1), _data(2, 5, 4, seed=2)
    out, weights = layer([q, v], return_attention_scores=True)
    (scale,) = layer.get_weights()
    assert scale.shape == (4,) and [w.name for w in layer.weights] == ["scale"]
    fn = lambda a, b: (np.tanh(a[:, :, None] + b[:, None]) * scale).sum(-1)  # noqa: E731
    want, want_w = np_attention(q, v, None, fn)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(weights, want_w, rtol=1e-5, atol=1e-6)
    assert "score_mode" not in layer.get_config()
    assert L.AdditiveAttention(use_scale=False)([q, v]).shape == (2, 3, 4)


@pytest.mark.parametrize("cls, kwargs", [(L.Attention, {"use_scale": True}),
                                         (L.AdditiveAttention, {})])
def test_attention_layers_harness_and_dropout(cls, kwargs):
    run_layer_test(cls, kwargs, [(2, 3, 4), (2, 5, 4)], expected_output_shape=(2, 3, 4),
                   expected_num_trainable_weights=1)
    layer = cls(dropout=0.5, seed=2, **kwargs)
    q, v = _data(4, 3, 4), _data(4, 6, 4, seed=1)
    inference = layer([q, v])
    np.testing.assert_allclose(layer([q, v], training=False), inference, rtol=0, atol=0)
    assert not np.allclose(layer([q, v], training=True), inference, atol=1e-4)


# -- RMSNormalization ---------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, shape", [({}, (3, 5)), ({"axis": [1, 2]}, (2, 3, 4)),
                                           ({"epsilon": 1e-2}, (2, 3, 4))])
def test_rms_normalization(kwargs, shape):
    layer = run_layer_test(L.RMSNormalization, kwargs, shape, expected_output_shape=shape,
                           expected_num_trainable_weights=1)
    assert [w.name for w in layer.weights] == ["scale"]
    scale = np.random.default_rng(3).uniform(0.5, 2, size=layer.scale.shape).astype("float32")
    layer.set_weights([scale])
    x = _data(*shape, seed=4)
    axes = tuple(kwargs.get("axis", [-1]))
    eps = kwargs.get("epsilon", 1e-6)
    want = x / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=axes, keepdims=True) + eps) * scale
    np.testing.assert_allclose(layer(x), want, rtol=1e-5, atol=1e-6)
    assert layer.get_config()["axis"] == list(kwargs.get("axis", [-1]))


def test_transformer_block_trains_with_unknown_sequence_length():
    ids = keras.Input(shape=(None,), dtype="int32")
    emb = L.Embedding(20, 8, mask_zero=True)(ids)
    x = L.MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.1, seed=1)(
        emb, emb, use_causal_mask=True)
    x = L.LayerNormalization()(x + emb)
    x = L.GroupQueryAttention(head_dim=4, num_query_heads=2, num_key_value_heads=1)(x, x)
    model = keras.Model(ids, L.Dense(20)(x))
    model.compile(keras.optimizers.Adam(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = np.random.default_rng(0).integers(1, 20, size=(16, 7))
    data[:, 5:] = 0
    history = model.fit(data, np.roll(data, -1, 1), epochs=4, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict(data[:3, :4], verbose=0).shape == (3, 4, 20)  # another length


@pytest.mark.tvm
@pytest.mark.parametrize("seq, causal", [(None, False), (5, True)])
def test_mha_on_tvm(seq, causal):
    """Forward and input gradient of MHA on TVM against the numpy interpreter: with unknown
    batch and sequence lengths (run-time Reshape targets from Shape slices), and causal with a
    known length. (A causal mask over an unknown length slices a constant range at run time;
    TVM's importer loses that shape: known limit.)"""
    from tvm_helper import assert_outputs_close, run_tvm

    from kgraph.compiler.autodiff import gradients
    from kgraph.compiler.build import compile_graph
    from kgraph.ir.graph import Graph, tracing

    layer = L.MultiHeadAttention(num_heads=2, key_dim=4)
    graph = Graph("mha_tvm")
    x = graph.placeholder("x", (None, seq, 8), "float32")
    with tracing(graph):
        out = layer(x, x, use_causal_mask=causal)
        (grad,) = gradients(graph, keras.ops.sum(out * out), [x])
    graph.set_outputs({"out": out, "grad": grad})
    feeds = {"x": _data(2, 5, 8),
             **{v.node.attrs["name"]: var.numpy() for var, v in graph.variables.items()}}
    want = compile_graph(graph, "numpy").run(feeds)
    assert_outputs_close(run_tvm(graph, feeds), want, rtol=1e-4, atol=1e-5,
                         names=graph.output_names)
