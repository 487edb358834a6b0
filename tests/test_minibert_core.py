"""minibert core: every forward/backward pair against float64 central differences, masks, bad input.

The gradient checks run on both layers: the plain ops (minibert.PLAIN) and their tuned twins
(minibert.fast.OPS)."""
import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minibert as mb
from minibert.fast import OPS as FAST
from minibert.fast.layers import erf as fast_erf
from smoothing import erf_series
from tests.gradcheck import check_grad

BOTH = pytest.mark.parametrize("ops", [mb.PLAIN, FAST], ids=["plain", "fast"])

TINY = dict(vocab_size=13, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=12, max_position_embeddings=9, type_vocab_size=2,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def tiny(**kw):
    return mb.BertConfig(**dict(TINY, **kw))


@BOTH
def test_linear_gradcheck(ops):
    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    check_grad(lambda x, W, b: ops.linear_forward(x, W, b)[0], [x, W, b],
               lambda d: ops.linear_backward(d, ops.linear_forward(x, W, b)[1]), rng,
               names=["x", "W", "b"])


@BOTH
def test_layernorm_gradcheck_and_rows(ops):
    rng = np.random.default_rng(1)
    x, g, b = rng.standard_normal((2, 3, 6)), rng.standard_normal(6), rng.standard_normal(6)
    check_grad(lambda x, g, b: ops.layernorm_forward(x, g, b, 1e-5)[0], [x, g, b],
               lambda d: ops.layernorm_backward(d, ops.layernorm_forward(x, g, b, 1e-5)[1]), rng,
               names=["x", "gamma", "beta"])
    y, _ = ops.layernorm_forward(x, np.ones(6), np.zeros(6), 1e-12)
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-12, err_msg="LayerNorm row mean")
    np.testing.assert_allclose(y.var(-1), 1, atol=1e-9, err_msg="LayerNorm row variance")


@BOTH
@pytest.mark.parametrize("kind", ["erf", "tanh"])
def test_gelu_gradcheck(kind, ops):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 7)) * 2
    check_grad(lambda x: ops.gelu_forward(x, kind)[0], [x],
               lambda d: [ops.gelu_backward(d, ops.gelu_forward(x, kind)[1])], rng, names=[kind])


def test_gelu_values_and_erf_float32():
    x = np.linspace(-6, 6, 2001)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(mb.gelu_forward(x, "erf")[0], exact, rtol=1e-15, atol=1e-15)
    u = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
    np.testing.assert_allclose(mb.gelu_forward(x, "tanh")[0], 0.5 * x * (1 + np.tanh(u)), rtol=1e-14)
    # float32: the plain erf is math.erf rounded; the tuned one tanh(x P(x^2)), 6e-8 in exact arithmetic
    for erf in (mb.erf, fast_erf):
        e32 = erf(x.astype(np.float32))
        assert e32.dtype == np.float32
        err = np.abs(e32.astype(np.float64) - np.array([math.erf(v) for v in x.astype(np.float32)]))
        assert err.max() < 5e-7, f"float32 erf error {err.max()}"
    # the erf built from exp alone (any array module but NumPy and CuPy)
    z = np.linspace(-8, 8, 4001)
    np.testing.assert_allclose(erf_series(z), [math.erf(v) for v in z], rtol=0, atol=3e-15,
                               err_msg="erf_series against math.erf")


def test_dropout_mask_kept_and_scaled():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 40))
    y, mask = mb.dropout_forward(x, 0.25, np.random.default_rng(7))
    y2, _ = mb.dropout_forward(x, 0.25, np.random.default_rng(7))
    np.testing.assert_array_equal(y, y2, err_msg="same seed, same mask")
    assert set(np.unique(mask)) <= {0.0, 1 / 0.75}
    assert 0.2 < (mask == 0).mean() < 0.3
    d = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(mb.dropout_backward(d, mask), d * mask)
    assert mb.dropout_forward(x, 0.25, None)[0] is x             # evaluation mode: identity
    check_grad(lambda x: mb.dropout_forward(x, 0.25, np.random.default_rng(7))[0], [x[:4, :5]],
               lambda dd: [mb.dropout_backward(dd, mb.dropout_forward(
                   x[:4, :5], 0.25, np.random.default_rng(7))[1])], rng, names=["dropout x"])


def _attention_params(cfg, rng):
    p = mb.init_params(cfg, rng, np.float64, heads=False)
    for k in p:                                                 # non-trivial biases and scales
        p[k] = p[k] + rng.standard_normal(p[k].shape) * 0.3
    return p


