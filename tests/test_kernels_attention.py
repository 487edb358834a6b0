"""minibert/kernels against plain attention (CPU emulation of the unchanged .cu sources; GPU when present).

References: minibert.masks builds the (B, T, T) masks the kernels compute from lengths and segment ids;
minibert.attention.attention_forward / backward is the plain attention (driven through identity
projections); a float64 NumPy twin adds the kernels' Philox dropout mask, and is itself gradient-checked.
"""
import types

import numpy as np
import pytest

from minibert.kernels import attention_backward, attention_forward, flash_attention, flash_decode
from minibert.masks import causal_mask, padding_mask, seq2seq_mask
from tests.cuda_emu import philox_ref as P
from tests.cuda_emu.conftest_helpers import cupy_backend_or_skip, emu_backend_or_skip
from tests.gradcheck import check_grad

KEY = 987654321


@pytest.fixture(scope="module")
def emu():
    return emu_backend_or_skip()


def make_batch(B=3, NH=2, T=37, HS=16, seed=0):
    """q, k, v and a batch with a full sequence, a padded one and an empty one (fully masked rows)."""
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((B, NH, T, HS)).astype(np.float32) for _ in range(3))
    lengths = np.array([T, (2 * T) // 3, 0][:B])
    seg = np.zeros((B, T), np.int64)
    seg[0, T // 2:] = 1                        # source then target, no padding
    seg[1, T // 4:lengths[1]] = 1              # target then padding (segment 0)
    return q, k, v, lengths, seg


def mask_reference(mode, lengths, seg, T):
    real = np.arange(T)[None, :] < lengths[:, None]
    return {"padding": padding_mask, "causal": causal_mask}[mode](real) if mode != "unilm" \
        else seq2seq_mask(seg, real)


def keep_reference(B, NH, T, p):
    if p == 0:
        return np.ones((B, NH, T, T), bool)
    w = P.words_for_rows(KEY, np.arange(B * NH * T), 0, (T + 7) // 8).reshape(B * NH * T, -1)[:, :T]
    return (w >= np.uint32(round(p * 2.0**32))).reshape(B, NH, T, T)


def forward_reference(q, k, v, mask, keep, p):
    """float64: A = keep * softmax(q k^T / sqrt(HS) masked) / (1 - p), out = A v; zero rows stay zero."""
    q, k, v = (a.astype(np.float64) for a in (q, k, v))
    s = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    s = np.where(mask[:, None], s, -np.inf)
    m = s.max(-1, keepdims=True)
    e = np.where(mask[:, None], np.exp(s - np.where(np.isfinite(m), m, 0)), 0.0)
    tot = e.sum(-1, keepdims=True)
    probs = e / np.where(tot > 0, tot, 1)
    att = probs * keep / (1 - p)
    return att @ v, probs, att


def backward_reference(dout, q, k, v, probs, att, keep, p):
    dout = dout.astype(np.float64)
    q, k, v = (a.astype(np.float64) for a in (q, k, v))
    dv = att.swapaxes(-1, -2) @ dout
    dp = (dout @ v.swapaxes(-1, -2)) * keep / (1 - p)
    ds = probs * (dp - (dp * probs).sum(-1, keepdims=True))
    scale = 1 / np.sqrt(q.shape[-1])
    return scale * ds @ k, scale * ds.swapaxes(-1, -2) @ q, dv


def test_reference_backward_is_the_gradient():
    """The float64 twin's backward passes the finite-difference check (UniLM mask, dropout, empty row)."""
    q, k, v, lengths, seg = make_batch(B=3, NH=1, T=6, HS=3)
    mask, keep = mask_reference("unilm", lengths, seg, 6), keep_reference(3, 1, 6, 0.3)
    f = lambda q, k, v: forward_reference(q, k, v, mask, keep, 0.3)[0]  # noqa: E731

    def analytic(dout):
        _, probs, att = forward_reference(q, k, v, mask, keep, 0.3)
        return backward_reference(dout, q, k, v, probs, att, keep, 0.3)
    check_grad(f, [q, k, v], analytic, np.random.default_rng(1), names=["q", "k", "v"])


@pytest.mark.parametrize("mode,T,threads,dropout", [("unilm", 37, 16, 0.1), ("padding", 70, 8, 0.25),
                                                    ("causal", 37, 32, 0.0)])
def test_softmax_dropout_pair(emu, mode, T, threads, dropout):
    """Forward and backward: weights, dropout zeros (exact), output and dq, dk, dv."""
    q, k, v, lengths, seg = make_batch(T=T)
    B, NH, _, HS = q.shape
    out, cache = attention_forward(q, k, v, lengths, seg, mode, dropout, KEY, threads=threads, backend=emu)
    mask, keep = mask_reference(mode, lengths, seg, T), keep_reference(B, NH, T, dropout)
    ref, probs, att = forward_reference(q, k, v, mask, keep, dropout)
    np.testing.assert_allclose(cache[3], probs, rtol=1e-5, atol=1e-6, err_msg=f"softmax weights, {mode}")
    np.testing.assert_array_equal(cache[4] != 0, att != 0, err_msg=f"dropout and mask zeros, {mode}")
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=2e-5, err_msg=f"attention output, {mode}")
    assert (out[2] == 0).all(), "an empty sequence (all rows masked) gives 0"
    dout = np.random.default_rng(2).standard_normal(out.shape).astype(np.float32)
    for name, got, want in zip("dq dk dv".split(), attention_backward(dout, cache),
                               backward_reference(dout, q, k, v, probs, att, keep, dropout)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=5e-5, err_msg=f"{name}, {mode}")


def test_pair_matches_minibert_attention(emu):
    """Without dropout the pair equals minibert.attention's plain forward and backward (UniLM mask).

    Identity projections make minibert's layer compute exactly softmax(q k^T / sqrt(HS) + mask) v:
    x = [q | k | v] heads merged, Wq, Wk, Wv pick the three blocks, Wo = I, all biases 0.
    """
    attn = pytest.importorskip("minibert.attention")
    q, k, v, lengths, seg = make_batch(B=2, T=29)
    B, NH, T, HS = q.shape
    C = NH * HS
    merge = lambda a: a.transpose(0, 2, 1, 3).reshape(B, T, C)  # noqa: E731
    x = np.concatenate([merge(a) for a in (q, k, v)], axis=2).astype(np.float64)   # (B, T, 3C)
    eye = np.eye(3 * C)
    params = {"l.output.dense.weight": np.eye(C), "l.output.dense.bias": np.zeros(C)}
    for n, name in enumerate(("query", "key", "value")):
        params[f"l.self.{name}.weight"] = eye[:, n * C:(n + 1) * C]
        params[f"l.self.{name}.bias"] = np.zeros(C)
    config = types.SimpleNamespace(num_attention_heads=NH, head_size=HS, attention_probs_dropout_prob=0.0)
    mask = mask_reference("unilm", lengths, seg, T)
    ref, ref_cache = attn.attention_forward(x, params, "l", config, mask=mask)
    out, cache = attention_forward(q, k, v, lengths, seg, "unilm", backend=emu, threads=16)
    np.testing.assert_allclose(merge(out), ref, rtol=1e-5, atol=2e-5, err_msg="output vs minibert")
    dout = np.random.default_rng(3).standard_normal((B, T, C))
    dx, _ = attn.attention_backward(dout, ref_cache)
    split = lambda a: a.reshape(B, T, NH, HS).transpose(0, 2, 1, 3)  # noqa: E731
    grads = attention_backward(split(dout).astype(np.float32).copy(), cache)
    for n, (name, g) in enumerate(zip("dq dk dv".split(), grads)):
        np.testing.assert_allclose(merge(g), dx[:, :, n * C:(n + 1) * C], rtol=1e-4, atol=5e-5,
                                   err_msg=f"{name} vs minibert")


@pytest.mark.parametrize("tile", [None, (32, 16, 2), (16, 8, 4), (8, 32, 8)], ids=str)
@pytest.mark.parametrize("mode", ["unilm", "padding", "causal"])
def test_flash_forward(emu, mode, tile):
    """Online softmax over key tiles (32 by default) and query tiles (128): T = 70 leaves both partial.
    The other tiles share each query row among 2, 4 or 8 threads (warp shuffles sum the scores)."""
    q, k, v, lengths, seg = make_batch(T=70)
    k[1, :, lengths[1]:] = np.nan            # padding keys are never read
    v[1, :, lengths[1]:] = np.nan
    out = flash_attention(q, k, v, lengths, seg, mode, backend=emu, tile=tile)
    k, v = np.nan_to_num(k), np.nan_to_num(v)
    ref = forward_reference(q, k, v, mask_reference(mode, lengths, seg, 70), 1.0, 0.0)[0]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=2e-5, err_msg=f"flash output, {mode}")
    assert (out[2] == 0).all()


def test_decode_row_equals_full_attention(emu):
    """The decoder's new token: its row of full UniLM attention equals flash_decode over the cache."""
    q, k, v, lengths, seg = make_batch(T=300, HS=8)    # 300 keys: threads see 2 or 3 keys each
    lengths = np.array([300, 211, 0])
    seg[1, 150:211] = 1
    full = forward_reference(q, k, v, mask_reference("unilm", lengths, seg, 300), 1.0, 0.0)[0]
    rows = np.maximum(lengths - 1, 0)
    q_new = np.ascontiguousarray(q[np.arange(3), :, rows])           # (B, NH, HS)
    k[1, :, 211:] = np.nan                                           # stale cache beyond the length
    v[1, :, 211:] = np.nan
    out = flash_decode(q_new, k, v, lengths, backend=emu)
    np.testing.assert_allclose(out[:2], full[np.arange(2), :, rows[:2]], rtol=1e-5, atol=2e-5,
                               err_msg="decode row vs full attention")
    assert (out[2] == 0).all(), "an empty cache gives 0"


def test_bad_input(emu):
    q, k, v, lengths, seg = make_batch(T=8)
    with pytest.raises(ValueError, match="segment_ids"):
        attention_forward(q, k, v, lengths, None, "unilm", backend=emu)
    with pytest.raises(ValueError, match="mode"):
        flash_attention(q, k, v, lengths, seg, "bidirectional", backend=emu)
    with pytest.raises(ValueError, match="lengths must lie"):
        flash_attention(q, k, v, lengths + 9, seg, "padding", backend=emu)
    with pytest.raises(ValueError, match="float32"):
        attention_forward(q.astype(np.float64), k, v, lengths, backend=emu)
    with pytest.raises(ValueError, match="dropout"):
        attention_forward(q, k, v, lengths, dropout=1.0, backend=emu)
    with pytest.raises(ValueError, match="q must be"):
        flash_decode(q, k, v, lengths, backend=emu)
    with pytest.raises(ValueError, match="split"):
        flash_attention(q, k, v, lengths, seg, "padding", backend=emu, tile=(16, 16, 3))
    with pytest.raises(ValueError, match="three positive ints"):
        flash_attention(q, k, v, lengths, seg, "padding", backend=emu, tile=(16, 0, 1))


@pytest.mark.gpu
def test_gpu_kernels_match_reference():
    be = cupy_backend_or_skip()
    cp = be.xp
    q, k, v, lengths, seg = make_batch(B=3, NH=4, T=200, HS=64)
    g = lambda a: cp.asarray(a)  # noqa: E731
    mask = mask_reference("unilm", lengths, seg, 200)
    keep = keep_reference(3, 4, 200, 0.1)
    ref, probs, att = forward_reference(q, k, v, mask, keep, 0.1)
    out, cache = attention_forward(g(q), g(k), g(v), g(lengths), g(seg), "unilm", 0.1, KEY, backend=be)
    np.testing.assert_allclose(cp.asnumpy(out), ref, rtol=1e-4, atol=1e-4, err_msg="GPU pair forward")
    dout = np.random.default_rng(4).standard_normal(q.shape).astype(np.float32)
    for name, got, want in zip("dq dk dv".split(), attention_backward(g(dout), cache),
                               backward_reference(dout, q, k, v, probs, att, keep, 0.1)):
        np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-3, atol=1e-4, err_msg=f"GPU {name}")
    ref0 = forward_reference(q, k, v, mask, 1.0, 0.0)[0]
    for tile in (None, (32, 32, 2), (16, 32, 4), (16, 32, 8)):
        flash = flash_attention(g(q), g(k), g(v), g(lengths), g(seg), "unilm", backend=be, tile=tile)
        np.testing.assert_allclose(cp.asnumpy(flash), ref0, rtol=1e-4, atol=1e-4, err_msg=f"GPU flash, tile {tile}")
    rows = np.maximum(lengths - 1, 0)
    dec = flash_decode(g(np.ascontiguousarray(q[np.arange(3), :, rows])), g(k), g(v), g(lengths), backend=be)
    np.testing.assert_allclose(cp.asnumpy(dec)[:2], ref0[np.arange(2), :, rows[:2]], rtol=1e-4, atol=1e-4,
                               err_msg="GPU decode")
