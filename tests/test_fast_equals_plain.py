"""The tuned twins (minibert.fast.OPS) give the plain ops' numbers (minibert.PLAIN).

Random inputs of odd sizes, float32 and float64. Where the tuned op does the same operations in the
same order it must give the same bits (`BITS`); elsewhere it sums in another order (a transposed
product, a dot product for a variance, the 1/sqrt(HS) folded into the weights, blocks) or, for GELU in
float32, uses a fitted erf, and must agree within the stated tolerance:
    float64: rtol 1e-12        float32: rtol 2e-5 (GELU: 1e-6 relative plus 2e-7 absolute)
"""
import numpy as np
import pytest

import minibert as mb
from minibert.fast import OPS as FAST
from minibert.mlm import mlm_forward_backward
from minibert.optim import AdamW

PLAIN = mb.PLAIN
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def close(got, want, dtype, what, scale=1.0):
    """got == want within the dtype's tolerance (atol scaled by the size of the values)."""
    tol = TOL[dtype]
    assert got.dtype == want.dtype == dtype, f"{what}: dtype {got.dtype}, expected {dtype}"
    np.testing.assert_allclose(got, want, rtol=tol["rtol"], atol=tol["atol"] * scale, err_msg=what)


def draw(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear(dtype):
    rng = np.random.default_rng(0)
    x, W, b, d = draw(rng, (3, 7, 13), dtype), draw(rng, (13, 11), dtype), draw(rng, 11, dtype), \
        draw(rng, (3, 7, 11), dtype)
    y0, c0 = PLAIN.linear_forward(x, W, b)
    y1, c1 = FAST.linear_forward(x, W, b)
    np.testing.assert_array_equal(y1, y0, err_msg="linear forward: the same product and sum (BITS)")
    g0, g1 = PLAIN.linear_backward(d, c0), FAST.linear_backward(d, c1)
    np.testing.assert_array_equal(g1[0], g0[0], err_msg="linear dx (BITS)")
    close(g1[1], g0[1], dtype, "linear dW (a transposed product)", scale=10)
    np.testing.assert_array_equal(g1[2], g0[2], err_msg="linear db (BITS)")
    close(FAST.matmul(d.reshape(-1, 11), W.T), PLAIN.matmul(d.reshape(-1, 11), W.T), dtype, "matmul", 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layernorm(dtype):
    rng = np.random.default_rng(1)
    x, g, b, d = draw(rng, (5, 9, 31), dtype, 3), draw(rng, 31, dtype), draw(rng, 31, dtype), \
        draw(rng, (5, 9, 31), dtype)
    y0, c0 = PLAIN.layernorm_forward(x, g, b, 1e-12)
    y1, c1 = FAST.layernorm_forward(x, g, b, 1e-12)
    close(y1, y0, dtype, "LayerNorm forward", 5)
    for name, a1, a0 in zip(("dx", "dgamma", "dbeta"), FAST.layernorm_backward(d, c1),
                            PLAIN.layernorm_backward(d, c0)):
        close(a1, a0, dtype, f"LayerNorm {name}", 20)
    # in place (inference) gives the cached forward's numbers, in either layer
    for ops, want in ((PLAIN, y0), (FAST, y1)):
        y2, none = ops.layernorm_forward(x.copy(), g, b, 1e-12, inplace=True)
        assert none is None
        np.testing.assert_array_equal(y2, want, err_msg=f"{ops.name} LayerNorm in place")


@pytest.mark.parametrize("kind", ["erf", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu(dtype, kind):
    rng = np.random.default_rng(2)
    x, d = draw(rng, (7, 301), dtype, 3), draw(rng, (7, 301), dtype)
    y0, c0 = PLAIN.gelu_forward(x, kind)
    y1, c1 = FAST.gelu_forward(x, kind)
    # float32 erf: the fitted erf's 1.4e-7 error (times |x| <= ~12) on top of rounding
    tol = dict(rtol=1e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(y1, y0, **tol, err_msg=f"GELU {kind} forward")
    np.testing.assert_allclose(FAST.gelu_backward(d, c1), PLAIN.gelu_backward(d, c0), **tol,
                               err_msg=f"GELU {kind} backward")
    assert y1.dtype == y0.dtype == dtype


def _attention_case(dtype, rng, past):
    cfg = mb.BertConfig(vocab_size=11, hidden_size=20, num_attention_heads=4, intermediate_size=8,
                        num_hidden_layers=1, attention_probs_dropout_prob=0.2)
    params = {k: v + draw(rng, v.shape, dtype, 0.3)
              for k, v in mb.init_params(cfg, rng, dtype, heads=False).items()}
    B, T, Tp = 3, 7, past
    x = draw(rng, (B, T, 20), dtype)
    mask = rng.random((B, T, Tp + T)) < 0.7
    mask[1, 2] = False                                    # a query that sees nothing: a zero row
    kv = (draw(rng, (B, 4, Tp, 5), dtype), draw(rng, (B, 4, Tp, 5), dtype)) if past else None
    return cfg, params, x, mask, kv, draw(rng, (B, T, 20), dtype)


@pytest.mark.parametrize("past", [0, 5])
@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_with_mask_dropout_and_past(dtype, past):
    cfg, params, x, mask, kv, dout = _attention_case(dtype, np.random.default_rng(3), past)
    pre = "encoder.layer.0.attention"
    runs = []
    for ops in (PLAIN, FAST):
        out, cache = ops.attention_forward(x, params, pre, cfg, mask, np.random.default_rng(9), kv)
        dx, grads = ops.attention_backward(dout, cache)
        runs.append((out, cache, dx, grads))
    (o0, c0, dx0, g0), (o1, c1, dx1, g1) = runs
    close(o1, o0, dtype, "attention out", 10)
    close(c1["probs"], c0["probs"], dtype, "attention probabilities")
    close(c1["key"], c0["key"], dtype, "cached keys", 10)
    close(dx1, dx0, dtype, "attention dx", 20)
    assert g1.keys() == g0.keys()
    for k in g0:
        close(g1[k], g0[k], dtype, f"attention d{k}", 20)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lookup_gradient(dtype):
    rng = np.random.default_rng(4)
    ids, rows = rng.integers(0, 9, 50), draw(rng, (50, 6), dtype)
    start = draw(rng, (9, 6), dtype)
    got = FAST.scatter_add_rows(start.copy(), ids, rows)
    want = PLAIN.scatter_add_rows(start.copy(), ids, rows)
    close(got, want, dtype, "table[ids] += rows", 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adamw_steps(dtype):
    shapes = {"w.weight": (70001,), "w.bias": (17,), "m.weight": (33, 9)}     # several blocks, a tail
    runs = []
    for ops in (None, FAST):
        params = {k: draw(np.random.default_rng(6), s, dtype) for k, s in shapes.items()}
        opt = AdamW(params, ops=ops, lr=1e-2, weight_decay=0.1, max_grad_norm=None)
        for step in range(3):
            grads = {k: draw(np.random.default_rng(10 + step), s, dtype) for k, s in shapes.items()}
            opt.update(params, grads)
        runs.append(params)
    for k in shapes:
        close(runs[1][k], runs[0][k], dtype, f"AdamW after 3 steps: {k}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_whole_model_forward_backward_and_mlm_step(dtype):
    cfg = mb.BertConfig(vocab_size=41, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                        intermediate_size=37, max_position_embeddings=16, pad_token_id=0)
    rng = np.random.default_rng(7)
    params = mb.init_params(cfg, rng, dtype)
    ids = rng.integers(0, 41, (3, 13))
    real = np.ones((3, 13), int)
    real[2, 9:] = 0
    labels = np.where(rng.random((3, 13)) < 0.3, ids, -100)
    runs = []
    for ops in (PLAIN, FAST):
        out, cache = mb.model_forward(params, cfg, ids, None, real, labels, ops=ops)
        step = mlm_forward_backward(params, cfg, ids, labels >= 0, ids, real.astype(bool),
                                    np.random.default_rng(8), ops=ops)
        runs.append((out, mb.model_backward(cache), step))
    (out0, g0, s0), (out1, g1, s1) = runs
    for k in ("hidden", "logits", "loss"):
        close(np.asarray(out1[k]), np.asarray(out0[k]), dtype, f"model_forward {k}", 10)
    for k in params:
        close(g1[k], g0[k], dtype, f"model_backward d{k}", 50)
    assert abs(s1[0] - s0[0]) <= 1e-4 * abs(s0[0]) and s1[2] == s0[2]
    for k in params:
        close(s1[3][k], s0[3][k], dtype, f"MLM step d{k}", 50)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy(dtype):
    rng = np.random.default_rng(11)
    z, y = draw(rng, (17, 1009), dtype, 4), rng.integers(0, 1009, 17)
    l0, c0 = PLAIN.cross_entropy_forward(z, y)
    z_before = z.copy()
    l1, c1 = FAST.cross_entropy_forward(z, y)
    np.testing.assert_array_equal(z, z_before, err_msg="the tuned forward leaves the logits alone")
    close(np.asarray(l1), np.asarray(l0), dtype, "cross-entropy loss")
    for dloss in (1.0, 0.3):
        close(FAST.cross_entropy_backward(dloss, c1), PLAIN.cross_entropy_backward(dloss, c0), dtype,
              f"cross-entropy dlogits, dloss {dloss}", 0.01)


def test_tuned_ops_on_arrays_that_refuse_to_mix_with_numpy():
    """On another array module (the strict double of tests/strict_arrays.py, as CuPy) the tuned ops take
    their module's path: an MLM step, an AdamW update and cached decoding give the NumPy run's numbers."""
    from minibert.decode import greedy
    from minibert.kv_cache import UniLMCache
    from tests.strict_arrays import StrictArray, StrictGenerator, strict, to_strict

    cfg = mb.BertConfig(vocab_size=37, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=24, max_position_embeddings=24)
    params = mb.init_params(cfg, np.random.default_rng(0), np.float32)
    rng = np.random.default_rng(1)
    labels = rng.integers(5, 37, (3, 9))
    real = np.ones((3, 9), bool)
    is_masked = (rng.random((3, 9)) < 0.3) & real
    batch = (np.where(is_masked, 4, labels), is_masked, labels, real)
    s_params = to_strict(params)
    want = mlm_forward_backward(params, cfg, *batch, np.random.default_rng(2), ops=FAST)
    got = mlm_forward_backward(s_params, cfg, *to_strict(batch), StrictGenerator(2), ops=FAST)
    assert abs(got[0] - want[0]) < 1e-5 and got[2] == want[2]
    for k in params:
        assert isinstance(got[3][k], StrictArray), k
        close(got[3][k].get(), want[3][k], np.float32, f"MLM step on strict arrays: d{k}", 10)
    for p, g in ((params, want[3]), (s_params, got[3])):
        AdamW(p, ops=FAST, lr=1e-2).update(p, g)
    for k in params:
        close(s_params[k].get(), params[k], np.float32, f"AdamW on strict arrays: {k}")
    ids = rng.integers(5, 37, (2, 6))
    tokens = [greedy(UniLMCache(p, cfg, i, ops=FAST), 7, 5)
              for p, i in ((params, ids), (s_params, strict.asarray(ids)))]
    assert [[int(t) for t in row] for row in tokens[1]] == tokens[0]


def test_triple_extraction_loss_on_both_layers():
    """The triple extractor's training loss and gradients take the ops table too (float64)."""
    from minibert.tokenizer import Tokenizer
    from minibert.triple_extraction.data import encode_example, generate_corpus, training_batch
    from minibert.triple_extraction.model import init_extractor_params, loss_backward, loss_forward
    from minibert.vocab import build_vocab

    train, _ = generate_corpus(4, 0, seed=0)
    predicates = sorted({p for ex in train for _, p, _ in ex["spo_list"]})
    tok = Tokenizer(build_vocab([ex["text"] for ex in train], 300))
    cfg = mb.BertConfig(vocab_size=len(tok.id_to_token), hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=24, max_position_embeddings=96)
    params = init_extractor_params(cfg, len(predicates), np.random.default_rng(8), dtype=np.float64)
    batch = training_batch([encode_example(tok, ex, predicates, 96) for ex in train], len(predicates),
                           tok.pad_id, np.random.default_rng(9))
    runs = []
    for ops in (PLAIN, FAST):
        loss, cache = loss_forward(params, cfg, batch, ops=ops)
        runs.append((np.asarray(loss), loss_backward(cache)))
    close(runs[1][0], runs[0][0], np.float64, "triple extraction loss")
    for k in params:
        close(runs[1][1][k], runs[0][1][k], np.float64, f"triple extraction d{k}", 10)