@BOTH
@pytest.mark.parametrize("with_past", [False, True])
def test_attention_gradcheck(with_past, ops):
    cfg = tiny(num_hidden_layers=1)
    rng = np.random.default_rng(4)
    params = _attention_params(cfg, rng)
    pre = "encoder.layer.0.attention"
    names = [k for k in params if k.startswith(pre) and "LayerNorm" not in k]
    x = rng.standard_normal((2, 4, 8))
    past = (rng.standard_normal((2, 2, 3, 4)), rng.standard_normal((2, 2, 3, 4))) if with_past else None
    Tk = 4 + (3 if with_past else 0)
    mask = rng.random((2, 4, Tk)) < 0.7
    mask[:, :, -1] = True                                       # no empty rows

    def f(x, *ws):
        p = dict(params, **dict(zip(names, ws)))
        return ops.attention_forward(x, p, pre, cfg, mask, past_kv=past)[0]

    def analytic(d):
        _, cache = ops.attention_forward(x, params, pre, cfg, mask, past_kv=past)
        dx, g = ops.attention_backward(d, cache)
        return [dx] + [g[n] for n in names]

    check_grad(f, [x] + [params[n] for n in names], analytic, rng, names=["x"] + names)


@BOTH
def test_attention_probabilities_respect_mask(ops):
    cfg = tiny(num_hidden_layers=1)
    rng = np.random.default_rng(5)
    params = _attention_params(cfg, rng)
    seg = np.array([[0, 0, 0, 1, 1, 1]])
    mask = mb.seq2seq_mask(seg, np.array([[1, 1, 1, 1, 1, 0]]))
    _, cache = ops.attention_forward(rng.standard_normal((1, 6, 8)), params,
                                     "encoder.layer.0.attention", cfg, mask)
    probs = cache["probs"]                                      # (1, NH, T, T)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-12, err_msg="attention rows sum to 1")
    assert np.all(probs[:, :, ~mask[0]] == 0.0), "masked keys get exactly zero probability"


@BOTH
def test_encoder_and_heads_gradcheck_every_parameter(ops):
    """model_forward -> loss + <hidden, R1> + <pooled, R2>: gradient of every parameter and of the
    tied word embeddings (lookup + decoder) against central differences."""
    cfg = tiny(num_hidden_layers=1, pad_token_id=None)
    rng = np.random.default_rng(6)
    params = _attention_params(cfg, rng)
    params.update({k: v + rng.standard_normal(v.shape) * 0.3
                   for k, v in mb.init_params(cfg, rng, np.float64).items() if k not in params})
    ids = rng.integers(0, 13, (2, 5))
    seg = np.array([[0, 0, 1, 1, 1], [0, 1, 1, 1, 0]])
    mask = mb.seq2seq_mask(seg, np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]))
    labels = np.full((2, 5), -100)
    labels[0, 1], labels[1, 2], labels[0, 4] = 3, 0, 12
    R1, R2 = rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 8))
    names = sorted(params)

    def objective(*ws):
        out, _ = mb.model_forward(dict(zip(names, ws)), cfg, ids, seg, mask, labels, ops=ops)
        return np.array(out["loss"] + np.sum(out["hidden"] * R1) + np.sum(out["pooled"] * R2))

    def analytic(d):
        _, cache = mb.model_forward(params, cfg, ids, seg, mask, labels, ops=ops)
        g = mb.model_backward(cache, float(d), R1 * d, R2 * d)
        assert g.keys() == params.keys()
        return [g[n] for n in names]

    check_grad(objective, [params[n] for n in names], analytic, rng, names=names)


def test_masked_cross_entropy_gradcheck():
    rng = np.random.default_rng(8)
    z = rng.standard_normal((2, 3, 5))
    y = np.array([[1, -100, 4], [0, 2, -100]])
    check_grad(lambda z: np.array(mb.masked_cross_entropy_forward(z, y)[0]), [z],
               lambda d: [mb.masked_cross_entropy_backward(float(d), mb.masked_cross_entropy_forward(z, y)[1])],
               rng, names=["logits"])
    loss, _ = mb.masked_cross_entropy_forward(z, np.full((2, 3), -100))
    assert loss == 0.0


@BOTH
def test_dropout_in_the_model_is_reproducible_and_active(ops):
    cfg = tiny(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2)
    params = mb.init_params(cfg, np.random.default_rng(0), np.float64)
    ids = np.array([[1, 2, 3, 4]])
    a, _ = mb.bert_forward(params, cfg, ids, rng=np.random.default_rng(1), ops=ops)
    b, _ = mb.bert_forward(params, cfg, ids, rng=np.random.default_rng(1), ops=ops)
    c, _ = mb.bert_forward(params, cfg, ids, ops=ops)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@BOTH
