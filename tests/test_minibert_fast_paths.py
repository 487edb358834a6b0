"""The tuned twins of minibert (minibert/fast/): the same numbers in pieces, in place, over threads;
GELU's accuracy. That they equal the plain layer is tests/test_fast_equals_plain.py."""
import math

import numpy as np
import pytest

import minibert as mb
from minibert.fast import OPS
from minibert.fast import attention as fast_attention
from minibert.fast import layers as fl
from smoothing import threads as parallel


def test_run_pieces_does_every_piece_once_and_passes_errors_on(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    done = []
    parallel.run_pieces(done.append, 100)
    assert sorted(done) == list(range(100)), "every piece exactly once"

    def fail(i):
        if i == 7:
            raise RuntimeError("piece 7")

    with pytest.raises(RuntimeError, match="piece 7"):
        parallel.run_pieces(fail, 20)
    # called from inside a piece it runs inline (no nested pool, no deadlock)
    inner = []
    parallel.run_pieces(lambda i: parallel.run_pieces(inner.append, 3), 4)
    assert sorted(inner) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("kind", ["erf", "tanh"])
def test_gelu_in_blocks_equals_gelu_of_each_slice(monkeypatch, threads, kind):
    """A large array goes in blocks over threads: every element gets exactly what a small array gets."""
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    x = (np.random.default_rng(0).standard_normal((300, 1000)) * 3).astype(np.float32)
    y, cache = fl.gelu_forward(x, kind)
    small = np.concatenate([fl.gelu_forward(row, kind)[0] for row in x])
    np.testing.assert_array_equal(y.reshape(-1), small, err_msg=f"gelu {kind} blocks vs rows")
    y2, none = fl.gelu_forward(x.copy(), kind, inplace=True)
    assert none is None
    np.testing.assert_array_equal(y2, y, err_msg=f"gelu {kind} in place")
    d = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    g = fl.gelu_backward(d, cache)
    g_small = np.concatenate([fl.gelu_backward(d[i], fl.gelu_forward(x[i], kind)[1]) for i in range(len(x))])
    np.testing.assert_array_equal(g.reshape(-1), g_small, err_msg=f"gelu {kind} backward blocks vs rows")


def test_gelu_float32_within_float32_rounding_of_exact():
    x = np.linspace(-12, 12, 240001).astype(np.float32)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    y = fl.gelu_forward(x, "erf")[0].astype(np.float64)
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    # two units in the last place of the exact value, plus |x| times the error of Phi (half the
    # erf approximation's 1.4e-7), which dominates where GELU is small (near 0 and the negative tail)
    assert np.all(np.abs(y - exact) <= 2 * ulp + 1e-7 * np.abs(x)), \
        f"float32 GELU error {np.abs(y - exact).max()}"


def test_layernorm_in_place_equals_cached():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 300, 64)).astype(np.float32)
    g, b = rng.standard_normal(64).astype(np.float32), rng.standard_normal(64).astype(np.float32)
    y, cache = fl.layernorm_forward(x, g, b)
    y2, none = fl.layernorm_forward(x.copy(), g, b, inplace=True)
    assert none is None
    np.testing.assert_array_equal(y2, y, err_msg="LayerNorm in place")
    with pytest.raises(ValueError, match="C-contiguous"):
        fl.layernorm_forward(x.transpose(1, 0, 2), g, b, inplace=True)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_forward_without_cache_equals_forward_with_cache(monkeypatch, threads):
    """keep_cache=False (inference, in place) and the thread count change no number, with a mask
    and with dropout (the same rng draws in the same order)."""
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    cfg = mb.BertConfig(vocab_size=50, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=40)
    rng = np.random.default_rng(3)
    params = mb.init_params(cfg, rng, np.float32, heads=False)
    ids = rng.integers(0, 50, (3, 37))
    real = np.ones((3, 37), int)
    real[1, 30:] = 0
    h, cache = mb.bert_forward(params, cfg, ids, mask=real, ops=OPS)
    h2, none = mb.bert_forward(params, cfg, ids, mask=real, keep_cache=False, ops=OPS)
    assert none is None
    np.testing.assert_array_equal(h2, h, err_msg="hidden without cache")
    hd, _ = mb.bert_forward(params, cfg, ids, mask=real, rng=np.random.default_rng(4), ops=OPS)
    hd2, _ = mb.bert_forward(params, cfg, ids, mask=real, rng=np.random.default_rng(4), keep_cache=False, ops=OPS)
    np.testing.assert_array_equal(hd2, hd, err_msg="hidden with dropout, without cache")
    assert np.abs(hd - h).max() > 1e-3, "dropout was active"