def test_float32_in_float32_out(ops):
    cfg = tiny()
    params = mb.init_params(cfg, np.random.default_rng(0))
    out, cache = mb.model_forward(params, cfg, np.array([[1, 2, 3]]), labels=np.array([[-100, 4, 5]]),
                                  ops=ops)
    assert out["hidden"].dtype == out["logits"].dtype == out["loss"].dtype == np.float32
    grads = mb.model_backward(cache)
    assert all(g.dtype == np.float32 and g.shape == params[k].shape for k, g in grads.items())


# ---- masks ---------------------------------------------------------------------------------

@settings(max_examples=40)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 4), st.integers(0, 3)), min_size=1, max_size=4))
def test_seq2seq_mask_rule(rows):
    """query i sees key j iff cumsum(seg)[j] <= cumsum(seg)[i] and j is real; checked entry by entry."""
    T = max(s + t + p for s, t, p in rows)
    seg = np.zeros((len(rows), T), int)
    real = np.zeros((len(rows), T), int)
    for b, (s, t, p) in enumerate(rows):
        seg[b, s:s + t] = 1
        real[b, :s + t] = 1
    m = mb.seq2seq_mask(seg, real)
    rank = seg.cumsum(1)
    for b in range(len(rows)):
        for i in range(T):
            for j in range(T):
                assert m[b, i, j] == (rank[b, j] <= rank[b, i] and real[b, j] == 1)
    src = rows[0][0]
    assert m[0, :src, :src].all() and not m[0, :src, src:].any()   # the source never sees the target


def test_padding_and_causal_masks():
    am = np.array([[1, 1, 0], [1, 1, 1]])
    p = mb.padding_mask(am)
    assert p.shape == (2, 3, 3) and p.dtype == bool
    assert not p[0, :, 2].any() and p[1].all()
    c = mb.causal_mask(am)
    np.testing.assert_array_equal(c[1], np.tril(np.ones((3, 3), bool)))
    assert not c[0, :, 2].any()


# ---- config and bad input ------------------------------------------------------------------

def test_config_json_round_trip_keeps_unknown_fields(tmp_path):
    d = dict(TINY, hidden_act="gelu_new", pad_token_id=0, architectures=["BertModel"], foo={"a": 1})
    cfg = mb.BertConfig.from_dict(d)
    assert cfg.gelu_kind == "tanh" and cfg.extra["foo"] == {"a": 1}
    cfg.to_json(str(tmp_path))
    again = mb.BertConfig.from_json(str(tmp_path / "config.json"))
    assert again == cfg


@pytest.mark.parametrize("change, word", [({"model_type": "roberta"}, "model_type"),
                                          ({"hidden_act": "relu"}, "hidden_act"),
                                          ({"hidden_size": 9}, "divisible"),
                                          ({"position_embedding_type": "relative_key"}, "absolute"),
                                          ({"hidden_dropout_prob": 1.0}, "hidden_dropout_prob")])
def test_config_refuses_what_it_cannot_compute(change, word):
    with pytest.raises(ValueError, match=word):
        mb.BertConfig.from_dict(dict(TINY, **change))


@pytest.mark.parametrize("case, word", [
    ("id_negative", "token_ids"), ("id_too_big", "token_ids"), ("too_long", "max_position"),
    ("segment", "segment_ids"), ("mask_shape", "mask"), ("mask_dtype", "boolean"),
    ("float_ids", "integer"), ("missing_param", "missing")])
def test_bad_input_raises_named_value_error(case, word):
    cfg = tiny()
    params = mb.init_params(cfg, np.random.default_rng(0), heads=False)
    ids, seg, mask = np.array([[1, 2, 3]]), None, None
    if case == "id_negative":
        ids = np.array([[1, -1, 3]])
    elif case == "id_too_big":
        ids = np.array([[1, 13, 3]])
    elif case == "too_long":
        ids = np.ones((1, 10), int)
    elif case == "segment":
        seg = np.array([[0, 2, 0]])
    elif case == "mask_shape":
        mask = np.ones((1, 4))
    elif case == "mask_dtype":
        mask = np.ones((1, 3, 3))
    elif case == "float_ids":
        ids = np.array([[1.0, 2.0, 3.0]])
    else:
        del params["encoder.layer.1.output.dense.bias"]
    with pytest.raises(ValueError, match=word):
        mb.bert_forward(params, cfg, ids, seg, mask)


@settings(max_examples=30, deadline=None)
@given(half=st.integers(1, 16), shift=st.integers(0, 20), scale=st.floats(0.01, 1.0))
def test_sinusoidal_positions_shift_is_one_rotation(half, shift, scale):
    """Row p + k is row p turned by the same angle in every (2i, 2i + 1) plane, whatever p: the
    property that makes "k tokens back" one linear map; every row has the norm scale * sqrt(width / 2)."""
    from minibert.params import sinusoidal_positions
    width, n = 2 * half, 40
    pe = sinusoidal_positions(n, width, scale, dtype=np.float64)
    assert pe.shape == (n, width)
    np.testing.assert_allclose(np.linalg.norm(pe, axis=1), scale * math.sqrt(half), rtol=1e-12)
    angle = shift / 10000.0 ** (np.arange(0, width, 2) / width)
    c, s = np.cos(angle), np.sin(angle)
    rotated = np.empty_like(pe[:n - shift])
    sin_part, cos_part = pe[:n - shift, 0::2], pe[:n - shift, 1::2]
    rotated[:, 0::2] = sin_part * c + cos_part * s          # sin(a + b)
    rotated[:, 1::2] = cos_part * c - sin_part * s          # cos(a + b)
    np.testing.assert_allclose(pe[shift:], rotated, atol=1e-12 * scale + 1e-15)
    np.testing.assert_allclose(pe[0], np.tile([0.0, scale], half), atol=1e-15)


def test_sinusoidal_positions_refuse_odd_width_and_start_training():
    from minibert.params import sinusoidal_positions
    from minibert.reading_comprehension.data import synthetic_corpus, corpus_characters
    from minibert.reading_comprehension.train import small_config, train_model, vocab_tokens
    from minibert.tokenizer import Tokenizer
    with pytest.raises(ValueError, match="width"):
        sinusoidal_positions(5, 7)
    train, test, _ = synthetic_corpus(4, 2, seed=0)
    tok = Tokenizer(vocab_tokens(corpus_characters(train + test)))
    config = small_config(len(tok.id_to_token), layers=1, hidden=8, heads=2, intermediate=8, max_positions=140)
    with pytest.raises(ValueError, match="position_init"):
        train_model(train, tok, config, steps=1, position_init="learned", log=None)
    odd = small_config(len(tok.id_to_token), layers=1, hidden=9, heads=1, intermediate=8, max_positions=140)
    with pytest.raises(ValueError, match="even hidden size"):
        train_model(train, tok, odd, steps=1, position_init="sinusoidal", log=None)
    key = "embeddings.position_embeddings.weight"
    runs = {kind: train_model(train, tok, config, steps=1, batch_size=2, lr=0.0, position_init=kind,
                              log=io.StringIO())[0] for kind in ("random", "sinusoidal")}
    # at lr 0 the weights are the starting ones: the sinusoidal table in place of the random one, the
    # rest drawn exactly as with random positions
    np.testing.assert_array_equal(runs["sinusoidal"][key], sinusoidal_positions(140, 8))
    assert not np.allclose(runs["random"][key], runs["sinusoidal"][key])
    for name in runs["random"]:
        if name != key:
            np.testing.assert_array_equal(runs["random"][name], runs["sinusoidal"][name])
    scaled = train_model(train, tok, config, steps=1, batch_size=2, lr=0.0, position_init="sinusoidal",
                         position_scale=0.25, log=io.StringIO())[0]
    np.testing.assert_array_equal(scaled[key], sinusoidal_positions(140, 8, scale=0.25))


def test_init_range_scales_every_random_starting_weight():
    """small_config's init_range is the std of the random starting weights: the same draw, scaled
    (the reading-comprehension demo's --init-range); biases and LayerNorm start as before."""
    from minibert.reading_comprehension.data import synthetic_corpus, corpus_characters
    from minibert.reading_comprehension.train import small_config, train_model, vocab_tokens
    from minibert.tokenizer import Tokenizer
    train, test, _ = synthetic_corpus(4, 2, seed=0)
    tok = Tokenizer(vocab_tokens(corpus_characters(train + test)))
    runs = {}
    for r in (0.02, 0.05):
        config = small_config(len(tok.id_to_token), layers=1, hidden=8, heads=2, intermediate=8,
                              max_positions=140, init_range=r)
        assert config.initializer_range == r
        runs[r] = train_model(train, tok, config, steps=1, batch_size=2, lr=0.0, log=io.StringIO())[0]
    key = "embeddings.word_embeddings.weight"
    assert abs(runs[0.05][key].std() / 0.05 - 1) < 0.1
    for name, w in runs[0.02].items():
        if np.all(w == 0) or np.all(w == 1):                    # biases, LayerNorm: not drawn
            np.testing.assert_array_equal(runs[0.05][name], w)
        else:
            np.testing.assert_allclose(runs[0.05][name], 2.5 * w, rtol=1e-6, err_msg=name)