@pytest.mark.parametrize("threads", ["1", "2"])
def test_attention_pieces_change_no_number(monkeypatch, threads):
    """Pieces of one head, of several heads of a row, or of several whole rows: the same bits in the
    forward and the backward (with a mask, so some pieces hold masked rows)."""
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    cfg = mb.BertConfig(vocab_size=10, hidden_size=32, num_attention_heads=4, intermediate_size=8,
                        num_hidden_layers=1)
    rng = np.random.default_rng(8)
    params = mb.init_params(cfg, rng, np.float32, heads=False)
    x = rng.standard_normal((5, 11, 32)).astype(np.float32)
    mask = rng.random((5, 11, 11)) < 0.8
    dout = rng.standard_normal((5, 11, 32)).astype(np.float32)
    results = []
    for scores in (1, 2 * 11 * 11, 4 * 11 * 11, 2 * 4 * 11 * 11, 1 << 17):
        monkeypatch.setattr(fast_attention, "_PIECE_SCORES", scores)
        out, cache = fast_attention.attention_forward(x, params, "encoder.layer.0.attention", cfg, mask=mask)
        dx, grads = fast_attention.attention_backward(dout, cache)
        results.append((len(fast_attention._attention_pieces(5, 4, 11, 11, np)), out, dx, grads))
    assert [r[0] for r in results] == [20, 10, 5, 3, 1], "each branch of the piece layout was taken"
    for n, out, dx, grads in results[1:]:
        np.testing.assert_array_equal(out, results[0][1], err_msg=f"{n} pieces: forward")
        np.testing.assert_array_equal(dx, results[0][2], err_msg=f"{n} pieces: dx")
        for k in grads:
            np.testing.assert_array_equal(grads[k], results[0][3][k], err_msg=f"{n} pieces: {k}")


@pytest.mark.parametrize("ops", [mb.PLAIN, OPS], ids=["plain", "fast"])
def test_attention_refuses_nan_scores(ops):
    cfg = mb.BertConfig(vocab_size=10, hidden_size=8, num_attention_heads=2, intermediate_size=8,
                        num_hidden_layers=1)
    params = mb.init_params(cfg, np.random.default_rng(5), np.float64, heads=False)
    x = np.random.default_rng(6).standard_normal((1, 4, 8))
    x[0, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ops.attention_forward(x, params, "encoder.layer.0.attention", cfg)


@pytest.mark.parametrize("shape", [(5, 4, 3), (3, 4, 5), (4, 2, 4), (7, 3, 2), (2, 3, 7), (9, 6, 8)])
def test_matmul_tall_is_the_product_in_any_orientation(shape):
    """Transposed and cut into column blocks, it is still a @ b, C-contiguous."""
    from minibert.fast.layers import matmul_tall, weight_gradient
    M, K, N = shape
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    r = matmul_tall(a, b)
    assert r.shape == (M, N) and r.flags.c_contiguous
    np.testing.assert_allclose(r, a @ b, rtol=1e-13, err_msg=f"matmul_tall {shape}")
    np.testing.assert_allclose(weight_gradient(a.T, b), a @ b, rtol=1e-13, err_msg="weight_gradient")
